/**
 * Aggregated status: what every node's IPVSNode says, folded into each VirtualService and RealServer.
 * Pure; the Lease-elected aggregator (src/kube/status-aggregator.ts) writes the results that changed.
 *
 * Bounded: a VirtualService's status holds counts, never a per-node list, so no object grows with
 * nodes x services (the per-node detail stays in each IPVSNode).
 *
 * Conditions (metav1.Condition; kstatus-compatible, so Flux, Argo CD, `kubectl wait` and `helm --wait`
 * see real health): Accepted, Programmed, Drifted, and Ready / Reconciling / Stalled:
 * - Stalled True when the object is refused (invalid or in conflict on some node): kstatus "Failed";
 * - Reconciling True while selected nodes have not all programmed it: kstatus "InProgress";
 * - Ready True when every selected node programmed it (or no node is selected: nothing to do), and
 *   no node leaves it out of a list it could not fit in its IPVSNode (then reason NodeReportIncomplete).
 * Every condition and the status carry observedGeneration = metadata.generation.
 */
import type { Condition } from "../api/v1alpha1/index.ts";
import { IPVS_NODE_LIMITS, type IPVSNodeStatus } from "../api/v1alpha1/ipvs-node.ts";
import type { RealServerStatus } from "../api/v1alpha1/real-server.ts";
import type { VirtualServiceStatus } from "../api/v1alpha1/virtual-service.ts";
import { type ConditionInput, setCondition } from "./conditions.ts";

export interface NodeReport {
  node: string;
  status: IPVSNodeStatus | undefined;
}

export interface ObjectRef {
  namespace: string;
  name: string;
  generation: number;
}

/** Per VirtualService: what the nodes say about it (one pass over all IPVSNodes). */
export interface VirtualServiceNodeView {
  selected: number;
  programmed: number;
  drifted: number;
  /**
   * Nodes whose IPVSNode leaves out some of its VirtualServices (past the status bound) and does not
   * name this one: they may select it, programmed or not, so it is not counted Ready while any do.
   */
  unlisted: number;
  /** Reasons nodes gave for not programming it (first few, deduplicated). */
  messages: string[];
  refused: boolean;
  /** Refused because of the address policy (IPVSAddressPolicy). */
  notAllowed: boolean;
  /**
   * Real servers over the nodes that reported counts: the largest total and draining, the smallest
   * healthy (a backend one node finds unhealthy is not counted healthy); undefined when none did.
   */
  backends?: { total: number; healthy: number; draining: number };
}

/** What one node says about one VirtualService (an entry, or a name in a programmed group). */
type NodeEntry = Pick<
  NonNullable<IPVSNodeStatus["virtualServices"]>[number],
  "programmed" | "drifted" | "message" | "backends"
>;

function addNodeEntry(view: VirtualServiceNodeView, vs: NodeEntry): void {
  view.selected++;
  if (vs.programmed) view.programmed++;
  if (vs.drifted) view.drifted++;
  if (vs.backends) {
    const b = vs.backends;
    view.backends = view.backends
      ? {
          total: Math.max(view.backends.total, b.total),
          healthy: Math.min(view.backends.healthy, b.healthy),
          draining: Math.max(view.backends.draining, b.draining),
        }
      : { total: b.total, healthy: b.healthy, draining: b.draining };
  }
  if (vs.message) {
    if (/^(Invalid|Conflict|Internal|NotAllowed):/.test(vs.message)) view.refused = true;
    if (/^NotAllowed:/.test(vs.message)) view.notAllowed = true;
    if (view.messages.length < 3 && !view.messages.includes(vs.message)) view.messages.push(vs.message);
  }
}

/**
 * Whether a node's lists may leave out some of its VirtualServices: it says so (unlisted), or it is an
 * agent from before the counts whose per-entry list is full.
 */
function listsIncomplete(status: IPVSNodeStatus | undefined): boolean {
  const counts = status?.virtualServiceCounts;
  return counts
    ? counts.unlisted > 0
    : (status?.virtualServices?.length ?? 0) >= IPVS_NODE_LIMITS.virtualServices;
}

export interface NodeReportIndex {
  /**
   * What the nodes say about one VirtualService (namespace/name); undefined when no node names it and
   * every node lists all of its VirtualServices.
   */
  get(name: string): VirtualServiceNodeView | undefined;
}

export function indexNodeReports(nodes: readonly NodeReport[]): NodeReportIndex {
  const views = new Map<string, VirtualServiceNodeView>();
  let incomplete = 0;
  const add = (name: string, entry: NodeEntry, ofIncomplete: boolean) => {
    let view = views.get(name);
    if (!view) {
      view = { ...EMPTY_VIEW, messages: [] };
      views.set(name, view);
    }
    addNodeEntry(view, entry);
    // Counted down from the number of incomplete nodes below: those that do not name it.
    if (ofIncomplete) view.unlisted--;
  };
  for (const { status } of nodes) {
    const ofIncomplete = listsIncomplete(status);
    if (ofIncomplete) incomplete++;
    for (const vs of status?.virtualServices ?? []) add(vs.name, vs, ofIncomplete);
    for (const group of status?.programmedVirtualServices ?? []) {
      const entry = {
        programmed: true,
        message: "",
        ...(group.backends ? { backends: group.backends } : {}),
      };
      for (const name of group.names) add(`${group.namespace}/${name}`, entry, ofIncomplete);
    }
  }
  for (const view of views.values()) view.unlisted += incomplete;
  return {
    get: (name) => views.get(name) ?? (incomplete > 0 ? { ...EMPTY_VIEW, unlisted: incomplete } : undefined),
  };
}

/** Per RealServer ("namespace/name"): how the nodes that probe it see it. */
export interface RealServerHealthView {
  healthyNodes: number;
  unhealthyNodes: number;
  /** A probe error of some node that sees it unhealthy ("" when none does). */
  lastError: string;
}

/**
 * The per real server health lists of every IPVSNode, by RealServer (endpoints are not objects).
 * `unlistedNodes`: how many nodes left probed real servers out of their list (its bound); a RealServer
 * none of them lists may be one of those.
 */
export function indexRealServerHealth(
  nodes: readonly NodeReport[],
): Map<string, RealServerHealthView> & { unlistedNodes: number } {
  const views = Object.assign(new Map<string, RealServerHealthView>(), { unlistedNodes: 0 });
  for (const { status } of nodes) {
    if ((status?.backendCounts?.unlisted ?? 0) > 0) views.unlistedNodes++;
    // One vote per node and RealServer (a RealServer is one destination per node).
    const seen = new Set<string>();
    for (const b of status?.backends ?? []) {
      if (b.realServer === undefined || seen.has(b.realServer)) continue;
      seen.add(b.realServer);
      const view = views.get(b.realServer) ?? { healthyNodes: 0, unhealthyNodes: 0, lastError: "" };
      if (b.healthy) view.healthyNodes++;
      else {
        view.unhealthyNodes++;
        if (view.lastError === "" && b.message) view.lastError = b.message;
      }
      views.set(b.realServer, view);
    }
  }
  return views;
}

const EMPTY_VIEW: VirtualServiceNodeView = {
  selected: 0,
  programmed: 0,
  drifted: 0,
  unlisted: 0,
  messages: [],
  refused: false,
  notAllowed: false,
};

export function aggregateVirtualServiceStatus(
  vs: ObjectRef,
  view: VirtualServiceNodeView | undefined,
  previous: VirtualServiceStatus | undefined,
  now: Date,
  address?: string,
): VirtualServiceStatus {
  const v = view ?? EMPTY_VIEW;
  const g = vs.generation;
  const why = v.messages.join("; ").slice(0, 1024);
  // Nodes that may select it without saying so: Ready is not claimed while there are any.
  const unseen = v.unlisted > 0 && v.programmed === v.selected;
  const unseenWhy = `${v.unlisted} nodes list only part of their VirtualServices (IPVSNode status bound), not this one`;
  const all = v.selected > 0 && v.programmed === v.selected && v.unlisted === 0;
  const set = (conditions: Condition[], c: Omit<ConditionInput, "observedGeneration">) =>
    setCondition(conditions, { ...c, observedGeneration: g }, now);
  let c: Condition[] = previous?.conditions ?? [];
  c = set(
    c,
    v.refused
      ? {
          type: "Accepted",
          status: "False",
          reason: v.notAllowed ? "NotAllowed" : "Invalid",
          message: why || "refused by the nodes",
        }
      : { type: "Accepted", status: "True", reason: "Accepted", message: "valid and without conflict" },
  );
  c = set(
    c,
    all
      ? {
          type: "Programmed",
          status: "True",
          reason: "Programmed",
          message: `programmed on ${v.programmed} of ${v.selected} selected nodes`,
        }
      : unseen
        ? {
            type: "Programmed",
            status: "Unknown",
            reason: "NodeReportIncomplete",
            message: `programmed on ${v.programmed} of ${v.selected} nodes that list it; ${unseenWhy}`,
          }
        : v.selected === 0
          ? {
              type: "Programmed",
              status: "False",
              reason: "NoNodeSelected",
              message: "no node has reported this VirtualService",
            }
          : {
              type: "Programmed",
              status: "False",
              reason: "Programming",
              message: `programmed on ${v.programmed} of ${v.selected} selected nodes${why ? `: ${why}` : ""}`,
            },
  );
  c = set(
    c,
    v.drifted > 0
      ? {
          type: "Drifted",
          status: "True",
          reason: "DriftReported",
          message: `${v.drifted} nodes report a difference that is not repaired`,
        }
      : { type: "Drifted", status: "False", reason: "NoDrift", message: "no node reports a difference" },
  );
  const b = v.backends;
  c = set(
    c,
    !b
      ? {
          type: "BackendsHealthy",
          status: "Unknown",
          reason: "NoReport",
          message: "no node has reported real server counts",
        }
      : b.total > 0 && b.healthy === b.total
        ? {
            type: "BackendsHealthy",
            status: "True",
            reason: "AllHealthy",
            message: `${b.healthy}/${b.total} real servers healthy on every node`,
          }
        : {
            type: "BackendsHealthy",
            status: "False",
            reason: b.total === 0 ? "NoBackends" : b.healthy === 0 ? "NoneHealthy" : "SomeUnhealthy",
            message:
              b.total === 0
                ? "no real servers"
                : `${b.healthy}/${b.total} real servers healthy (the fewest any node sees)`,
          },
  );
  const stalled = v.refused;
  const ready = !stalled && (all || (v.selected === 0 && v.unlisted === 0));
  const waiting = unseen ? "NodeReportIncomplete" : "Programming";
  c = set(
    c,
    ready
      ? {
          type: "Ready",
          status: "True",
          reason: v.selected === 0 ? "NoNodeSelected" : "Programmed",
          message:
            v.selected === 0 ? "no node selected: nothing to program" : "programmed on every selected node",
        }
      : {
          type: "Ready",
          status: "False",
          reason: stalled ? "Invalid" : waiting,
          message: stalled
            ? why
            : unseen
              ? unseenWhy
              : `programmed on ${v.programmed} of ${v.selected} selected nodes`,
        },
  );
  c = set(
    c,
    !ready && !stalled
      ? {
          type: "Reconciling",
          status: "True",
          reason: waiting,
          message: unseen
            ? `waiting for the nodes to list it: ${unseenWhy}`
            : `${v.selected - v.programmed} selected nodes have not programmed it yet`,
        }
      : {
          type: "Reconciling",
          status: "False",
          reason: ready ? "Programmed" : "Invalid",
          message: ready ? "nothing left to do" : "waiting for the object to be fixed",
        },
  );
  c = set(
    c,
    stalled
      ? { type: "Stalled", status: "True", reason: "Invalid", message: why }
      : { type: "Stalled", status: "False", reason: "Progressing", message: "not stalled" },
  );
  return {
    observedGeneration: g,
    conditions: c,
    ...(address ? { address } : {}),
    nodes: {
      selected: v.selected,
      programmed: v.programmed,
      drifted: v.drifted,
      ...(v.unlisted > 0 ? { unlisted: v.unlisted } : {}),
      summary: `${v.programmed}/${v.selected}${v.unlisted > 0 ? ` +${v.unlisted}?` : ""}`,
    },
    ...(v.backends
      ? { backends: { ...v.backends, summary: `${v.backends.healthy}/${v.backends.total}` } }
      : {}),
  } as VirtualServiceStatus;
}

/**
 * `unlistedNodes`: nodes whose health lists leave some probed real servers out (indexRealServerHealth);
 * a RealServer no node lists is then Unknown (NotListed), not NotChecked: it may be probed.
 */
export function aggregateRealServerStatus(
  rs: ObjectRef & { enabled: boolean },
  vsView: VirtualServiceNodeView | undefined,
  previous: RealServerStatus | undefined,
  now: Date,
  health?: RealServerHealthView,
  unlistedNodes = 0,
): RealServerStatus {
  const v = vsView ?? EMPTY_VIEW;
  const programmed = v.programmed > 0;
  // Unhealthy when every node that probes it finds it unhealthy; some nodes only: still Active.
  const unhealthy = health !== undefined && health.unhealthyNodes > 0 && health.healthyNodes === 0;
  const phase = !rs.enabled ? "Disabled" : !programmed ? "Pending" : unhealthy ? "Unhealthy" : "Active";
  const probed = health ? health.healthyNodes + health.unhealthyNodes : 0;
  const withHealth = setCondition(
    previous?.conditions ?? [],
    !health && unlistedNodes > 0
      ? {
          type: "Healthy",
          status: "Unknown",
          reason: "NotListed",
          message: `${unlistedNodes} nodes probe more real servers than their IPVSNode status lists (healthy ones are left out first), and none lists this one`,
          observedGeneration: rs.generation,
        }
      : !health
        ? {
            type: "Healthy",
            status: "True",
            reason: "NotChecked",
            message: "no node probes it: without an active health check it counts as healthy",
            observedGeneration: rs.generation,
          }
        : health.unhealthyNodes === 0
          ? {
              type: "Healthy",
              status: "True",
              reason: "ChecksPassing",
              message: `healthy from ${health.healthyNodes}/${probed} nodes`,
              observedGeneration: rs.generation,
            }
          : {
              type: "Healthy",
              status: "False",
              reason: health.healthyNodes === 0 ? "ChecksFailing" : "SomeNodesFailing",
              message: `unhealthy from ${health.unhealthyNodes}/${probed} nodes: ${health.lastError}`.slice(
                0,
                1024,
              ),
              observedGeneration: rs.generation,
            },
    now,
  );
  const c = setCondition(
    withHealth,
    programmed
      ? {
          type: "Programmed",
          status: "True",
          reason: "Programmed",
          message: `its VirtualService is programmed on ${v.programmed} nodes`,
          observedGeneration: rs.generation,
        }
      : {
          type: "Programmed",
          status: "False",
          reason: "Pending",
          message: "its VirtualService is not programmed on any node yet",
          observedGeneration: rs.generation,
        },
    now,
  );
  return {
    observedGeneration: rs.generation,
    phase,
    conditions: c,
    ...(health ? { health: { ...health } } : {}),
  } as RealServerStatus;
}
