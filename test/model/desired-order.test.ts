/**
 * The fast paths of the canonical order (sort.ts) and of computeDesired's lookups give exactly what the
 * straightforward code gave: the reference implementations below are the code they replaced.
 */
import { isIPv4 } from "node:net";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  canonicalAddress,
  indexCoreObjects,
  objectMeta,
  SERVICE_NAME_LABEL,
} from "../../src/model/kube-objects.ts";
import { canonicalIp, ipToBytes } from "../../src/vocabulary/addresses.ts";
import {
  compareAddress,
  compareDestinationKey,
  compareServiceKey,
  inStrictDestinationOrder,
  ipv4Value,
  sortByServiceKey,
  sortDestinations,
  sortTable,
} from "../../src/vocabulary/order.ts";
import {
  type DestinationKey,
  destinationKeyString,
  type IpvsTableEntry,
  NO_FLAGS,
  NO_TUNNEL,
  type ServiceKey,
} from "../../src/vocabulary/table.ts";

// ---- reference implementations (the code before the fast paths) -----------------------------------

function referenceCompareAddress(a: string, b: string): number {
  const bytes = (s: string) => {
    try {
      return ipToBytes(s);
    } catch {
      return undefined;
    }
  };
  const x = bytes(a);
  const y = bytes(b);
  if (x && y) {
    if (x.length !== y.length) return x.length - y.length;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return (x[i] ?? 0) - (y[i] ?? 0);
    return 0;
  }
  if (x) return -1;
  if (y) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function referenceSortTable(table: readonly IpvsTableEntry[]): IpvsTableEntry[] {
  return table
    .map((entry) => ({
      ...entry,
      destinations: [...entry.destinations].sort((x, y) => compareDestinationKey(x.key, y.key)),
    }))
    .sort((x, y) => compareServiceKey(x.service.key, y.service.key));
}

// ---- generators -------------------------------------------------------------------------------------

const octet = fc.oneof(
  fc.integer({ min: 0, max: 255 }).map(String),
  fc.constantFrom("00", "01", "010", "256", "999", "1000", "", "-1", "+1", " 1", "1 ", "0x1", "1e1"),
);
/** Mostly IPv4 look-alikes, some IPv6 and junk. */
const addressText = fc.oneof(
  { weight: 6, arbitrary: fc.array(octet, { minLength: 3, maxLength: 5 }).map((p) => p.join(".")) },
  {
    weight: 2,
    arbitrary: fc.constantFrom("2001:db8::1", "::ffff:192.0.2.1", "fe80::1", "::", "2001:DB8::1"),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 16 }) },
  { weight: 1, arbitrary: fc.stringMatching(/^[0-9.]{0,16}$/) },
);

const serviceKey: fc.Arbitrary<ServiceKey> = fc.oneof(
  fc.record({
    kind: fc.constant("address" as const),
    family: fc.constantFrom("IPv4" as const, "IPv6" as const),
    protocol: fc.constantFrom("TCP" as const, "UDP" as const, "SCTP" as const),
    address: addressText,
    port: fc.constantFrom(0, 80, 443, 8080),
  }),
  fc.record({
    kind: fc.constant("fwmark" as const),
    family: fc.constantFrom("IPv4" as const, "IPv6" as const),
    fwmark: fc.integer({ min: 1, max: 20 }),
  }),
);

const config = { forwarding: "NAT", weight: 1, upperThreshold: 0, lowerThreshold: 0, ...NO_TUNNEL } as const;
const service = {
  scheduler: "rr",
  flags: NO_FLAGS,
  timeout: 0,
  netmask: 0xffffffff,
  persistenceEngine: "",
} as const;

const table = fc.array(
  fc.record({
    key: serviceKey,
    destinations: fc.array(
      fc.record({
        family: fc.constantFrom("IPv4" as const, "IPv6" as const),
        address: addressText,
        port: fc.constantFrom(0, 80, 8080),
      }),
      { maxLength: 6 },
    ),
    tag: fc.nat(),
  }),
  { maxLength: 12 },
);

describe("canonical order fast paths", () => {
  it("ipv4Value accepts exactly what net.isIPv4 accepts, with the same bytes", () => {
    fc.assert(
      fc.property(addressText, (text) => {
        const value = ipv4Value(text);
        expect(value !== undefined).toBe(isIPv4(text));
        if (value !== undefined) {
          const bytes = [24, 16, 8, 0].map((s) => (value >>> s) & 0xff);
          expect(bytes).toEqual([...ipToBytes(text)]);
        }
      }),
      { numRuns: 2000 },
    );
    for (const text of ["0.0.0.0", "255.255.255.255", "1.2.3.4", "01.2.3.4", "1.2.3.256", "1.2.3.4."]) {
      expect(ipv4Value(text) !== undefined, text).toBe(isIPv4(text));
    }
  });

  it("canonicalAddress returns (or throws) what canonicalIp does", () => {
    const outcome = (f: (a: string) => string, a: string) => {
      try {
        return f(a);
      } catch (error) {
        return `threw ${String(error)}`;
      }
    };
    fc.assert(
      fc.property(addressText, (a) => {
        expect(outcome(canonicalAddress, a)).toBe(outcome(canonicalIp, a));
      }),
      { numRuns: 2000 },
    );
  });

  it("compareAddress returns what the byte-wise comparison returned", () => {
    fc.assert(
      fc.property(addressText, addressText, (a, b) => {
        expect(compareAddress(a, b)).toBe(referenceCompareAddress(a, b));
      }),
      { numRuns: 2000 },
    );
  });

  it("sortTable gives the order of sorting with compareServiceKey / compareDestinationKey", () => {
    fc.assert(
      fc.property(table, (rows) => {
        // The tag keeps entries with equal keys apart, so a difference in stability would show.
        const input: IpvsTableEntry[] = rows.map((r) => ({
          service: { key: r.key, config: { ...service, timeout: r.tag } },
          destinations: r.destinations.map((key, i) => ({ key, config: { ...config, weight: i } })),
        }));
        expect(sortTable(input)).toEqual(referenceSortTable(input));
      }),
      { numRuns: 1000 },
    );
  });
});

/** Keys as they come (mostly plain IPv4 ones, in order or not), with ports the plain ranks must refuse. */
const oddPort = fc.constantFrom(-0, -1, 1.5, 65536, Number.NaN, 2 ** 40);
const plainAddress = fc
  .integer({ min: 0, max: 2 ** 32 - 1 })
  .map((v) => [24, 16, 8, 0].map((s) => (v >>> s) & 0xff).join("."));
const destinationKey: fc.Arbitrary<DestinationKey> = fc.record({
  family: fc.oneof({ weight: 8, arbitrary: fc.constant("IPv4" as const) }, fc.constant("IPv6" as const)),
  address: fc.oneof({ weight: 4, arbitrary: plainAddress }, addressText),
  port: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(0, 1, 80, 8080, 65535) }, oddPort),
});
const anyServiceKey: fc.Arbitrary<ServiceKey> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("address" as const),
      family: fc.constant("IPv4" as const),
      protocol: fc.constantFrom("TCP" as const, "UDP" as const, "SCTP" as const),
      address: plainAddress,
      port: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(0, 80, 65535) }, oddPort),
    }),
  },
  serviceKey,
  fc.record({
    kind: fc.constant("address" as const),
    family: fc.constant("IPv4" as const),
    protocol: fc.constantFrom("toString", "__proto__") as unknown as fc.Arbitrary<"TCP">,
    address: plainAddress,
    port: fc.constant(80),
  }),
);
/** Lists that are sorted already now and then, as computeDesired's output is. */
const maybeSorted = <T>(items: fc.Arbitrary<T[]>, compare: (a: T, b: T) => number) =>
  fc.tuple(items, fc.boolean()).map(([list, sort]) => (sort ? [...list].sort(compare) : list));

describe("canonical order by ranks", () => {
  it("sortDestinations and sortByServiceKey give the stable sort by compareDestinationKey / compareServiceKey", () => {
    const tagged = <K>(key: fc.Arbitrary<K>) =>
      fc.array(key, { maxLength: 12 }).map((keys) => keys.map((key, tag) => ({ key, tag })));
    fc.assert(
      fc.property(
        maybeSorted(tagged(destinationKey), (a, b) => compareDestinationKey(a.key, b.key)),
        maybeSorted(tagged(anyServiceKey), (a, b) => compareServiceKey(a.key, b.key)),
        (destinations, services) => {
          const ds = destinations.map((d) => ({ key: d.key, config: { ...config, weight: d.tag } }));
          expect(sortDestinations(ds)).toEqual([...ds].sort((a, b) => compareDestinationKey(a.key, b.key)));
          expect(sortByServiceKey(services, (s) => s.key)).toEqual(
            [...services].sort((a, b) => compareServiceKey(a.key, b.key)),
          );
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("inStrictDestinationOrder only for sorted lists without two equal destination key texts", () => {
    let strict = 0;
    fc.assert(
      fc.property(maybeSorted(fc.array(destinationKey, { maxLength: 8 }), compareDestinationKey), (keys) => {
        const ds = keys.map((key) => ({ key, config }));
        if (!inStrictDestinationOrder(ds)) return;
        strict++;
        expect(sortDestinations(ds)).toEqual(ds);
        expect(new Set(keys.map(destinationKeyString)).size).toBe(keys.length);
      }),
      { numRuns: 3000 },
    );
    expect(strict).toBeGreaterThan(300);
  });
});

describe("core object index", () => {
  const names = fc.constantFrom("api", "web", "", "a/b");
  const namespaces = fc.constantFrom("edge", "default", "", "a");
  const object = fc.oneof(
    { weight: 6, arbitrary: fc.record({ metadata: fc.record({ name: names, namespace: namespaces }) }) },
    {
      weight: 3,
      arbitrary: fc.record({
        metadata: fc.record(
          {
            name: names,
            namespace: namespaces,
            labels: fc.oneof(
              fc.record({ [SERVICE_NAME_LABEL]: fc.oneof(names, fc.constant(5 as unknown as string)) }),
              fc.constant(null),
            ),
          },
          { requiredKeys: [] },
        ),
        tag: fc.nat(),
      }),
    },
    { weight: 1, arbitrary: fc.constantFrom(undefined, null, 7, "x", [], {}) },
  );

  it("finds what a scan of the snapshot in order finds", () => {
    fc.assert(
      fc.property(
        fc.array(object, { maxLength: 8 }),
        fc.array(object, { maxLength: 8 }),
        fc.array(object, { maxLength: 8 }),
        namespaces,
        names,
        (services, endpoints, endpointSlices, namespace, name) => {
          const index = indexCoreObjects({ services, endpoints, endpointSlices } as never);
          const scan = (all: unknown[]) =>
            all.find((o) => {
              const m = objectMeta(o);
              return m.namespace === namespace && m.name === name;
            });
          expect(index.service(namespace, name)).toBe(scan(services));
          expect(index.endpoints(namespace, name)).toBe(scan(endpoints));
          const slices = endpointSlices.filter((s) => {
            const m = objectMeta(s);
            return m.namespace === namespace && m.labels[SERVICE_NAME_LABEL] === name;
          });
          const found = index.endpointSlices(namespace, name);
          expect(found).toHaveLength(slices.length);
          found.forEach((x, i) => {
            expect(x.slice).toBe(slices[i]);
            expect(x.meta).toEqual(objectMeta(x.slice));
          });
        },
      ),
      { numRuns: 1000 },
    );
  });
});
