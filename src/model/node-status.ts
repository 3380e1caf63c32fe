/**
 * buildNodeStatus(): the IPVSNode status of one node from what its last sync saw and did. Pure.
 *
 * Built to be stable, so the status writer writes on change only (never on an idle resync):
 * - a drift entry keeps the detectedAt of the same entry in the previous status;
 * - lastSync describes the last sync that changed something or did not succeed (an idle resync that
 *   found nothing to do leaves it as it was);
 * - conditions follow metav1.Condition (lastTransitionTime moves only when status changes).
 * Lists are bounded (IPVS_NODE_LIMITS): drift most relevant first (what is not ours last); the
 * VirtualServices in bytes, with a count of those left out (virtualServiceLists()).
 */
import type { Condition } from "../api/v1alpha1/index.ts";
import { type DriftEntry, IPVS_NODE_LIMITS, type IPVSNodeStatus } from "../api/v1alpha1/ipvs-node.ts";
import type { NodeEdgeReport } from "../node-edge/node-edge-report.ts";
import { serviceKeyString } from "../vocabulary/table.ts";
import { setCondition } from "./conditions.ts";
import type { DesiredTable, ObjectSource } from "./desired-table.ts";
import type { DriftItem } from "./diff.ts";
import { formatProblem, type Problem } from "./problems.ts";

export interface BackendCounts {
  total: number;
  healthy: number;
  draining: number;
}

/**
 * Real server counts per VirtualService of a node's desired table plus the drains in progress: total
 * (the sorry server not counted), healthy (taking new connections: not draining, weight not set to 0 by
 * a failed health check) and draining (endpoints terminating, removed real servers waiting).
 */
export function backendCounts(
  desired: DesiredTable,
  drains: readonly { service: string }[],
  unhealthy: (virtualService: ObjectSource, address: string, port: number) => boolean = () => false,
): Map<string, BackendCounts> {
  const counts = new Map<string, BackendCounts>();
  const owners = new Map<string, string>();
  for (const e of desired) {
    const vs = `${e.service.source.namespace}/${e.service.source.name}`;
    owners.set(serviceKeyString(e.service.key), vs);
    const c = counts.get(vs) ?? { total: 0, healthy: 0, draining: 0 };
    for (const d of e.destinations) {
      if (d.source.kind === "SorryServer") continue;
      c.total++;
      if (d.draining) c.draining++;
      else if (!unhealthy(e.service.source, d.key.address, d.key.port)) c.healthy++;
    }
    counts.set(vs, c);
  }
  for (const drain of drains) {
    const vs = owners.get(drain.service);
    const c = vs === undefined ? undefined : counts.get(vs);
    if (!c) continue;
    c.total++;
    c.draining++;
  }
  return counts;
}

export interface NodeSyncFacts {
  /** Outcome of the sync. */
  ok: boolean;
  /** Why it failed as a whole (kernel unreadable, lock busy, ...), if it did. */
  errors: { kind: string; message: string }[];
  applied: number;
  failed: number;
  /** Failure reasons of single operations, with the VirtualService they belong to (when known). */
  failures: { virtualService?: string; message: string }[];
  drift: DriftItem[];
  /** Owned services and destinations in the kernel after the sync. */
  services: number;
  destinations: number;
  /** namespace/name of every VirtualService in this node's desired table. */
  programmed: string[];
  /** serviceKeyString -> namespace/name of its VirtualService (marks drift per VirtualService). */
  owners?: ReadonlyMap<string, string>;
  /** Problems found in the objects (invalid, conflicts, ...). */
  problems: Problem[];
  /** namespace/name of a VirtualService -> its real server counts on this node. */
  backends?: ReadonlyMap<string, BackendCounts>;
  durationMs: number;
  kernel?: { ipvsVersion?: string; connectionTableSize?: number };
  /** Health of every probed real server as this node's probers see it (active health checks). */
  probes?: readonly ProbedBackend[];
  /** The node plumbing (VIPs, sysctls, timeouts, sync daemons) after the last whole sync. */
  nodeEdge?: NodeEdgeReport;
}

/** The node edge report as bounded status (no times: it changes only when the node does). */
function nodeEdgeStatus(r: NodeEdgeReport): NonNullable<IPVSNodeStatus["nodeEdge"]> {
  const L = IPVS_NODE_LIMITS;
  return {
    ...(r.vip
      ? {
          vip: {
            interface: r.vip.interface,
            present: r.vip.present,
            up: r.vip.up,
            ...(r.vip.addresses.length > 0 ? { addresses: r.vip.addresses.slice(0, L.vips) } : {}),
            ...(r.vip.foreign.length > 0 ? { foreign: r.vip.foreign.slice(0, L.foreignVips) } : {}),
          },
        }
      : {}),
    ...(r.loopback
      ? {
          loopback: {
            interface: r.loopback.interface,
            ...(r.loopback.addresses.length > 0 ? { addresses: r.loopback.addresses.slice(0, L.vips) } : {}),
          },
        }
      : {}),
    ...(r.tunnels.length > 0
      ? {
          tunnels: r.tunnels.map((t) => ({
            interface: t.interface,
            up: t.up,
            ...(t.addresses.length > 0 ? { addresses: t.addresses.slice(0, L.vips) } : {}),
          })),
        }
      : {}),
    ...(r.snat
      ? {
          snat: {
            table: r.snat.table,
            present: r.snat.present,
            ...(r.snat.virtualServices.length > 0
              ? { virtualServices: r.snat.virtualServices.slice(0, L.vips) }
              : {}),
          },
        }
      : {}),
    ...(r.sysctls.length > 0
      ? {
          sysctls: r.sysctls.slice(0, 32).map((e) => ({
            key: e.key,
            ...(e.value === null ? {} : { value: e.value }),
            ...(e.expected === undefined ? {} : { expected: e.expected }),
            policy: e.policy,
            state: e.state,
          })),
        }
      : {}),
    ...(r.timeouts ? { timeouts: { ...r.timeouts } } : {}),
    ...(r.daemons.length > 0
      ? { daemons: r.daemons.map((d) => ({ state: d.state, interface: d.interface, syncId: d.syncId })) }
      : {}),
    ...(r.drift.length > 0
      ? {
          drift: r.drift.slice(0, L.drift).map((d) => ({
            area: d.area,
            kind: d.kind,
            object: d.object.slice(0, 128),
            ...(d.expected === undefined ? {} : { expected: d.expected.slice(0, 256) }),
            ...(d.found === undefined ? {} : { found: d.found.slice(0, 256) }),
            action: d.action,
          })),
        }
      : {}),
    ...(r.errors.length > 0 ? { errors: r.errors.slice(0, L.errors).map((e) => e.slice(0, 1024)) } : {}),
  };
}

/** One real server with an active health check, as this node sees it. */
export interface ProbedBackend {
  /** namespace/name of the VirtualService. */
  virtualService: string;
  address: string;
  port: number;
  /** namespace/name of the RealServer object; absent for a real server from endpoints. */
  realServer?: string;
  healthy: boolean;
  /** The last failed probe's reason while unhealthy ("" while healthy). */
  message: string;
}

/**
 * The per real server list of the status: unhealthy ones first (what needs attention survives the
 * bound), then by VirtualService, address and port. No probe times: the status changes on transitions
 * only, not on every probe.
 */
function probedBackends(probes: readonly ProbedBackend[]): IPVSNodeStatus["backends"] {
  return [...probes]
    .sort(
      (a, b) =>
        Number(a.healthy) - Number(b.healthy) ||
        a.virtualService.localeCompare(b.virtualService) ||
        a.address.localeCompare(b.address) ||
        a.port - b.port,
    )
    .slice(0, IPVS_NODE_LIMITS.backends)
    .map((p) => ({
      virtualService: p.virtualService,
      address: p.address,
      port: p.port,
      ...(p.realServer === undefined ? {} : { realServer: p.realServer }),
      healthy: p.healthy,
      message: p.healthy ? "" : p.message.slice(0, 1024),
    }));
}

export function buildNodeStatus(
  previous: IPVSNodeStatus | undefined,
  facts: NodeSyncFacts,
  now: Date,
  generation?: number,
): IPVSNodeStatus {
  const stamp = now.toISOString().replace(/\.\d{3}Z$/, "Z");
  const result = facts.errors.length > 0 ? "Failure" : facts.failed > 0 ? "PartialFailure" : "Success";
  const message = [...facts.errors.map((e) => e.message), ...facts.failures.slice(0, 5).map((f) => f.message)]
    .join("; ")
    .slice(0, 4096);
  const changed = facts.applied > 0 || result !== "Success" || previous?.lastSync?.result !== result;
  const lastSync =
    changed || !previous?.lastSync
      ? {
          time: stamp,
          durationMilliseconds: Math.max(0, Math.round(facts.durationMs)),
          result,
          operations: facts.applied,
          ...(message ? { message } : {}),
        }
      : previous.lastSync;

  const previousDrift = new Map((previous?.drift ?? []).map((d) => [driftIdentity(d), d.detectedAt]));
  const drift: DriftEntry[] = [...facts.drift]
    .sort((a, b) => Number(a.kind === "Foreign") - Number(b.kind === "Foreign"))
    .slice(0, IPVS_NODE_LIMITS.drift)
    .map((d) => {
      const entry: DriftEntry = {
        detectedAt: stamp,
        kind: d.kind,
        service: d.service.slice(0, 128),
        ...(d.destination === undefined ? {} : { destination: d.destination.slice(0, 64) }),
        ...(d.field === undefined ? {} : { field: d.field }),
        ...(d.expected === undefined ? {} : { expected: d.expected.slice(0, 256) }),
        ...(d.actual === undefined ? {} : { actual: d.actual.slice(0, 256) }),
        action: d.action,
      };
      entry.detectedAt = previousDrift.get(driftIdentity(entry)) ?? stamp;
      return entry;
    });

  const problemsByVs = new Map<string, string[]>();
  for (const p of facts.problems) {
    if (p.object.kind !== "VirtualService") continue;
    const k = `${p.object.namespace}/${p.object.name}`;
    problemsByVs.set(k, [...(problemsByVs.get(k) ?? []), `${p.kind}: ${formatProblem(p)}`]);
  }
  const failuresByVs = new Map<string, string[]>();
  for (const f of facts.failures) {
    if (f.virtualService)
      failuresByVs.set(f.virtualService, [...(failuresByVs.get(f.virtualService) ?? []), f.message]);
  }
  const driftedVs = new Set(
    facts.drift.filter((d) => d.action === "Reported").flatMap((d) => facts.owners?.get(d.service) ?? []),
  );
  const programmedSet = new Set(facts.programmed);
  const entries = [...new Set([...programmedSet, ...problemsByVs.keys()])].sort().map((name) => {
    const why = [...(problemsByVs.get(name) ?? []), ...(failuresByVs.get(name) ?? [])];
    const programmed = programmedSet.has(name) && !failuresByVs.has(name) && facts.errors.length === 0;
    const backends = facts.backends?.get(name);
    return {
      name,
      programmed,
      ...(driftedVs.has(name) ? { drifted: true } : {}),
      message: why.join("; ").slice(0, 1024),
      ...(backends ? { backends: { ...backends } } : {}),
    };
  });
  const lists = virtualServiceLists(entries);

  const reported = facts.drift.filter((d) => d.action === "Reported").length;
  const generationField = generation === undefined ? {} : { observedGeneration: generation };
  let conditions: Condition[] = previous?.conditions ?? [];
  const syncedReason =
    result === "Success"
      ? "Synced"
      : facts.errors.length > 0
        ? `${facts.errors[0]!.kind}Error`
        : "OperationsFailed";
  const syncedMessage =
    result === "Success"
      ? "the kernel table matches the plan"
      : facts.errors.length > 0
        ? facts.errors[0]!.message.slice(0, 1024)
        : `${facts.failed} operations failed`;
  conditions = setCondition(
    conditions,
    {
      type: "Synced",
      status: result === "Success" ? "True" : "False",
      reason: syncedReason,
      message: syncedMessage,
      ...generationField,
    },
    now,
  );
  conditions = setCondition(
    conditions,
    {
      type: "Drifted",
      status: reported > 0 ? "True" : "False",
      reason: reported > 0 ? "DriftReported" : "NoDrift",
      message:
        reported > 0
          ? `${reported} differences are reported, not repaired (see drift)`
          : "no unrepaired difference",
      ...generationField,
    },
    now,
  );
  conditions = setCondition(
    conditions,
    {
      type: "Ready",
      status: result === "Success" ? "True" : "False",
      reason: result === "Success" ? "Ready" : syncedReason,
      message: result === "Success" ? "the agent keeps this node's IPVS table" : syncedMessage,
      ...generationField,
    },
    now,
  );

  return {
    ...((facts.kernel ?? previous?.kernel) ? { kernel: facts.kernel ?? previous!.kernel } : {}),
    lastSync,
    services: facts.services,
    destinations: facts.destinations,
    conditions,
    ...(drift.length > 0 ? { drift } : {}),
    ...lists,
    ...(facts.probes && facts.probes.length > 0
      ? {
          backendCounts: {
            probed: facts.probes.length,
            unhealthy: facts.probes.filter((p) => !p.healthy).length,
            unlisted: Math.max(0, facts.probes.length - IPVS_NODE_LIMITS.backends),
          },
          backends: probedBackends(facts.probes),
        }
      : {}),
    ...(facts.nodeEdge ? { nodeEdge: nodeEdgeStatus(facts.nodeEdge) } : {}),
  } as IPVSNodeStatus;
}

type VirtualServiceEntry = NonNullable<IPVSNodeStatus["virtualServices"]>[number];
type ProgrammedGroup = NonNullable<IPVSNodeStatus["programmedVirtualServices"]>[number];

/** JSON bytes of a value as one more element of a JSON array (the comma included). */
const bytes = (value: unknown) => JSON.stringify(value).length + 1;

/**
 * The VirtualService part of the status, within IPVS_NODE_LIMITS.virtualServiceBytes of JSON:
 * - virtualServices: one entry per VirtualService with something to report (not programmed, drifted
 *   or with a message), not programmed first, at most IPVS_NODE_LIMITS.virtualServices;
 * - programmedVirtualServices: the rest (programmed, nothing to report) as names grouped by namespace
 *   and real server counts (~25 bytes a VirtualService instead of ~110);
 * - virtualServiceCounts: total, programmed and unlisted (in neither list: past the bound).
 * What does not fit is left out, never cut, and counted in unlisted, so the aggregator knows it cannot
 * see everything this node has.
 */
function virtualServiceLists(
  entries: readonly VirtualServiceEntry[],
): Pick<IPVSNodeStatus, "virtualServices" | "programmedVirtualServices" | "virtualServiceCounts"> {
  let budget = IPVS_NODE_LIMITS.virtualServiceBytes - 4; // the two arrays' brackets
  const take = (cost: number): boolean => {
    if (cost > budget) return false;
    budget -= cost;
    return true;
  };
  const attention = (e: VirtualServiceEntry) => !e.programmed || e.drifted === true || e.message !== "";
  const rank = (e: VirtualServiceEntry) => (e.programmed ? (e.drifted ? 1 : 2) : 0);
  const virtualServices: VirtualServiceEntry[] = [];
  for (const e of entries.filter(attention).sort((a, b) => rank(a) - rank(b) || (a.name < b.name ? -1 : 1)))
    if (virtualServices.length < IPVS_NODE_LIMITS.virtualServices && take(bytes(e))) virtualServices.push(e);
  const groups = new Map<string, ProgrammedGroup>();
  for (const e of entries) {
    if (attention(e)) continue;
    const slash = e.name.indexOf("/");
    const namespace = e.name.slice(0, slash);
    const b = e.backends;
    const key = JSON.stringify([namespace, b?.total, b?.healthy, b?.draining]);
    groups.set(key, groups.get(key) ?? { namespace, ...(b ? { backends: { ...b } } : {}), names: [] });
    groups.get(key)!.names.push(e.name.slice(slash + 1));
  }
  const programmedVirtualServices = [...groups.keys()]
    .sort()
    .map((key) => groups.get(key)!)
    .filter((g) => {
      const header = bytes({ ...g, names: [] });
      if (!take(header)) return false;
      g.names = g.names.filter((n) => take(bytes(n)));
      if (g.names.length === 0) budget += header; // not written
      return g.names.length > 0;
    });
  const listed = virtualServices.length + programmedVirtualServices.reduce((n, g) => n + g.names.length, 0);
  return {
    ...(virtualServices.length > 0 ? { virtualServices } : {}),
    ...(programmedVirtualServices.length > 0 ? { programmedVirtualServices } : {}),
    virtualServiceCounts: {
      total: entries.length,
      programmed: entries.filter((e) => e.programmed).length,
      unlisted: entries.length - listed,
    },
  };
}

function driftIdentity(
  d: Pick<DriftEntry, "kind" | "service" | "destination" | "field" | "expected" | "actual" | "action">,
): string {
  return [
    d.kind,
    d.service,
    d.destination ?? "",
    d.field ?? "",
    d.expected ?? "",
    d.actual ?? "",
    d.action,
  ].join("|");
}
