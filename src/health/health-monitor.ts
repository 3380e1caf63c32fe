/**
 * HealthMonitor: runs the probes of every backend this node programs and keeps their health state.
 *
 * - setTargets(targets) with computeDesired's healthTargets after each sync. Targets are keyed by
 *   healthKey. A target whose plan is unchanged keeps its state, counters and timer. One whose probe
 *   changed (kind, port, path, ...) keeps its healthy/unhealthy state (editing a check must not quiesce
 *   every backend while the new check gathers riseCount results), loses its counters and starts over
 *   at a random offset in the new interval. Only the schedule changed (interval, timeout, rise, fall):
 *   state, counters and timer stay; the new values apply from the next probe. A removed target stops at
 *   once: its timer is cancelled, a queued probe leaves the queue, a running one is aborted.
 * - Schedule: the first probe of a target at a random offset within its interval (so a restart or a
 *   large change does not fire thousands together), then one interval after each probe's start, with
 *   ± `jitter` (a fraction, default 0.1) drawn each period so targets added together drift apart.
 * - Rise/fall: an unhealthy target becomes healthy after riseCount consecutive successes, a healthy one
 *   unhealthy after fallCount consecutive failures. Before its first result a target is in its check's
 *   initialState, unless setTargets' `initialHealth` says otherwise for it (the agent's restart: a backend
 *   the kernel still serves at a weight above 0 was healthy before). onChange fires only on those
 *   transitions, with the reason (the last probe's).
 * - Timeout: the prober fails a probe not finished after timeoutMs; should a prober not stop, the
 *   monitor fails it PROBER_GRACE_MS later (monitor clock), aborts it and releases its slot.
 * - Callbacks (onChange, onResult) run after the state is updated and the next probe armed; one that
 *   throws does not stop probing (the exception surfaces as an unhandled rejection).
 * - In-flight bound: at most maxInFlight probes run at once (default 256), optionally at most
 *   maxProbesPerSecond start per second; probes that must wait queue in FIFO order and count in
 *   stats().delayedProbes.
 * - Probe source address per family (sourceAddress): with DirectRouting and Tunnel forwarding the VIP is
 *   on the node's dummy interface and also on every real server's loopback. If the kernel chose the VIP
 *   as a probe's source (it can: a route with `src VIP`, or the VIP being the only address in the
 *   interface's subnet), the real server would answer to its own loopback VIP and the reply would never
 *   reach the node: every real server would look dead. Setting the node's own address here pins the
 *   source (bind before connect) and makes probes independent of routing details.
 *
 * Load, the cost stated (defaults: interval 10 s, every node probes every real server it programs):
 *   1,000 nodes x 1,000 real servers, all services on all nodes:
 *   - per node: 1,000 targets / 10 s = 100 probes/s. bench/probes.ts on a shared 2-core host: a probe
 *     costs the agent 0.1-0.5 ms of CPU (TCP) and 0.4-0.8 ms (HTTP; the higher figures at low rates),
 *     so 100 probes/s take 5 % (TCP) to 8 % (HTTP) of one core; one agent sustained ~3,000 TCP and
 *     ~900 HTTP probes/s there with its event loop saturated by a machine running other work;
 *   - per real server: 1,000 nodes / 10 s = 100 probes/s, i.e. 100 new connections per second (HTTP:
 *     100 requests/s) of health traffic on every backend;
 *   - cluster-wide: 1,000 x 1,000 / 10 s = 100,000 probes/s.
 *   The per-real-server figure is the one that hurts (it grows with the number of nodes), and it is
 *   bounded by:
 *   - the interval: load is linear in 1/interval (30 s: 33 probes/s per real server);
 *   - maxProbesPerSecond (per agent): caps a node's starts; with N targets the effective interval becomes
 *     max(interval, N / maxProbesPerSecond) (1,000 targets at 20/s: each probed every 50 s, so detection
 *     takes fallCount x 50 s); per real server the load is then at most nodes x maxProbesPerSecond / N;
 *   - maxInFlight: bounds concurrency, hence memory and sockets; by Little's law the rate is at most
 *     maxInFlight / mean probe duration, which matters when many backends time out (256 slots with 5 s
 *     timeouts: 51 probes/s), and delayedProbes says when it bites;
 *   - nodeSelector on the VirtualService: only nodes that program a service probe its real servers;
 *   - probing from a subset of nodes (design, for the agent configuration, not in this class): a
 *     per-agent `health.probe: All | None`, set through the DaemonSet values by a node selector (e.g. 3
 *     prober nodes per zone). A `None` agent runs no HealthMonitor; it takes the health of each backend
 *     from the RealServer/VirtualService status aggregated from the prober nodes' IPVSNode status
 *     (per-node health is already published there). Per real server the load becomes
 *     probers / interval (3 nodes: 0.3 probes/s) at the price of the aggregation delay and of not
 *     seeing per-node paths (a node that cannot reach a backend still sends it traffic).
 */
import { isIPv6 } from "node:net";
import type { HealthState, HealthTarget } from "../model/snapshot.ts";
import { type Clock, systemClock, type Timer } from "../reconcile/clock.ts";
import { type GateTicket, ProbeGate } from "./probe-gate.ts";
import { describeError, EXEC_DISABLED, type ExecPolicy, type ProbeResult } from "./probe-result.ts";
import { type ProbePlan, probePlanFor } from "./probe-spec.ts";
import { type Prober, runProbe } from "./run-probe.ts";

export const DEFAULT_MAX_IN_FLIGHT = 256;
export const DEFAULT_JITTER = 0.1;
/** How long after its timeout the monitor gives up on a prober that has not answered. */
export const PROBER_GRACE_MS = 250;

export interface HealthMonitorOptions {
  /** Timers and time; default the process clock. */
  clock?: Clock;
  /** Uniform in [0, 1); default Math.random. */
  random?: () => number;
  /** Runs one probe; default runProbe (the real probers). */
  prober?: Prober;
  /** Target to plan; default probePlanFor (from the API's HealthCheck). */
  planFor?: (target: HealthTarget) => ProbePlan | undefined;
  /** Probes running at once, node-wide; default 256. */
  maxInFlight?: number;
  /** Probe starts per second, node-wide; 0 or absent: no bound beyond maxInFlight. */
  maxProbesPerSecond?: number;
  /** Fraction of the interval by which each period varies (± jitter); default 0.1, at most 0.5. */
  jitter?: number;
  /** Source address of probes per family (see the header); absent: the kernel chooses. */
  sourceAddress?: { ipv4?: string; ipv6?: string };
  /** Who may run Exec probes; default disabled. */
  exec?: ExecPolicy;
  /** Called on every healthy <-> unhealthy transition (never for the initial state). */
  onChange?: (change: HealthTransition) => void;
  /** Called after every probe (for metrics); `target` is the current one. */
  onResult?: (target: HealthTarget, result: ProbeResult) => void;
}

export interface HealthTransition {
  key: string;
  target: HealthTarget;
  healthy: boolean;
  /** "3 consecutive failures: GET http://10.0.0.5:8080/: HTTP 503, expected 200-399". */
  reason: string;
  /** clock.now() of the transition. */
  at: number;
}

/** A target's health, for status. */
export interface TargetHealth {
  key: string;
  target: HealthTarget;
  healthy: boolean;
  consecutiveSuccesses: number;
  consecutiveFailures: number;
  /** The latest probe's result and when it finished; absent before the first. */
  lastResult?: ProbeResult;
  lastProbeAt?: number;
  /** The latest transition; absent while in the initial state. */
  lastTransitionAt?: number;
  lastTransitionReason?: string;
}

export interface HealthMonitorStats {
  targets: number;
  inFlight: number;
  queued: number;
  probesStarted: number;
  probesCompleted: number;
  /** Probes that had to wait for the in-flight or rate bound when due. */
  delayedProbes: number;
}

interface Running {
  controller: AbortController;
  timeout: Timer;
  release: () => void;
  startedAt: number;
}

interface Tracked {
  health: TargetHealth;
  plan: ProbePlan;
  /** JSON of plan.probe, to tell a changed probe from a changed schedule. */
  probeText: string;
  timer?: Timer;
  ticket?: GateTicket;
  running?: Running;
}

/** A new target's health before its first result, when known from elsewhere; undefined: its initialState. */
export type InitialHealth = (target: HealthTarget) => boolean | undefined;

export class HealthMonitor {
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #prober: Prober;
  readonly #planFor: (target: HealthTarget) => ProbePlan | undefined;
  readonly #gate: ProbeGate;
  readonly #jitter: number;
  readonly #source: { ipv4?: string; ipv6?: string };
  readonly #exec: ExecPolicy;
  readonly #onChange: ((change: HealthTransition) => void) | undefined;
  readonly #onResult: ((target: HealthTarget, result: ProbeResult) => void) | undefined;
  readonly #targets = new Map<string, Tracked>();
  #state: HealthState | undefined;
  #started = 0;
  #completed = 0;
  #stopped = false;

  constructor(options: HealthMonitorOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#prober = options.prober ?? runProbe;
    this.#planFor = options.planFor ?? probePlanFor;
    const jitter = options.jitter ?? DEFAULT_JITTER;
    if (!(jitter >= 0 && jitter <= 0.5))
      throw new RangeError(`jitter must be within [0, 0.5], got ${jitter}`);
    this.#jitter = jitter;
    this.#gate = new ProbeGate({
      clock: this.#clock,
      maxInFlight: options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
      maxStartsPerSecond: options.maxProbesPerSecond ?? 0,
    });
    this.#source = options.sourceAddress ?? {};
    this.#exec = options.exec ?? EXEC_DISABLED;
    this.#onChange = options.onChange;
    this.#onResult = options.onResult;
  }

  /** The targets to probe from now on (computeDesired's healthTargets); see the header for what is kept. */
  setTargets(targets: readonly HealthTarget[], initialHealth?: InitialHealth): void {
    if (this.#stopped) return;
    const wanted = new Map<string, { target: HealthTarget; plan: ProbePlan }>();
    for (const target of targets) {
      const plan = this.#planFor(target);
      if (plan) wanted.set(target.key, { target, plan });
    }
    for (const [key, tracked] of this.#targets) {
      if (!wanted.has(key)) {
        this.#halt(tracked);
        this.#targets.delete(key);
        this.#state = undefined;
      }
    }
    for (const [key, { target, plan }] of wanted) {
      const tracked = this.#targets.get(key);
      if (!tracked) {
        this.#add(key, target, plan, initialHealth?.(target));
        continue;
      }
      tracked.health.target = target;
      const probeText = probeKey(plan);
      if (probeText !== tracked.probeText) {
        this.#halt(tracked);
        tracked.plan = plan;
        tracked.probeText = probeText;
        tracked.health.consecutiveSuccesses = 0;
        tracked.health.consecutiveFailures = 0;
        this.#schedule(tracked, this.#random() * plan.intervalMs);
      } else {
        tracked.plan = plan;
      }
    }
  }

  /** Health by healthKey for computeDesired; every target is present (in its initial state before a result). */
  state(): HealthState {
    if (!this.#state) {
      this.#state = new Map([...this.#targets].map(([key, t]) => [key, t.health.healthy]));
    }
    return this.#state;
  }

  status(key: string): TargetHealth | undefined {
    const tracked = this.#targets.get(key);
    return tracked ? { ...tracked.health } : undefined;
  }

  /** Every target's health, by key. */
  statuses(): TargetHealth[] {
    return [...this.#targets.keys()].sort().map((key) => ({ ...this.#targets.get(key)!.health }));
  }

  stats(): HealthMonitorStats {
    return {
      targets: this.#targets.size,
      inFlight: this.#gate.inFlight,
      queued: this.#gate.queued,
      probesStarted: this.#started,
      probesCompleted: this.#completed,
      delayedProbes: this.#gate.delayed,
    };
  }

  /** Stops every timer and aborts running probes; the monitor probes nothing afterwards. */
  stop(): void {
    this.#stopped = true;
    for (const tracked of this.#targets.values()) this.#halt(tracked);
    this.#gate.clear();
  }

  #add(key: string, target: HealthTarget, plan: ProbePlan, inherited: boolean | undefined): void {
    const tracked: Tracked = {
      health: {
        key,
        target,
        healthy: inherited ?? plan.initiallyHealthy,
        consecutiveSuccesses: 0,
        consecutiveFailures: 0,
      },
      plan,
      probeText: probeKey(plan),
    };
    this.#targets.set(key, tracked);
    this.#state = undefined;
    this.#schedule(tracked, this.#random() * plan.intervalMs);
  }

  /** Cancels the timer, leaves the queue, aborts the running probe. State and counters stay. */
  #halt(tracked: Tracked): void {
    tracked.timer?.cancel();
    tracked.timer = undefined;
    tracked.ticket?.cancel();
    tracked.ticket = undefined;
    const running = tracked.running;
    if (running) {
      tracked.running = undefined;
      running.timeout.cancel();
      running.controller.abort();
      running.release();
    }
  }

  #schedule(tracked: Tracked, delayMs: number): void {
    tracked.timer = this.#clock.setTimer(delayMs, () => {
      tracked.timer = undefined;
      const ticket = this.#gate.enter((release) => this.#start(tracked, release));
      if (!tracked.running) tracked.ticket = ticket;
    });
  }

  #start(tracked: Tracked, release: () => void): void {
    tracked.ticket = undefined;
    const { plan, health } = tracked;
    const controller = new AbortController();
    const running: Running = {
      controller,
      release,
      startedAt: this.#clock.now(),
      // The prober fails itself at timeoutMs with a reason that says what it waited for; this guard,
      // a little later, only catches a prober that does not stop (and frees its slot).
      timeout: this.#clock.setTimer(plan.timeoutMs + PROBER_GRACE_MS, () =>
        this.#finish(tracked, running, {
          healthy: false,
          reason: `no result within ${plan.timeoutMs} ms (the prober did not stop at its timeout)`,
          durationMs: plan.timeoutMs + PROBER_GRACE_MS,
        }),
      ),
    };
    tracked.running = running;
    this.#started++;
    const family = isIPv6(health.target.address) ? this.#source.ipv6 : this.#source.ipv4;
    let probe: Promise<ProbeResult>;
    try {
      probe = this.#prober(plan.probe, {
        timeoutMs: plan.timeoutMs,
        signal: controller.signal,
        exec: this.#exec,
        ...(family && plan.probe.kind !== "Exec" ? { localAddress: family } : {}),
      });
    } catch (error) {
      probe = Promise.reject(error);
    }
    probe.then(
      (result) => this.#finish(tracked, running, result),
      (error: unknown) =>
        this.#finish(tracked, running, {
          healthy: false,
          reason: `probe failed: ${describeError(error)}`,
          durationMs: 0,
        }),
    );
  }

  #finish(tracked: Tracked, running: Running, result: ProbeResult): void {
    // A result for a probe that was aborted (target removed or replanned) or already timed out counts for nothing.
    if (tracked.running !== running) return;
    tracked.running = undefined;
    running.timeout.cancel();
    running.controller.abort();
    running.release();
    this.#completed++;
    const period = tracked.plan.intervalMs * (1 + this.#jitter * (2 * this.#random() - 1));
    // Interval from start to start; clamped so a stepped wall clock neither stalls nor floods.
    const delay = Math.min(period, Math.max(0, running.startedAt + period - this.#clock.now()));
    // The next probe is armed before any callback runs: a callback that throws cannot stop probing.
    this.#schedule(tracked, delay);
    const transition = this.#record(tracked, result);
    const { health } = tracked;
    try {
      this.#onResult?.(health.target, result);
    } finally {
      if (transition) this.#onChange?.(transition);
    }
  }

  /** Counts the result and applies a transition; returns it for onChange. */
  #record(tracked: Tracked, result: ProbeResult): HealthTransition | undefined {
    const { health, plan } = tracked;
    const now = this.#clock.now();
    health.lastResult = result;
    health.lastProbeAt = now;
    let reason: string | undefined;
    if (result.healthy) {
      health.consecutiveSuccesses++;
      health.consecutiveFailures = 0;
      if (!health.healthy && health.consecutiveSuccesses >= plan.riseCount) {
        reason = `${counted(health.consecutiveSuccesses, "consecutive success", "consecutive successes")}: ${result.reason}`;
      }
    } else {
      health.consecutiveFailures++;
      health.consecutiveSuccesses = 0;
      if (health.healthy && health.consecutiveFailures >= plan.fallCount) {
        reason = `${counted(health.consecutiveFailures, "consecutive failure", "consecutive failures")}: ${result.reason}`;
      }
    }
    if (reason === undefined) return undefined;
    health.healthy = result.healthy;
    health.lastTransitionAt = now;
    health.lastTransitionReason = reason;
    this.#state = undefined;
    return { key: health.key, target: health.target, healthy: health.healthy, reason, at: now };
  }
}

function counted(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function probeKey(plan: ProbePlan): string {
  return JSON.stringify(plan.probe, (_key, value: unknown) =>
    value instanceof Uint8Array ? `bytes:${Buffer.from(value).toString("hex")}` : value,
  );
}
