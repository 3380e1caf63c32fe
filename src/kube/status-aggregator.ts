/**
 * The status aggregator: while this agent holds the Lease, it watches every IPVSNode, VirtualService and
 * RealServer and writes each VirtualService's and RealServer's status (server-side apply, field manager
 * `ipvs-operator-aggregator`) when, and only when, the aggregate differs from what the object shows.
 * Changes are coalesced (one pass at most every `minIntervalMs`), so the number of writes follows the
 * changes of the world, not the number of nodes or resyncs. A pass whose writes failed (409 Conflict,
 * 429, 5xx, a timeout) runs again after a backoff (the interval, doubling up to RETRY_MAX_MS) even when
 * nothing changes, so a status is never left stale until the next change.
 */

import { isDeepStrictEqual } from "node:util";
import {
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import type { IPVSNodeStatus } from "../api/v1alpha1/ipvs-node.ts";
import {
  aggregateRealServerStatus,
  aggregateVirtualServiceStatus,
  indexNodeReports,
  indexRealServerHealth,
} from "../model/aggregate-status.ts";
import type { Logger } from "../observability/logger.ts";
import { IPVS_GROUP, IPVS_VERSION, pagedList, StrippingWatch } from "./kubernetes-source.ts";
import { LeaderLease } from "./leader-lease.ts";

export const AGGREGATOR_FIELD_MANAGER = "ipvs-operator-aggregator";
const WRITES_IN_FLIGHT = 8;
/** The longest wait before a pass with failed writes runs again. */
const RETRY_MAX_MS = 30_000;

interface Obj extends KubernetesObject {
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

export interface StatusAggregatorOptions {
  kubeConfig: KubeConfig;
  identity: string;
  /** Namespace of the Lease (the agent's own, from the downward API). */
  leaseNamespace: string;
  leaseName?: string;
  minIntervalMs?: number;
  leaseDurationSeconds?: number;
  renewMs?: number;
  logger?: Logger;
}

export class StatusAggregator {
  readonly #o: StatusAggregatorOptions;
  readonly #api: CustomObjectsApi;
  readonly #lease: LeaderLease;
  #informers: Record<"ipvsnodes" | "virtualservices" | "realservers", ListWatch<Obj>> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #lastRun = 0;
  /** Passes in a row with failed writes (the retry backoff). */
  #failedPasses = 0;
  /** Status writes sent (tests, metrics). */
  writes = 0;
  passes = 0;

  constructor(options: StatusAggregatorOptions) {
    this.#o = options;
    this.#api = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.#lease = new LeaderLease({
      kubeConfig: options.kubeConfig,
      namespace: options.leaseNamespace,
      name: options.leaseName ?? "ipvs-operator-status-aggregator",
      identity: options.identity,
      ...(options.leaseDurationSeconds === undefined
        ? {}
        : { leaseDurationSeconds: options.leaseDurationSeconds }),
      ...(options.renewMs === undefined ? {} : { renewMs: options.renewMs }),
      ...(options.logger ? { logger: options.logger } : {}),
      onChange: (leader) => void (leader ? this.#lead() : this.#follow()),
    });
  }

  get isLeader(): boolean {
    return this.#lease.isLeader;
  }

  start(): void {
    this.#lease.start();
  }

  async stop(): Promise<void> {
    await this.#lease.stop();
    await this.#follow();
  }

  async #lead(): Promise<void> {
    this.#failedPasses = 0;
    const watch = new StrippingWatch(this.#o.kubeConfig);
    const make = (plural: "ipvsnodes" | "virtualservices" | "realservers") => {
      const list = pagedList((page) =>
        this.#api.listClusterCustomObject({ group: IPVS_GROUP, version: IPVS_VERSION, plural, ...page }),
      ) as () => Promise<KubernetesListObject<Obj>>;
      const informer = new ListWatch<Obj>(
        `/apis/${IPVS_GROUP}/${IPVS_VERSION}/${plural}`,
        watch,
        list,
        false,
      );
      informer.on("change", () => this.#schedule());
      informer.on("error", (error: unknown) => {
        if (!this.#informers) return; // stopped (losing the lease or shutting down aborts the watches)
        this.#o.logger?.warn({ resource: plural, err: String(error) }, "Aggregator watch failed; restarting");
        setTimeout(() => this.#informers && void informer.start(), 1000);
      });
      return informer;
    };
    this.#informers = {
      ipvsnodes: make("ipvsnodes"),
      virtualservices: make("virtualservices"),
      realservers: make("realservers"),
    };
    await Promise.all(Object.values(this.#informers).map((i) => i.start()));
    this.#schedule();
  }

  async #follow(): Promise<void> {
    const informers = this.#informers;
    this.#informers = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (informers) await Promise.all(Object.values(informers).map((i) => i.stop()));
    await this.#running;
  }

  #schedule(): void {
    if (!this.#informers || this.#timer) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    const interval = this.#o.minIntervalMs ?? 1000;
    // After failed writes, wait longer each time: a change does not make a failing server fail less.
    const backoff =
      this.#failedPasses > 0 ? Math.min(RETRY_MAX_MS, interval * 2 ** (this.#failedPasses - 1)) : 0;
    const wait = Math.max(0, this.#lastRun + Math.max(interval, backoff) - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#pass()
        .then((failed) => {
          this.#failedPasses = failed > 0 ? this.#failedPasses + 1 : 0;
        })
        .finally(() => {
          this.#running = undefined;
          if (this.#again || this.#failedPasses > 0) {
            this.#again = false;
            this.#schedule();
          }
        });
    }, wait);
  }

  /**
   * One pass: every VirtualService and RealServer whose aggregate differs from what it shows. Resolves
   * with the number of writes that failed.
   */
  async #pass(): Promise<number> {
    const informers = this.#informers;
    if (!informers) return 0;
    let failed = 0;
    this.#lastRun = Date.now();
    this.passes++;
    const now = new Date();
    const reports = informers.ipvsnodes
      .list()
      .map((n) => ({ node: n.metadata?.name ?? "", status: n.status as IPVSNodeStatus | undefined }));
    const views = indexNodeReports(reports);
    const health = indexRealServerHealth(reports);
    const ssa = setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply);
    const jobs: (() => Promise<void>)[] = [];
    const write = (plural: string, kind: string, o: Obj, status: unknown) => {
      // The server returns keys in its own order: compare values, not text.
      if (!isDeepStrictEqual(status, o.status)) jobs.push(() => send(plural, kind, o, status));
    };
    const send = async (plural: string, kind: string, o: Obj, status: unknown) => {
      if (this.#informers !== informers) return; // no longer the leader: leave it to the next one
      const name = o.metadata?.name ?? "";
      const namespace = o.metadata?.namespace ?? "";
      try {
        await this.#api.patchNamespacedCustomObjectStatus(
          {
            group: IPVS_GROUP,
            version: IPVS_VERSION,
            plural,
            namespace,
            name,
            body: {
              apiVersion: `${IPVS_GROUP}/${IPVS_VERSION}`,
              kind,
              metadata: { name, namespace },
              status,
            },
            fieldManager: AGGREGATOR_FIELD_MANAGER,
            force: true,
          },
          ssa,
        );
        this.writes++;
      } catch (error) {
        failed++;
        this.#o.logger?.warn(
          { object: `${kind} ${namespace}/${name}`, err: String((error as Error).message ?? error) },
          "Status write failed",
        );
      }
    };
    for (const vs of informers.virtualservices.list()) {
      const ref = {
        namespace: vs.metadata?.namespace ?? "",
        name: vs.metadata?.name ?? "",
        generation: vs.metadata?.generation ?? 0,
      };
      const previous = vs.status as never;
      const status = aggregateVirtualServiceStatus(
        ref,
        views.get(`${ref.namespace}/${ref.name}`),
        previous,
        now,
        displayAddress(vs.spec),
      );
      write("virtualservices", "VirtualService", vs, status);
    }
    for (const rs of informers.realservers.list()) {
      const ns = rs.metadata?.namespace ?? "";
      const target = (rs.spec?.virtualServiceRef as { name?: string } | undefined)?.name ?? "";
      const ref = {
        namespace: ns,
        name: rs.metadata?.name ?? "",
        generation: rs.metadata?.generation ?? 0,
        enabled: rs.spec?.enabled !== false,
      };
      const previous = rs.status as never;
      const status = aggregateRealServerStatus(
        ref,
        views.get(`${ns}/${target}`),
        previous,
        now,
        health.get(`${ns}/${rs.metadata?.name ?? ""}`),
        health.unlistedNodes,
      );
      write("realservers", "RealServer", rs, status);
    }
    // A few writes at a time: one at a time, a pass over a few hundred objects takes minutes where each
    // request is slow (seen in the VM demo), and the counts it should write wait behind it.
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(WRITES_IN_FLIGHT, jobs.length) }, async () => {
        while (next < jobs.length) await jobs[next++]!();
      }),
    );
    return failed;
  }
}

function displayAddress(spec: Record<string, unknown> | undefined): string | undefined {
  if (!spec) return undefined;
  if (typeof spec.firewallMark === "number") return `fwmark ${spec.firewallMark}`;
  const address = spec.address;
  if (typeof address !== "string") return undefined;
  const port = typeof spec.port === "number" ? spec.port : 0;
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}
