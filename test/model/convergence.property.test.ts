/**
 * Property tests of diff() against the pure kernel simulator (apply-plan.ts):
 * convergence, idempotence, foreign entries untouched, deterministic output.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyOperationsWithResults } from "../../src/model/apply-plan.ts";
import type { DesiredDestination, DesiredEntry, DesiredTable } from "../../src/model/desired-table.ts";
import { diff } from "../../src/model/diff.ts";
import type { DrainEntry } from "../../src/model/drain.ts";
import { isOwned, type OwnershipScope } from "../../src/model/ownership.ts";
import type { Operation } from "../../src/model/plan.ts";
import { sortTable } from "../../src/model/sort.ts";
import {
  type DestinationConfig,
  type Family,
  type IpvsTable,
  type KernelDestination,
  type KernelTable,
  NO_TUNNEL,
  type ServiceConfig,
  type ServiceKey,
  serviceKeyString,
} from "../../src/model/table.ts";

const RUNS = 200;

const SCOPE: OwnershipScope = {
  managedCidrs: ["10.0.0.0/8", "fd00::/16"],
  managedFwmarks: [{ from: 1, to: 50 }],
  // 198.18.0.1:80 lies outside the CIDRs: owned only because the journal says the agent made it.
  journal: ["TCP 198.18.0.1:80"],
};

// ---- generators -------------------------------------------------------------------------------

const familyArb = fc.constantFrom<Family>("IPv4", "IPv6");

function addressKeyArb(v4: string[], v6: string[]): fc.Arbitrary<ServiceKey> {
  return fc.oneof(
    fc.record({
      kind: fc.constant("address" as const),
      family: fc.constant("IPv4" as const),
      protocol: fc.constantFrom("TCP" as const, "UDP" as const, "SCTP" as const),
      address: fc.constantFrom(...v4),
      port: fc.constantFrom(80, 443),
    }),
    fc.record({
      kind: fc.constant("address" as const),
      family: fc.constant("IPv6" as const),
      protocol: fc.constantFrom("TCP" as const, "UDP" as const),
      address: fc.constantFrom(...v6),
      port: fc.constantFrom(80, 443),
    }),
  );
}

const ownedKeyArb: fc.Arbitrary<ServiceKey> = fc.oneof(
  addressKeyArb(["10.0.0.1", "10.0.0.2", "10.1.2.3"], ["fd00::1", "fd00::2"]),
  fc.record({ kind: fc.constant("fwmark" as const), family: familyArb, fwmark: fc.constantFrom(1, 2, 50) }),
);

const foreignKeyArb: fc.Arbitrary<ServiceKey> = fc.oneof(
  addressKeyArb(["203.0.113.1", "203.0.113.2"], ["2001:db8::1"]),
  fc.record({ kind: fc.constant("fwmark" as const), family: familyArb, fwmark: fc.constantFrom(51, 100) }),
);

const journalKey: ServiceKey = {
  kind: "address",
  family: "IPv4",
  protocol: "TCP",
  address: "198.18.0.1",
  port: 80,
};

const serviceConfigArb = (family: Family): fc.Arbitrary<ServiceConfig> =>
  fc
    .record({
      scheduler: fc.constantFrom("wlc", "rr", "mh", "sh"),
      persistent: fc.boolean(),
      schedFlag1: fc.boolean(),
      timeout: fc.constantFrom(0, 360, 60),
      netmask: family === "IPv4" ? fc.constantFrom(0xffffffff, 0xffffff00) : fc.constantFrom(128, 64),
      persistenceEngine: fc.constantFrom("", "sip"),
    })
    .map((c) => ({
      scheduler: c.scheduler,
      flags: {
        persistent: c.persistent,
        onePacket: false,
        schedFlag1: c.schedFlag1,
        schedFlag2: false,
        schedFlag3: false,
      },
      timeout: c.timeout,
      netmask: c.netmask,
      persistenceEngine: c.persistenceEngine,
    }));

const destinationConfigArb: fc.Arbitrary<DestinationConfig> = fc
  .record({
    forwarding: fc.constantFrom("NAT" as const, "DirectRouting" as const, "Tunnel" as const),
    weight: fc.integer({ min: 0, max: 5 }),
    upper: fc.constantFrom(0, 10, 100),
    lower: fc.constantFrom(0, 5),
    tunnelType: fc.constantFrom("IPIP" as const, "GUE" as const, "GRE" as const),
    checksum: fc.constantFrom("None" as const, "Checksum" as const),
  })
  .map((c) => ({
    forwarding: c.forwarding,
    weight: c.weight,
    upperThreshold: c.upper,
    // The kernel rejects lower > upper (ERANGE), also when upper is 0.
    lowerThreshold: Math.min(c.lower, c.upper),
    ...(c.forwarding === "Tunnel"
      ? {
          tunnelType: c.tunnelType,
          tunnelPort: c.tunnelType === "GUE" ? 6080 : 0,
          tunnelChecksum: c.checksum,
        }
      : NO_TUNNEL),
  }));

const V4_BACKENDS = ["198.51.100.1", "198.51.100.2", "198.51.100.3"];
const V6_BACKENDS = ["2001:db8:1::1", "2001:db8:1::2"];

/** A destination valid for a service of `family`: same family unless it tunnels. */
function destinationArb(family: Family) {
  return destinationConfigArb.chain((config) => {
    const families: Family[] = config.forwarding === "Tunnel" ? ["IPv4", "IPv6"] : [family];
    return fc
      .record({
        family: fc.constantFrom(...families),
        index: fc.nat(),
        port: fc.constantFrom(80, 8080),
      })
      .map(({ family: f, index, port }) => {
        const pool = f === "IPv4" ? V4_BACKENDS : V6_BACKENDS;
        return { key: { family: f, address: pool[index % pool.length]!, port }, config };
      });
  });
}

const destKeyText = (d: { key: { address: string; port: number } }) => `${d.key.address}|${d.key.port}`;

function desiredEntryArb(key: ServiceKey): fc.Arbitrary<DesiredEntry> {
  return fc
    .record({
      config: serviceConfigArb(key.family),
      drainTimeoutSeconds: fc.constantFrom(0, 10, 300),
      destinations: fc.uniqueArray(destinationArb(key.family), { maxLength: 4, selector: destKeyText }),
    })
    .map((e) => ({
      service: {
        key,
        config: e.config,
        source: { namespace: "ns", name: serviceKeyString(key) },
        driftPolicy: "Repair" as const,
        drainTimeoutSeconds: e.drainTimeoutSeconds,
      },
      destinations: e.destinations.map(
        (d): DesiredDestination => ({
          ...d,
          source: { kind: "RealServer", namespace: "ns", name: destKeyText(d) },
        }),
      ),
    }));
}

const desiredArb: fc.Arbitrary<DesiredTable> = fc
  .uniqueArray(ownedKeyArb, { maxLength: 5, selector: serviceKeyString })
  .chain((keys) => (keys.length === 0 ? fc.constant([]) : fc.tuple(...keys.map(desiredEntryArb))));

function kernelEntryArb(key: ServiceKey): fc.Arbitrary<KernelTable[number]> {
  return fc
    .record({
      config: serviceConfigArb(key.family),
      destinations: fc.uniqueArray(
        fc.record({
          d: destinationArb(key.family),
          active: fc.integer({ min: 0, max: 3 }),
          inactive: fc.integer({ min: 0, max: 3 }),
        }),
        { maxLength: 4, selector: (x) => destKeyText(x.d) },
      ),
    })
    .map((e) => ({
      service: { key, config: e.config },
      destinations: e.destinations.map(
        (x): KernelDestination => ({
          ...x.d,
          activeConnections: x.active,
          inactiveConnections: x.inactive,
          persistentConnections: 0,
        }),
      ),
    }));
}

const actualArb: fc.Arbitrary<KernelTable> = fc
  .uniqueArray(fc.oneof(ownedKeyArb, foreignKeyArb, fc.constant(journalKey)), {
    maxLength: 6,
    selector: serviceKeyString,
  })
  .chain((keys) => (keys.length === 0 ? fc.constant([]) : fc.tuple(...keys.map(kernelEntryArb))));

/**
 * Desired tables that may also want keys outside the scope (foreignKeyArb): when the kernel already has
 * such a key it belongs to someone else and must be left alone; when it does not, the agent creates it.
 */
const desiredAnyKeyArb: fc.Arbitrary<DesiredTable> = fc
  .uniqueArray(fc.oneof(ownedKeyArb, foreignKeyArb), { maxLength: 5, selector: serviceKeyString })
  .chain((keys) => (keys.length === 0 ? fc.constant([]) : fc.tuple(...keys.map(desiredEntryArb))));

// ---- helpers ----------------------------------------------------------------------------------

/** Desired keys are owned only through the scope or the journal (never by being desired). */
function ownershipOf(_desired: DesiredTable, journal: readonly string[] = SCOPE.journal): OwnershipScope {
  return { ...SCOPE, journal };
}

/** Key + config only, canonical order: what "equal tables" means. */
function plain(table: IpvsTable): IpvsTable {
  return sortTable(
    table.map((e) => ({
      service: { key: e.service.key, config: e.service.config },
      destinations: e.destinations.map((d) => ({ key: d.key, config: d.config })),
    })),
  );
}

function ownedPart(table: KernelTable, desired: DesiredTable): KernelTable {
  const own = ownershipOf(desired);
  return table.filter((e) => isOwned(e.service.key, own));
}

function foreignPart(table: KernelTable, desired: DesiredTable): KernelTable {
  const own = ownershipOf(desired);
  return sortTable(table.filter((e) => !isOwned(e.service.key, own)));
}

function apply(table: KernelTable, ops: Operation[]): KernelTable {
  const { table: next, results } = applyOperationsWithResults(table, ops);
  const failures = results.flatMap((r, i) => (r.ok ? [] : [`${JSON.stringify(ops[i])}: ${r.errno}`]));
  expect(failures).toEqual([]);
  return next;
}

function withoutConnections(table: KernelTable, desired: DesiredTable): KernelTable {
  const own = ownershipOf(desired);
  return table.map((e) =>
    isOwned(e.service.key, own)
      ? {
          ...e,
          destinations: e.destinations.map((d) => ({ ...d, activeConnections: 0, inactiveConnections: 0 })),
        }
      : e,
  );
}

function opServiceKey(op: Operation): ServiceKey {
  return op.op === "addService" || op.op === "updateService"
    ? op.service.key
    : op.op === "deleteService"
      ? op.key
      : op.service;
}

/** Deterministic Fisher-Yates from a seed (mulberry32). */
function shuffle<T>(items: readonly T[], seed: number): T[] {
  let a = seed >>> 0;
  const random = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

// ---- properties -------------------------------------------------------------------------------

describe("diff + kernel simulator", () => {
  it("converges: desired entries are right after one plan, owned entries equal desired once drains end, then the plan is empty", () => {
    fc.assert(
      fc.property(desiredArb, actualArb, fc.boolean(), (desired, actual, finishByTimeout) => {
        let now = 1_000_000;
        const first = diff(desired, actual, SCOPE, [], now);
        let table = apply(actual, first.operations);

        // Every desired service and destination is already exactly as desired.
        const byKey = new Map(plain(table).map((e) => [serviceKeyString(e.service.key), e]));
        for (const want of plain(desired)) {
          const got = byKey.get(serviceKeyString(want.service.key));
          expect(got?.service).toEqual(want.service);
          for (const d of want.destinations) expect(got?.destinations).toContainEqual(d);
        }
        // What is left beyond desired is draining: weight 0 and still connected.
        expect(first.draining).toBe(first.drains.length);
        const desiredDest = new Set(
          desired.flatMap((e) =>
            e.destinations.map((d) => `${serviceKeyString(e.service.key)}|${destKeyText(d)}`),
          ),
        );
        for (const e of ownedPart(table, desired)) {
          for (const d of e.destinations) {
            if (desiredDest.has(`${serviceKeyString(e.service.key)}|${destKeyText(d)}`)) continue;
            expect(d.config.weight).toBe(0);
            expect(d.activeConnections + d.inactiveConnections).toBeGreaterThan(0);
          }
        }

        // Drains end: connections go to zero, or the timeouts pass.
        if (finishByTimeout) now += 301_000;
        else table = withoutConnections(table, desired);
        const second = diff(desired, table, SCOPE, first.drains, now);
        table = apply(table, second.operations);
        expect(plain(ownedPart(table, desired))).toEqual(plain(desired));
        expect(second.drains).toEqual([]);

        const third = diff(desired, table, SCOPE, second.drains, now);
        expect(third.operations).toEqual([]);
        expect(third.drift.filter((d) => d.kind !== "Foreign")).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it("never touches a foreign entry, whatever sequence of desired tables comes", () => {
    fc.assert(
      fc.property(
        actualArb,
        fc.array(desiredArb, { minLength: 1, maxLength: 4 }),
        fc.array(fc.boolean()),
        (actual, sequence, zeroes) => {
          let table = actual;
          let drains: DrainEntry[] = [];
          let now = 0;
          const foreignAtStart = foreignPart(actual, []);
          sequence.forEach((desired, i) => {
            const result = diff(desired, table, SCOPE, drains, now);
            const own = ownershipOf(desired);
            for (const op of result.operations) expect(isOwned(opServiceKey(op), own)).toBe(true);
            table = apply(table, result.operations);
            drains = result.drains;
            now += 5_000;
            if (zeroes[i]) table = withoutConnections(table, desired);
            // Foreign entries are those not owned under any desired table; they stay byte for byte.
            for (const f of foreignAtStart) {
              if (sequence.some((d) => isOwned(f.service.key, ownershipOf(d)))) continue;
              expect(
                sortTable(table).find(
                  (e) => serviceKeyString(e.service.key) === serviceKeyString(f.service.key),
                ),
              ).toEqual(f);
            }
          });
          // And each foreign service is reported, as Foreign, by the last plan.
          const last = sequence[sequence.length - 1]!;
          const reported = diff(last, table, SCOPE, drains, now)
            .drift.filter((d) => d.kind === "Foreign")
            .map((d) => d.service);
          expect(reported).toEqual(foreignPart(table, last).map((e) => serviceKeyString(e.service.key)));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("never takes over a foreign entry whose key is desired; creates, journals and then manages a free one", () => {
    fc.assert(
      fc.property(actualArb, desiredAnyKeyArb, (actual, desired) => {
        // What sync-once does around diff(): journal every service about to be created, then apply.
        let journal = [...SCOPE.journal];
        let table = actual;
        let drains: DrainEntry[] = [];
        let now = 0;
        const foreignAtStart = foreignPart(actual, desired);
        const heldByForeign = new Set(foreignAtStart.map((e) => serviceKeyString(e.service.key)));
        for (let round = 0; round < 3; round++) {
          const before = new Set(table.map((e) => serviceKeyString(e.service.key)));
          const result = diff(desired, table, { ...SCOPE, journal }, drains, now);
          for (const op of result.operations) {
            const k = serviceKeyString(opServiceKey(op));
            // Only owned services are touched, or services this very plan creates.
            expect(isOwned(opServiceKey(op), { ...SCOPE, journal }) || !before.has(k)).toBe(true);
            expect(heldByForeign.has(k)).toBe(false);
            if (op.op === "addService") journal = [...new Set([...journal, k])];
          }
          for (const d of result.drift) {
            if (heldByForeign.has(d.service)) expect(d.kind).toBe("Foreign");
          }
          table = apply(table, result.operations);
          drains = result.drains;
          now += 301_000;
        }
        // Foreign entries are byte for byte what they were, desired or not.
        for (const f of foreignAtStart) {
          expect(
            sortTable(table).find((e) => serviceKeyString(e.service.key) === serviceKeyString(f.service.key)),
          ).toEqual(f);
        }
        // Every desired key that was free is now exactly as desired, and owned (journal or scope).
        const byKey = new Map(plain(table).map((e) => [serviceKeyString(e.service.key), e]));
        for (const want of plain(desired)) {
          const k = serviceKeyString(want.service.key);
          if (heldByForeign.has(k)) continue;
          expect(byKey.get(k)).toEqual(want);
          expect(isOwned(want.service.key, { ...SCOPE, journal })).toBe(true);
        }
        // Converged: nothing left to do, and the only drift is Foreign.
        const last = diff(desired, table, { ...SCOPE, journal }, drains, now);
        expect(last.operations).toEqual([]);
        expect(last.drift.filter((d) => d.kind !== "Foreign")).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it("is deterministic: shuffled inputs give the same result", () => {
    fc.assert(
      fc.property(desiredArb, actualArb, fc.integer(), (desired, actual, seed) => {
        const now = 50_000;
        const drains = diff(desired, actual, SCOPE, [], now - 1000).drains;
        const expected = diff(desired, actual, SCOPE, drains, now);
        const shuffledDesired = shuffle(
          desired.map((e, i) => ({ ...e, destinations: shuffle(e.destinations, seed + i) })),
          seed,
        );
        const shuffledActual = shuffle(
          actual.map((e, i) => ({ ...e, destinations: shuffle(e.destinations, seed - i) })),
          seed ^ 0x5555,
        );
        const scope = { ...SCOPE, managedCidrs: shuffle(SCOPE.managedCidrs, seed) };
        const got = diff(shuffledDesired, shuffledActual, scope, shuffle(drains, seed + 7), now);
        expect(got).toEqual(expected);
      }),
      { numRuns: RUNS },
    );
  });

  it("does not modify its inputs", () => {
    fc.assert(
      fc.property(desiredArb, actualArb, (desired, actual) => {
        const before = structuredClone({ desired, actual });
        const result = diff(desired, actual, SCOPE, [], 0);
        applyOperationsWithResults(actual, result.operations);
        expect({ desired, actual }).toEqual(before);
      }),
      { numRuns: 50 },
    );
  });
});
