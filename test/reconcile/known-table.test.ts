/**
 * Syncs between resyncs use the table the last sync read, with its applied operations folded in
 * (maxKernelAgeMs), and dump the kernel again whenever that table could be wrong.
 */
import { describe, expect, it } from "vitest";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { readKernelTable } from "../../src/kernel/read-kernel-table.ts";
import { renderIpvsadmSave } from "../../src/model/ipvsadm-render.ts";
import { foldApplied } from "../../src/reconcile/known-table.ts";
import { MemoryJournalStore } from "../../src/reconcile/ownership-journal.ts";
import { Reconciler } from "../../src/reconcile/reconciler.ts";
import { sortTable } from "../../src/vocabulary/order.ts";
import { realServer, service, tcpKey } from "../support/desired-builders.ts";

const scope = { managedCidrs: [], managedFwmarks: [] };
const KEY = tcpKey("192.0.2.1");
const web = (...addresses: string[]) =>
  service(
    KEY,
    addresses.map((a) => realServer(a)),
    { name: "web" },
  );
const AGE = 30_000;

/** A fake kernel that counts dumps. */
class CountingKernel extends FakeIpvsKernel {
  dumps = 0;
  override readTable() {
    this.dumps++;
    return super.readTable();
  }
}

function setup() {
  const kernel = new CountingKernel();
  const journal = new MemoryJournalStore();
  const reconciler = new Reconciler({ kernel, journal, scope, bootId: "b" });
  return { kernel, journal, reconciler };
}

const table = async (kernel: FakeIpvsKernel) => renderIpvsadmSave(await readKernelTable(kernel));

describe("Reconciler: the known table between resyncs", () => {
  it("a change within maxKernelAgeMs costs its operations and no dump; the folded table equals the kernel", async () => {
    const { kernel, reconciler } = setup();
    const first = await reconciler.sync({ desired: [web("198.51.100.1")], now: 0, maxKernelAgeMs: AGE });
    expect(first.dumped).toBe(true);
    const second = await reconciler.sync({
      desired: [web("198.51.100.1", "198.51.100.2")],
      now: 1_000,
      maxKernelAgeMs: AGE,
    });
    expect(second.dumped).toBe(false);
    expect(kernel.dumps).toBe(1);
    expect(second.outcomes.map((o) => o.description)).toEqual([
      "add destination TCP 192.0.2.1:80 -> 198.51.100.2:8080 (weight 1)",
    ]);
    const third = await reconciler.sync({
      desired: [web("198.51.100.1", "198.51.100.2")],
      now: 2_000,
      maxKernelAgeMs: AGE,
    });
    expect(third.outcomes).toEqual([]);
    expect(third.dumped).toBe(false);
    expect(renderIpvsadmSave(third.snapshot!.table)).toBe(await table(kernel));
  });

  it("an ipvsadm edit is found by the first sync after the age limit, and repaired", async () => {
    const { kernel, reconciler } = setup();
    await reconciler.sync({ desired: [web("198.51.100.1")], now: 0, maxKernelAgeMs: AGE });
    const before = await table(kernel);
    await kernel.deleteDestination(KEY, realServer("198.51.100.1").key); // ipvsadm -d
    const early = await reconciler.sync({ desired: [web("198.51.100.1")], now: 10_000, maxKernelAgeMs: AGE });
    expect(early.dumped).toBe(false);
    expect(early.drift).toEqual([]);
    const resync = await reconciler.sync({ desired: [web("198.51.100.1")], now: AGE, maxKernelAgeMs: AGE });
    expect(resync.dumped).toBe(true);
    expect(resync.drift.map((d) => `${d.kind} ${d.destination} ${d.action}`)).toEqual([
      "Missing 198.51.100.1:8080 Repaired",
    ]);
    expect(await table(kernel)).toBe(before);
  });

  it("dumps again after a failed operation, while a drain waits, and after another writer changed the journal", async () => {
    const { kernel, journal, reconciler } = setup();
    const sync = (desired: ReturnType<typeof web>[], now: number) =>
      reconciler.sync({ desired, now, maxKernelAgeMs: AGE });
    await sync([web("198.51.100.1")], 0);

    kernel.failNext("addDestination", "ENOMEM");
    const failed = await sync([web("198.51.100.1", "198.51.100.2")], 1_000);
    expect(failed.ok).toBe(false);
    expect((await sync([web("198.51.100.1", "198.51.100.2")], 2_000)).dumped).toBe(true);

    kernel.setConnections(KEY, realServer("198.51.100.2").key, { active: 1 });
    expect((await sync([web("198.51.100.1")], 3_000)).draining).toBe(1);
    expect((await sync([web("198.51.100.1")], 4_000)).dumped).toBe(true);
    kernel.setConnections(KEY, realServer("198.51.100.2").key, { active: 0 });
    const drained = await sync([web("198.51.100.1")], 5_000);
    expect(drained.dumped).toBe(true);
    expect(drained.draining).toBe(0);
    expect((await sync([web("198.51.100.1")], 6_000)).dumped).toBe(false);

    // `apply` on the same node (another Reconciler, same journal) adds a service.
    const other = new Reconciler({ kernel, journal, scope, bootId: "b" });
    await other.sync({
      desired: [web("198.51.100.1"), service(tcpKey("192.0.2.9"), [], { name: "x" })],
      now: 7_000,
    });
    expect((await sync([web("198.51.100.1")], 8_000)).dumped).toBe(true);
  });

  it("without maxKernelAgeMs every sync dumps (the CLI)", async () => {
    const { kernel, reconciler } = setup();
    await reconciler.sync({ desired: [web("198.51.100.1")], now: 0 });
    await reconciler.sync({ desired: [web("198.51.100.1")], now: 1 });
    expect(kernel.dumps).toBe(2);
  });

  it("foldApplied of a diff's operations is what the kernel holds after applying them", async () => {
    const kernel = new FakeIpvsKernel();
    const reconciler = new Reconciler({ kernel, journal: new MemoryJournalStore(), scope, bootId: "b" });
    await reconciler.sync({ desired: [web("198.51.100.1", "198.51.100.2")], now: 0 });
    const start = await kernel.readTable();
    const desired = [
      service(KEY, [realServer("198.51.100.2", 4), realServer("198.51.100.3")], {
        name: "web",
        scheduler: "wrr",
      }),
      service(tcpKey("192.0.2.2"), [realServer("198.51.100.4")], { name: "api" }),
    ];
    const result = await reconciler.sync({ desired, now: 400_000, defaultDrainTimeoutSeconds: 0 });
    expect(result.ok).toBe(true);
    const folded = foldApplied(
      start,
      result.outcomes.map((o) => o.operation),
    );
    expect(renderIpvsadmSave(sortTable(folded.table))).toBe(await table(kernel));
  });
});
