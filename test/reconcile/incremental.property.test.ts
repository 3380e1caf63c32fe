/**
 * Property: a reconciler that works from its known table and diffs only changed entries (the agent,
 * maxKernelAgeMs) and one that dumps and diffs everything on every sync (the CLI) make the same kernel
 * table, plan the same operations and report the same drift, step after step — for any sequence of
 * desired tables whose unchanged entries keep their identity (as computeDesired gives them), with
 * foreign services at desired keys, real servers that drain with connections, and failing operations.
 * A third reconciler is given only the changed entry (syncChanges, the agent's EndpointSlice path)
 * whenever one existing key changes, and a whole sync when it declines: same tables and drift again.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { readKernelTable } from "../../src/kernel/read-kernel-table.ts";
import type { DesiredEntry } from "../../src/model/desired-table.ts";
import { renderIpvsadmSave } from "../../src/model/ipvsadm-render.ts";
import { MemoryJournalStore } from "../../src/reconcile/ownership-journal.ts";
import { Reconciler, type SyncResult } from "../../src/reconcile/reconciler.ts";
import { realServer, service, tcpKey } from "../support/desired-builders.ts";

const KEYS = 5;
const VARIANTS = 4;
const address = (k: number) => `192.0.2.${k + 1}`;

/**
 * Entry objects made once: choosing a variant again gives the very same object. Going up a variant
 * adds real servers or changes a weight or scheduler (no removal: the incremental path); going down
 * removes some (a dump first: drains need connection counters).
 */
const pool: DesiredEntry[][] = Array.from({ length: KEYS }, (_, k) =>
  Array.from({ length: VARIANTS }, (_, v) =>
    service(
      tcpKey(address(k)),
      Array.from({ length: Math.min(v, 2) + 1 }, (_, d) =>
        realServer(`198.51.100.${d + 1}`, d === 0 && v >= 2 ? 2 : 1),
      ),
      { name: `vs-${k}`, scheduler: v === 3 ? "wrr" : "rr" },
    ),
  ),
);

interface Step {
  /** The key that changes, and its new variant (-1: no longer desired). */
  key: number;
  variant: number;
  /** Connections on every destination of this key before the sync (drains wait for them); -1 none. */
  busyKey: number;
  /** An operation that fails in this sync ("" for none). */
  fail: "" | "addDestination" | "updateDestination" | "updateService";
}

const step: fc.Arbitrary<Step> = fc.record({
  key: fc.integer({ min: 0, max: KEYS - 1 }),
  variant: fc.integer({ min: -1, max: VARIANTS - 1 }),
  busyKey: fc.oneof(
    { weight: 4, arbitrary: fc.constant(-1) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: KEYS - 1 }) },
  ),
  fail: fc.oneof(
    { weight: 8, arbitrary: fc.constant("" as const) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "addDestination" as const,
        "updateDestination" as const,
        "updateService" as const,
      ),
    },
  ),
});

function summary(r: SyncResult) {
  return {
    outcomes: r.outcomes.map((o) => `${o.description} ${o.result}`),
    drift: r.drift,
    draining: r.draining,
    ok: r.ok,
  };
}

async function world(foreignKey: number) {
  const kernel = new FakeIpvsKernel();
  if (foreignKey >= 0) {
    const f = service(tcpKey(address(foreignKey)), [realServer("203.0.113.7", 9)], { scheduler: "wlc" });
    await kernel.addService(f.service);
    await kernel.addDestination(f.service.key, f.destinations[0]!);
  }
  const scope = { managedCidrs: [], managedFwmarks: [] };
  const reconciler = new Reconciler({ kernel, journal: new MemoryJournalStore(), scope, bootId: "b" });
  return { kernel, reconciler };
}

async function busy(kernel: FakeIpvsKernel, key: number) {
  if (key < 0) return;
  const k = tcpKey(address(key));
  const listed = await kernel.listServices();
  if (!listed.some((s) => s.key.kind === "address" && s.key.address === address(key))) return;
  for (const d of await kernel.listDestinations(k)) kernel.setConnections(k, d.key, { active: 2 });
}

describe("incremental syncs equal whole-table syncs", () => {
  it("same tables, operations and drift for any sequence of desired tables", async () => {
    let fromKnownTable = 0;
    let shortSyncs = 0;
    let syncs = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: -1, max: KEYS - 1 }),
        fc.array(step, { minLength: 1, maxLength: 16 }),
        async (foreignKey, steps) => {
          const incremental = await world(foreignKey);
          const whole = await world(foreignKey);
          const changes = await world(foreignKey);
          let now = 0;
          const state: number[] = Array.from({ length: KEYS }, () => -1);
          for (const s of steps) {
            now += 1_000 + (s.busyKey === -1 ? 0 : 120_000);
            const existed = state[s.key]! >= 0;
            state[s.key] = s.variant;
            const desired = state.flatMap((v, k) => (v < 0 ? [] : [pool[k]![v]!]));
            const results: SyncResult[] = [];
            for (const [w, maxKernelAgeMs] of [
              [incremental, Number.POSITIVE_INFINITY],
              [whole, 0],
            ] as const) {
              await busy(w.kernel, s.busyKey);
              if (s.fail) w.kernel.failNext(s.fail, "ENOMEM");
              results.push(
                await w.reconciler.sync({ desired, now, maxKernelAgeMs, defaultDrainTimeoutSeconds: 60 }),
              );
            }
            await busy(changes.kernel, s.busyKey);
            if (s.fail) changes.kernel.failNext(s.fail, "ENOMEM");
            const entries = existed && s.variant >= 0 ? [pool[s.key]![s.variant]!] : undefined;
            const short = entries
              ? await changes.reconciler.syncChanges({
                  entries,
                  now,
                  maxKernelAgeMs: Number.POSITIVE_INFINITY,
                })
              : undefined;
            if (short) shortSyncs++;
            const changesResult =
              short ??
              (await changes.reconciler.sync({
                desired,
                now,
                maxKernelAgeMs: Number.POSITIVE_INFINITY,
                defaultDrainTimeoutSeconds: 60,
              }));
            syncs++;
            if (!results[0]!.dumped) fromKnownTable++;
            expect(summary(results[0]!)).toEqual(summary(results[1]!));
            const table = renderIpvsadmSave(await readKernelTable(whole.kernel));
            expect(renderIpvsadmSave(await readKernelTable(incremental.kernel))).toBe(table);
            expect(renderIpvsadmSave(await readKernelTable(changes.kernel))).toBe(table);
            expect(changesResult.drift).toEqual(results[1]!.drift);
            expect(changesResult.ok).toBe(results[1]!.ok);
          }
        },
      ),
      { numRuns: 300 },
    );
    // Both paths ran: a good share of the incremental side's syncs never dumped the kernel.
    expect(fromKnownTable).toBeGreaterThan(syncs / 10);
    expect(shortSyncs).toBeGreaterThan(syncs / 20);
    process.stdout.write(
      `incremental property: ${fromKnownTable} of ${syncs} syncs from the known table, ${shortSyncs} by syncChanges\n`,
    );
  });

  it("the incremental side really skips dumps (so the property above compares two different paths)", async () => {
    const w = await world(-1);
    const read = w.kernel.readTable.bind(w.kernel);
    let dumps = 0;
    w.kernel.readTable = () => {
      dumps++;
      return read();
    };
    for (let i = 0; i < KEYS; i++) {
      const desired = pool.slice(0, i + 1).map((variants) => variants[0]!); // one more service each time
      const r = await w.reconciler.sync({ desired, now: i * 1000, maxKernelAgeMs: Number.POSITIVE_INFINITY });
      expect(r.ok).toBe(true);
    }
    expect(dumps).toBe(1);
  });
});
