/**
 * The HealthMonitor's schedule and state machine with a fake clock and a scripted prober: no sockets,
 * no sleeping; time moves only through clock.advance().
 */
import { describe, expect, it } from "vitest";
import { type HealthCheckInput, HealthCheckSchema } from "../../src/api/v1alpha1/index.ts";
import {
  HealthMonitor,
  type HealthMonitorOptions,
  type HealthTransition,
  PROBER_GRACE_MS,
} from "../../src/health/health-monitor.ts";
import type { ProbeContext, ProbeResult } from "../../src/health/probe-result.ts";
import type { ProbeSpec } from "../../src/health/probe-spec.ts";
import { type HealthTarget, healthKey } from "../../src/model/snapshot.ts";
import { FakeClock } from "../support/fake-clock.ts";

const VS = { namespace: "edge", name: "web" };

function target(address: string, check: Partial<HealthCheckInput> = {}, port = 8080): HealthTarget {
  return {
    key: healthKey(VS, address, port),
    virtualService: VS,
    address,
    port,
    healthCheck: HealthCheckSchema.parse({ type: "TCP", intervalSeconds: 10, timeoutSeconds: 5, ...check }),
    source: { kind: "RealServer", namespace: VS.namespace, name: address },
  };
}

interface Call {
  spec: ProbeSpec;
  context: ProbeContext;
  at: number;
  settled: boolean;
  resolve: (result: ProbeResult) => void;
}

/**
 * A prober whose verdicts the test decides: by default every probe of an address answers at once with
 * the address's current verdict; `hold` makes probes wait until the test resolves them (or forever).
 */
class ScriptedProber {
  readonly calls: Call[] = [];
  readonly verdicts = new Map<string, boolean>();
  hold = false;
  maxConcurrent = 0;
  #running = 0;

  readonly clock: FakeClock;

  constructor(clock: FakeClock) {
    this.clock = clock;
  }

  readonly probe = (spec: ProbeSpec, context: ProbeContext): Promise<ProbeResult> =>
    new Promise<ProbeResult>((resolve) => {
      this.#running++;
      this.maxConcurrent = Math.max(this.maxConcurrent, this.#running);
      const call: Call = {
        spec,
        context,
        at: this.clock.now(),
        settled: false,
        resolve: (result) => {
          if (call.settled) return;
          call.settled = true;
          this.#running--;
          resolve(result);
        },
      };
      context.signal?.addEventListener("abort", () =>
        call.resolve({ healthy: false, reason: "aborted", durationMs: 0 }),
      );
      this.calls.push(call);
      if (!this.hold) {
        const healthy = this.verdicts.get(spec.address) ?? true;
        call.resolve({ healthy, reason: healthy ? "ok" : "refused", durationMs: 1 });
      }
    });

  callsFor(address: string): Call[] {
    return this.calls.filter((c) => c.spec.address === address);
  }

  get running(): number {
    return this.#running;
  }
}

function setup(options: Partial<HealthMonitorOptions> = {}) {
  const clock = new FakeClock(0);
  const prober = new ScriptedProber(clock);
  const changes: HealthTransition[] = [];
  let seed = 1;
  const monitor = new HealthMonitor({
    clock,
    prober: prober.probe,
    // A small deterministic PRNG (LCG) so jitter is exercised but reproducible.
    random: () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    },
    onChange: (change) => changes.push(change),
    ...options,
  });
  return { clock, prober, changes, monitor };
}

describe("HealthMonitor: rise, fall and the initial state", () => {
  it("starts in the initial state and rises after riseCount successes, falls after fallCount failures", async () => {
    const { clock, prober, changes, monitor } = setup({ jitter: 0 });
    const t = target("10.0.0.1", { riseCount: 2, fallCount: 3 });
    monitor.setTargets([t]);
    expect(monitor.state()).toEqual(new Map([[t.key, false]]));

    await clock.advance(10_000); // first probe within the first interval
    expect(prober.calls).toHaveLength(1);
    expect(monitor.state().get(t.key)).toBe(false);
    expect(monitor.status(t.key)).toMatchObject({ consecutiveSuccesses: 1, healthy: false });
    await clock.advance(10_000);
    expect(prober.calls).toHaveLength(2);
    expect(monitor.state().get(t.key)).toBe(true);
    expect(changes).toEqual([
      {
        key: t.key,
        target: t,
        healthy: true,
        reason: "2 consecutive successes: ok",
        at: prober.calls[1]!.at,
      },
    ]);

    prober.verdicts.set("10.0.0.1", false);
    await clock.advance(20_000);
    expect(monitor.state().get(t.key)).toBe(true);
    expect(changes).toHaveLength(1);
    await clock.advance(10_000);
    expect(monitor.state().get(t.key)).toBe(false);
    expect(changes.at(-1)).toMatchObject({ healthy: false, reason: "3 consecutive failures: refused" });
    expect(monitor.status(t.key)).toMatchObject({
      healthy: false,
      consecutiveFailures: 3,
      consecutiveSuccesses: 0,
      lastResult: { healthy: false, reason: "refused" },
      lastTransitionReason: "3 consecutive failures: refused",
    });

    // More failures: no more transitions; one success is not enough to rise.
    await clock.advance(30_000);
    prober.verdicts.set("10.0.0.1", true);
    await clock.advance(10_000);
    expect(changes).toHaveLength(2);
    expect(monitor.state().get(t.key)).toBe(false);
  });

  it("a failure in the middle resets the rise count", async () => {
    const { clock, prober, monitor } = setup({ jitter: 0 });
    const t = target("10.0.0.1", { riseCount: 3 });
    monitor.setTargets([t]);
    const script = [true, true, false, true, true, true];
    for (const verdict of script) {
      prober.verdicts.set("10.0.0.1", verdict);
      await clock.advance(10_000);
    }
    expect(prober.calls).toHaveLength(6);
    expect(monitor.status(t.key)).toMatchObject({ healthy: true, consecutiveSuccesses: 3 });
  });

  it("initialState Healthy: healthy before any result, no transition on successes, falls on failures", async () => {
    const { clock, prober, changes, monitor } = setup({ jitter: 0 });
    const t = target("10.0.0.2", { initialState: "Healthy", fallCount: 1 });
    monitor.setTargets([t]);
    expect(monitor.state().get(t.key)).toBe(true);
    await clock.advance(30_000);
    expect(changes).toEqual([]);
    prober.verdicts.set("10.0.0.2", false);
    await clock.advance(10_000);
    expect(changes.map((c) => c.healthy)).toEqual([false]);
  });

  it("a probe that never finishes fails at the timeout and frees its slot", async () => {
    const { clock, prober, monitor } = setup({ jitter: 0, maxInFlight: 1 });
    prober.hold = true;
    const t = target("10.0.0.3", { initialState: "Healthy", fallCount: 1, timeoutSeconds: 2 });
    monitor.setTargets([t]);
    await clock.advance(clock.nextTimerAt! - clock.now());
    const first = prober.calls[0]!;
    expect(first.at).toBe(clock.now());
    await clock.advance(first.at + 2_000 + PROBER_GRACE_MS - 1 - clock.now());
    expect(monitor.stats()).toMatchObject({ inFlight: 1, probesCompleted: 0 });
    await clock.advance(1);
    expect(monitor.status(t.key)).toMatchObject({
      healthy: false,
      lastResult: {
        healthy: false,
        reason: "no result within 2000 ms (the prober did not stop at its timeout)",
        durationMs: 2000 + PROBER_GRACE_MS,
      },
    });
    expect(first.context.signal?.aborted).toBe(true);
    expect(monitor.stats()).toMatchObject({ inFlight: 0, probesStarted: 1, probesCompleted: 1 });
  });
});

describe("HealthMonitor: schedule and jitter", () => {
  it("fires each target's first probe within its first interval, then every interval ± jitter", async () => {
    const { clock, prober, monitor } = setup({ jitter: 0.1 });
    const targets = Array.from({ length: 200 }, (_, i) => target(`10.1.${i >> 8}.${i & 255}`));
    monitor.setTargets(targets);
    await clock.advance(100_000);
    const firsts: number[] = [];
    for (const t of targets) {
      const times = prober.callsFor(t.address).map((c) => c.at);
      expect(times.length).toBeGreaterThanOrEqual(9);
      expect(times[0]).toBeGreaterThanOrEqual(0);
      expect(times[0]).toBeLessThan(10_000);
      firsts.push(times[0]!);
      for (let i = 1; i < times.length; i++) {
        const gap = times[i]! - times[i - 1]!;
        expect(gap).toBeGreaterThanOrEqual(9_000);
        expect(gap).toBeLessThanOrEqual(11_000);
      }
    }
    // Spread: no 1 s bucket of the first interval holds more than a quarter of the first probes.
    const buckets = new Map<number, number>();
    for (const at of firsts)
      buckets.set(Math.floor(at / 1000), (buckets.get(Math.floor(at / 1000)) ?? 0) + 1);
    expect(Math.max(...buckets.values())).toBeLessThan(50);
    expect(buckets.size).toBe(10);
  });

  it("keeps at most maxInFlight probes running; the rest queue and are counted as delayed", async () => {
    const { clock, prober, monitor } = setup({ maxInFlight: 10 });
    prober.hold = true;
    const targets = Array.from({ length: 1000 }, (_, i) => target(`10.2.${i >> 8}.${i & 255}`));
    monitor.setTargets(targets);
    // Each probe takes 500 ms of fake time.
    const finishLater = () => {
      for (const call of prober.calls) {
        if (!call.settled && !(call as { armed?: boolean }).armed) {
          (call as { armed?: boolean }).armed = true;
          clock.setTimer(500, () => call.resolve({ healthy: true, reason: "ok", durationMs: 500 }));
        }
      }
    };
    for (let step = 0; step < 600; step++) {
      await clock.advance(100);
      finishLater();
      expect(prober.running).toBeLessThanOrEqual(10);
      expect(monitor.stats().inFlight).toBeLessThanOrEqual(10);
    }
    expect(prober.maxConcurrent).toBe(10);
    const stats = monitor.stats();
    expect(stats.delayedProbes).toBeGreaterThan(0);
    // 10 slots x 500 ms per probe: 20 probes/s at most, 60 s of it.
    expect(stats.probesStarted).toBeLessThanOrEqual(20 * 60 + 10);
    expect(stats.probesStarted).toBeGreaterThan(20 * 60 * 0.9);
    // FIFO: every target got probed despite the queue.
    for (const t of targets) expect(prober.callsFor(t.address).length).toBeGreaterThan(0);
  });

  it("maxProbesPerSecond spaces the starts and stretches the effective interval", async () => {
    const { clock, prober, monitor } = setup({ maxProbesPerSecond: 10 });
    const targets = Array.from({ length: 100 }, (_, i) =>
      target(`10.3.0.${i}`, { intervalSeconds: 1, timeoutSeconds: 1 }),
    );
    monitor.setTargets(targets);
    await clock.advance(20_000);
    // Unbounded it would be ~2,000 probes; at 10/s it is 200.
    expect(prober.calls.length).toBeGreaterThanOrEqual(195);
    expect(prober.calls.length).toBeLessThanOrEqual(201);
    const times = prober.calls.map((c) => c.at);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(100);
    expect(monitor.stats().delayedProbes).toBeGreaterThan(0);
  });
});

describe("HealthMonitor: changing the targets", () => {
  it("keeps the state, counters and timer of unchanged targets", async () => {
    const { clock, prober, monitor } = setup({ jitter: 0 });
    const a = target("10.0.0.1", { riseCount: 2 });
    monitor.setTargets([a]);
    await clock.advance(20_000);
    expect(monitor.state().get(a.key)).toBe(true);
    const before = monitor.status(a.key);
    const timerAt = clock.nextTimerAt;
    // A new snapshot: equal but not identical objects, plus another target.
    monitor.setTargets([target("10.0.0.1", { riseCount: 2 }), target("10.0.0.9")]);
    expect(monitor.status(a.key)).toMatchObject({
      healthy: true,
      consecutiveSuccesses: before!.consecutiveSuccesses,
      lastProbeAt: before!.lastProbeAt,
    });
    expect(monitor.state().get(a.key)).toBe(true);
    expect(monitor.state().get(healthKey(VS, "10.0.0.9", 8080))).toBe(false);
    const callsBefore = prober.callsFor("10.0.0.1").length;
    await clock.advance(timerAt! - clock.now());
    expect(prober.callsFor("10.0.0.1").length).toBe(callsBefore + 1);
  });

  it("applies a new schedule from the next probe, and restarts a changed probe keeping its state", async () => {
    const { clock, prober, changes, monitor } = setup({ jitter: 0 });
    const a = target("10.0.0.1", { riseCount: 1 });
    monitor.setTargets([a]);
    await clock.advance(10_000);
    expect(monitor.state().get(a.key)).toBe(true);

    monitor.setTargets([target("10.0.0.1", { riseCount: 1, intervalSeconds: 60 })]);
    expect(monitor.status(a.key)?.consecutiveSuccesses).toBe(1);
    const n = prober.calls.length;
    await clock.advance(10_000); // the timer armed with the old interval fires once more
    await clock.advance(50_000);
    expect(prober.calls.length).toBe(n + 1);
    await clock.advance(10_000);
    expect(prober.calls.length).toBe(n + 2);

    monitor.setTargets([
      target("10.0.0.1", { type: "HTTP", path: "/healthz", riseCount: 1, intervalSeconds: 60 }),
    ]);
    expect(monitor.status(a.key)).toMatchObject({ healthy: true, consecutiveSuccesses: 0 });
    await clock.advance(60_000);
    expect(prober.calls.at(-1)!.spec).toMatchObject({ kind: "HTTP", path: "/healthz" });
    expect(changes.map((c) => c.healthy)).toEqual([true]);
  });

  it("stops a removed target at once: no more probes, the running one aborted, no transition", async () => {
    const { clock, prober, changes, monitor } = setup({ jitter: 0 });
    const a = target("10.0.0.1", { initialState: "Healthy", fallCount: 1 });
    const b = target("10.0.0.2");
    monitor.setTargets([a, b]);
    prober.hold = true;
    await clock.advance(10_000);
    const running = prober.callsFor("10.0.0.1")[0]!;
    expect(running.settled).toBe(false);
    monitor.setTargets([b]);
    expect(running.context.signal?.aborted).toBe(true);
    expect(monitor.status(a.key)).toBeUndefined();
    expect([...monitor.state().keys()]).toEqual([b.key]);
    prober.hold = false;
    await clock.advance(60_000);
    expect(prober.callsFor("10.0.0.1")).toHaveLength(1);
    expect(changes.filter((c) => c.key === a.key)).toEqual([]);
    expect(monitor.stats()).toMatchObject({ targets: 1, inFlight: 0 });

    monitor.setTargets([]);
    expect(clock.pendingTimers).toBe(0);
  });

  it("drops a queued probe of a removed target", async () => {
    const { clock, prober, monitor } = setup({ jitter: 0, maxInFlight: 1 });
    prober.hold = true;
    const a = target("10.0.0.1", { timeoutSeconds: 10 });
    const b = target("10.0.0.2", { timeoutSeconds: 10 });
    monitor.setTargets([a, b]);
    // Both first probes fall due within 10 s; the first one holds the only slot for 10 s.
    for (let i = 0; i < 100 && monitor.stats().queued === 0; i++) await clock.advance(100);
    expect(monitor.stats()).toMatchObject({ inFlight: 1, queued: 1, delayedProbes: 1 });
    const queuedAddress = prober.calls[0]!.spec.address === "10.0.0.1" ? "10.0.0.2" : "10.0.0.1";
    monitor.setTargets([queuedAddress === "10.0.0.1" ? b : a]);
    expect(monitor.stats()).toMatchObject({ queued: 0 });
    prober.calls[0]!.resolve({ healthy: true, reason: "ok", durationMs: 1 });
    await clock.advance(1);
    expect(prober.callsFor(queuedAddress)).toHaveLength(0);
  });

  it("stop() cancels every timer and probe", async () => {
    const { clock, prober, monitor } = setup();
    monitor.setTargets([target("10.0.0.1"), target("10.0.0.2")]);
    await clock.advance(5_000);
    monitor.stop();
    expect(clock.pendingTimers).toBe(0);
    const n = prober.calls.length;
    await clock.advance(60_000);
    expect(prober.calls.length).toBe(n);
  });
});

describe("HealthMonitor: probe context", () => {
  it("passes the source address of the target's family, the timeout and the exec policy", async () => {
    const exec = { enabled: true, allowedCommands: ["/bin/true"] };
    const { clock, prober, monitor } = setup({
      sourceAddress: { ipv4: "192.0.2.10", ipv6: "2001:db8::10" },
      exec,
    });
    monitor.setTargets([
      target("10.0.0.1", { timeoutSeconds: 3 }),
      target("2001:db8::1"),
      target("10.0.0.5", { type: "Exec", command: ["/bin/true"] }),
    ]);
    await clock.advance(10_000);
    const byAddress = new Map(prober.calls.map((c) => [c.spec.address, c.context]));
    expect(byAddress.get("10.0.0.1")).toMatchObject({ localAddress: "192.0.2.10", timeoutMs: 3000, exec });
    expect(byAddress.get("2001:db8::1")).toMatchObject({ localAddress: "2001:db8::10" });
    expect(byAddress.get("10.0.0.5")?.localAddress).toBeUndefined();
  });

  it("keeps probing when a callback throws", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const { clock, prober, monitor } = setup({
        jitter: 0,
        onChange: () => {
          throw new Error("listener bug");
        },
      });
      const t = target("10.0.0.1", { riseCount: 1 });
      monitor.setTargets([t]);
      await clock.advance(30_000);
      expect(prober.calls).toHaveLength(3);
      expect(monitor.state().get(t.key)).toBe(true);
      expect(unhandled).toEqual([new Error("listener bug")]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("reports a prober that throws as a failed probe", async () => {
    const { clock, monitor } = setup({
      jitter: 0,
      prober: () => {
        throw new Error("boom");
      },
    });
    const t = target("10.0.0.1", { initialState: "Healthy", fallCount: 1 });
    monitor.setTargets([t]);
    await clock.advance(10_000);
    expect(monitor.status(t.key)).toMatchObject({
      healthy: false,
      lastResult: { reason: "probe failed: boom" },
    });
  });
});
