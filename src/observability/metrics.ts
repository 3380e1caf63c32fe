/**
 * The agent's Prometheus metrics, in the style of kube-proxy's (sync_proxy_rules_duration_seconds,
 * last_queued/last_synced timestamps, network_programming_duration_seconds) and kube-router's
 * (per-service IPVS counters): one registry per agent, served as text at /metrics by the health server.
 * Names start with `ipvs_operator_`; counters end in `_total`.
 *
 * Two kinds:
 * - the agent's own work, updated from each sync's result by `observeSync`: sync duration, programming
 *   latency, last success, kernel operations by operation and result, table dumps, drift, owned
 *   entries, draining destinations. No per-object labels.
 * - per VirtualService and real server, read at scrape time (ipvs-stats.ts): the kernel's counters and
 *   rates of the services this agent owns and desires (one table read per scrape, labelled from the
 *   agent's last plan, foreign services never exported, destination series bounded), and backends by
 *   state from the last plan. Written straight into the exposition; nothing of a scrape is kept.
 * A scrape never touches a sync: it only reads (through the kernel's own request queue), and a failed
 * read counts in ipvs_operator_scrape_errors_total, with no IPVS series in that scrape.
 *
 * Labels: `namespace` and `virtualservice` name the VirtualService (kube-state-metrics' convention), so a
 * Prometheus Operator monitor must keep them with `honorLabels: true`: otherwise its own `namespace`
 * target label (the agent pod's) wins and ours becomes `exported_namespace`. The node is not a label of
 * the agent's: the chart's monitors add `node` by relabelling, and the dashboard filters on it.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { SyncResult } from "../reconcile/reconciler.ts";
import { IPVS_STATS_FAMILIES, IpvsStatsMetrics, type IpvsStatsSource } from "./ipvs-stats.ts";

/** What a sync's caller knows beyond the result: its time span and the oldest change it applied. */
export interface SyncTiming {
  startedAt: number;
  endedAt: number;
  /** When the oldest change this sync applied was noticed (ms); undefined when none was waiting. */
  oldestRequestAt?: number;
}

const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class AgentMetrics {
  readonly registry = new Registry();
  readonly #syncDuration: Histogram<"result">;
  readonly #programming: Histogram;
  readonly #lastSuccess: Gauge;
  readonly #operations: Counter<"operation" | "result">;
  readonly #dumps: Counter;
  readonly #drift: Gauge<"kind" | "action">;
  readonly #owned: Gauge<"entry">;
  readonly #draining: Gauge;

  readonly #ipvs: IpvsStatsMetrics | undefined;

  /**
   * processMetrics: prom-client's process and Node.js metrics (default on). ipvs: where the scrape-time
   * IPVS counters come from (none without it); maxDestinations: ipvs-stats.ts's bound on destination series.
   */
  constructor(options: { processMetrics?: boolean; ipvs?: IpvsStatsSource; maxDestinations?: number } = {}) {
    const registers = [this.registry];
    if (options.processMetrics ?? true)
      collectDefaultMetrics({ register: this.registry, prefix: "ipvs_operator_" });
    this.#syncDuration = new Histogram({
      name: "ipvs_operator_sync_duration_seconds",
      help: "Time of one sync of the IPVS table (compute, read or reuse the table, diff, apply), by result.",
      labelNames: ["result"],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.#programming = new Histogram({
      name: "ipvs_operator_network_programming_duration_seconds",
      help: "From a change the agent noticed (resource, endpoint, health) to the end of the sync that applied it.",
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.#lastSuccess = new Gauge({
      name: "ipvs_operator_last_successful_sync_timestamp_seconds",
      help: "When the last successful sync ended (Unix time).",
      registers,
    });
    this.#operations = new Counter({
      name: "ipvs_operator_kernel_operations_total",
      help: "IPVS operations sent to the kernel, by operation and result (applied, failed, skipped, unknown).",
      labelNames: ["operation", "result"],
      registers,
    });
    this.#dumps = new Counter({
      name: "ipvs_operator_kernel_table_dumps_total",
      help: "Syncs that read the whole IPVS table from the kernel (the others work from the table the last one read).",
      registers,
    });
    this.#drift = new Gauge({
      name: "ipvs_operator_drift_items",
      help: "Differences found by the last sync, by kind (Missing, Unexpected, Modified, Foreign) and action.",
      labelNames: ["kind", "action"],
      registers,
    });
    this.#owned = new Gauge({
      name: "ipvs_operator_owned_entries",
      help: "IPVS services and destinations this agent owns in the kernel after the last sync.",
      labelNames: ["entry"],
      registers,
    });
    this.#draining = new Gauge({
      name: "ipvs_operator_draining_destinations",
      help: "Destinations at weight 0 waiting for their connections to end or their drain timeout.",
      registers,
    });
    this.#ipvs = options.ipvs
      ? new IpvsStatsMetrics(this.registry, options.ipvs, {
          ...(options.maxDestinations === undefined ? {} : { maxDestinations: options.maxDestinations }),
        })
      : undefined;
  }

  observeSync(result: SyncResult, timing: SyncTiming): void {
    const ok = result.ok && result.errors.length === 0;
    const seconds = Math.max(0, timing.endedAt - timing.startedAt) / 1000;
    this.#syncDuration.observe(
      { result: ok ? "success" : result.outcomes.length > 0 ? "partial" : "failure" },
      seconds,
    );
    for (const o of result.outcomes) this.#operations.inc({ operation: o.operation.op, result: o.result });
    if (result.dumped) this.#dumps.inc();
    if (!result.snapshot) return; // the kernel could not be read: keep the last known state
    this.#drift.reset();
    const drift = new Map<string, { kind: string; action: string; n: number }>();
    for (const d of result.drift) {
      const key = `${d.kind}/${d.action}`;
      const entry = drift.get(key) ?? { kind: d.kind, action: d.action, n: 0 };
      entry.n++;
      drift.set(key, entry);
    }
    for (const { kind, action, n } of drift.values()) this.#drift.set({ kind, action }, n);
    this.#owned.set({ entry: "services" }, result.owned.services);
    this.#owned.set({ entry: "destinations" }, result.owned.destinations);
    this.#draining.set(result.draining);
    if (ok) {
      this.#lastSuccess.set(timing.endedAt / 1000);
      if (timing.oldestRequestAt !== undefined && result.outcomes.length > 0) {
        this.#programming.observe(Math.max(0, timing.endedAt - timing.oldestRequestAt) / 1000);
      }
    }
  }

  /**
   * The exposition text (Prometheus text format 0.0.4) and its content type: the registry's metrics,
   * then the IPVS counters of this scrape's one table read (written straight as text, see ipvs-stats.ts).
   */
  async expose(): Promise<{ contentType: string; text: string }> {
    const view = await this.#ipvs?.read();
    const text = await this.registry.metrics();
    return {
      contentType: this.registry.contentType,
      text: this.#ipvs ? text + this.#ipvs.render(view) : text,
    };
  }

  /** Every metric family this agent can expose, with its type (the dashboard test checks against these). */
  families(): { name: string; type: string }[] {
    const registered = this.registry.getMetricsAsArray().map((m) => ({ name: m.name, type: String(m.type) }));
    return this.#ipvs ? [...registered, ...IPVS_STATS_FAMILIES] : registered;
  }
}
