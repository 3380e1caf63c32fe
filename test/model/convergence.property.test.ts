/**
 * Property tests of diff() with plans applied by the contract-checked fake kernel (FakeIpvsKernel, through
 * test/support/simulate.ts): convergence, idempotence, foreign entries untouched, deterministic output.
 * The generators cover address services of every protocol and family (port 0 with persistence too),
 * fwmark services of both families, observe-only services (driftPolicy Report), and a kernel that lists
 * destinations in its own order (as given when built, then newest first), not the canonical one.
 */
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import type { DesiredDestination, DesiredEntry, DesiredTable } from "../../src/model/desired-table.ts";
import { type DiffResult, diff } from "../../src/model/diff.ts";
import { DEFAULT_DRAIN_TIMEOUT_SECONDS, type DrainEntry } from "../../src/model/drain.ts";
import { isOwned, type OwnershipScope } from "../../src/model/ownership.ts";
import type { Operation } from "../../src/vocabulary/operations.ts";
import { sortTable } from "../../src/vocabulary/order.ts";
import {
  type DestinationConfig,
  destinationKeyString,
  type Family,
  type IpvsDestination,
  type IpvsTable,
  type KernelDestination,
  type KernelTable,
  NO_TUNNEL,
  type ServiceConfig,
  type ServiceKey,
  serviceKeyString,
} from "../../src/vocabulary/table.ts";
import { failures, kernelFrom, readTable, simulate } from "../support/simulate.ts";

const RUNS = 200;

const SCOPE: OwnershipScope = {
  managedCidrs: ["10.0.0.0/8", "fd00::/16"],
  managedFwmarks: [{ from: 1, to: 50 }],
  // 198.18.0.1:80 lies outside the CIDRs: owned only because the journal says the agent made it.
  journal: ["TCP 198.18.0.1:80"],
};

// ---- generators -------------------------------------------------------------------------------

const familyArb = fc.constantFrom<Family>("IPv4", "IPv6");
const protocolArb = fc.constantFrom("TCP" as const, "UDP" as const, "SCTP" as const);
/** Port 0: every port of the address, which only makes sense persistent (ipvsadm refuses it otherwise). */
const portArb = fc.constantFrom(80, 443, 0);

const allPorts = (key: ServiceKey) => key.kind === "address" && key.port === 0;

function addressKeyArb(v4: string[], v6: string[]): fc.Arbitrary<ServiceKey> {
  return fc.oneof(
    fc.record({
      kind: fc.constant("address" as const),
      family: fc.constant("IPv4" as const),
      protocol: protocolArb,
      address: fc.constantFrom(...v4),
      port: portArb,
    }),
    fc.record({
      kind: fc.constant("address" as const),
      family: fc.constant("IPv6" as const),
      protocol: protocolArb,
      address: fc.constantFrom(...v6),
      port: portArb,
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

const serviceConfigArb = (key: ServiceKey): fc.Arbitrary<ServiceConfig> =>
  fc
    .record({
      scheduler: fc.constantFrom("wlc", "rr", "mh", "sh"),
      persistent: allPorts(key) ? fc.constant(true) : fc.boolean(),
      schedFlag1: fc.boolean(),
      timeout: allPorts(key) ? fc.constantFrom(360, 60) : fc.constantFrom(0, 360, 60),
      netmask: key.family === "IPv4" ? fc.constantFrom(0xffffffff, 0xffffff00) : fc.constantFrom(128, 64),
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

/**
 * A destination valid for the service `key`: same family unless it tunnels; port 0 (all ports, as ipvsadm
 * gives a real server of a port-0 service) when the service takes every port.
 */
function destinationArb(key: ServiceKey) {
  return destinationConfigArb.chain((config) => {
    const families: Family[] = config.forwarding === "Tunnel" ? ["IPv4", "IPv6"] : [key.family];
    return fc
      .record({
        family: fc.constantFrom(...families),
        index: fc.nat(),
        port: allPorts(key) ? fc.constant(0) : fc.constantFrom(80, 8080),
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
      config: serviceConfigArb(key),
      driftPolicy: fc.constantFrom(
        "Repair" as const,
        "Repair" as const,
        "Repair" as const,
        "Report" as const,
      ),
      drainTimeoutSeconds: fc.constantFrom(0, 10, 300),
      destinations: fc.uniqueArray(destinationArb(key), { maxLength: 4, selector: destKeyText }),
    })
    .map((e) => ({
      service: {
        key,
        config: e.config,
        source: { namespace: "ns", name: serviceKeyString(key) },
        driftPolicy: e.driftPolicy,
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

/** Connection counters of a kernel destination (persistent ones hold no drain, see drain.ts). */
const countersArb = fc.record({
  activeConnections: fc.integer({ min: 0, max: 3 }),
  inactiveConnections: fc.integer({ min: 0, max: 3 }),
  persistentConnections: fc.integer({ min: 0, max: 2 }),
});

function kernelEntryArb(key: ServiceKey): fc.Arbitrary<KernelTable[number]> {
  return fc
    .record({
      config: serviceConfigArb(key),
      // In any order: the kernel lists them as built (see kernelFrom), not in canonical order.
      destinations: fc.uniqueArray(fc.record({ d: destinationArb(key), counters: countersArb }), {
        maxLength: 4,
        selector: (x) => destKeyText(x.d),
      }),
    })
    .map((e) => ({
      service: { key, config: e.config },
      destinations: e.destinations.map((x): KernelDestination => ({ ...x.d, ...x.counters })),
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

/** `config` as it is, or with one field changed: the small differences diff() must notice one by one. */
function tweakedServiceConfigArb(key: ServiceKey, config: ServiceConfig): fc.Arbitrary<ServiceConfig> {
  const other = serviceConfigArb(key);
  return fc.oneof(
    { arbitrary: fc.constant(config), weight: 4 },
    other.map((c) => ({ ...config, scheduler: c.scheduler })),
    other.map((c) => ({ ...config, flags: c.flags })),
    other.map((c) => ({ ...config, timeout: c.timeout })),
    other.map((c) => ({ ...config, netmask: c.netmask })),
    other.map((c) => ({ ...config, persistenceEngine: c.persistenceEngine })),
  );
}

/** The same for a destination of a service of `family` (one of another family must keep tunnelling). */
function tweakedDestinationConfigArb(d: IpvsDestination, family: Family): fc.Arbitrary<DestinationConfig> {
  const { config } = d;
  return fc.oneof(
    { arbitrary: fc.constant(config), weight: 3 },
    destinationConfigArb.map((c) => ({ ...config, weight: c.weight })),
    destinationConfigArb.map((c) => ({
      ...config,
      upperThreshold: c.upperThreshold,
      lowerThreshold: c.lowerThreshold,
    })),
    destinationConfigArb
      .filter((c) => d.key.family === family || c.forwarding === "Tunnel")
      .map((c) => ({
        ...c,
        weight: config.weight,
        upperThreshold: config.upperThreshold,
        lowerThreshold: config.lowerThreshold,
      })),
  );
}

/**
 * What the kernel may hold at a desired entry's key: nothing, or that service with one field changed or
 * not, some of its destinations (each with one field changed or not, any counters) and some it does not
 * want, in any order.
 */
function nearKernelEntryArb(want: DesiredEntry): fc.Arbitrary<KernelTable> {
  const key = want.service.key;
  const wanted = new Set(want.destinations.map(destKeyText));
  return fc
    .record({
      present: fc.nat(3),
      config: tweakedServiceConfigArb(key, want.service.config),
      kept: fc.tuple(
        ...want.destinations.map((d) =>
          fc.option(
            fc.record({ config: tweakedDestinationConfigArb(d, key.family), counters: countersArb }),
            { nil: undefined, freq: 4 },
          ),
        ),
      ),
      extra: kernelEntryArb(key),
      seed: fc.integer(),
    })
    .map(({ present, config, kept, extra, seed }): KernelTable => {
      if (present === 0) return [];
      const destinations: KernelDestination[] = want.destinations.flatMap((d, i) => {
        const k = kept[i];
        return k ? [{ key: d.key, config: k.config, ...k.counters }] : [];
      });
      destinations.push(...extra.destinations.filter((d) => !wanted.has(destKeyText(d))));
      return [{ service: { key, config }, destinations: shuffle(destinations, seed) }];
    });
}

/** A desired table with a kernel table that is either unrelated or close to it (nearKernelEntryArb). */
function withActualArb(desiredTables: fc.Arbitrary<DesiredTable>): fc.Arbitrary<[DesiredTable, KernelTable]> {
  return desiredTables.chain((desired) => {
    const taken = new Set(desired.map((e) => serviceKeyString(e.service.key)));
    const near = fc
      .tuple(actualArb, ...desired.map(nearKernelEntryArb))
      .map(([others, ...entries]) => [
        ...entries.flat(),
        ...others.filter((e) => !taken.has(serviceKeyString(e.service.key))),
      ]);
    return fc.tuple(fc.constant(desired), fc.oneof(actualArb, near));
  });
}

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

/** A destination of a service as drains name it: "TCP 10.0.0.1:80|198.51.100.1:8080". */
function destId(service: ServiceKey, d: IpvsDestination): string {
  return `${serviceKeyString(service)}|${destinationKeyString(d.key)}`;
}

/** Keys of the observe-only (driftPolicy Report) services of `desired`. */
function reportKeys(desired: DesiredTable): Set<string> {
  return new Set(
    desired.filter((e) => e.service.driftPolicy === "Report").map((e) => serviceKeyString(e.service.key)),
  );
}

/** The entries of `table` whose keys are in `keys`, canonical order, key + config. */
function plainAt(table: IpvsTable, keys: ReadonlySet<string>): IpvsTable {
  return plain(table.filter((e) => keys.has(serviceKeyString(e.service.key))));
}

/** The entries of `table` whose keys are not in `keys`. */
function without<T extends IpvsTable[number]>(table: readonly T[], keys: ReadonlySet<string>): T[] {
  return table.filter((e) => !keys.has(serviceKeyString(e.service.key)));
}

/** Applies a plan on the kernel, every operation must succeed; the kernel's table after it, in its order. */
async function apply(kernel: FakeIpvsKernel, ops: Operation[]): Promise<KernelTable> {
  expect(failures(ops, await kernel.apply(ops))).toEqual([]);
  return readTable(kernel);
}

/** The connections of every owned destination end (foreign ones keep theirs); the table after that. */
async function endConnections(
  kernel: FakeIpvsKernel,
  table: KernelTable,
  desired: DesiredTable,
): Promise<KernelTable> {
  for (const e of ownedPart(table, desired)) {
    for (const d of e.destinations) kernel.setConnections(e.service.key, d.key, { active: 0, inactive: 0 });
  }
  return readTable(kernel);
}

/**
 * The last plan's drift once converged: nothing but Foreign, and Reported drift of observe-only services,
 * which a service has exactly when the kernel differs from it (absent, or another config or destination set).
 */
function expectOnlyReportedDrift(result: DiffResult, desired: DesiredTable, table: KernelTable): void {
  const report = reportKeys(desired);
  const drifting = result.drift.filter((d) => d.kind !== "Foreign");
  for (const d of drifting) {
    expect(report.has(d.service)).toBe(true);
    expect(d.action).toBe("Reported");
  }
  const held = new Set(foreignPart(table, desired).map((e) => serviceKeyString(e.service.key)));
  for (const want of plain(desired)) {
    const k = serviceKeyString(want.service.key);
    if (!report.has(k) || held.has(k)) continue;
    const got = plainAt(table, new Set([k]))[0];
    // Through JSON: the same values whatever their prototypes (fast-check makes some null-prototype objects).
    const same = isDeepStrictEqual(JSON.parse(JSON.stringify(got ?? null)), JSON.parse(JSON.stringify(want)));
    expect(drifting.some((d) => d.service === k)).toBe(!same);
  }
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

describe("diff + fake kernel", () => {
  it("converges: desired entries are right after one plan, owned entries equal desired once drains end, then the plan is empty", async () => {
    await fc.assert(
      fc.asyncProperty(
        withActualArb(desiredArb),
        fc.boolean(),
        async ([desired, actual], finishByTimeout) => {
          const kernel = await kernelFrom(actual);
          const report = reportKeys(desired);
          let now = 1_000_000;
          const first = diff(desired, await readTable(kernel), SCOPE, [], now);
          let table = await apply(kernel, first.operations);

          // Every desired (Repair) service and destination is already exactly as desired.
          const byKey = new Map(plain(table).map((e) => [serviceKeyString(e.service.key), e]));
          for (const want of plain(without(desired, report))) {
            const got = byKey.get(serviceKeyString(want.service.key));
            expect(got?.service).toEqual(want.service);
            for (const d of want.destinations) expect(got?.destinations).toContainEqual(d);
          }
          // Observe-only services are left as the kernel had them, present or not.
          expect(plainAt(table, report)).toEqual(plainAt(actual, report));
          // What is left beyond desired is draining (weight 0, recorded in drains): exactly the owned
          // destinations that must go and had connections, unless UDP or with a drain timeout of 0.
          expect(first.draining).toBe(first.drains.length);
          const wantByKey = new Map(desired.map((e) => [serviceKeyString(e.service.key), e]));
          const desiredDest = new Set(
            desired.flatMap((e) => e.destinations.map((d) => destId(e.service.key, d))),
          );
          const mustDrain = new Set<string>();
          for (const e of without(ownedPart(actual, desired), report)) {
            const k = serviceKeyString(e.service.key);
            const timeout = wantByKey.get(k)?.service.drainTimeoutSeconds ?? DEFAULT_DRAIN_TIMEOUT_SECONDS;
            const udp = e.service.key.kind === "address" && e.service.key.protocol === "UDP";
            for (const d of e.destinations) {
              const busy = d.activeConnections + d.inactiveConnections > 0;
              const id = destId(e.service.key, d);
              if (!desiredDest.has(id) && busy && !udp && timeout > 0) mustDrain.add(id);
            }
          }
          const left = new Set<string>();
          for (const e of without(ownedPart(table, desired), report)) {
            for (const d of e.destinations) {
              const id = destId(e.service.key, d);
              if (desiredDest.has(id)) continue;
              expect(d.config.weight).toBe(0);
              left.add(id);
            }
          }
          expect(left).toEqual(mustDrain);
          expect(new Set(first.drains.map((d) => `${d.service}|${d.destination}`))).toEqual(mustDrain);

          // Drains end: connections go to zero, or the timeouts pass.
          if (finishByTimeout) now += 301_000;
          else table = await endConnections(kernel, table, desired);
          const second = diff(desired, table, SCOPE, first.drains, now);
          table = await apply(kernel, second.operations);
          expect(plain(without(ownedPart(table, desired), report))).toEqual(plain(without(desired, report)));
          expect(plainAt(table, report)).toEqual(plainAt(actual, report));
          expect(second.drains).toEqual([]);

          const third = diff(desired, table, SCOPE, second.drains, now);
          expect(third.operations).toEqual([]);
          expectOnlyReportedDrift(third, desired, table);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("never touches a foreign entry, whatever sequence of desired tables comes", async () => {
    await fc.assert(
      fc.asyncProperty(
        actualArb,
        fc.array(desiredArb, { minLength: 1, maxLength: 4 }),
        fc.array(fc.boolean()),
        async (actual, sequence, zeroes) => {
          const kernel = await kernelFrom(actual);
          let table = await readTable(kernel);
          let drains: DrainEntry[] = [];
          let now = 0;
          const foreignAtStart = foreignPart(actual, []);
          for (const [i, desired] of sequence.entries()) {
            const result = diff(desired, table, SCOPE, drains, now);
            const own = ownershipOf(desired);
            for (const op of result.operations) expect(isOwned(opServiceKey(op), own)).toBe(true);
            table = await apply(kernel, result.operations);
            drains = result.drains;
            now += 5_000;
            if (zeroes[i]) table = await endConnections(kernel, table, desired);
            // Foreign entries are those not owned under any desired table; they stay byte for byte.
            for (const f of foreignAtStart) {
              if (sequence.some((d) => isOwned(f.service.key, ownershipOf(d)))) continue;
              expect(
                sortTable(table).find(
                  (e) => serviceKeyString(e.service.key) === serviceKeyString(f.service.key),
                ),
              ).toEqual(f);
            }
          }
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

  it("never takes over a foreign entry whose key is desired; creates, journals and then manages a free one", async () => {
    await fc.assert(
      fc.asyncProperty(withActualArb(desiredAnyKeyArb), async ([desired, actual]) => {
        // What sync-once does around diff(): journal every service about to be created, then apply.
        const kernel = await kernelFrom(actual);
        const report = reportKeys(desired);
        let journal = [...SCOPE.journal];
        let table = await readTable(kernel);
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
            expect(report.has(k)).toBe(false);
            if (op.op === "addService") journal = [...new Set([...journal, k])];
          }
          for (const d of result.drift) {
            if (heldByForeign.has(d.service)) expect(d.kind).toBe("Foreign");
          }
          table = await apply(kernel, result.operations);
          drains = result.drains;
          now += 301_000;
        }
        // Foreign entries are byte for byte what they were, desired or not.
        for (const f of foreignAtStart) {
          expect(
            sortTable(table).find((e) => serviceKeyString(e.service.key) === serviceKeyString(f.service.key)),
          ).toEqual(f);
        }
        // Every desired key that was free is now exactly as desired, and owned (journal or scope); an
        // observe-only one is as it was (absent stays absent).
        const byKey = new Map(plain(table).map((e) => [serviceKeyString(e.service.key), e]));
        for (const want of plain(desired)) {
          const k = serviceKeyString(want.service.key);
          if (heldByForeign.has(k)) continue;
          if (report.has(k)) {
            expect(byKey.get(k)).toEqual(plainAt(actual, new Set([k]))[0]);
            continue;
          }
          expect(byKey.get(k)).toEqual(want);
          expect(isOwned(want.service.key, { ...SCOPE, journal })).toBe(true);
        }
        // Converged: nothing left to do, and the only drift is Foreign or Reported.
        const last = diff(desired, table, { ...SCOPE, journal }, drains, now);
        expect(last.operations).toEqual([]);
        expectOnlyReportedDrift(last, desired, table);
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

  it("does not modify its inputs", async () => {
    await fc.assert(
      fc.asyncProperty(desiredArb, actualArb, async (desired, actual) => {
        const before = structuredClone({ desired, actual });
        const result = diff(desired, actual, SCOPE, [], 0);
        await simulate(actual, result.operations);
        expect({ desired, actual }).toEqual(before);
      }),
      { numRuns: 50 },
    );
  });
});
