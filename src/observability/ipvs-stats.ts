/**
 * IPVS counters per VirtualService and per real server, read from the kernel at scrape time (as
 * kube-router's service_* metrics and node_exporter's IPVS collector do), and backends by state.
 *
 * One scrape reads the kernel table ONCE (IpvsKernel.readTable; scrapes that overlap share the read).
 * The kernel key -> VirtualService mapping is the agent's last plan (Reconciler.planned()), never a
 * second computation.
 *
 * What is exported:
 * - Only services the agent OWNS (ownership.ts's rule) that are in the last plan's desired table get
 *   series, labelled with their VirtualService. Foreign services (keepalived's, kube-proxy's, an
 *   operator's ipvsadm) are not exported at all: this agent must not put its labels on them, and
 *   node_exporter's IPVS collector already covers the whole table. Owned services that are no longer
 *   desired (a deleted VirtualService's destinations draining) are not exported either: the plan has no
 *   VirtualService for them; ipvs_operator_owned_entries and ipvs_operator_draining_destinations count them.
 * - Every destination of such a service, with the RealServer or EndpointSlice it came from when the plan
 *   has it (empty source labels: a destination the plan no longer wants, e.g. one draining).
 * - Rates (the kernel's 2-second estimates) per service only: per destination, rate() over the _total
 *   counters gives the same and would add five series per destination.
 * - Counters are the kernel's 64-bit values, written exactly.
 *
 * Cost (bench/metrics-scrape.ts, fake kernel, build host): the series of these families are written
 * straight into the exposition text. Through prom-client's label maps, 10,000 services x 10 real servers
 * (910k series, 207 MiB of text) took 12.9 s and +725 MiB of heap per scrape; written directly, 2.3 s
 * and +503 MiB allocated. Destination series are 8 per real server, so they are bounded: above
 * `maxDestinations` owned destinations a scrape writes none of them (all or nothing, so no graph shows
 * a partial sum) and ipvs_operator_scrape_destinations_omitted says how many were left out; the
 * service series stay (10k services: 110k series, 15 MiB, 0.8 s of which 0.5 s is the table read).
 *
 * A failed read never reaches a sync (the sync does its own reads): it counts in
 * ipvs_operator_scrape_errors_total and that scrape has no per-service or per-destination series at
 * all (no stale values). Nothing of a scrape is kept after it.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import type { DesiredDestination, ObjectSource } from "../model/desired-table.ts";
import type { HealthValue } from "../model/snapshot.ts";
import type { PlannedTable } from "../reconcile/reconciler.ts";
import {
  destinationKeyString,
  type IpvsStats,
  type KernelDestination,
  type KernelSnapshot,
  type ServiceKey,
  serviceKeyString,
} from "../vocabulary/table.ts";

/** What the collector reads: the kernel (one dump per scrape) and the agent's last plan. */
export interface IpvsStatsSource {
  readTable(): Promise<KernelSnapshot>;
  /** Undefined before the first sync: then nothing is exported. */
  planned(): PlannedTable | undefined;
  /** The probers' last result for a backend (true healthy, false unhealthy), undefined when none. */
  health?(virtualService: ObjectSource, address: string, port: number): HealthValue | undefined;
}

/** Owned destinations above which a scrape writes no destination series (see the header). */
export const DEFAULT_MAX_DESTINATIONS = 10_000;

interface ServiceRow {
  /** The rendered label pairs, without braces: `namespace="a",virtualservice="b",...`. */
  labels: string;
  stats: IpvsStats | undefined;
}

interface DestinationRow {
  labels: string;
  destination: KernelDestination;
}

/** One scrape's view: the owned, desired part of the kernel table with its labels rendered. */
export interface ScrapeView {
  services: ServiceRow[];
  destinations: DestinationRow[];
}

/** The states of ipvs_operator_backends (see backendStates). */
export type BackendState = "ready" | "unhealthy" | "quiesced" | "terminating" | "draining" | "sorry";

/** The families this file writes into the exposition, for the dashboard test and docs. */
export const IPVS_STATS_FAMILIES = [
  {
    name: "ipvs_operator_service_connections_total",
    type: "counter",
    help: "Connections the kernel scheduled for an owned IPVS service (ipvsadm --stats Conns).",
  },
  {
    name: "ipvs_operator_service_packets_total",
    type: "counter",
    help: "Packets through an owned IPVS service, by direction (in: from clients, out: from real servers).",
  },
  {
    name: "ipvs_operator_service_bytes_total",
    type: "counter",
    help: "Bytes through an owned IPVS service, by direction.",
  },
  {
    name: "ipvs_operator_service_connections_per_second",
    type: "gauge",
    help: "The kernel's connection rate estimate of an owned IPVS service (2-second estimator, ipvsadm --rate CPS).",
  },
  {
    name: "ipvs_operator_service_packets_per_second",
    type: "gauge",
    help: "The kernel's packet rate estimate of an owned IPVS service, by direction.",
  },
  {
    name: "ipvs_operator_service_bytes_per_second",
    type: "gauge",
    help: "The kernel's byte rate estimate of an owned IPVS service, by direction.",
  },
  {
    name: "ipvs_operator_destination_connections_total",
    type: "counter",
    help: "Connections the kernel scheduled to a real server of an owned IPVS service.",
  },
  {
    name: "ipvs_operator_destination_packets_total",
    type: "counter",
    help: "Packets through a real server of an owned IPVS service, by direction.",
  },
  {
    name: "ipvs_operator_destination_bytes_total",
    type: "counter",
    help: "Bytes through a real server of an owned IPVS service, by direction.",
  },
  {
    name: "ipvs_operator_destination_active_connections",
    type: "gauge",
    help: "Active connections of a real server (ipvsadm ActiveConn).",
  },
  {
    name: "ipvs_operator_destination_inactive_connections",
    type: "gauge",
    help: "Inactive connections of a real server (ipvsadm InActConn).",
  },
  {
    name: "ipvs_operator_destination_weight",
    type: "gauge",
    help: "The weight of a real server in the kernel (0: quiesced or draining).",
  },
] as const;

type IpvsStatsFamily = (typeof IPVS_STATS_FAMILIES)[number]["name"];

/** A label value in the exposition format (backslash, double quote and newline escaped). */
function escapeLabel(value: string): string {
  return /[\\"\n]/.test(value)
    ? value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")
    : value;
}

function render(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(",");
}

/** The labels that name a kernel service and its VirtualService (address: protocol, vip, port; fwmark: fwmark, family). */
export function serviceLabels(
  key: ServiceKey,
  virtualService: { namespace: string; name: string },
): Record<string, string> {
  const vs = { namespace: virtualService.namespace, virtualservice: virtualService.name };
  return key.kind === "fwmark"
    ? { ...vs, fwmark: String(key.fwmark), family: key.family }
    : { ...vs, protocol: key.protocol, vip: key.address, port: String(key.port) };
}

/**
 * The owned services of `snapshot` that `planned` desires, with their labels (pure). Destinations take
 * their source from the desired entry, matched by destinationKeyString; with `destinations: false` none
 * are listed.
 */
export function scrapeView(
  snapshot: KernelSnapshot,
  planned: PlannedTable,
  options: { destinations: boolean } = { destinations: true },
): ScrapeView {
  const services: ServiceRow[] = [];
  const destinations: DestinationRow[] = [];
  for (const entry of snapshot.table) {
    const key = entry.service.key;
    const desired = planned.desired.get(serviceKeyString(key));
    if (!desired || !planned.owns(key)) continue;
    const labels = render(serviceLabels(key, desired.service.source));
    services.push({ labels, stats: entry.service.stats });
    if (!options.destinations || entry.destinations.length === 0) continue;
    const sources = new Map<string, DesiredDestination["source"]>();
    for (const d of desired.destinations) sources.set(destinationKeyString(d.key), d.source);
    for (const d of entry.destinations) {
      const realServer = destinationKeyString(d.key);
      const source = sources.get(realServer);
      destinations.push({
        labels: `${labels},${render({
          real_server: realServer,
          source_kind: source?.kind ?? "",
          source_namespace: source?.namespace ?? "",
          source_name: source?.name ?? "",
        })}`,
        destination: d,
      });
    }
  }
  return { services, destinations };
}

/** Owned destinations of the services scrapeView() would list (to decide on the bound before labelling). */
function ownedDestinations(snapshot: KernelSnapshot, planned: PlannedTable): number {
  let n = 0;
  for (const entry of snapshot.table) {
    if (planned.desired.has(serviceKeyString(entry.service.key)) && planned.owns(entry.service.key))
      n += entry.destinations.length;
  }
  return n;
}

/**
 * Backends per VirtualService by state, from the plan (no kernel read) and the probers' results:
 * ready (taking new connections), unhealthy (its last probe failed: at weight 0 with onFailure
 * Quiesce; with Remove it is not in the plan at all), quiesced (desired at weight 0 otherwise:
 * disabled, or a weight of 0), terminating (an endpoint terminating but serving: weight 0), draining
 * (removed, weight 0 until its connections end or its drain timeout), sorry (the sorry server, while no
 * backend is healthy). Only owned services count. "ready" is always present (0 is worth an alert);
 * the other states when non-zero.
 */
export function backendStates(
  planned: PlannedTable,
  health: IpvsStatsSource["health"] = () => undefined,
): Map<string, Map<BackendState, number>> {
  const byVs = new Map<string, Map<BackendState, number>>();
  const owners = new Map<string, string>();
  const add = (vs: string, state: BackendState) => {
    const counts = byVs.get(vs)!;
    counts.set(state, (counts.get(state) ?? 0) + 1);
  };
  for (const [k, entry] of planned.desired) {
    if (!planned.owns(entry.service.key)) continue;
    const vs = `${entry.service.source.namespace}/${entry.service.source.name}`;
    owners.set(k, vs);
    if (!byVs.has(vs)) byVs.set(vs, new Map([["ready", 0]]));
    for (const d of entry.destinations) {
      add(
        vs,
        d.source.kind === "SorryServer"
          ? "sorry"
          : d.draining
            ? "terminating"
            : health(entry.service.source, d.key.address, d.key.port) === false
              ? "unhealthy"
              : d.config.weight === 0
                ? "quiesced"
                : "ready",
      );
    }
  }
  for (const drain of planned.drains) {
    const vs = owners.get(drain.service);
    if (vs !== undefined) add(vs, "draining");
  }
  return byVs;
}

/** The exposition text of the IPVS_STATS_FAMILIES for one view (Prometheus text format 0.0.4). */
export function renderScrapeView(view: ScrapeView): string {
  const out: string[] = [];
  const family = (name: IpvsStatsFamily) => {
    const f = IPVS_STATS_FAMILIES.find((f) => f.name === name)!;
    out.push(`# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.type}\n`);
    return f.name;
  };
  const one = (metric: IpvsStatsFamily, rows: readonly ServiceRow[], stat: keyof IpvsStats) => {
    const name = family(metric);
    for (const r of rows) if (r.stats) out.push(`${name}{${r.labels}} ${r.stats[stat]}\n`);
  };
  const inOut = (
    metric: IpvsStatsFamily,
    rows: readonly ServiceRow[],
    inStat: keyof IpvsStats,
    outStat: keyof IpvsStats,
  ) => {
    const name = family(metric);
    for (const r of rows) {
      if (!r.stats) continue;
      out.push(
        `${name}{${r.labels},direction="in"} ${r.stats[inStat]}\n${name}{${r.labels},direction="out"} ${r.stats[outStat]}\n`,
      );
    }
  };
  one("ipvs_operator_service_connections_total", view.services, "connections");
  inOut("ipvs_operator_service_packets_total", view.services, "inPackets", "outPackets");
  inOut("ipvs_operator_service_bytes_total", view.services, "inBytes", "outBytes");
  one("ipvs_operator_service_connections_per_second", view.services, "cps");
  inOut("ipvs_operator_service_packets_per_second", view.services, "inPps", "outPps");
  inOut("ipvs_operator_service_bytes_per_second", view.services, "inBps", "outBps");
  if (view.destinations.length > 0) {
    const withStats = view.destinations.map((d) => ({ labels: d.labels, stats: d.destination.stats }));
    one("ipvs_operator_destination_connections_total", withStats, "connections");
    inOut("ipvs_operator_destination_packets_total", withStats, "inPackets", "outPackets");
    inOut("ipvs_operator_destination_bytes_total", withStats, "inBytes", "outBytes");
    const plain = (metric: IpvsStatsFamily, value: (d: KernelDestination) => number) => {
      const name = family(metric);
      for (const d of view.destinations) out.push(`${name}{${d.labels}} ${value(d.destination)}\n`);
    };
    plain("ipvs_operator_destination_active_connections", (d) => d.activeConnections);
    plain("ipvs_operator_destination_inactive_connections", (d) => d.inactiveConnections);
    plain("ipvs_operator_destination_weight", (d) => d.config.weight);
  }
  return out.join("");
}

export class IpvsStatsMetrics {
  readonly #source: IpvsStatsSource;
  readonly #maxDestinations: number;
  readonly #errors: Counter;
  readonly #readSeconds: Gauge;
  readonly #omitted: Gauge;
  /** The read of the scrape in progress (overlapping scrapes share it). */
  #pending: Promise<ScrapeView | undefined> | undefined;

  constructor(registry: Registry, source: IpvsStatsSource, options: { maxDestinations?: number } = {}) {
    this.#source = source;
    this.#maxDestinations = options.maxDestinations ?? DEFAULT_MAX_DESTINATIONS;
    const registers = [registry];
    this.#errors = new Counter({
      name: "ipvs_operator_scrape_errors_total",
      help: "Scrapes whose read of the IPVS table failed (that scrape had no per-service or per-destination series).",
      registers,
    });
    this.#readSeconds = new Gauge({
      name: "ipvs_operator_scrape_kernel_read_seconds",
      help: "How long the last successful read of the IPVS table for a scrape took.",
      registers,
    });
    this.#omitted = new Gauge({
      name: "ipvs_operator_scrape_destinations_omitted",
      help: "Owned destinations the last scrape wrote no series for (more than the agent's bound on destination series).",
      registers,
    });
    const plannedNow = () => this.#source.planned();
    const health = source.health?.bind(source);
    new Gauge({
      name: "ipvs_operator_backends",
      help: "Backends of each VirtualService on this node by state (ready, unhealthy, quiesced, terminating, draining, sorry), from the last plan and the probers' results.",
      labelNames: ["namespace", "virtualservice", "state"],
      registers,
      collect(this: Gauge<string>) {
        this.reset();
        const planned = plannedNow();
        if (!planned) return;
        for (const [vs, counts] of backendStates(planned, health)) {
          const slash = vs.indexOf("/");
          const labels = { namespace: vs.slice(0, slash), virtualservice: vs.slice(slash + 1) };
          for (const [state, n] of counts) this.set({ ...labels, state }, n);
        }
      },
    });
  }

  /**
   * Reads the kernel for one scrape (once, whatever the number of callers meanwhile) and updates the
   * scrape's own metrics; call before the registry's exposition, then append render()'s text.
   */
  read(): Promise<ScrapeView | undefined> {
    this.#pending ??= this.#read().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  render(view: ScrapeView | undefined): string {
    return view ? renderScrapeView(view) : "";
  }

  async #read(): Promise<ScrapeView | undefined> {
    const planned = this.#source.planned();
    if (!planned) return undefined;
    const started = performance.now();
    try {
      const snapshot = await this.#source.readTable();
      this.#readSeconds.set((performance.now() - started) / 1000);
      const destinations = ownedDestinations(snapshot, planned);
      const withDestinations = destinations <= this.#maxDestinations;
      this.#omitted.set(withDestinations ? 0 : destinations);
      return scrapeView(snapshot, planned, { destinations: withDestinations });
    } catch {
      this.#errors.inc();
      return undefined;
    }
  }
}
