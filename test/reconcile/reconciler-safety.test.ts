/**
 * The Reconciler's safety rules, each with the path that used to lose traffic: stale journal entries
 * (reboot, out-of-band delete), partial input, keep-last-good, undecodable kernel entries, transport
 * failures, cancellation, clock steps, single flight, and the node lock.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { IpvsError } from "../../src/kernel/errors.ts";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { readKernelTable } from "../../src/kernel/read-kernel-table.ts";
import { renderIpvsadmSave } from "../../src/model/ipvsadm-render.ts";
import { FileNodeLock, NodeLockBusyError } from "../../src/reconcile/node-lock.ts";
import { FileJournalStore, MemoryJournalStore } from "../../src/reconcile/ownership-journal.ts";
import { Reconciler } from "../../src/reconcile/reconciler.ts";
import { realServer, service, tcpKey } from "../support/desired-builders.ts";

const scope = { managedCidrs: [], managedFwmarks: [] };
const web = (dests = [realServer("198.51.100.1")], options = {}) =>
  service(tcpKey("192.0.2.1"), dests, { name: "web", ...options });

async function table(kernel: FakeIpvsKernel) {
  return renderIpvsadmSave(await readKernelTable(kernel));
}

async function addForeign(kernel: FakeIpvsKernel, address = "192.0.2.1") {
  const f = service(tcpKey(address), [realServer("203.0.113.7", 9)], { scheduler: "wlc" });
  await kernel.addService(f.service);
  await kernel.addDestination(f.service.key, f.destinations[0]!);
  return table(kernel);
}

describe("Reconciler: ownership that cannot go stale", () => {
  it("after a reboot, a foreign service at a journaled key is left alone", async () => {
    const journal = new MemoryJournalStore();
    const before = new FakeIpvsKernel();
    await new Reconciler({ kernel: before, journal, scope, bootId: "boot-A" }).sync({
      desired: [web()],
      now: 0,
    });
    expect((await journal.load()).services).toEqual(["TCP 192.0.2.1:80"]);
    // Reboot: an empty kernel, a new boot id; keepalived starts first and takes the key.
    const kernel = new FakeIpvsKernel();
    const foreign = await addForeign(kernel);
    const after = await new Reconciler({ kernel, journal, scope, bootId: "boot-B" }).sync({
      desired: [],
      now: 1,
    });
    expect(after.outcomes).toEqual([]);
    expect(after.drift).toEqual([{ kind: "Foreign", service: "TCP 192.0.2.1:80", action: "Ignored" }]);
    expect(after.notes.join()).toContain("another boot (boot-A)");
    expect(await table(kernel)).toBe(foreign);
    expect(await journal.load()).toMatchObject({ bootId: "boot-B", services: [] });
  });

  it("after an out-of-band delete, the key is no longer claimed once a sync has seen it gone", async () => {
    const kernel = new FakeIpvsKernel();
    const journal = new MemoryJournalStore();
    const reconciler = new Reconciler({ kernel, journal, scope, bootId: "b" });
    await reconciler.sync({ desired: [web()], now: 0 });
    await kernel.deleteService(tcpKey("192.0.2.1")); // ipvsadm -D
    await reconciler.sync({ desired: [], now: 1 });
    expect((await journal.load()).services).toEqual([]);
    const foreign = await addForeign(kernel);
    const next = await reconciler.sync({ desired: [], now: 2 });
    expect(next.outcomes).toEqual([]);
    expect(await table(kernel)).toBe(foreign);
  });

  it("a service another writer creates between a sync's read and its add is foreign from then on", async () => {
    /** ipvsadm -A (and -a) of someone else, right after the next read. */
    class RacedKernel extends FakeIpvsKernel {
      raceNextRead = false;
      override async readTable(options?: Parameters<FakeIpvsKernel["readTable"]>[0]) {
        const snapshot = await super.readTable(options);
        if (this.raceNextRead) {
          this.raceNextRead = false;
          await addForeign(this);
        }
        return snapshot;
      }
    }
    const kernel = new RacedKernel();
    const journal = new MemoryJournalStore();
    const reconciler = new Reconciler({ kernel, journal, scope, bootId: "b" });
    await reconciler.sync({ desired: [web()], now: 0 });
    await kernel.deleteService(tcpKey("192.0.2.1")); // ipvsadm -D
    kernel.raceNextRead = true;
    const raced = await reconciler.sync({ desired: [web()], now: 1 });
    expect(
      raced.outcomes.map((o) => [o.operation.op, o.result, o.reason?.includes("EEXIST") ?? false]),
    ).toEqual([
      ["addService", "failed", true],
      ["addDestination", "skipped", true], // "its service could not be created: ... EEXIST"
    ]);
    expect((await journal.load()).services).toEqual([]);
    const foreign = await table(kernel);
    const next = await reconciler.sync({ desired: [web()], now: 2 });
    expect(next.outcomes).toEqual([]);
    expect(next.drift).toMatchObject([{ kind: "Foreign", service: "TCP 192.0.2.1:80", action: "Ignored" }]);
    expect(next.drift[0]?.message).toContain("held by a kernel service this agent does not own");
    expect(await table(kernel)).toBe(foreign);
  });

  it("writes the journal only when it changes", async () => {
    const kernel = new FakeIpvsKernel();
    const journal = new MemoryJournalStore();
    const reconciler = new Reconciler({ kernel, journal, scope, bootId: "b" });
    await reconciler.sync({ desired: [], now: 0 });
    expect(journal.saves).toBe(0);
    await reconciler.sync({ desired: [web()], now: 1 });
    const afterCreate = journal.saves;
    expect(afterCreate).toBeGreaterThan(0);
    for (const now of [2, 3, 4]) await reconciler.sync({ desired: [web()], now });
    expect(journal.saves).toBe(afterCreate);
  });

  it("re-reads the journal when another writer changed it", async () => {
    const kernel = new FakeIpvsKernel();
    const journal = new MemoryJournalStore();
    const a = new Reconciler({ kernel, journal, scope, bootId: "b" });
    const b = new Reconciler({ kernel, journal, scope, bootId: "b" });
    await a.sync({ desired: [], now: 0 });
    await b.sync({ desired: [web()], now: 1 }); // b creates and journals it
    const removed = await a.sync({ desired: [], now: 2 }); // a sees b's entry: it is ours, not desired by a
    expect(removed.outcomes.map((o) => o.description)).toEqual(["delete service TCP 192.0.2.1:80"]);
  });

  it("cleans temporary journal files a crashed writer left, once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "reconciler-"));
    const path = join(dir, "journal.json");
    const { writeFileSync, readdirSync } = await import("node:fs");
    writeFileSync(`${path}.tmp-1-dead`, "{");
    const r = new Reconciler({
      kernel: new FakeIpvsKernel(),
      journal: new FileJournalStore(path),
      scope,
      bootId: "b",
    });
    const result = await r.sync({ desired: [web()], now: 0 });
    expect(result.notes.join()).toContain("removed 1 temporary journal files");
    expect(readdirSync(dir)).toEqual(["journal.json"]);
  });
});

describe("Reconciler: no deletion from partial input, keep-last-good", () => {
  it("plans no deletion and no drain when the input was read only in part, but adds and updates", async () => {
    const kernel = new FakeIpvsKernel();
    const journal = new MemoryJournalStore();
    const reconciler = new Reconciler({ kernel, journal, scope, bootId: "b" });
    const other = service(tcpKey("192.0.2.2"), [realServer("198.51.100.2")], { name: "other" });
    await reconciler.sync({
      desired: [web([realServer("198.51.100.1"), realServer("198.51.100.3")]), other],
      now: 0,
    });
    kernel.setConnections(tcpKey("192.0.2.1"), realServer("198.51.100.3").key, { active: 2 });
    // The file with "other" failed to parse, and web lost a real server and gained one.
    const partial = await reconciler.sync({
      desired: [web([realServer("198.51.100.1", 4), realServer("198.51.100.5")])],
      now: 1,
      partialInput: "1 manifest files or documents could not be read",
    });
    expect(partial.outcomes.map((o) => `${o.result} ${o.description}`)).toEqual([
      "applied add destination TCP 192.0.2.1:80 -> 198.51.100.5:8080 (weight 1)",
      "applied update destination TCP 192.0.2.1:80 -> 198.51.100.1:8080 (weight 4)",
    ]);
    expect(partial.drift).toContainEqual(
      expect.objectContaining({ kind: "Unexpected", service: "TCP 192.0.2.2:80", action: "Reported" }),
    );
    expect(partial.drift).toContainEqual(
      expect.objectContaining({ destination: "198.51.100.3:8080", action: "Reported" }),
    );
    expect(await table(kernel)).toContain("192.0.2.2:80");
    // The input is whole again: now the removals go ahead (drain first).
    const whole = await reconciler.sync({
      desired: [web([realServer("198.51.100.1", 4), realServer("198.51.100.5")])],
      now: 2,
    });
    expect(whole.outcomes.map((o) => o.description)).toEqual([
      "update destination TCP 192.0.2.1:80 -> 198.51.100.3:8080 (weight 0)",
      "delete service TCP 192.0.2.2:80",
    ]);
  });

  it("keeps the last valid state of a VirtualService that became invalid, and of the service of an invalid RealServer", async () => {
    const kernel = new FakeIpvsKernel();
    const journal = new MemoryJournalStore();
    const reconciler = new Reconciler({ kernel, journal, scope, bootId: "b" });
    const api = service(tcpKey("192.0.2.2"), [realServer("198.51.100.2"), realServer("198.51.100.4")], {
      name: "api",
    });
    await reconciler.sync({ desired: [web(), api], now: 0 });
    const before = await table(kernel);
    // demo/web is now invalid (absent from the desired table); one RealServer of demo/api is invalid.
    const held = await reconciler.sync({
      desired: [service(tcpKey("192.0.2.2"), [realServer("198.51.100.2", 7)], { name: "api" })],
      now: 1,
      invalidVirtualServices: new Map([["demo/web", "spec.port: must be 1..65535"]]),
      holdRemovalsFor: new Map([["demo/api", "RealServer demo/x is invalid"]]),
    });
    expect(held.outcomes.map((o) => o.description)).toEqual([
      "update destination TCP 192.0.2.2:80 -> 198.51.100.2:8080 (weight 7)",
    ]);
    expect(held.drift).toContainEqual({
      kind: "Unexpected",
      service: "TCP 192.0.2.1:80",
      message:
        "VirtualService demo/web is invalid (spec.port: must be 1..65535): its last valid state is kept",
      action: "Reported",
    });
    expect(await table(kernel)).toBe(
      before.replace("198.51.100.2:8080 -m -w 1", "198.51.100.2:8080 -m -w 7"),
    );
    // A frozen service is not repaired either.
    await kernel.updateDestination(tcpKey("192.0.2.1"), realServer("198.51.100.1", 3));
    const still = await reconciler.sync({
      desired: [],
      now: 2,
      invalidVirtualServices: new Map([["demo/web", "spec.port: must be 1..65535"]]),
    });
    expect(still.outcomes.filter((o) => o.description.includes("192.0.2.1"))).toEqual([]);
  });
});

describe("Reconciler: kernel trouble comes back as data", () => {
  it("leaves an undecodable kernel entry alone and syncs the rest", async () => {
    const kernel = new FakeIpvsKernel();
    const journal = new MemoryJournalStore();
    const readTable = kernel.readTable.bind(kernel);
    kernel.readTable = async () => {
      const snapshot = await readTable();
      return {
        ...snapshot,
        undecodable: [
          { service: "TCP 192.0.2.1:80", key: tcpKey("192.0.2.1"), reason: "unknown forwarding method 7" },
        ],
      };
    };
    const result = await new Reconciler({ kernel, journal, scope, bootId: "b" }).sync({
      desired: [web(), service(tcpKey("192.0.2.2"), [realServer("198.51.100.2")], { name: "api" })],
      now: 0,
    });
    expect(result.outcomes.map((o) => o.description)).toEqual([
      "add service TCP 192.0.2.2:80",
      "add destination TCP 192.0.2.2:80 -> 198.51.100.2:8080 (weight 1)",
    ]);
    expect(result.drift).toContainEqual({
      kind: "Foreign",
      service: "TCP 192.0.2.1:80",
      message: "cannot be decoded (unknown forwarding method 7); never modified or deleted",
      action: "Ignored",
    });
  });

  it("returns per-operation results after a transport failure and sends nothing more", async () => {
    const kernel = new FakeIpvsKernel();
    const journal = new MemoryJournalStore();
    const apply = kernel.apply.bind(kernel);
    let calls = 0;
    kernel.apply = async (ops) => {
      calls++;
      if (calls > 1) return apply(ops);
      // The first chunk: the first add was acknowledged, the second's ack was lost (it did reach the kernel).
      const results = await apply(ops);
      const lost = new IpvsError("apply", "", "ETIMEDOUT", "no reply");
      return [results[0]!, ...ops.slice(1).map(() => ({ ok: false as const, error: lost, unknown: true }))];
    };
    const desired = [1, 2, 3].map((i) =>
      service(tcpKey(`192.0.2.${i}`), [realServer(`198.51.100.${i}`)], { name: `vs${i}` }),
    );
    const reconciler = new Reconciler({ kernel, journal, scope, bootId: "b", chunkSize: 2 });
    const result = await reconciler.sync({ desired, now: 0 });
    expect(result.outcomes.map((o) => `${o.result} ${o.description}`)).toEqual([
      "applied add service TCP 192.0.2.1:80",
      "unknown add service TCP 192.0.2.2:80",
      "skipped add service TCP 192.0.2.3:80",
      "skipped add destination TCP 192.0.2.1:80 -> 198.51.100.1:8080 (weight 1)",
      "skipped add destination TCP 192.0.2.2:80 -> 198.51.100.2:8080 (weight 1)",
      "skipped add destination TCP 192.0.2.3:80 -> 198.51.100.3:8080 (weight 1)",
    ]);
    expect(calls).toBe(1);
    expect(result.errors.map((e) => e.kind)).toEqual(["Transport"]);
    expect(result.ok).toBe(false);
    // The unknown add stays journaled (it did reach the kernel); the unsent one does not.
    expect((await journal.load()).services).toEqual(["TCP 192.0.2.1:80", "TCP 192.0.2.2:80"]);
    // The next sync re-reads the kernel and finishes the job.
    const next = await reconciler.sync({ desired, now: 1 });
    expect(next.ok).toBe(true);
    expect(next.outcomes.map((o) => o.description)).toEqual([
      "add service TCP 192.0.2.3:80",
      "add destination TCP 192.0.2.1:80 -> 198.51.100.1:8080 (weight 1)",
      "add destination TCP 192.0.2.2:80 -> 198.51.100.2:8080 (weight 1)",
      "add destination TCP 192.0.2.3:80 -> 198.51.100.3:8080 (weight 1)",
    ]);
  });

  it("reports a failed dump without throwing and changes nothing", async () => {
    const kernel = new FakeIpvsKernel();
    kernel.failNext("listServices", "EIO");
    const result = await new Reconciler({
      kernel,
      journal: new MemoryJournalStore(),
      scope,
      bootId: "b",
    }).sync({
      desired: [web()],
      now: 0,
    });
    expect(result.errors.map((e) => e.kind)).toEqual(["KernelRead"]);
    expect(result.snapshot).toBeUndefined();
    expect(kernel.serviceCount).toBe(0);
  });
});

describe("Reconciler: single flight, cancellation, clock", () => {
  it("runs one sync at a time and coalesces the calls that wait", async () => {
    const kernel = new FakeIpvsKernel();
    const journal = new MemoryJournalStore();
    let inFlight = 0;
    let most = 0;
    const read = kernel.readTable.bind(kernel);
    kernel.readTable = async () => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      return read();
    };
    const reconciler = new Reconciler({ kernel, journal, scope, bootId: "b" });
    const first = reconciler.sync({ desired: [web()], now: 0 });
    const second = reconciler.sync({ desired: [web([realServer("198.51.100.2")])], now: 1 });
    const third = reconciler.sync({ desired: [web([realServer("198.51.100.3")])], now: 2 });
    const [, b, c] = await Promise.all([first, second, third]);
    expect(most).toBe(1);
    expect(b).toBe(c); // coalesced: the latest input ran once for both
    expect(await table(kernel)).toContain("198.51.100.3:8080");
    expect(await table(kernel)).not.toContain("198.51.100.2:8080");
  });

  it("stops cleanly between chunks when cancelled", async () => {
    const kernel = new FakeIpvsKernel();
    const controller = new AbortController();
    const apply = kernel.apply.bind(kernel);
    kernel.apply = async (ops) => {
      const results = await apply(ops);
      controller.abort();
      return results;
    };
    const desired = [1, 2, 3].map((i) => service(tcpKey(`192.0.2.${i}`), [], { name: `vs${i}` }));
    const result = await new Reconciler({
      kernel,
      journal: new MemoryJournalStore(),
      scope,
      bootId: "b",
      chunkSize: 1,
    }).sync({
      desired,
      now: 0,
      signal: controller.signal,
    });
    expect(result.outcomes.map((o) => o.result)).toEqual(["applied", "skipped", "skipped"]);
    expect(result.errors.map((e) => e.kind)).toEqual(["Cancelled"]);
    expect(kernel.serviceCount).toBe(1);
  });

  it("clamps a clock step backwards and says when to come back for a drain", async () => {
    const kernel = new FakeIpvsKernel();
    const journal = new MemoryJournalStore();
    const reconciler = new Reconciler({ kernel, journal, scope, bootId: "b", drainPollMs: 5_000 });
    await reconciler.sync({
      desired: [web([realServer("198.51.100.1"), realServer("198.51.100.2")])],
      now: 1_000_000,
    });
    kernel.setConnections(tcpKey("192.0.2.1"), realServer("198.51.100.2").key, { active: 3 });
    const draining = await reconciler.sync({ desired: [web()], now: 1_000_000 });
    expect(draining.nextWakeAt).toBe(1_005_000);
    // The wall clock jumps back an hour: the drain neither restarts nor runs backwards.
    const stepped = await reconciler.sync({ desired: [web()], now: 1_000_000 - 3_600_000 });
    expect(stepped.draining).toBe(1);
    expect((await journal.load()).drains).toMatchObject([{ startedAt: 1_000_000 }]);
    expect(stepped.nextWakeAt).toBe(1_005_000);
    // Past the 300 s drain timeout it is deleted.
    const done = await reconciler.sync({ desired: [web()], now: 1_000_000 + 300_000 });
    expect(done.outcomes.map((o) => o.description)).toEqual([
      "delete destination TCP 192.0.2.1:80 -> 198.51.100.2:8080",
    ]);
    expect(done.nextWakeAt).toBeUndefined();
  });
});

describe("node lock", () => {
  it("lets one writer in, makes the second wait or fail with a message naming the holder", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lock-"));
    const path = join(dir, "journal.json");
    const agent = new FileNodeLock(path, { holder: "agent" });
    const release = await agent.acquire();
    const cli = new FileNodeLock(path, { holder: "apply", waitMs: 300 });
    const busy = await cli.acquire().catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(NodeLockBusyError);
    expect((busy as Error).message).toMatch(/being changed by agent \(pid \d+ on .*\) since/);
    const waiting = cli.acquire();
    setTimeout(() => void release(), 50);
    const second = await waiting;
    await second();
  });

  it("makes a second Reconciler wait for the first on the same node", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lock-"));
    const path = join(dir, "journal.json");
    const kernel = new FakeIpvsKernel();
    const order: string[] = [];
    const read = kernel.readTable.bind(kernel);
    kernel.readTable = async () => {
      order.push("read");
      await new Promise((r) => setTimeout(r, 20));
      order.push("read done");
      return read();
    };
    const make = () =>
      new Reconciler({
        kernel,
        journal: new FileJournalStore(path),
        lock: new FileNodeLock(path, { waitMs: 5_000 }),
        scope,
        bootId: "b",
      });
    await Promise.all([make().sync({ desired: [web()], now: 0 }), make().sync({ desired: [web()], now: 0 })]);
    expect(order).toEqual(["read", "read done", "read", "read done"]);
  });
});
