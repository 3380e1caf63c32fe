/**
 * The standalone source: a directory of manifests, watched. The agent runs from it without Kubernetes
 * (`ipvs-operator agent --from-dir DIR`). Any change under the directory (fs.watch, debounced) and a
 * periodic re-read (fs.watch can miss events on some file systems) load every file again; a file that
 * does not parse (an editor's half-written save) makes the state `incomplete`, so nothing is removed
 * until it parses again.
 */
import { type FSWatcher, watch } from "node:fs";
import type { Snapshot } from "../model/snapshot.ts";
import type { Logger } from "../observability/logger.ts";
import type { SnapshotSource, SourceState } from "../sources/snapshot-source.ts";
import { loadManifests } from "./manifest-source.ts";

export interface DirectorySourceOptions {
  path: string;
  nodeName: string;
  /** Labels on top of those of a Node object of this name in the directory. */
  nodeLabels?: Record<string, string>;
  /** Quiet time after the last change before re-reading, in ms (default 200). */
  debounceMs?: number;
  /** Re-read this often even without change events, in ms (default 30 s; 0 = never). */
  rereadMs?: number;
  logger?: Logger;
  /**
   * Enforce the address policy: the IPVSAddressPolicy objects of the directory go into the snapshot, with
   * its Namespace objects as the namespaces' labels (for namespaceSelectors; a namespace without a
   * Namespace document in the directory has no labels).
   */
  addressPolicies?: boolean;
}

export class DirectorySource implements SnapshotSource {
  readonly #options: DirectorySourceOptions;
  readonly #listeners: (() => void)[] = [];
  #state: SourceState;
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #reread: NodeJS.Timeout | undefined;
  #synced = false;
  #loading: Promise<void> | undefined;
  #again = false;

  constructor(options: DirectorySourceOptions) {
    this.#options = options;
    this.#state = {
      snapshot: { virtualServices: [], realServers: [], services: [], endpointSlices: [], endpoints: [] },
      node: { name: options.nodeName, labels: options.nodeLabels ?? {} },
      incomplete: ["the directory has not been read yet"],
    };
  }

  get synced(): boolean {
    return this.#synced;
  }

  onChange(listener: () => void): void {
    this.#listeners.push(listener);
  }

  current(): SourceState {
    return this.#state;
  }

  async start(): Promise<void> {
    await this.#load();
    try {
      this.#watcher = watch(this.#options.path, { recursive: true }, () => this.#schedule());
      this.#watcher.on("error", (error) => {
        this.#options.logger?.warn(
          { err: String(error) },
          "Watching the manifest directory failed; re-reading on a timer only",
        );
      });
    } catch (error) {
      this.#options.logger?.warn(
        { err: String(error) },
        "Cannot watch the manifest directory; re-reading on a timer only",
      );
    }
    const every = this.#options.rereadMs ?? 30_000;
    if (every > 0) this.#reread = setInterval(() => this.#schedule(), every);
    this.#synced = true;
  }

  async stop(): Promise<void> {
    this.#watcher?.close();
    clearTimeout(this.#debounce);
    clearInterval(this.#reread);
    await this.#loading;
  }

  /** Re-reads after a quiet period; changes during a read make one more read. */
  #schedule(): void {
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => {
      if (this.#loading) this.#again = true;
      else void this.#load();
    }, this.#options.debounceMs ?? 200);
  }

  #load(): Promise<void> {
    this.#loading = (async () => {
      do {
        this.#again = false;
        const load = await loadManifests([this.#options.path]);
        const node = load.objects.nodes.find(
          (n) => (n as { metadata?: { name?: unknown } }).metadata?.name === this.#options.nodeName,
        ) as { metadata?: { labels?: Record<string, string> } } | undefined;
        const snapshot: Snapshot = {
          virtualServices: load.objects.virtualServices,
          realServers: load.objects.realServers,
          services: load.objects.services as Snapshot["services"],
          endpointSlices: load.objects.endpointSlices as Snapshot["endpointSlices"],
          endpoints: load.objects.endpoints as Snapshot["endpoints"],
          ...(this.#options.addressPolicies
            ? {
                addressPolicies: load.objects.addressPolicies,
                namespaces: load.objects.namespaces as Snapshot["namespaces"],
              }
            : {}),
        };
        for (const error of load.errors) this.#options.logger?.warn({ error }, "Manifest not loaded");
        this.#state = {
          snapshot,
          node: {
            name: this.#options.nodeName,
            labels: { ...(node?.metadata?.labels ?? {}), ...(this.#options.nodeLabels ?? {}) },
          },
          incomplete: load.errors,
        };
        for (const listener of this.#listeners) listener();
      } while (this.#again);
    })().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }
}
