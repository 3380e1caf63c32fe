/**
 * Reconciler.syncChanges, the short way for a few changed services: it applies their own operations
 * without a dump, and declines (returns undefined, changing nothing) whenever a whole sync could decide
 * differently. The property that it makes the same tables as whole syncs is in
 * incremental.property.test.ts.
 */
import { describe, expect, it } from "vitest";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { readKernelTable } from "../../src/kernel/read-kernel-table.ts";
import { renderIpvsadmSave } from "../../src/model/ipvsadm-render.ts";
import { MemoryJournalStore } from "../../src/reconcile/ownership-journal.ts";
import { Reconciler } from "../../src/reconcile/reconciler.ts";
import { realServer, service, tcpKey } from "../support/desired-builders.ts";

const AGE = 60_000;
const web = (...addresses: string[]) =>
  service(
    tcpKey("192.0.2.1"),
    addresses.map((a) => realServer(a)),
    { name: "web" },
  );
const api = service(tcpKey("192.0.2.2"), [realServer("198.51.100.9")], { name: "api" });

async function synced() {
  const kernel = new FakeIpvsKernel();
  const journal = new MemoryJournalStore();
  const reconciler = new Reconciler({
    kernel,
    journal,
    scope: { managedCidrs: [], managedFwmarks: [] },
    bootId: "b",
  });
  const first = await reconciler.sync({ desired: [web("198.51.100.1"), api], now: 0, maxKernelAgeMs: AGE });
  expect(first.ok).toBe(true);
  let dumps = 0;
  const read = kernel.readTable.bind(kernel);
  kernel.readTable = () => {
    dumps++;
    return read();
  };
  return { kernel, journal, reconciler, dumps: () => dumps };
}

/** web gains a second real server, the short way. */
const growWeb = (reconciler: Reconciler) =>
  reconciler.syncChanges({ entries: [web("198.51.100.1", "198.51.100.2")], now: 1000, maxKernelAgeMs: AGE });

describe("Reconciler.syncChanges", () => {
  it("adds a real server with its one operation, no dump, and keeps the owned counts", async () => {
    const w = await synced();
    const r = await w.reconciler.syncChanges({
      entries: [web("198.51.100.1", "198.51.100.2")],
      now: 1000,
      maxKernelAgeMs: AGE,
    });
    expect(r?.ok).toBe(true);
    expect(r?.outcomes.map((o) => `${o.description} ${o.result}`)).toEqual([
      "add destination TCP 192.0.2.1:80 -> 198.51.100.2:8080 (weight 1) applied",
    ]);
    expect(r?.dumped).toBe(false);
    expect(r?.owned).toEqual({ services: 2, destinations: 3 });
    expect(w.dumps()).toBe(0);
    expect(await w.kernel.listDestinations(tcpKey("192.0.2.1"))).toHaveLength(2);
    // The next whole sync from the known table agrees: nothing left to do.
    const whole = await w.reconciler.sync({
      desired: [web("198.51.100.1", "198.51.100.2"), api],
      now: 2000,
      maxKernelAgeMs: AGE,
    });
    expect(whole.outcomes).toEqual([]);
    expect(whole.dumped).toBe(false);
  });

  it("changes a weight, and a later short sync builds on the first one's table", async () => {
    const w = await synced();
    const heavier = service(tcpKey("192.0.2.1"), [realServer("198.51.100.1", 5)], { name: "web" });
    expect((await w.reconciler.syncChanges({ entries: [heavier], now: 1000, maxKernelAgeMs: AGE }))?.ok).toBe(
      true,
    );
    const again = await w.reconciler.syncChanges({
      entries: [
        service(tcpKey("192.0.2.1"), [realServer("198.51.100.1", 5), realServer("198.51.100.3")], {
          name: "web",
        }),
      ],
      now: 2000,
      maxKernelAgeMs: AGE,
    });
    expect(again?.outcomes.map((o) => o.operation.op)).toEqual(["addDestination"]);
    expect(w.dumps()).toBe(0);
    expect(renderIpvsadmSave(await readKernelTable(w.kernel))).toContain(
      "-a -t 192.0.2.1:80 -r 198.51.100.1:8080 -m -w 5",
    );
  });

  it("removes a real server reading only its service's destinations: deleted when idle, drained when busy", async () => {
    const w = await synced();
    let listed = 0;
    const list = w.kernel.listDestinations.bind(w.kernel);
    w.kernel.listDestinations = (key) => {
      listed++;
      return list(key);
    };
    const two = await w.reconciler.syncChanges({
      entries: [web("198.51.100.1", "198.51.100.2")],
      now: 1000,
      maxKernelAgeMs: AGE,
    });
    expect(two?.ok).toBe(true);
    w.kernel.setConnections(
      tcpKey("192.0.2.1"),
      { family: "IPv4", address: "198.51.100.1", port: 8080 },
      {
        active: 3,
      },
    );
    const drained = await w.reconciler.syncChanges({
      entries: [web("198.51.100.2")],
      now: 2000,
      maxKernelAgeMs: AGE,
    });
    expect(drained?.outcomes.map((o) => o.description)).toEqual([
      "update destination TCP 192.0.2.1:80 -> 198.51.100.1:8080 (weight 0)",
    ]);
    expect(drained?.draining).toBe(1);
    expect(drained?.nextWakeAt).toBe(2000 + 5000); // the drain poll
    expect((await w.journal.load()).drains).toHaveLength(1);
    const idle = await w.reconciler.syncChanges({
      entries: [web("198.51.100.1")],
      now: 3000,
      maxKernelAgeMs: AGE,
    });
    // 198.51.100.1 is desired again (its drain ends, weight back), 198.51.100.2 has no connections: deleted.
    expect(idle?.outcomes.map((o) => o.operation.op).sort()).toEqual([
      "deleteDestination",
      "updateDestination",
    ]);
    expect(idle?.draining).toBe(0);
    expect(idle?.owned).toEqual({ services: 2, destinations: 2 });
    expect((await w.journal.load()).drains).toEqual([]);
    expect(listed).toBe(2);
    expect(w.dumps()).toBe(0);
    expect(renderIpvsadmSave(await readKernelTable(w.kernel))).toContain(
      "-a -t 192.0.2.1:80 -r 198.51.100.1:8080 -m -w 1\n",
    );
  });

  it("declines a key the last plan did not have, or one it had for another VirtualService", async () => {
    const w = await synced();
    const elsewhere = service(tcpKey("192.0.2.3"), [realServer("198.51.100.1")], { name: "web" });
    expect(
      await w.reconciler.syncChanges({ entries: [elsewhere], now: 1000, maxKernelAgeMs: AGE }),
    ).toBeUndefined();
    const otherOwner = service(tcpKey("192.0.2.1"), [realServer("198.51.100.1")], { name: "other" });
    expect(
      await w.reconciler.syncChanges({ entries: [otherOwner], now: 1000, maxKernelAgeMs: AGE }),
    ).toBeUndefined();
  });

  it("declines when the known table is too old, before any sync, and after a failed operation", async () => {
    const w = await synced();
    const grown = web("198.51.100.1", "198.51.100.2");
    expect(
      await w.reconciler.syncChanges({ entries: [grown], now: AGE + 1, maxKernelAgeMs: AGE }),
    ).toBeUndefined();

    const fresh = new Reconciler({
      kernel: new FakeIpvsKernel(),
      journal: new MemoryJournalStore(),
      scope: { managedCidrs: [], managedFwmarks: [] },
      bootId: "b",
    });
    expect(await fresh.syncChanges({ entries: [grown], now: 0, maxKernelAgeMs: AGE })).toBeUndefined();

    w.kernel.failNext("addDestination", "ENOMEM");
    const failed = await w.reconciler.syncChanges({ entries: [grown], now: 1000, maxKernelAgeMs: AGE });
    expect(failed?.ok).toBe(false);
    // The table is no longer known: the retry has to be a whole sync, which reads the kernel.
    expect(
      await w.reconciler.syncChanges({ entries: [grown], now: 2000, maxKernelAgeMs: AGE }),
    ).toBeUndefined();
  });

  it("declines when another writer on the node changed the journal", async () => {
    const w = await synced();
    await w.journal.save(await w.journal.load()); // what `apply` on the same node does first
    expect(await growWeb(w.reconciler)).toBeUndefined();
  });

  it("declines while a whole sync runs", async () => {
    const w = await synced();
    const whole = w.reconciler.sync({ desired: [web("198.51.100.1"), api], now: 1000 });
    expect(await growWeb(w.reconciler)).toBeUndefined();
    expect((await whole).ok).toBe(true);
  });
});
