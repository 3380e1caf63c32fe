/** Unit tests of the pieces diff() stands on: ownership rule, canonical sort, drain decision, and the
 * test support that runs plans through the fake kernel (test/support/simulate.ts). */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decideDrain } from "../../src/model/drain.ts";
import { cidrContains, isOwned, ownershipScopeProblems, parseCidr } from "../../src/model/ownership.ts";
import { compareDestinationKey, compareServiceKey, sortTable } from "../../src/vocabulary/order.ts";
import { type ServiceKey, serviceKeyString } from "../../src/vocabulary/table.ts";
import { kernelFrom, simulate } from "../support/simulate.ts";
import { destinationConfig, fwmark, have, haveDest, serviceConfig, tcp, udp } from "./diff-fixtures.ts";

const own = (over: Partial<Parameters<typeof isOwned>[1]> = {}) => ({
  managedCidrs: [],
  managedFwmarks: [],
  journal: [],
  ...over,
});

describe("isOwned", () => {
  it.each([
    {
      // Being desired is no claim on an existing kernel service: that would take over foreign entries.
      name: "a key that is merely desired (extra fields are ignored)",
      key: tcp("192.0.2.1", 80),
      o: { ...own(), desiredKeys: new Set(["TCP 192.0.2.1:80"]) },
      owned: false,
    },
    {
      name: "inside v4 CIDR",
      key: tcp("10.1.2.3", 80),
      o: own({ managedCidrs: ["10.0.0.0/8"] }),
      owned: true,
    },
    {
      name: "outside v4 CIDR",
      key: tcp("11.1.2.3", 80),
      o: own({ managedCidrs: ["10.0.0.0/8"] }),
      owned: false,
    },
    {
      name: "odd prefix edge inside",
      key: tcp("10.0.1.255", 80),
      o: own({ managedCidrs: ["10.0.0.0/23"] }),
      owned: true,
    },
    {
      name: "odd prefix edge outside",
      key: tcp("10.0.2.0", 80),
      o: own({ managedCidrs: ["10.0.0.0/23"] }),
      owned: false,
    },
    {
      name: "v6 inside",
      key: tcp("2001:db8::5", 80),
      o: own({ managedCidrs: ["2001:db8::/32"] }),
      owned: true,
    },
    {
      name: "v6 key vs v4 CIDR",
      key: tcp("::a00:1", 80),
      o: own({ managedCidrs: ["10.0.0.0/8"] }),
      owned: false,
    },
    {
      name: "/0 owns its family",
      key: tcp("8.8.8.8", 53),
      o: own({ managedCidrs: ["0.0.0.0/0"] }),
      owned: true,
    },
    {
      name: "malformed CIDR owns nothing",
      key: tcp("10.0.0.1", 80),
      o: own({ managedCidrs: ["10.0.0.0/33", "x"] }),
      owned: false,
    },
    {
      name: "fwmark in range",
      key: fwmark(5),
      o: own({ managedFwmarks: [{ from: 5, to: 5 }] }),
      owned: true,
    },
    {
      name: "fwmark outside range",
      key: fwmark(6),
      o: own({ managedFwmarks: [{ from: 1, to: 5 }] }),
      owned: false,
    },
    { name: "fwmark ignores CIDRs", key: fwmark(6), o: own({ managedCidrs: ["0.0.0.0/0"] }), owned: false },
    { name: "journal", key: udp("192.0.2.1", 53), o: own({ journal: ["UDP 192.0.2.1:53"] }), owned: true },
    {
      name: "journal other protocol",
      key: tcp("192.0.2.1", 53),
      o: own({ journal: ["UDP 192.0.2.1:53"] }),
      owned: false,
    },
  ])("$name -> $owned", ({ key, o, owned }) => {
    expect(isOwned(key, o)).toBe(owned);
  });

  it("reports malformed scope entries by index", () => {
    expect(
      ownershipScopeProblems({
        managedCidrs: ["10.0.0.0/8", "10.0.0.0/40", "fd00::/8"],
        managedFwmarks: [{ from: 9, to: 3 }],
        journal: [],
      }),
    ).toEqual([
      'managedCidrs[1]: "10.0.0.0/40" is not an IPv4 or IPv6 CIDR',
      "managedFwmarks[0]: 9-3 is not a range of marks within 1..4294967295",
    ]);
    expect(parseCidr("192.0.2.7")?.prefixLength).toBe(32);
  });

  it("decides IPv4 containment by numbers exactly as bit by bit, at every prefix length", () => {
    const quad = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));
    fc.assert(
      fc.property(quad, quad, fc.integer({ min: 0, max: 32 }), (a, c, prefix) => {
        const address = a.join(".");
        const cidr = parseCidr(`${c.join(".")}/${prefix}`)!;
        let expected = true;
        for (let bit = 0; bit < prefix; bit++) {
          const byte = bit >> 3;
          const mask = 0x80 >> (bit & 7);
          if ((a[byte]! & mask) !== (c[byte]! & mask)) expected = false;
        }
        expect(cidrContains(cidr, address)).toBe(expected);
      }),
      { numRuns: 2000 },
    );
    // Spellings the number path does not take go the byte way, with the same answers.
    expect(cidrContains(parseCidr("10.0.0.0/8")!, "::ffff:10.0.0.1")).toBe(false);
    expect(cidrContains(parseCidr("10.0.0.0/8")!, "2001:db8::1")).toBe(false);
    expect(cidrContains(parseCidr("2001:db8::/32")!, "2001:db8::1")).toBe(true);
    expect(cidrContains(parseCidr("0.0.0.0/0")!, "255.255.255.255")).toBe(true);
  });
});

describe("canonical sort", () => {
  it("orders services by family, address before fwmark, protocol, address bytes, port", () => {
    const keys: ServiceKey[] = [
      fwmark(2, "IPv6"),
      tcp("2001:db8::1", 80),
      fwmark(10),
      fwmark(9),
      udp("10.0.0.1", 53),
      tcp("10.0.0.10", 80),
      tcp("10.0.0.9", 443),
      tcp("10.0.0.9", 80),
      { kind: "address", family: "IPv4", protocol: "SCTP", address: "10.0.0.1", port: 1 },
    ];
    expect([...keys].sort(compareServiceKey).map(serviceKeyString)).toEqual([
      "TCP 10.0.0.9:80",
      "TCP 10.0.0.9:443",
      "TCP 10.0.0.10:80",
      "UDP 10.0.0.1:53",
      "SCTP 10.0.0.1:1",
      "FWM 9 IPv4",
      "FWM 10 IPv4",
      "TCP [2001:db8::1]:80",
      "FWM 2 IPv6",
    ]);
  });

  it("orders destinations by family, address bytes, port and sorts tables without changing the input", () => {
    const table = [
      have(tcp("10.0.0.2", 80), [
        haveDest("::1", 1),
        haveDest("10.0.0.10", 1),
        haveDest("10.0.0.9", 2),
        haveDest("10.0.0.9", 1),
      ]),
      have(tcp("10.0.0.1", 80), []),
    ];
    const copy = structuredClone(table);
    const sorted = sortTable(table);
    expect(table).toEqual(copy);
    expect(sorted.map((e) => e.service.key)).toEqual([tcp("10.0.0.1", 80), tcp("10.0.0.2", 80)]);
    expect(sorted[1]!.destinations.map((d) => `${d.key.address}:${d.key.port}`)).toEqual([
      "10.0.0.9:1",
      "10.0.0.9:2",
      "10.0.0.10:1",
      "::1:1",
    ]);
    expect(
      compareDestinationKey(
        { family: "IPv4", address: "not-an-ip", port: 1 },
        { family: "IPv4", address: "1.2.3.4", port: 1 },
      ),
    ).toBeGreaterThan(0);
  });
});

describe("decideDrain", () => {
  const base = {
    service: "TCP 192.0.2.1:80",
    destinationKey: "198.51.100.5:80",
    udp: false,
    timeoutSeconds: 10,
    now: 100_000,
  };
  it.each([
    {
      name: "UDP: deleted at once even with connections and a drain timeout (like kube-proxy)",
      input: { udp: true, destination: haveDest("198.51.100.5", 80, {}, { active: 1 }) },
      expected: "delete:Immediate",
    },
    {
      name: "timeout 0",
      input: { timeoutSeconds: 0, destination: haveDest("198.51.100.5", 80, {}, { active: 1 }) },
      expected: "delete:Immediate",
    },
    { name: "idle", input: { destination: haveDest("198.51.100.5", 80) }, expected: "delete:NoConnections" },
    {
      name: "busy, new",
      input: { destination: haveDest("198.51.100.5", 80, {}, { inactive: 1 }) },
      expected: "drain:100000:weight0",
    },
    {
      name: "busy, 9.999 s in",
      input: {
        destination: haveDest("198.51.100.5", 80, { weight: 0 }, { active: 1 }),
        recorded: { service: "", destination: "", startedAt: 90_001, timeoutSeconds: 10 },
      },
      expected: "drain:90001",
    },
    {
      name: "busy, 10 s in",
      input: {
        destination: haveDest("198.51.100.5", 80, { weight: 0 }, { active: 1 }),
        recorded: { service: "", destination: "", startedAt: 90_000, timeoutSeconds: 10 },
      },
      expected: "delete:TimedOut",
    },
  ])("$name -> $expected", ({ input, expected }) => {
    const d = decideDrain({ ...base, recorded: undefined, ...input });
    const text =
      d.action === "delete"
        ? `delete:${d.reason}`
        : `drain:${d.entry.startedAt}${d.setWeightZero ? ":weight0" : ""}`;
    expect(text).toBe(expected);
  });
});

describe("simulate (the fake kernel)", () => {
  const svc = { key: tcp("192.0.2.1", 80), config: serviceConfig() };
  const dest = (address: string, over = {}) => ({
    key: { family: address.includes(":") ? ("IPv6" as const) : ("IPv4" as const), address, port: 80 },
    config: destinationConfig(over),
  });
  it("returns the kernel's errors and keeps going after a failure", async () => {
    const { table, results } = await simulate(
      [],
      [
        { op: "updateService", service: svc },
        { op: "addService", service: svc },
        { op: "addService", service: svc },
        { op: "addDestination", service: svc.key, destination: dest("198.51.100.5") },
        { op: "addDestination", service: svc.key, destination: dest("198.51.100.5") },
        { op: "addDestination", service: svc.key, destination: dest("2001:db8::5") },
        {
          op: "addDestination",
          service: svc.key,
          destination: dest("2001:db8::5", { forwarding: "Tunnel" }),
        },
        { op: "addDestination", service: svc.key, destination: dest("198.51.100.6", { lowerThreshold: 1 }) },
        { op: "updateDestination", service: svc.key, destination: dest("198.51.100.7") },
        { op: "deleteDestination", service: svc.key, key: dest("198.51.100.7").key },
        { op: "deleteDestination", service: tcp("192.0.2.9", 80), key: dest("198.51.100.7").key },
        { op: "deleteService", key: tcp("192.0.2.9", 80) },
      ],
    );
    expect(results.map((r) => (r.ok ? "ok" : r.error.errno))).toEqual([
      "ESRCH",
      "ok",
      "EEXIST",
      "ok",
      "EEXIST",
      "EINVAL",
      "ok",
      "ERANGE",
      "ENOENT",
      "ENOENT",
      "ESRCH",
      "ESRCH",
    ]);
    // Newest first, as the kernel lists them.
    expect(table[0]!.destinations.map((d) => d.key.address)).toEqual(["2001:db8::5", "198.51.100.5"]);
  });

  it("builds a kernel that lists a table as given, counters included; updates keep counters and place", async () => {
    const start = [
      have(svc.key, [
        haveDest("198.51.100.9", 80, {}, { active: 4 }),
        haveDest("198.51.100.5", 80, {}, { inactive: 2 }),
      ]),
      have(udp("192.0.2.1", 53), []),
    ];
    expect((await simulate(start, [])).table).toEqual(start);
    const updated = (
      await simulate(start, [
        { op: "updateDestination", service: svc.key, destination: dest("198.51.100.9", { weight: 0 }) },
        { op: "addDestination", service: svc.key, destination: dest("198.51.100.7") },
      ])
    ).table;
    expect(
      updated[0]!.destinations.map((d) => [d.key.address, d.config.weight, d.activeConnections]),
    ).toEqual([
      ["198.51.100.7", 1, 0],
      ["198.51.100.9", 0, 4],
      ["198.51.100.5", 1, 0],
    ]);
    expect(start[0]!.destinations[0]!.config.weight).toBe(1);
    expect((await simulate(updated, [{ op: "deleteService", key: svc.key }])).table).toEqual([start[1]]);
  });

  it("refuses to build a table the kernel would not hold", async () => {
    await expect(kernelFrom([have(svc.key, [haveDest("224.0.0.1", 80)])])).rejects.toThrow(/EINVAL/);
  });
});
