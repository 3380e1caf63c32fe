/**
 * The SyncRunner against a FakeIpvsKernel-backed Reconciler and a fake clock: coalescing, the minimum
 * interval, periodic resync, backoff, drain wake-ups, the sources gate, stop() and health. Time moves
 * only through FakeClock.advance; tests assert the kernel table and the count and times of syncs.
 */
import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { readKernelTable } from "../../src/kernel/read-kernel-table.ts";
import type { DesiredEntry, DesiredTable } from "../../src/model/desired-table.ts";
import { renderIpvsadmSave } from "../../src/model/ipvsadm-render.ts";
import { MemoryJournalStore } from "../../src/reconcile/ownership-journal.ts";
import { Reconciler, type SyncResult } from "../../src/reconcile/reconciler.ts";
import {
  type SyncFunction,
  SyncRunner,
  type SyncRunnerOptions,
  type SyncScope,
} from "../../src/reconcile/runner.ts";
import { realServer, service, tcpKey } from "../support/desired-builders.ts";
import { FakeClock, settle } from "../support/fake-clock.ts";

const scope = { managedCidrs: [], managedFwmarks: [] };
const web = (dests = [realServer("198.51.100.1")]) => service(tcpKey("192.0.2.1"), dests, { name: "web" });

async function table(kernel: FakeIpvsKernel): Promise<string> {
  return renderIpvsadmSave(await readKernelTable(kernel));
}

interface Harness {
  clock: FakeClock;
  kernel: FakeIpvsKernel;
  runner: SyncRunner;
  /** The clock's now() at the start of each sync. */
  starts: number[];
  /** The scope each sync was given. */
  scopes: SyncScope[];
  results: SyncResult[];
  desired: { current: DesiredTable };
  /** Milliseconds since the harness was built. */
  elapsed(): number;
}

function harness(
  options: Partial<SyncRunnerOptions> & {
    desired?: DesiredTable;
    /** Runs before the reconciler, inside the sync (to hold a sync open or watch its signal). */
    before?: (signal: AbortSignal) => Promise<void>;
    reconciler?: { chunkSize?: number; drainPollMs?: number };
  } = {},
): Harness {
  const clock = new FakeClock();
  const t0 = clock.now();
  const kernel = new FakeIpvsKernel();
  const reconciler = new Reconciler({
    kernel,
    journal: new MemoryJournalStore(),
    scope,
    bootId: "boot",
    ...options.reconciler,
  });
  const desired = { current: options.desired ?? [web()] };
  const starts: number[] = [];
  const scopes: SyncScope[] = [];
  const results: SyncResult[] = [];
  const sync: SyncFunction = async (signal, now, syncScope) => {
    starts.push(now);
    scopes.push(syncScope);
    await options.before?.(signal);
    const result = await reconciler.sync({ desired: desired.current, now, signal });
    results.push(result);
    return result;
  };
  const runner = new SyncRunner({ clock, random: () => 0, ...options, sync });
  return { clock, kernel, runner, starts, scopes, results, desired, elapsed: () => clock.now() - t0 };
}

/** The next `syncs` syncs fail to read the table (EIO on their first kernel call) and change nothing. */
function kernelDown(kernel: FakeIpvsKernel, syncs: number): void {
  kernel.failNext("any", "EIO", syncs);
}

/** A promise and its resolve function, to hold a sync open. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe("SyncRunner: coalescing", () => {
  it("turns 100 requests made before a sync starts into one sync", async () => {
    const h = harness();
    h.runner.start();
    await h.clock.advance(0);
    expect(h.starts).toHaveLength(1);
    await h.clock.advance(5000);
    for (let i = 0; i < 100; i++) h.runner.requestSync(`EndpointSlice demo/web-${i} changed`);
    await h.clock.advance(10_000);
    expect(h.starts).toHaveLength(2);
    expect(await table(h.kernel)).toContain("-a -t 192.0.2.1:80 -r 198.51.100.1:8080");
  });

  it('gives a sync the scope "changes" only when every request it covers said so', async () => {
    const h = harness({ resyncIntervalMs: 30_000 });
    h.runner.start();
    await h.clock.advance(0); // the first sync (sources synced): all
    await h.clock.advance(2000);
    h.runner.requestSync("endpoints changed", "changes");
    h.runner.requestSync("endpoints changed", "changes");
    await h.clock.advance(2000);
    h.runner.requestSync("endpoints changed", "changes");
    h.runner.requestSync("VirtualService changed");
    await h.clock.advance(2000);
    await h.clock.advance(30_000); // the periodic resync
    expect(h.scopes).toEqual(["all", "changes", "all", "all"]);
  });

  it("turns requests spread over the minimum interval into one sync when it ends", async () => {
    const h = harness();
    for (let i = 0; i < 10; i++) h.runner.requestSync("before start");
    h.runner.start();
    await h.clock.advance(0);
    expect(h.starts).toHaveLength(1);
    for (let i = 0; i < 100; i++) {
      await h.clock.advance(9);
      h.runner.requestSync(`Service demo/s-${i} changed`);
    }
    await h.clock.advance(10_000);
    expect(h.starts.map((s) => s - h.starts[0]!)).toEqual([0, 1000]);
  });

  it("turns 100 requests made during a sync into exactly one more sync", async () => {
    let hold: ReturnType<typeof deferred> | undefined = deferred();
    const h = harness({ before: () => hold?.promise ?? Promise.resolve() });
    h.runner.start();
    await h.clock.advance(200);
    expect(h.starts).toHaveLength(1);
    expect(h.runner.health().syncing).toBe(true);
    h.desired.current = [web([realServer("198.51.100.1"), realServer("198.51.100.2")])];
    for (let i = 0; i < 100; i++) h.runner.requestSync("RealServer changed");
    const first = hold;
    hold = undefined;
    first.resolve();
    await h.clock.advance(29_000); // less than the resync after the second start
    expect(h.starts.map((s) => s - h.starts[0]!)).toEqual([0, 1000]);
    expect(await table(h.kernel)).toContain("198.51.100.2:8080");
  });

  it("starts the next sync at once when the previous one took longer than the minimum interval", async () => {
    let hold: ReturnType<typeof deferred> | undefined = deferred();
    const h = harness({ before: () => hold?.promise ?? Promise.resolve() });
    h.runner.start();
    await h.clock.advance(3000);
    h.runner.requestSync("Service changed");
    const first = hold!;
    hold = undefined;
    first.resolve();
    await h.clock.advance(0);
    expect(h.starts.map((s) => s - h.starts[0]!)).toEqual([0, 3000]);
  });

  it("recomputes from the inputs at sync time: a backend health change reaches the kernel in one sync", async () => {
    const healthy = new Map([
      ["198.51.100.1", true],
      ["198.51.100.2", true],
    ]);
    const h = harness();
    const compute = () => [web([...healthy].filter(([, up]) => up).map(([address]) => realServer(address)))];
    h.desired.current = compute();
    h.runner.start();
    await h.clock.advance(5000);
    expect(await table(h.kernel)).toContain("198.51.100.2:8080");
    healthy.set("198.51.100.2", false); // the prober's verdict: the agent recomputes and asks for a sync
    h.desired.current = compute();
    h.runner.requestSync("backend health changed");
    await h.clock.advance(0);
    expect(h.starts).toHaveLength(2);
    expect(await table(h.kernel)).not.toMatch(/198\.51\.100\.2:8080 -m -w [1-9]/);
  });
});

describe("SyncRunner: timing", () => {
  it("keeps the starts of two syncs at least the minimum interval apart", async () => {
    const h = harness({ minIntervalMs: 5000 });
    h.runner.start();
    await h.clock.advance(100);
    h.runner.requestSync("a");
    await h.clock.advance(4899);
    expect(h.starts).toHaveLength(1);
    h.runner.requestSync("b");
    await h.clock.advance(1);
    expect(h.starts).toHaveLength(2);
    h.runner.requestSync("c");
    await h.clock.advance(4999);
    expect(h.starts).toHaveLength(2);
    await h.clock.advance(1);
    expect(h.starts.map((s) => s - h.starts[0]!)).toEqual([0, 5000, 10_000]);
  });

  it("repairs an out-of-band change at the periodic resync, and not before", async () => {
    const h = harness();
    h.runner.start();
    await h.clock.advance(0);
    const good = await table(h.kernel);
    await h.clock.advance(10_000);
    await h.kernel.updateDestination(tcpKey("192.0.2.1"), {
      ...realServer("198.51.100.1"),
      config: { ...realServer("198.51.100.1").config, weight: 7 },
    }); // ipvsadm -e behind the agent's back
    const drifted = await table(h.kernel);
    expect(drifted).not.toBe(good);
    await h.clock.advance(19_999);
    expect(await table(h.kernel)).toBe(drifted);
    await h.clock.advance(1);
    expect(await table(h.kernel)).toBe(good);
    expect(h.starts.map((s) => s - h.starts[0]!)).toEqual([0, 30_000]);
    expect(h.results[1]!.drift).not.toEqual([]);
  });

  it("resyncs on the period with nothing else going on", async () => {
    const h = harness({ resyncIntervalMs: 10_000 });
    h.runner.start();
    await h.clock.advance(45_000);
    expect(h.starts.map((s) => s - h.starts[0]!)).toEqual([0, 10_000, 20_000, 30_000, 40_000]);
  });

  it("keeps its rhythm when the wall clock steps back: timers are relative", async () => {
    const h = harness();
    h.runner.start();
    await h.clock.advance(1000);
    h.clock.step(-3_600_000);
    await h.clock.advance(29_000);
    expect(h.starts).toHaveLength(2);
    expect(h.starts[1]! - h.starts[0]!).toBe(30_000 - 3_600_000);
  });
});

describe("SyncRunner: retry with backoff", () => {
  it("doubles the delay after each failure up to the cap, and resets after a success", async () => {
    const h = harness({ backoff: { initialMs: 1000, maxMs: 60_000 } });
    kernelDown(h.kernel, 9);
    h.runner.start();
    await h.clock.advance(400_000);
    const gaps = h.starts.slice(1).map((s, i) => s - h.starts[i]!);
    // 9 failures: 1, 2, 4, 8, 16, 32, 60, 60, 60 s (past the 30 s resync); then resyncs every 30 s.
    expect(gaps.slice(0, 11)).toEqual([
      1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000, 30_000, 30_000,
    ]);
    expect(h.results.map((r) => r.ok).slice(0, 10)).toEqual([...Array(9).fill(false), true]);
    expect(h.runner.health().consecutiveFailures).toBe(0);
    // A new failure starts from the initial delay again.
    const before = h.starts.length;
    kernelDown(h.kernel, 1);
    h.runner.requestSync("Service changed");
    await h.clock.advance(0);
    expect(h.starts).toHaveLength(before + 1);
    expect(h.runner.health().consecutiveFailures).toBe(1);
    await h.clock.advance(999);
    expect(h.starts).toHaveLength(before + 1);
    await h.clock.advance(1);
    expect(h.starts).toHaveLength(before + 2);
    expect(h.runner.health().consecutiveFailures).toBe(0);
  });

  it("takes up to the jitter fraction off each delay", async () => {
    const h = harness({ backoff: { initialMs: 2000, jitter: 0.2 }, random: () => 0.5 });
    kernelDown(h.kernel, 3);
    h.runner.start();
    await h.clock.advance(20_000);
    const gaps = h.starts.slice(1, 4).map((s, i) => s - h.starts[i]!);
    expect(gaps).toEqual([1800, 3600, 7200]);
  });

  it("retries a sync with failed operations (ok false), not only transport errors", async () => {
    const h = harness();
    h.kernel.failNext("addDestination", "ENOMEM", 1);
    h.runner.start();
    await h.clock.advance(0);
    expect(h.results[0]!.ok).toBe(false);
    expect(h.results[0]!.errors).toEqual([]);
    await h.clock.advance(1000);
    expect(h.results).toHaveLength(2);
    expect(h.results[1]!.ok).toBe(true);
    expect(await table(h.kernel)).toContain("198.51.100.1:8080");
  });

  it("does not hold a new request back for the backoff, only for the minimum interval", async () => {
    const h = harness();
    kernelDown(h.kernel, 6);
    h.runner.start();
    await h.clock.advance(31_000 + 10); // failures at 0, 1, 3, 7, 15, 31 s: the next retry would be at 63 s
    expect(h.starts).toHaveLength(6);
    h.runner.requestSync("backend turned unhealthy");
    await h.clock.advance(1000);
    expect(h.starts).toHaveLength(7);
    expect(h.results[6]!.ok).toBe(true);
  });

  it("treats a sync function that throws as a failed sync and retries it", async () => {
    const clock = new FakeClock();
    let calls = 0;
    const runner = new SyncRunner({
      clock,
      random: () => 0,
      sync: async () => {
        calls++;
        throw new Error("bug in the wrapper");
      },
    });
    runner.start();
    await clock.advance(3000);
    expect(calls).toBe(3); // at 0, 1 and 3 s
    expect(runner.health().lastResult?.errors[0]?.message).toContain("bug in the wrapper");
    expect(runner.health().consecutiveFailures).toBe(3);
    await runner.stop();
  });
});

describe("SyncRunner: wake-ups for drains", () => {
  const slowDrain = (entry: DesiredEntry): DesiredEntry => ({
    ...entry,
    service: { ...entry.service, drainTimeoutSeconds: 12 },
  });

  it("wakes at the drain deadline (before the resync) and deletes the drained real server", async () => {
    const both = slowDrain(web([realServer("198.51.100.1"), realServer("198.51.100.2")]));
    const h = harness({ desired: [both], reconciler: { drainPollMs: 60_000 } });
    h.runner.start();
    await h.clock.advance(2000);
    h.kernel.setConnections(tcpKey("192.0.2.1"), realServer("198.51.100.2").key, { active: 3 });
    h.desired.current = [slowDrain(web([realServer("198.51.100.1")]))];
    h.runner.requestSync("RealServer deleted");
    await h.clock.advance(0);
    expect(h.results[1]!.draining).toBe(1);
    expect(await table(h.kernel)).toContain("-r 198.51.100.2:8080 -m -w 0");
    await h.clock.advance(11_999);
    expect(await table(h.kernel)).toContain("198.51.100.2:8080");
    await h.clock.advance(1);
    expect(await table(h.kernel)).not.toContain("198.51.100.2:8080");
    expect(h.starts.map((s) => s - h.starts[0]!)).toEqual([0, 2000, 14_000]);
  });

  it("polls a drain that waits for its connections, then finishes it when they end", async () => {
    const h = harness({ desired: [web([realServer("198.51.100.1"), realServer("198.51.100.2")])] });
    h.runner.start();
    await h.clock.advance(2000);
    h.kernel.setConnections(tcpKey("192.0.2.1"), realServer("198.51.100.2").key, { active: 3 });
    h.desired.current = [web([realServer("198.51.100.1")])];
    h.runner.requestSync("RealServer deleted");
    await h.clock.advance(5000); // the reconciler's default poll
    expect(h.starts).toHaveLength(3);
    expect(await table(h.kernel)).toContain("198.51.100.2:8080");
    h.kernel.setConnections(tcpKey("192.0.2.1"), realServer("198.51.100.2").key, { active: 0 });
    await h.clock.advance(5000);
    expect(h.starts).toHaveLength(4);
    expect(await table(h.kernel)).not.toContain("198.51.100.2:8080");
    // Drained: nothing more to wake for, back to the resync rhythm.
    await h.clock.advance(29_999);
    expect(h.starts).toHaveLength(4);
  });
});

describe("SyncRunner: the sources gate", () => {
  it("does not sync, however often asked, until the gate promise resolves", async () => {
    const gate = deferred();
    const h = harness({ gate: gate.promise });
    h.runner.start();
    for (let i = 0; i < 10; i++) h.runner.requestSync("VirtualService added");
    await h.clock.advance(120_000);
    expect(h.starts).toEqual([]);
    expect(await table(h.kernel)).toBe("");
    expect(h.runner.health()).toMatchObject({ ready: false, healthy: true, gateOpen: false });
    gate.resolve();
    await h.clock.advance(0);
    expect(h.starts).toHaveLength(1);
    expect(await table(h.kernel)).toContain("192.0.2.1:80");
    expect(h.runner.health()).toMatchObject({ ready: true, healthy: true, gateOpen: true });
  });

  it("checks a predicate gate when a sync is requested", async () => {
    let synced = false;
    const h = harness({ gate: () => synced });
    h.runner.start();
    h.runner.requestSync("Node changed");
    await h.clock.advance(60_000);
    expect(h.starts).toEqual([]);
    synced = true;
    h.runner.requestSync("caches synced");
    await h.clock.advance(0);
    expect(h.starts).toHaveLength(1);
  });

  it("never syncs when the gate rejects", async () => {
    const h = harness({ gate: Promise.reject(new Error("informer for VirtualService failed")) });
    h.runner.start();
    await h.clock.advance(60_000);
    expect(h.starts).toEqual([]);
    expect(h.runner.health().ready).toBe(false);
  });

  it("does nothing before start()", async () => {
    const h = harness();
    h.runner.requestSync("Service changed");
    await h.clock.advance(60_000);
    expect(h.starts).toEqual([]);
  });
});

describe("SyncRunner: stop", () => {
  it("cancels the sync in progress through its signal and touches nothing after it resolves", async () => {
    const services = ["192.0.2.1", "192.0.2.2", "192.0.2.3"].map((a, i) =>
      service(tcpKey(a), [realServer(`198.51.100.${i + 1}`)], { name: `vs${i}` }),
    );
    let stopped: Promise<void> | undefined;
    let signal: AbortSignal | undefined;
    const h = harness({
      desired: services,
      reconciler: { chunkSize: 1 },
      before: async (s) => {
        signal = s;
      },
    });
    const apply = h.kernel.apply.bind(h.kernel);
    let applies = 0;
    h.kernel.apply = async (operations) => {
      applies++;
      const results = await apply(operations);
      if (applies === 1) stopped = h.runner.stop(); // SIGTERM while the first chunk is in the kernel
      return results;
    };
    h.runner.start();
    await h.clock.advance(0);
    expect(stopped).toBeDefined();
    await stopped;
    expect(signal?.aborted).toBe(true);
    expect(applies).toBe(1);
    expect(h.results[0]!.errors.map((e) => e.kind)).toEqual(["Cancelled"]);
    const left = await table(h.kernel);
    expect(left).toBe("-A -t 192.0.2.1:80 -s rr\n");
    expect(h.clock.pendingTimers).toBe(0);
    h.runner.requestSync("Service changed");
    await h.clock.advance(600_000);
    expect(h.starts).toHaveLength(1);
    expect(applies).toBe(1);
    expect(await table(h.kernel)).toBe(left);
    expect(h.runner.health()).toMatchObject({ stopped: true, ready: false, syncing: false });
  });

  it("waits for the sync in progress to return before resolving", async () => {
    const hold = deferred();
    const h = harness({ before: () => hold.promise });
    h.runner.start();
    await h.clock.advance(0);
    let resolved = false;
    const stopping = h.runner.stop().then(() => {
      resolved = true;
    });
    await settle();
    expect(resolved).toBe(false);
    hold.resolve();
    await stopping;
    expect(resolved).toBe(true);
    // The reconciler saw the aborted signal before touching the kernel.
    expect(await table(h.kernel)).toBe("");
    expect(h.results[0]!.errors.map((e) => e.kind)).toEqual(["Cancelled"]);
  });

  it("stops a runner that is idle or never started, twice", async () => {
    const h = harness();
    await h.runner.stop();
    h.runner.start();
    await h.clock.advance(60_000);
    expect(h.starts).toEqual([]);
    const g = harness();
    g.runner.start();
    await g.clock.advance(100);
    await g.runner.stop();
    await g.runner.stop();
    expect(g.clock.pendingTimers).toBe(0);
  });
});

describe("SyncRunner: health and readiness", () => {
  it("is ready only after the first successful sync, and stays ready through later failures", async () => {
    const h = harness();
    expect(h.runner.health()).toMatchObject({ ready: false, healthy: true, syncs: 0 });
    kernelDown(h.kernel, 2);
    h.runner.start();
    await h.clock.advance(0);
    expect(h.runner.health()).toMatchObject({ ready: false, consecutiveFailures: 1 });
    await h.clock.advance(1000);
    expect(h.runner.health()).toMatchObject({ ready: false, consecutiveFailures: 2 });
    await h.clock.advance(2000);
    const health = h.runner.health();
    expect(health).toMatchObject({ ready: true, healthy: true, consecutiveFailures: 0, syncs: 3 });
    expect(health.lastSuccessAt).toBe(h.clock.now());
    expect(health.lastResult?.ok).toBe(true);
    kernelDown(h.kernel, 1);
    h.runner.requestSync("Service changed");
    await h.clock.advance(1000); // the minimum interval since the last start
    expect(h.runner.health()).toMatchObject({ ready: true, consecutiveFailures: 1, syncs: 4 });
  });

  it("turns unhealthy when a request stays unapplied past the timeout, and healthy once applied", async () => {
    const h = harness({ healthTimeoutMs: 60_000 });
    h.runner.start();
    await h.clock.advance(5000);
    // The kernel stops answering: failures 0, 1, 3, 7, 15, 31 and 63 s after the request, success at 123 s.
    kernelDown(h.kernel, 7);
    h.runner.requestSync("EndpointSlice changed");
    const requestedAt = h.clock.now();
    await h.clock.advance(60_000);
    expect(h.runner.health()).toMatchObject({ healthy: true, oldestUnappliedRequestAt: requestedAt });
    await h.clock.advance(1);
    expect(h.runner.health()).toMatchObject({ healthy: false, ready: true });
    await h.clock.advance(123_000 - 60_001 - 1);
    expect(h.runner.health()).toMatchObject({ healthy: false, consecutiveFailures: 7 });
    await h.clock.advance(1);
    expect(h.runner.health()).toMatchObject({
      healthy: true,
      consecutiveFailures: 0,
      oldestUnappliedRequestAt: undefined,
      lastSuccessAt: requestedAt + 123_000,
    });
  });

  it("counts a failing periodic resync as an unapplied request (default timeout: 2 x resync)", async () => {
    const h = harness();
    h.runner.start();
    await h.clock.advance(1000);
    kernelDown(h.kernel, 100);
    await h.clock.advance(29_000 + 60_000);
    expect(h.runner.health().healthy).toBe(true);
    await h.clock.advance(1);
    expect(h.runner.health().healthy).toBe(false);
  });

  it("counts a request made during a successful sync as still unapplied", async () => {
    let hold: ReturnType<typeof deferred> | undefined = deferred();
    const h = harness({ before: () => hold?.promise ?? Promise.resolve() });
    h.runner.start();
    await h.clock.advance(300);
    h.runner.requestSync("Service changed");
    const during = h.clock.now();
    const first = hold!;
    hold = undefined;
    first.resolve();
    await settle();
    expect(h.runner.health()).toMatchObject({ ready: true, oldestUnappliedRequestAt: during });
    await h.clock.advance(700);
    expect(h.starts).toHaveLength(2);
    expect(h.runner.health().oldestUnappliedRequestAt).toBeUndefined();
  });

  it("reports each finished sync to its listener", async () => {
    const clock = new FakeClock();
    const kernel = new FakeIpvsKernel();
    const reconciler = new Reconciler({ kernel, journal: new MemoryJournalStore(), scope, bootId: "b" });
    const seen: string[] = [];
    const runner = new SyncRunner({
      clock,
      random: () => 0,
      sync: (signal, now) => reconciler.sync({ desired: [web()], now, signal }),
      onSyncEnd: (result, info) =>
        seen.push(`${result.ok} ${info.reasons.join("+")} ${info.consecutiveFailures} ${info.retryInMs}`),
    });
    kernelDown(kernel, 1);
    runner.start();
    runner.requestSync("Service changed"); // in the same turn: joins the first sync
    await clock.advance(31_000);
    expect(seen).toEqual([
      "false sources synced+Service changed 1 1000",
      "true retry after a failed sync 0 undefined",
      "true periodic resync 0 undefined",
    ]);
    await runner.stop();
  });
});

describe("SyncRunner: logs", () => {
  it("logs in the Kubernetes message style with structured keys", async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const logger = pino({ level: "debug", base: undefined }, sink).child({ component: "runner" });
    const h = harness({ logger });
    kernelDown(h.kernel, 1);
    h.runner.start();
    await h.clock.advance(1000);
    await h.runner.stop();
    await settle();
    const messages = lines.map((l) => l.msg);
    expect(messages).toEqual([
      "Starting sync runner",
      "Sources synced; starting the first sync",
      "Syncing IPVS table",
      "Sync failed; retrying with backoff",
      "Syncing IPVS table",
      "Sync succeeded after failures",
      "First sync succeeded; ready",
      "Synced IPVS table",
      "Stopping sync runner; the IPVS table is left as it is",
    ]);
    const failure = lines.find((l) => l.msg === "Sync failed; retrying with backoff")!;
    expect(failure).toMatchObject({
      component: "runner",
      consecutiveFailures: 1,
      retryInMs: 1000,
      reasons: ["sources synced"],
    });
    expect(String((failure.errors as string[])[0])).toMatch(/^KernelRead: /);
  });
});

describe("SyncRunner: options", () => {
  it("rejects intervals that would spin or never fire", () => {
    const sync: SyncFunction = async () => {
      throw new Error("unused");
    };
    expect(() => new SyncRunner({ sync, resyncIntervalMs: 0 })).toThrow(/resyncIntervalMs/);
    expect(() => new SyncRunner({ sync, minIntervalMs: -1 })).toThrow(/minIntervalMs/);
    expect(() => new SyncRunner({ sync, backoff: { initialMs: Number.NaN } })).toThrow(/initialMs/);
  });
});
