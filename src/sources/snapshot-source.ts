/**
 * A snapshot source: where the agent's objects come from (the Kubernetes API through informers, or a
 * watched directory of manifests). Level-based: a source says "something changed" and hands out its
 * whole current state; it never delivers events to act on one by one.
 */
import type { NodeInfo, Snapshot } from "../model/snapshot.ts";

export interface SourceState {
  snapshot: Snapshot;
  /** This node's name and labels (for spec.nodeSelector). */
  node: NodeInfo;
  /**
   * Why the state is incomplete right now (a manifest that does not parse, a cache that has not synced
   * since it was started): while any is present, nothing is removed from the kernel.
   */
  incomplete: string[];
}

export interface SnapshotSource {
  /** Starts watching; resolves once every cache has its first full state (or rejects when it cannot start). */
  start(): Promise<void>;
  /** Stops watching; safe to call twice. */
  stop(): Promise<void>;
  /** True once start() resolved. */
  readonly synced: boolean;
  current(): SourceState;
  /** Called (without arguments) after any change; the listener reads current(). */
  onChange(listener: () => void): void;
}
