/**
 * The agent: the one orchestrator of a node. It wires a source (informers or a manifest directory)
 * to the pure core (computeDesired) and the Reconciler, driven by the SyncRunner, and serves
 * /healthz and /readyz. Every change only requests a sync; each sync reads the whole current state,
 * except when nothing but EndpointSlices changed since the last sync: then only the VirtualServices
 * that read those Services' slices are computed (change-scope.ts) and synced (reconciler.syncChanges),
 * so an endpoint change costs its own netlink requests, not a pass over the table. Whenever that
 * short way cannot be exact it declines and the whole sync runs; every periodic resync is whole.
 *
 *   source.onChange / health change ──► runner.requestSync
 *   runner ──► sync(): computeDesired(source.current()) ──► reconciler.sync ──► onSync (status)
 *
 * SIGTERM (stop()) cancels a sync between chunks and leaves the kernel table as it is.
 */
import type { Server } from "node:http";
import type { IPVSNodeStatus } from "../api/v1alpha1/ipvs-node.ts";
import type { HealthTransition, InitialHealth, TargetHealth } from "../health/health-monitor.ts";
import { withSlowStart } from "../health/slow-start.ts";
import type { IpvsKernel } from "../kernel/ipvs-kernel.ts";
import type { EventSink } from "../kube/event-recorder.ts";
import type { StatusWriter } from "../kube/ipvs-node-writer.ts";
import { type ChangeIndex, changeIndex, coveredBy, subSnapshot } from "../model/change-scope.ts";
import { computeDesired, computeDesiredAssumingHealthy, type DesiredResult } from "../model/desired.ts";
import {
  type DirectRoutingRealServerPlan,
  planDirectRoutingRealServer,
  sorryServerSpecs,
} from "../model/dr-real-server.ts";
import { lastGoodHolds } from "../model/last-good.ts";
import {
  type BackendCounts,
  backendCounts,
  buildNodeStatus,
  type ProbedBackend,
} from "../model/node-status.ts";
import type { Problem } from "../model/problems.ts";
import {
  type HealthState,
  type HealthTarget,
  healthKey,
  type NodeInfo,
  type Snapshot,
} from "../model/snapshot.ts";
import { snatServices, snatSpecs } from "../model/snat-services.ts";
import { type EventIntent, problemKey, syncEvents } from "../model/sync-events.ts";
import { type LocalAddresses, readLocalAddresses } from "../node-edge/local-addresses.ts";
import {
  devicesWithIpv4Vips,
  type NodeEdge,
  type NodeEdgeReport,
  tunnelSlotOfDevice,
} from "../node-edge/node-edge-report.ts";
import { TUNNEL_DEVICE } from "../node-edge/rt-link.ts";
import type { SnatService } from "../node-edge/snat-plan.ts";
import { nodeSysctls } from "../node-edge/sysctl-plan.ts";
import { collectGarbageAfterLargeSync } from "../observability/gc.ts";
import { startHealthServer } from "../observability/health-server.ts";
import type { Logger } from "../observability/logger.ts";
import { AgentMetrics } from "../observability/metrics.ts";
import type { Clock } from "../reconcile/clock.ts";
import { FileNodeLock } from "../reconcile/node-lock.ts";
import { FileJournalStore } from "../reconcile/ownership-journal.ts";
import { Reconciler, type SyncResult, withoutApplied } from "../reconcile/reconciler.ts";
import { SyncRunner, type SyncScope } from "../reconcile/runner.ts";
import type { SnapshotSource } from "../sources/snapshot-source.ts";
import { operationServiceKey } from "../vocabulary/operations.ts";
import { serviceKeyString } from "../vocabulary/table.ts";
import type { AgentConfig } from "./config.ts";

export interface AgentDependencies {
  kernel: IpvsKernel;
  source: SnapshotSource;
  bootId: string;
  logger: Logger;
  clock?: Clock;
  /** Writes this node's IPVSNode status (Kubernetes mode); none in directory mode. */
  statusWriter?: StatusWriter;
  /** Records Kubernetes Events (drift repaired, apply failures, invalid objects); none in directory mode. */
  events?: EventSink;
  /** Called after every sync (tests, metrics). */
  onSync?: (report: AgentSyncReport) => void | Promise<void>;
  /**
   * Active health checks (src/health's HealthMonitor): after each computation the agent hands it the
   * backends to probe, and computes with its state. Its transitions come back through
   * `backendHealthChanged`, which the caller wires to the monitor's onChange.
   */
  health?: HealthProbes;
  /**
   * The node plumbing (src/node-edge): after each whole sync the agent binds the VIPs of the owned
   * VirtualServices with bindAddress, asserts the sysctls and the IPVS timeouts and sync daemons.
   */
  nodeEdge?: NodeEdge;
  /**
   * This node's addresses and their interfaces, for the DR real-server role (default: read with
   * os.networkInterfaces, leaving out the loopback, the tunnel devices and the VIP interface).
   */
  localAddresses?: LocalAddresses;
}

/** What the agent needs of the probers. */
export interface HealthProbes {
  setTargets(targets: readonly HealthTarget[], initialHealth?: InitialHealth): void;
  state(): HealthState;
  statuses(): TargetHealth[];
}

/** What one sync saw and did, for status and events. */
export interface AgentSyncReport {
  result: SyncResult;
  /** "changes": the short way (only the VirtualServices of changed EndpointSlices); "all": a whole sync. */
  scope: SyncScope;
  problems: Problem[];
  /** namespace/name of every VirtualService programmed on this node. */
  programmed: string[];
  /** Real server counts per VirtualService on this node (namespace/name -> counts). */
  backends?: ReadonlyMap<string, BackendCounts>;
  /** serviceKeyString -> namespace/name of the VirtualService it is programmed for. */
  owners: Map<string, string>;
  startedAt: number;
  endedAt: number;
}

/** What the short way takes from the last successful whole sync: its node, its index, its report. */
interface WholeSync {
  node: NodeInfo;
  index: ChangeIndex;
  report: AgentSyncReport;
}

export class Agent {
  readonly #config: AgentConfig;
  readonly #deps: AgentDependencies;
  readonly #reconciler: Reconciler;
  readonly #runner: SyncRunner;
  /**
   * Prometheus metrics of this agent, served at /metrics on the health address; the IPVS counters are
   * read at scrape time and labelled from the reconciler's last plan.
   */
  readonly metrics = new AgentMetrics({
    ipvs: {
      readTable: () => this.#deps.kernel.readTable(),
      planned: () => this.#reconciler.planned(),
      health: (vs, address, port) => this.#healthState()?.get(healthKey(vs, address, port)),
    },
  });
  #health: HealthState | undefined;
  #status: IPVSNodeStatus | undefined;
  /** Problems already reported as Events (reported again only after they went away and came back). */
  #reportedProblems = new Set<string>();
  #kernelInfo: { ipvsVersion?: string; connectionTableSize?: number } | undefined;
  #server: Server | undefined;
  #stopped = false;
  /** Services ("namespace/name") whose EndpointSlices changed since the last sync started. */
  #changedServices = new Set<string>();
  /** The last successful whole sync (the short way computes and reports from it). */
  #lastWhole: WholeSync | undefined;
  /** The backends with health checks of the last computation, handed to the probers. */
  #healthTargets: readonly HealthTarget[] = [];
  /** Whether some of them has a slow start (then each computation looks at recovery times). */
  #slowStarts = false;
  /** When the next step of a slow start is due: the sync that computed it comes back then. */
  #nextSlowStartStepAt: number | undefined;
  /** What the node plumbing looked like after the last whole sync (for the status). */
  #nodeEdge: NodeEdgeReport | undefined;
  /** The SNAT rules of the last node-edge sync (kept for input read in part). */
  #snat: SnatService[] = [];
  #snatSeen = false;
  /** Until the first sync with health checks: take the kernel's weights as the health before probes. */
  #inheritHealth = true;

  constructor(config: AgentConfig, deps: AgentDependencies) {
    this.#config = config;
    this.#deps = deps;
    const log = deps.logger;
    this.#reconciler = new Reconciler({
      kernel: deps.kernel,
      journal: new FileJournalStore(config.stateFile),
      lock: new FileNodeLock(config.stateFile, {
        holder: `ipvs-operator agent on ${config.nodeName}`,
        waitMs: 60_000,
        onCompromised: (error) => log.error({ err: error.message }, "Lost the node lock while holding it"),
      }),
      scope: { managedCidrs: config.managedCidrs, managedFwmarks: config.managedFwmarks },
      bootId: deps.bootId,
      logger: log.child({ component: "reconciler" }),
    });
    this.#runner = new SyncRunner({
      sync: (signal, now, scope) => this.#sync(signal, now, scope),
      ...(deps.clock ? { clock: deps.clock } : {}),
      gate: () => deps.source.synced,
      minIntervalMs: config.minSyncIntervalMs,
      resyncIntervalMs: config.resyncIntervalMs,
      logger: log.child({ component: "runner" }),
      onSyncEnd: (result, info) =>
        this.metrics.observeSync(result, {
          startedAt: info.startedAt,
          endedAt: info.endedAt,
          ...(info.oldestRequestAt === undefined ? {} : { oldestRequestAt: info.oldestRequestAt }),
        }),
    });
    deps.source.onChange((change) => {
      if (change?.kind === "EndpointSlices") {
        this.#changedServices.add(change.service);
        this.#runner.requestSync("endpoints changed", "changes");
      } else {
        this.#runner.requestSync("source changed");
      }
    });
  }

  /** Starts the health server, the source (caches) and the runner; resolves once the caches synced. */
  async start(): Promise<void> {
    const log = this.#deps.logger;
    if (this.#config.httpAddress !== "") {
      this.#server = await startHealthServer(this.#config.httpAddress, {
        ready: () => {
          const h = this.#runner.health();
          if (!this.#deps.source.synced) return { ok: false, message: "waiting for the caches to sync" };
          return h.ready
            ? { ok: true, message: "ok" }
            : { ok: false, message: "waiting for the first successful sync" };
        },
        metrics: () => this.metrics.expose(),
        healthy: () => {
          const h = this.#runner.health();
          return h.healthy
            ? { ok: true, message: "ok" }
            : {
                ok: false,
                message: `a requested sync has not succeeded since ${new Date(h.oldestUnappliedRequestAt ?? 0).toISOString()}`,
              };
        },
      });
      log.info({ address: this.#config.httpAddress }, "Serving /healthz, /readyz and /metrics");
    }
    this.#runner.start();
    await this.#deps.source.start();
    log.info({ node: this.#config.nodeName }, "Caches synced; syncing the IPVS table");
    this.#runner.requestSync("caches synced");
  }

  /** Backend health set from outside (tests): a change recomputes and syncs. */
  setHealth(health: HealthState): void {
    this.#health = health;
    this.#runner.requestSync("backend health changed");
  }

  /**
   * A real server became healthy or unhealthy (the probers' onChange): recompute and sync, and record an
   * Event on the RealServer (or, for a real server from endpoints, its VirtualService).
   */
  backendHealthChanged(change: HealthTransition): void {
    this.#runner.requestSync("backend health changed");
    const t = change.target;
    this.#deps.logger.info(
      {
        virtualService: `${t.virtualService.namespace}/${t.virtualService.name}`,
        address: t.address,
        port: t.port,
        healthy: change.healthy,
        reason: change.reason,
      },
      change.healthy ? "Real server became healthy" : "Real server became unhealthy",
    );
    const sink = this.#deps.events;
    if (!sink) return;
    const regarding: EventIntent["regarding"] =
      t.source.kind === "RealServer"
        ? { kind: "RealServer", namespace: t.source.namespace, name: t.source.name }
        : { kind: "VirtualService", ...t.virtualService };
    const where = `${t.address}:${t.port}`;
    void sink.record([
      {
        regarding,
        type: change.healthy ? "Normal" : "Warning",
        reason: change.healthy ? "BackendHealthy" : "BackendUnhealthy",
        action: "HealthCheck",
        note: `${where} is ${change.healthy ? "healthy" : "unhealthy"} from ${this.#config.nodeName}: ${change.reason}`.slice(
          0,
          1024,
        ),
      },
    ]);
  }

  health() {
    return this.#runner.health();
  }

  /** SIGTERM: stop syncing (a sync in progress stops between chunks); the kernel table stays as it is. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#runner.stop();
    await this.#deps.source.stop();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    await this.#deps.kernel.close();
  }

  async #sync(signal: AbortSignal, now: number, scope: SyncScope): Promise<SyncResult> {
    return this.#withSlowStartWake(await this.#syncOnce(signal, now, scope));
  }

  async #syncOnce(signal: AbortSignal, now: number, scope: SyncScope): Promise<SyncResult> {
    const changed = this.#changedServices;
    this.#changedServices = new Set();
    if (scope === "changes") {
      const result = await this.#syncChanges(changed, signal, now);
      if (result) return result;
    }
    const state = this.#deps.source.current();
    const snapshot = withDefaultDriftPolicy(state.snapshot, this.#config.defaultDriftPolicy);
    let computed = this.#compute(snapshot, state.node, now);
    if (this.#inheritHealth && this.#deps.health && computed.healthTargets.length > 0) {
      this.#inheritHealth = false;
      const inherited = await this.#healthFromKernel(computed);
      this.#probe(computed.healthTargets, inherited);
      if (inherited) computed = this.#compute(snapshot, state.node, now);
    } else {
      this.#probe(computed.healthTargets);
    }
    const holds = lastGoodHolds(computed.problems, snapshot.realServers);
    const result = await this.#reconciler.sync({
      desired: computed.table,
      now,
      signal,
      ...(state.incomplete.length > 0 ? { partialInput: state.incomplete.join("; ") } : {}),
      invalidVirtualServices: holds.invalidVirtualServices,
      holdRemovalsFor: holds.holdRemovalsFor,
      // A change between resyncs costs its own operations, not a dump; a resync always dumps (the margin
      // covers a timer that fires a little early), so out-of-band edits are found within one resync.
      maxKernelAgeMs: Math.floor(this.#config.resyncIntervalMs * 0.9),
    });
    if (this.#deps.nodeEdge && !signal.aborted)
      await this.#syncNodeEdge(this.#deps.nodeEdge, snapshot, computed, result, {
        node: state.node,
        partialInput: state.incomplete.length > 0,
      });
    const owners = new Map(
      computed.table.map((e) => [
        serviceKeyString(e.service.key),
        `${e.service.source.namespace}/${e.service.source.name}`,
      ]),
    );
    const report: AgentSyncReport = {
      result,
      scope: "all",
      problems: computed.problems,
      programmed: [...new Set(owners.values())],
      // Only the IPVSNode status shows them: not counted when no status is written.
      ...(this.#deps.statusWriter
        ? {
            backends: backendCounts(computed.table, result.drains, this.#unhealthyNow()),
          }
        : {}),
      owners,
      startedAt: now,
      endedAt: this.#deps.clock?.now() ?? Date.now(),
    };
    const done = await this.#report(report, signal);
    // Only a source that says what changed can take the short way; its index is built now, not on
    // the next change's clock.
    this.#lastWhole =
      result.ok && this.#deps.source.changes
        ? {
            node: state.node,
            index: changeIndex(snapshot, computed.table, computed.problems),
            report: { ...report, result: withoutApplied(result) },
          }
        : undefined;
    collectGarbageAfterLargeSync(result.outcomes.length);
    return done;
  }

  /**
   * The desired table with the probers' health (a backend without a result yet is in its check's
   * initialState); without probers every backend with a healthCheck counts as healthy unless health was
   * set from outside.
   */
  #compute(snapshot: Snapshot, node: NodeInfo, now: number): DesiredResult {
    const probes = this.#deps.health;
    let health = this.#healthState();
    this.#nextSlowStartStepAt = undefined;
    if (probes && health && this.#slowStarts) {
      const ramp = withSlowStart(health, probes.statuses(), now);
      health = ramp.state;
      this.#nextSlowStartStepAt = ramp.nextStepAt;
    }
    return health === undefined
      ? computeDesiredAssumingHealthy(snapshot, node).result
      : computeDesired(snapshot, node, health);
  }

  /** backendCounts' test for an unhealthy backend, over the health as it is now (read once). */
  #unhealthyNow(): NonNullable<Parameters<typeof backendCounts>[2]> {
    const health = this.#healthState();
    return (vs, address, port) => health?.get(healthKey(vs, address, port)) === false;
  }

  /** The probers' results (or health set from outside); healthy or not, without slow-start fractions. */
  #healthState(): HealthState | undefined {
    return this.#deps.health?.state() ?? this.#health;
  }

  /**
   * VIPs, sysctls, timeouts and sync daemons, after the table. The VIPs are the addresses of the
   * services this node should have (the desired table) and of those it still owns in the kernel (a
   * VirtualService being drained, one kept as it was because an edit made it invalid, one missing from
   * a partial input): an address goes only with its last owned service, never because of input that was
   * read in part. Not bound: VirtualServices with bindAddress false, firewall-mark services. Without a
   * readable kernel table the VIPs are left as they are. Never fails the sync: what goes wrong is logged
   * and reported in the status.
   */
  async #syncNodeEdge(
    edge: NodeEdge,
    snapshot: Snapshot,
    computed: DesiredResult,
    result: SyncResult,
    input: { node: NodeInfo; partialInput: boolean },
  ): Promise<void> {
    const config = this.#config.nodeEdge;
    const unbound = new Set(
      snapshot.virtualServices.flatMap((vs) =>
        (vs as { spec?: { bindAddress?: unknown } })?.spec?.bindAddress === false ? [objectKey(vs)] : [],
      ),
    );
    const notBound = new Set<string>();
    const vips = new Set<string>();
    let ipv6Services = false;
    for (const e of computed.table) {
      if (e.service.key.family === "IPv6") ipv6Services = true;
      if (e.service.key.kind !== "address") continue;
      if (unbound.has(`${e.service.source.namespace}/${e.service.source.name}`)) {
        notBound.add(serviceKeyString(e.service.key));
        continue;
      }
      vips.add(e.service.key.address);
    }
    const planned = this.#reconciler.planned();
    for (const entry of result.snapshot?.table ?? []) {
      const key = entry.service.key;
      if (key.kind !== "address" || notBound.has(serviceKeyString(key)) || !planned?.owns(key)) continue;
      vips.add(key.address);
    }
    const snat = edge.hasSnat ? this.#snatRules(snapshot, computed, input.partialInput) : undefined;
    const dr = config.drRealServer
      ? this.#directRoutingRealServer(snapshot, input.node, vips, input.partialInput)
      : undefined;
    const report = await edge.sync({
      ...(config.vipInterface === "" || !result.snapshot ? {} : { vips: [...vips] }),
      ...(dr ? { loopbackVips: dr.vips, tunnelVips: dr.tunnelVips } : {}),
      // nft runs only while rules are wanted or were there (and once, to remove a table left by an
      // earlier run): a node without SNAT services does not exec it on every resync.
      ...(snat && result.snapshot && (snat.length > 0 || this.#snat.length > 0 || !this.#snatSeen)
        ? { snat }
        : {}),
      sysctls: nodeSysctls(config.sysctls, {
        ipv6Services,
        snatServices: (snat?.length ?? 0) > 0,
        ...(dr
          ? {
              arpInterfaces: dr.interfaces,
              tunnelDevices: devicesWithIpv4Vips(dr.tunnelVips),
            }
          : {}),
      }),
      ipvs: config.ipvs,
    });
    for (const error of report.errors) this.#deps.logger.warn({ err: error }, "Node plumbing");
    for (const d of report.drift.filter((x) => x.action === "Repaired"))
      this.#deps.logger.info({ area: d.area, kind: d.kind, object: d.object }, "Node plumbing repaired");
    this.#nodeEdge = report;
    if (report.snat) {
      this.#snat = snat ?? [];
      this.#snatSeen = true;
    }
  }

  /**
   * The SNAT rules of the services programmed here with spec.snat; a rule stays while its
   * VirtualService is missing from input read in part, or kept at its last valid state after an edit
   * made it invalid (its traffic still flows).
   */
  #snatRules(snapshot: Snapshot, computed: DesiredResult, partialInput: boolean): SnatService[] {
    const invalid = lastGoodHolds(computed.problems, snapshot.realServers).invalidVirtualServices;
    return snatServices(computed.table, snatSpecs(snapshot.virtualServices), {
      previous: this.#snat,
      keep: (owner) => partialInput || invalid.has(owner),
    });
  }

  /**
   * The DR real-server role: the cluster's DirectRouting and Tunnel (IPIP, GRE) services (every
   * VirtualService, whatever its nodeSelector, every backend counted healthy) with a real server or
   * a sorry server at an address of this node. The VIPs held on the loopback and the tunnel devices
   * stay while the input is read in part; otherwise a VIP leaves when no valid VirtualService asks for
   * it any more.
   */
  #directRoutingRealServer(
    snapshot: Snapshot,
    node: NodeInfo,
    directorVips: ReadonlySet<string>,
    partialInput: boolean,
  ): DirectRoutingRealServerPlan {
    const cluster = computeDesiredAssumingHealthy(snapshot, node, { everyNode: true }).result.table;
    const skip = new Set(
      ["lo", ...Object.values(TUNNEL_DEVICE), this.#config.nodeEdge.vipInterface].filter((n) => n !== ""),
    );
    const local = (this.#deps.localAddresses ?? (() => readLocalAddresses(skip)))();
    const plan = planDirectRoutingRealServer(
      cluster,
      local,
      directorVips,
      sorryServerSpecs(snapshot.virtualServices),
    );
    // Input read in part: what was held stays (a VIP leaves the loopback only on whole input).
    if (partialInput) {
      const held = this.#nodeEdge?.loopback?.addresses ?? [];
      plan.vips = [...new Set([...plan.vips, ...held])].sort();
      for (const t of this.#nodeEdge?.tunnels ?? []) {
        const slot = tunnelSlotOfDevice(t.interface);
        if (!slot) continue;
        const held = plan.tunnelVips[slot.type];
        held[slot.family] = [...new Set([...held[slot.family], ...t.addresses])].sort();
      }
    }
    return plan;
  }

  /** A sync that computed a slow start comes back for its next step (unless something comes sooner). */
  #withSlowStartWake(result: SyncResult): SyncResult {
    const at = this.#nextSlowStartStepAt;
    if (at === undefined || (result.nextWakeAt !== undefined && result.nextWakeAt <= at)) return result;
    return { ...result, nextWakeAt: at };
  }

  /** Hands the probers the backends to probe: every one of them (a whole computation). */
  #probe(targets: readonly HealthTarget[], initialHealth?: InitialHealth): void {
    this.#healthTargets = targets;
    this.#slowStarts = targets.some((t) => t.healthCheck.slowStartSeconds > 0);
    this.#deps.health?.setTargets(targets, initialHealth);
  }

  /**
   * At the first sync with health checks, what the kernel says about the backends before any probe: one
   * the kernel serves at a weight above 0 (programmed by the agent that ran before this one) starts
   * healthy, so a restart does not quiesce working backends or bring in the sorry server while the
   * probes gather riseCount results; every other backend starts in its initialState. Undefined when the
   * kernel cannot be read (then initialState, as before).
   */
  async #healthFromKernel(computed: DesiredResult): Promise<InitialHealth | undefined> {
    let snapshot: Awaited<ReturnType<AgentDependencies["kernel"]["readTable"]>>;
    try {
      snapshot = await this.#deps.kernel.readTable();
    } catch {
      return undefined;
    }
    const serving = new Set<string>();
    for (const entry of snapshot.table) {
      const service = serviceKeyString(entry.service.key);
      for (const d of entry.destinations)
        if (d.config.weight > 0) serving.add(`${service} ${d.key.address} ${d.key.port}`);
    }
    const services = new Map(
      computed.table.map((e) => [
        `${e.service.source.namespace}/${e.service.source.name}`,
        serviceKeyString(e.service.key),
      ]),
    );
    const inherited = computed.healthTargets.filter((t) => {
      const service = services.get(`${t.virtualService.namespace}/${t.virtualService.name}`);
      return service !== undefined && serving.has(`${service} ${t.address} ${t.port}`);
    });
    const healthy = new Set(inherited.map((t) => t.key));
    this.#deps.logger.info(
      { backends: computed.healthTargets.length, healthyInKernel: healthy.size },
      "Backends the kernel serves start healthy (until their probes say otherwise)",
    );
    return (t) => (healthy.has(t.key) ? true : undefined);
  }

  /** Per real server health for the IPVSNode status (those with an active health check). */
  #probedBackends(): ProbedBackend[] | undefined {
    const probes = this.#deps.health;
    if (!probes) return undefined;
    return probes.statuses().map((h) => {
      const t = h.target;
      return {
        virtualService: `${t.virtualService.namespace}/${t.virtualService.name}`,
        address: t.address,
        port: t.port,
        ...(t.source.kind === "RealServer" ? { realServer: `${t.source.namespace}/${t.source.name}` } : {}),
        healthy: h.healthy,
        message: h.lastResult && !h.lastResult.healthy ? h.lastResult.reason : (h.lastTransitionReason ?? ""),
      };
    });
  }

  /**
   * The short way for EndpointSlice changes (see the header): undefined, having changed nothing, when
   * it cannot be exact; then the caller runs a whole sync.
   */
  async #syncChanges(
    services: ReadonlySet<string>,
    signal: AbortSignal,
    now: number,
  ): Promise<SyncResult | undefined> {
    const last = this.#lastWhole;
    const changes = this.#deps.source.changes;
    if (!last || !changes || changes.incomplete().length > 0) return undefined;
    const { index } = last;
    const sub = subSnapshot(index, services, (service) => changes.endpointSlicesOf(service));
    if (!sub) return undefined;
    const computed = this.#compute(sub, last.node, now);
    if (!coveredBy(index, sub, computed.table, computed.problems)) return undefined;
    // The probers keep every other VirtualService's backends; these VirtualServices' are replaced.
    const recomputed = new Set(sub.virtualServices.map((vs) => objectKey(vs)));
    this.#probe([
      ...this.#healthTargets.filter(
        (t) => !recomputed.has(`${t.virtualService.namespace}/${t.virtualService.name}`),
      ),
      ...computed.healthTargets,
    ]);
    const result = await this.#reconciler.syncChanges({
      entries: computed.table,
      now,
      signal,
      maxKernelAgeMs: Math.floor(this.#config.resyncIntervalMs * 0.9),
    });
    if (!result) return undefined;
    const previous = last.report;
    let backends = previous.backends;
    if (backends) {
      const merged = new Map(backends);
      const counts = backendCounts(computed.table, result.drains, this.#unhealthyNow());
      for (const [vs, c] of counts) merged.set(vs, c);
      backends = merged;
    }
    const report: AgentSyncReport = {
      ...previous,
      result,
      scope: "changes",
      ...(backends ? { backends } : {}),
      startedAt: now,
      endedAt: this.#deps.clock?.now() ?? Date.now(),
    };
    last.report = { ...report, result: withoutApplied(result) };
    return this.#report(report, signal);
  }

  /** Status, Events and the onSync hook for one sync's report. */
  async #report(report: AgentSyncReport, signal: AbortSignal): Promise<SyncResult> {
    if (this.#deps.statusWriter && !signal.aborted) await this.#writeStatus(this.#deps.statusWriter, report);
    if (this.#deps.events && !signal.aborted) await this.#recordEvents(this.#deps.events, report);
    await this.#deps.onSync?.(report);
    return report.result;
  }

  async #recordEvents(sink: EventSink, report: AgentSyncReport): Promise<void> {
    const events = syncEvents(
      {
        drift: report.result.drift,
        failures: failuresOf(report),
        problems: report.problems,
        owners: report.owners,
      },
      this.#reportedProblems,
    );
    this.#reportedProblems = new Set(report.problems.map(problemKey));
    await sink.record(events);
  }

  async #writeStatus(writer: StatusWriter, report: AgentSyncReport): Promise<void> {
    const log = this.#deps.logger;
    try {
      this.#status ??= await writer.previous();
      if (this.#kernelInfo === undefined) {
        const info = await this.#deps.kernel.getInfo().catch(() => undefined);
        if (info)
          this.#kernelInfo = { ipvsVersion: info.version, connectionTableSize: info.connectionTableSize };
      }
      const { result } = report;
      const failures = failuresOf(report);
      const probes = this.#probedBackends();
      const status = buildNodeStatus(
        this.#status,
        {
          ok: result.ok,
          errors: result.errors.filter((e) => e.kind !== "Cancelled"),
          applied: result.outcomes.filter((o) => o.result === "applied").length,
          failed: result.failed,
          failures,
          drift: result.drift,
          services: result.owned.services,
          destinations: result.owned.destinations,
          programmed: report.programmed,
          owners: report.owners,
          ...(report.backends ? { backends: report.backends } : {}),
          problems: report.problems,
          durationMs: report.endedAt - report.startedAt,
          ...(this.#kernelInfo ? { kernel: this.#kernelInfo } : {}),
          ...(probes ? { probes } : {}),
          ...(this.#nodeEdge ? { nodeEdge: this.#nodeEdge } : {}),
        },
        new Date(report.endedAt),
      );
      await writer.write(status);
      this.#status = status;
    } catch (error) {
      log.warn(
        { err: String((error as Error).message ?? error) },
        "Building or writing the node status failed",
      );
    }
  }
}

/** Operations that did not apply, with the VirtualService each belongs to. */
function failuresOf(report: AgentSyncReport): { virtualService?: string; message: string }[] {
  return report.result.outcomes
    .filter((o) => o.result !== "applied" && o.result !== "planned")
    .map((o) => {
      const vs = report.owners.get(serviceKeyString(operationServiceKey(o.operation)));
      return { ...(vs ? { virtualService: vs } : {}), message: `${o.description}: ${o.reason ?? o.result}` };
    });
}

/** "namespace/name" of a raw object. */
function objectKey(object: unknown): string {
  const m = (object as { metadata?: { namespace?: string; name?: string } })?.metadata;
  return `${m?.namespace ?? ""}/${m?.name ?? ""}`;
}

/** Objects that set no driftPolicy get the agent's default (the CRD defaults it in a cluster). */
function withDefaultDriftPolicy(snapshot: Snapshot, policy: "Repair" | "Report"): Snapshot {
  if (policy === "Repair") return snapshot;
  return {
    ...snapshot,
    virtualServices: snapshot.virtualServices.map((vs) => {
      const o = vs as { spec?: Record<string, unknown> };
      return o?.spec && o.spec.driftPolicy === undefined
        ? { ...o, spec: { ...o.spec, driftPolicy: policy } }
        : vs;
    }),
  };
}
