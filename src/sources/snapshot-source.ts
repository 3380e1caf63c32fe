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

/**
 * What changed, when a source can tell: the EndpointSlices of one Service ("namespace/name"). A change
 * without this (or any other kind) may be anything, and the agent then syncs the whole table.
 */
export interface SourceChange {
  kind: "EndpointSlices";
  service: string;
}

export interface SnapshotSource {
  /** Starts watching; resolves once every cache has its first full state (or rejects when it cannot start). */
  start(): Promise<void>;
  /** Stops watching; safe to call twice. */
  stop(): Promise<void>;
  /** True once start() resolved. */
  readonly synced: boolean;
  current(): SourceState;
  /** Called after any change, with what changed when the source can tell; the listener reads current(). */
  onChange(listener: (change?: SourceChange) => void): void;
  /**
   * Sources that report SourceChange: the EndpointSlices of a Service ("namespace/name") and why the
   * state is incomplete, both as of now and without building the whole state.
   */
  changes?: {
    endpointSlicesOf(service: string): Snapshot["endpointSlices"];
    incomplete(): string[];
  };
}
