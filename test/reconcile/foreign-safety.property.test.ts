/**
 * Property: a foreign service is never modified or deleted, whatever happens around it.
 *
 * Random sequences of: syncs of random desired tables (TCP/UDP/SCTP, IPv4/IPv6, port 0, fwmark,
 * driftPolicy Report), two writers syncing at once over one journal and one lock, foreign services
 * appearing, out-of-band deletes (`ipvsadm -D`) and flushes (`ipvsadm -C`), connections that make
 * drains wait, and reboots (an empty kernel and a new boot id, the journal file surviving).
 * After every step, every foreign service is exactly as it was made.
 *
 * The one window no key-based rule can close is excluded and documented (README, ownership): a
 * service of ours deleted out of band and a foreign one created at the same key before any sync ran.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { readKernelTable } from "../../src/kernel/read-kernel-table.ts";
import type { DesiredEntry } from "../../src/model/desired-table.ts";
import { MemoryJournalStore } from "../../src/reconcile/ownership-journal.ts";
import { Reconciler } from "../../src/reconcile/reconciler.ts";
import { type ServiceKey, serviceKeyString } from "../../src/vocabulary/table.ts";
import { service } from "../support/desired-builders.ts";
import { MemoryNodeLock } from "../support/memory-lock.ts";

const KEYS: ServiceKey[] = [
  { kind: "address", family: "IPv4", protocol: "TCP", address: "192.0.2.1", port: 80 },
  { kind: "address", family: "IPv4", protocol: "UDP", address: "192.0.2.1", port: 53 },
  { kind: "address", family: "IPv4", protocol: "SCTP", address: "192.0.2.2", port: 80 },
  { kind: "address", family: "IPv4", protocol: "TCP", address: "192.0.2.3", port: 0 },
  { kind: "address", family: "IPv6", protocol: "TCP", address: "2001:db8::1", port: 443 },
  { kind: "fwmark", family: "IPv4", fwmark: 7 },
  { kind: "fwmark", family: "IPv6", fwmark: 8 },
];
/** Mostly the first two keys, so that foreign adds, deletes and syncs meet at one key often. */
const keyIndexArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant(0) },
  { weight: 2, arbitrary: fc.constant(1) },
  { weight: 2, arbitrary: fc.nat(KEYS.length - 1) },
);
const BACKENDS = ["198.51.100.1", "198.51.100.2", "198.51.100.3"];
const BACKENDS6 = ["2001:db8:1::1", "2001:db8:1::2", "2001:db8:1::3"];

function dest(key: ServiceKey, i: number, weight: number) {
  const v6 = key.family === "IPv6";
  const port = key.kind === "address" && key.port !== 0 ? key.port : 0;
  return {
    key: { family: key.family, address: (v6 ? BACKENDS6 : BACKENDS)[i]!, port },
    config: {
      forwarding: "DirectRouting" as const,
      weight,
      upperThreshold: 0,
      lowerThreshold: 0,
      tunnelType: "IPIP" as const,
      tunnelPort: 0,
      tunnelChecksum: "None" as const,
    },
    source: { kind: "RealServer" as const, namespace: "demo", name: `rs${i}` },
  };
}

const entryArb = fc
  .record({
    k: keyIndexArb,
    backends: fc.subarray([0, 1, 2]),
    weight: fc.nat(3),
    scheduler: fc.constantFrom("rr", "wlc"),
    report: fc.boolean(),
  })
  .map(({ k, backends, weight, scheduler, report }): DesiredEntry => {
    const key = KEYS[k]!;
    return service(
      key,
      backends.map((i) => dest(key, i, weight)),
      { scheduler, name: `vs${k}`, driftPolicy: report ? "Report" : "Repair" },
    );
  });
const desiredArb = fc.oneof(
  { weight: 1, arbitrary: fc.constant([] as DesiredEntry[]) },
  {
    weight: 2,
    arbitrary: fc.uniqueArray(entryArb, { selector: (e) => serviceKeyString(e.service.key), maxLength: 3 }),
  },
);

type Step =
  | { t: "sync"; writer: 0 | 1; desired: DesiredEntry[] }
  | { t: "both"; a: DesiredEntry[]; b: DesiredEntry[] }
  | { t: "foreign"; k: number; backends: number[]; weight: number }
  | { t: "delete"; k: number }
  | { t: "flush" }
  | { t: "connections"; k: number; i: number; active: number }
  | { t: "reboot" };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant("sync" as const),
      writer: fc.constantFrom(0 as const, 1 as const),
      desired: desiredArb,
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("both" as const), a: desiredArb, b: desiredArb }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant("foreign" as const),
      k: keyIndexArb,
      backends: fc.subarray([0, 1, 2]),
      weight: fc.nat(5),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("delete" as const), k: keyIndexArb }) },
  { weight: 1, arbitrary: fc.constant({ t: "flush" as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("connections" as const),
      k: keyIndexArb,
      i: fc.nat(2),
      active: fc.nat(3),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ t: "reboot" as const }) },
);

async function dump(kernel: FakeIpvsKernel): Promise<Map<string, string>> {
  const table = await readKernelTable(kernel);
  return new Map(
    table.map((e) => [
      serviceKeyString(e.service.key),
      JSON.stringify({ s: e.service.config, d: e.destinations.map((d) => ({ k: d.key, c: d.config })) }),
    ]),
  );
}

describe("property: foreign services are never modified or deleted", () => {
  it("holds over random sequences of syncs, concurrent writers, foreign adds, out-of-band deletes and reboots", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 25 }), async (steps) => {
        let boot = 1;
        let kernel = new FakeIpvsKernel();
        const journal = new MemoryJournalStore();
        const lock = new MemoryNodeLock();
        const writers = () =>
          [0, 1].map(
            () =>
              new Reconciler({
                kernel,
                journal,
                lock,
                scope: { managedCidrs: [], managedFwmarks: [] },
                bootId: `boot-${boot}`,
              }),
          );
        let reconcilers = writers();
        /** Foreign services and how they were made. */
        const foreign = new Map<string, string>();
        /** Keys deleted out of band that no sync has seen gone yet (the documented window). */
        const tainted = new Set<string>();
        let now = 0;
        for (const step of steps) {
          now += 1_000;
          if (step.t === "sync") {
            await reconcilers[step.writer]!.sync({ desired: step.desired, now });
            tainted.clear();
          } else if (step.t === "both") {
            await Promise.all([
              reconcilers[0]!.sync({ desired: step.a, now }),
              reconcilers[1]!.sync({ desired: step.b, now }),
            ]);
            tainted.clear();
          } else if (step.t === "foreign") {
            const key = KEYS[step.k]!;
            const k = serviceKeyString(key);
            if ((await dump(kernel)).has(k) || tainted.has(k)) continue;
            const made = service(
              key,
              step.backends.map((i) => dest(key, i, step.weight)),
              { scheduler: "sh" },
            );
            await kernel.addService(made.service);
            for (const d of made.destinations) await kernel.addDestination(key, d);
            foreign.set(k, (await dump(kernel)).get(k)!);
          } else if (step.t === "delete") {
            const k = serviceKeyString(KEYS[step.k]!);
            if (!(await dump(kernel)).has(k)) continue;
            await kernel.deleteService(KEYS[step.k]!);
            foreign.delete(k);
            tainted.add(k);
          } else if (step.t === "flush") {
            for (const k of (await dump(kernel)).keys()) tainted.add(k);
            await kernel.flush();
            foreign.clear();
          } else if (step.t === "connections") {
            const key = KEYS[step.k]!;
            const table = await readKernelTable(kernel);
            const entry = table.find((e) => serviceKeyString(e.service.key) === serviceKeyString(key));
            const d = entry?.destinations[step.i];
            if (d) kernel.setConnections(key, d.key, { active: step.active });
          } else {
            boot++;
            kernel = new FakeIpvsKernel();
            reconcilers = writers();
            foreign.clear();
            tainted.clear();
          }
          const live = await dump(kernel);
          for (const [k, made] of foreign) expect(live.get(k), `foreign ${k} after ${step.t}`).toBe(made);
        }
        expect(lock.mostHolders).toBeLessThanOrEqual(1);
      }),
      { numRuns: 2000 },
    );
  });
});
