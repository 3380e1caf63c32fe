/**
 * Writes this node's IPVSNode with server-side apply, as its own field manager, and only when the status
 * changed (the builder keeps it stable across idle resyncs, so writes follow changes, not resyncs).
 * The object is created (apply of its metadata) on the first write; its status goes to /status.
 * A failed write is logged and retried with the next change; it never stops the agent.
 */
import { isDeepStrictEqual } from "node:util";
import { CustomObjectsApi, type KubeConfig, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { IPVSNodeStatus } from "../api/v1alpha1/ipvs-node.ts";
import type { Logger } from "../observability/logger.ts";
import { IPVS_GROUP, IPVS_VERSION } from "./kubernetes-source.ts";

export const AGENT_FIELD_MANAGER = "ipvs-operator-agent";

export interface StatusWriter {
  /** The status as last read or written (to continue detectedAt and lastTransitionTime after a restart). */
  previous(): Promise<IPVSNodeStatus | undefined>;
  /** Writes when it differs from the last write; true when a write happened. */
  write(status: IPVSNodeStatus): Promise<boolean>;
}

export class IpvsNodeStatusWriter implements StatusWriter {
  readonly #api: CustomObjectsApi;
  readonly #name: string;
  readonly #logger: Logger | undefined;
  #lastStatus: IPVSNodeStatus | undefined;
  #loaded = false;
  #created = false;
  /** Writes sent (tests and metrics). */
  writes = 0;

  constructor(options: { kubeConfig: KubeConfig; nodeName: string; logger?: Logger }) {
    this.#api = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.#name = options.nodeName;
    this.#logger = options.logger;
  }

  async previous(): Promise<IPVSNodeStatus | undefined> {
    if (this.#loaded) return this.#lastStatus;
    try {
      const object = (await this.#api.getClusterCustomObject({
        group: IPVS_GROUP,
        version: IPVS_VERSION,
        plural: "ipvsnodes",
        name: this.#name,
      })) as { status?: IPVSNodeStatus };
      this.#created = true;
      this.#lastStatus = object.status;
    } catch (error) {
      if ((error as { code?: number }).code !== 404) throw error;
    }
    this.#loaded = true;
    return this.#lastStatus;
  }

  async write(status: IPVSNodeStatus): Promise<boolean> {
    if (!this.#loaded) await this.previous().catch(() => undefined);
    // Compare values, not text: the server returns keys in its own order.
    if (this.#lastStatus !== undefined && isDeepStrictEqual(status, this.#lastStatus)) return false;
    const ssa = setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply);
    const target = { group: IPVS_GROUP, version: IPVS_VERSION, plural: "ipvsnodes", name: this.#name };
    const object = {
      apiVersion: `${IPVS_GROUP}/${IPVS_VERSION}`,
      kind: "IPVSNode",
      metadata: { name: this.#name },
    };
    try {
      if (!this.#created) {
        await this.#api.patchClusterCustomObject(
          { ...target, body: object, fieldManager: AGENT_FIELD_MANAGER, force: true },
          ssa,
        );
        this.#created = true;
        this.writes++;
      }
      await this.#api.patchClusterCustomObjectStatus(
        { ...target, body: { ...object, status }, fieldManager: AGENT_FIELD_MANAGER, force: true },
        ssa,
      );
      this.writes++;
      this.#lastStatus = status;
      return true;
    } catch (error) {
      if ((error as { code?: number }).code === 404) this.#created = false; // deleted by someone: create again next time
      this.#logger?.warn(
        { err: String((error as Error).message ?? error), ipvsNode: this.#name },
        "Writing the IPVSNode status failed",
      );
      return false;
    }
  }
}
