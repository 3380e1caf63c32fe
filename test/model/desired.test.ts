import type { V1EndpointSlice, V1Endpoints, V1Service } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { computeDesired } from "../../src/model/desired.ts";
import { formatProblem } from "../../src/model/problems.ts";
import type { Snapshot } from "../../src/model/snapshot.ts";
import {
  coreEndpoints,
  NODE,
  problemSummary,
  rs,
  service,
  slice,
  snapshot,
  summary,
  vs,
} from "./desired-fixtures.ts";

const WEB = { address: "192.0.2.10", port: 80 };
const KEY = "TCP 192.0.2.10:80";

interface Case {
  name: string;
  snapshot: Snapshot;
  table: Record<string, string[]>;
  problems?: string[];
  node?: { name: string; labels: Record<string, string> };
}

const realServerCases: Case[] = [
  {
    name: "NAT: omitted RealServer port means the service port; an explicit one remaps",
    snapshot: snapshot({
      virtualServices: [vs("web", WEB)],
      realServers: [rs("a", { address: "198.51.100.5" }), rs("b", { address: "198.51.100.6", port: 8080 })],
    }),
    table: { [KEY]: ["198.51.100.5:80 w=1 NAT", "198.51.100.6:8080 w=1 NAT"] },
  },
  {
    name: "DirectRouting: port must equal the service port or be omitted; the bad one is reported, others stay",
    snapshot: snapshot({
      virtualServices: [vs("web", { ...WEB, forwarding: { method: "DirectRouting" } })],
      realServers: [
        rs("a", { address: "198.51.100.5" }),
        rs("b", { address: "198.51.100.6", port: 80 }),
        rs("c", { address: "198.51.100.7", port: 8080 }),
      ],
    }),
    table: { [KEY]: ["198.51.100.5:80 w=1 DirectRouting", "198.51.100.6:80 w=1 DirectRouting"] },
    problems: ["Invalid RealServer edge/c spec.port"],
  },
  {
    name: "family must match the service, except with Tunnel",
    snapshot: snapshot({
      virtualServices: [vs("web", WEB)],
      realServers: [
        rs("v6-nat", { address: "2001:db8::5" }),
        rs("v6-tun", {
          address: "2001:DB8:0:0::6",
          forwarding: { method: "Tunnel", tunnel: { type: "GUE", port: 6080 } },
        }),
      ],
    }),
    table: { [KEY]: ["[2001:db8::6]:80 w=1 Tunnel"] },
    problems: ["Invalid RealServer edge/v6-nat spec.address"],
  },
  {
    name: "enabled: false keeps the destination at weight 0; weight and thresholds are copied",
    snapshot: snapshot({
      virtualServices: [vs("web", WEB)],
      realServers: [
        rs("a", { address: "198.51.100.5", weight: 7, enabled: false }),
        rs("b", { address: "198.51.100.6", weight: 7, upperThreshold: 100, lowerThreshold: 50 }),
      ],
    }),
    table: { [KEY]: ["198.51.100.5:80 w=0 NAT", "198.51.100.6:80 w=7 NAT"] },
  },
  {
    name: "lowerThreshold without upperThreshold is rejected like the kernel does (ERANGE)",
    snapshot: snapshot({
      virtualServices: [vs("web", WEB)],
      realServers: [
        rs("a", { address: "198.51.100.5", lowerThreshold: 5 }),
        rs("b", { address: "198.51.100.6" }),
      ],
    }),
    table: { [KEY]: ["198.51.100.6:80 w=1 NAT"] },
    problems: ["Invalid RealServer edge/a spec.lowerThreshold"],
  },
  {
    name: "RealServer naming a missing VirtualService: NotFound on the RealServer",
    snapshot: snapshot({
      virtualServices: [vs("web", WEB)],
      realServers: [rs("a", { address: "198.51.100.5", virtualServiceRef: { name: "nope" } })],
    }),
    table: { [KEY]: [] },
    problems: ["NotFound RealServer edge/a spec.virtualServiceRef.name"],
  },
  {
    name: "a VirtualService of another namespace does not count",
    snapshot: snapshot({
      virtualServices: [vs("web", WEB, { namespace: "other" })],
      realServers: [rs("a", { address: "198.51.100.5" })],
    }),
    table: { [KEY]: [] },
    problems: ["NotFound RealServer edge/a spec.virtualServiceRef.name"],
  },
  {
    name: "invalid RealServer: reported with its field, the valid one is planned",
    snapshot: snapshot({
      virtualServices: [vs("web", WEB)],
      realServers: [
        rs("a", { address: "not-an-ip" }),
        rs("b", { address: "198.51.100.6", weight: 70000 }),
        rs("c", { address: "198.51.100.7" }),
      ],
    }),
    table: { [KEY]: ["198.51.100.7:80 w=1 NAT"] },
    problems: ["Invalid RealServer edge/a spec.address", "Invalid RealServer edge/b spec.weight"],
  },
  {
    name: "two RealServers for one destination: the older wins",
    snapshot: snapshot({
      virtualServices: [vs("web", WEB)],
      realServers: [
        rs("young", { address: "198.51.100.5", weight: 2 }, { creationTimestamp: "2025-02-01T00:00:00Z" }),
        rs("old", { address: "198.51.100.5", weight: 3 }, { creationTimestamp: "2025-01-01T00:00:00Z" }),
      ],
    }),
    table: { [KEY]: ["198.51.100.5:80 w=3 NAT"] },
    problems: ["Duplicate RealServer edge/young spec.address"],
  },
  ...[false, true].map(
    (reversed): Case => ({
      name: `two RealServers with one name: the first by JSON text is used${reversed ? " (input reversed)" : ""}`,
      snapshot: snapshot({
        virtualServices: [vs("web", WEB)],
        realServers: (() => {
          const both = [rs("a", { address: "198.51.100.6" }), rs("a", { address: "198.51.100.5" })];
          return reversed ? both.reverse() : both;
        })(),
      }),
      table: { [KEY]: ["198.51.100.5:80 w=1 NAT"] },
      problems: ["Duplicate RealServer edge/a"],
    }),
  ),
  {
    name: "fwmark service: destination port 0 when omitted, the given port otherwise",
    snapshot: snapshot({
      virtualServices: [
        vs("web", { firewallMark: 7, family: "IPv4", forwarding: { method: "DirectRouting" } }),
      ],
      realServers: [rs("a", { address: "198.51.100.5" }), rs("b", { address: "198.51.100.6", port: 443 })],
    }),
    table: { "FWM 7 IPv4": ["198.51.100.5:0 w=1 DirectRouting", "198.51.100.6:443 w=1 DirectRouting"] },
  },
  {
    name: "all-ports service (port 0, persistent) with DirectRouting: destination port 0",
    snapshot: snapshot({
      virtualServices: [
        vs("web", {
          address: "192.0.2.10",
          port: 0,
          persistence: {},
          forwarding: { method: "DirectRouting" },
        }),
      ],
      realServers: [rs("a", { address: "198.51.100.5" })],
    }),
    table: { "TCP 192.0.2.10:0": ["198.51.100.5:0 w=1 DirectRouting"] },
  },
  {
    name: "all-ports service with DirectRouting / Tunnel: a RealServer port other than 0 is reported and skipped, like any port mismatch",
    snapshot: snapshot({
      virtualServices: [
        vs("web", {
          address: "192.0.2.10",
          port: 0,
          persistence: {},
          forwarding: { method: "DirectRouting" },
        }),
      ],
      realServers: [
        rs("a", { address: "198.51.100.5" }),
        rs("c", { address: "198.51.100.7", port: 8080 }),
        rs("d", { address: "198.51.100.8", port: 8080, forwarding: { method: "Tunnel" } }),
        rs("e", { address: "198.51.100.9", port: 8080, forwarding: { method: "NAT" } }),
      ],
    }),
    table: {
      "TCP 192.0.2.10:0": ["198.51.100.5:0 w=1 DirectRouting", "198.51.100.9:8080 w=1 NAT"],
    },
    problems: ["Invalid RealServer edge/c spec.port", "Invalid RealServer edge/d spec.port"],
  },
];

const virtualServiceCases: Case[] = [
  {
    name: "invalid VirtualService: reported per field, not planned, others still planned",
    snapshot: snapshot({
      virtualServices: [vs("bad", { address: "192.0.2.11", port: 80, scheduler: "nope" }), vs("web", WEB)],
    }),
    table: { [KEY]: [] },
    problems: ["Invalid VirtualService edge/bad spec.scheduler"],
  },
  {
    name: "garbage objects become problems, never exceptions",
    snapshot: snapshot({
      virtualServices: [null, 42, "x", { metadata: { name: "m" } }, vs("web", WEB)],
      realServers: [null, { spec: {} }],
    }),
    table: { [KEY]: [] },
    problems: [
      "Invalid RealServer default/<unnamed>",
      "Invalid RealServer default/<unnamed> apiVersion",
      "Invalid RealServer default/<unnamed> kind",
      "Invalid RealServer default/<unnamed> metadata",
      "Invalid RealServer default/<unnamed> spec.address",
      "Invalid RealServer default/<unnamed> spec.virtualServiceRef",
      "Invalid VirtualService default/<unnamed>",
      "Invalid VirtualService default/<unnamed>",
      "Invalid VirtualService default/<unnamed>",
      "Invalid VirtualService default/m apiVersion",
      "Invalid VirtualService default/m kind",
      "Invalid VirtualService default/m spec",
    ],
  },
  {
    name: "key conflict: the older VirtualService wins, the younger is reported and its RealServers depend on it",
    snapshot: snapshot({
      virtualServices: [
        vs("young", { ...WEB, scheduler: "rr" }, { creationTimestamp: "2025-02-01T00:00:00Z" }),
        vs("old", WEB, { creationTimestamp: "2025-01-01T00:00:00Z" }),
      ],
      realServers: [
        rs("a", { address: "198.51.100.5", virtualServiceRef: { name: "young" } }),
        rs("b", { address: "198.51.100.6", virtualServiceRef: { name: "old" } }),
      ],
    }),
    table: { [KEY]: ["198.51.100.6:80 w=1 NAT"] },
    // Problems come sorted by object kind, namespace, name.
    problems: [
      "Dependency RealServer edge/a spec.virtualServiceRef.name",
      "Conflict VirtualService edge/young spec.address",
    ],
  },
  {
    name: "key conflict with equal age: namespace/name decides",
    snapshot: snapshot({
      virtualServices: [vs("b", WEB), vs("a", WEB)],
    }),
    table: { [KEY]: [] },
    problems: ["Conflict VirtualService edge/b spec.address"],
  },
  {
    name: "nodeSelector not matching this node: not programmed, no problem",
    snapshot: snapshot({
      virtualServices: [vs("web", { ...WEB, nodeSelector: { matchLabels: { zone: "b" } } })],
      realServers: [rs("a", { address: "198.51.100.5" })],
    }),
    table: {},
  },
  {
    name: "nodeSelector matching this node: programmed",
    snapshot: snapshot({
      virtualServices: [
        vs("web", {
          ...WEB,
          nodeSelector: {
            matchLabels: { zone: "a" },
            matchExpressions: [{ key: "gpu", operator: "DoesNotExist" }],
          },
        }),
      ],
    }),
    table: { [KEY]: [] },
  },
];

describe("computeDesired: real servers", () => {
  it.each(realServerCases)("$name", (c) => {
    const result = computeDesired(c.snapshot, c.node ?? NODE);
    expect(summary(result)).toEqual(c.table);
    expect(problemSummary(result)).toEqual(c.problems ?? []);
  });
});

describe("computeDesired: virtual services", () => {
  it.each(virtualServiceCases)("$name", (c) => {
    const result = computeDesired(c.snapshot, c.node ?? NODE);
    expect(summary(result)).toEqual(c.table);
    expect(problemSummary(result)).toEqual(c.problems ?? []);
  });

  it("names the older VirtualService in the conflict message", () => {
    const r = computeDesired(virtualServiceCases[2]!.snapshot, NODE);
    expect(formatProblem(r.problems.find((p) => p.kind === "Conflict")!)).toBe(
      "VirtualService edge/young spec.address: IPVS service TCP 192.0.2.10:80 is already claimed by the older VirtualService edge/old",
    );
  });
});

describe("computeDesired: kernel mapping of the service", () => {
  it("defaults: wlc, not persistent, timeout 0, netmask /32 (what ipvsadm sends)", () => {
    const r = computeDesired(snapshot({ virtualServices: [vs("web", WEB)] }), NODE);
    expect(r.table[0]!.service).toEqual({
      key: { kind: "address", family: "IPv4", protocol: "TCP", address: "192.0.2.10", port: 80 },
      config: {
        scheduler: "wlc",
        flags: {
          persistent: false,
          onePacket: false,
          schedFlag1: false,
          schedFlag2: false,
          schedFlag3: false,
        },
        timeout: 0,
        netmask: 0xffffffff,
        persistenceEngine: "",
      },
      source: { namespace: "edge", name: "web" },
      driftPolicy: "Repair",
      drainTimeoutSeconds: 300,
    });
  });

  it("IPv6 non-persistent: netmask 128; address canonical", () => {
    const r = computeDesired(
      snapshot({ virtualServices: [vs("web", { address: "2001:DB8:0::A", port: 443 })] }),
      NODE,
    );
    expect(r.table[0]!.service.key).toMatchObject({ family: "IPv6", address: "2001:db8::a" });
    expect(r.table[0]!.service.config.netmask).toBe(128);
  });

  it.each([
    {
      spec: { scheduler: "sh", schedulerFlags: ["sh-fallback", "sh-port"] },
      flags: { schedFlag1: true, schedFlag2: true },
    },
    {
      spec: { scheduler: "mh", schedulerFlags: ["mh-port"] },
      flags: { schedFlag1: false, schedFlag2: true },
    },
    {
      spec: { scheduler: "mh", schedulerFlags: ["mh-fallback"] },
      flags: { schedFlag1: true, schedFlag2: false },
    },
  ])("scheduler flags $spec.schedulerFlags", ({ spec, flags }) => {
    const r = computeDesired(snapshot({ virtualServices: [vs("web", { ...WEB, ...spec })] }), NODE);
    expect(r.problems).toEqual([]);
    expect(r.table[0]!.service.config.flags).toMatchObject(flags);
    expect(r.table[0]!.service.config.scheduler).toBe(spec.scheduler);
  });

  it("persistence IPv4: flag, default timeout 360, dotted netmask as a number, engine", () => {
    const r = computeDesired(
      snapshot({
        virtualServices: [vs("web", { ...WEB, persistence: { netmask: "255.255.255.0", engine: "sip" } })],
      }),
      NODE,
    );
    expect(r.table[0]!.service.config).toMatchObject({
      flags: { persistent: true },
      timeout: 360,
      netmask: 0xffffff00,
      persistenceEngine: "sip",
    });
  });

  it("persistence IPv6: prefix length, custom timeout", () => {
    const r = computeDesired(
      snapshot({
        virtualServices: [
          vs("web", {
            address: "2001:db8::1",
            port: 80,
            persistence: { timeoutSeconds: 60, prefixLength: 64 },
          }),
        ],
      }),
      NODE,
    );
    expect(r.table[0]!.service.config).toMatchObject({
      flags: { persistent: true },
      timeout: 60,
      netmask: 64,
    });
  });

  it("onePacket (UDP), fwmark IPv6 key, drift policy and drain timeout", () => {
    const r = computeDesired(
      snapshot({
        virtualServices: [
          vs("dns", {
            address: "192.0.2.53",
            port: 53,
            protocol: "UDP",
            onePacket: true,
            drain: { timeoutSeconds: 0 },
          }),
          vs("mark", { firewallMark: 9, family: "IPv6", driftPolicy: "Report" }),
        ],
      }),
      NODE,
    );
    expect(r.problems).toEqual([]);
    const [dns, mark] = r.table;
    expect(dns!.service).toMatchObject({
      key: { protocol: "UDP", port: 53 },
      config: { flags: { onePacket: true } },
      drainTimeoutSeconds: 0,
    });
    expect(mark!.service).toMatchObject({
      key: { kind: "fwmark", fwmark: 9, family: "IPv6" },
      driftPolicy: "Report",
      config: { netmask: 128 },
    });
  });

  it("tunnel fields come from the forwarding; other methods get the neutral tunnel values", () => {
    const r = computeDesired(
      snapshot({
        virtualServices: [
          vs("web", {
            ...WEB,
            forwarding: { method: "Tunnel", tunnel: { type: "GUE", port: 6080, checksum: "RemoteChecksum" } },
          }),
        ],
        realServers: [
          rs("a", { address: "198.51.100.5" }),
          rs("b", { address: "198.51.100.6", forwarding: { method: "Tunnel", tunnel: { type: "GRE" } } }),
          rs("c", { address: "198.51.100.7", forwarding: { method: "DirectRouting" } }),
        ],
      }),
      NODE,
    );
    expect(r.table[0]!.destinations.map((d) => d.config)).toEqual([
      {
        forwarding: "Tunnel",
        weight: 1,
        upperThreshold: 0,
        lowerThreshold: 0,
        tunnelType: "GUE",
        tunnelPort: 6080,
        tunnelChecksum: "RemoteChecksum",
      },
      {
        forwarding: "Tunnel",
        weight: 1,
        upperThreshold: 0,
        lowerThreshold: 0,
        tunnelType: "GRE",
        tunnelPort: 0,
        tunnelChecksum: "None",
      },
      {
        forwarding: "DirectRouting",
        weight: 1,
        upperThreshold: 0,
        lowerThreshold: 0,
        tunnelType: "IPIP",
        tunnelPort: 0,
        tunnelChecksum: "None",
      },
    ]);
  });
});

describe("computeDesired: endpoints", () => {
  const api = {
    address: "192.0.2.30",
    port: 80,
    backends: { serviceRef: { name: "api", port: "http" }, weight: 2 },
  };
  const apiKey = "TCP 192.0.2.30:80";
  const svc = service("api", [
    { name: "http", port: 80, protocol: "TCP" },
    { name: "metrics", port: 9090 },
  ]);
  const ports = [
    { name: "http", port: 8080, protocol: "TCP" },
    { name: "metrics", port: 9091 },
  ];

  it("EndpointSlices: ready (or unset) -> backends weight; serving+terminating -> draining at 0; others absent", () => {
    const r = computeDesired(
      snapshot({
        virtualServices: [vs("api", api)],
        services: [svc],
        endpointSlices: [
          slice(
            "api-1",
            "api",
            [
              { address: "198.51.100.120", ready: true, serving: true, terminating: false },
              { address: "198.51.100.121" },
              { address: "198.51.100.122", ready: false, serving: true, terminating: true },
              { address: "198.51.100.123", ready: false, serving: false, terminating: false },
              { address: "198.51.100.124", ready: false, serving: false, terminating: true },
              { address: "198.51.100.125", ready: false, serving: true },
            ],
            ports,
          ),
          slice("api-v6", "api", [{ address: "2001:db8::1" }], ports, "IPv6"),
          slice("other-svc", "other", [{ address: "198.51.100.200" }], ports),
          slice("other-ns", "api", [{ address: "198.51.100.201" }], ports, "IPv4", "elsewhere"),
        ],
      }),
      NODE,
    );
    expect(r.problems).toEqual([]);
    expect(summary(r)).toEqual({
      [apiKey]: [
        "198.51.100.120:8080 w=2 NAT",
        "198.51.100.121:8080 w=2 NAT",
        "198.51.100.122:8080 w=0 NAT draining",
      ],
    });
    expect(r.table[0]!.destinations[0]!.source).toEqual({
      kind: "Endpoint",
      namespace: "edge",
      name: "api-1",
    });
  });

  it("the same address in two slices: ready beats draining", () => {
    const r = computeDesired(
      snapshot({
        virtualServices: [vs("api", api)],
        services: [svc],
        endpointSlices: [
          slice(
            "api-a",
            "api",
            [{ address: "198.51.100.120", ready: false, serving: true, terminating: true }],
            ports,
          ),
          slice("api-b", "api", [{ address: "198.51.100.120", ready: true }], ports),
        ],
      }),
      NODE,
    );
    expect(summary(r)).toEqual({ [apiKey]: ["198.51.100.120:8080 w=2 NAT"] });
  });

  it.each([
    { port: 80, expected: ["198.51.100.120:8080 w=2 NAT"], problems: [] },
    { port: "metrics", expected: ["198.51.100.120:9091 w=2 NAT"], problems: [] },
    { port: 81, expected: [], problems: ["Invalid VirtualService edge/api spec.backends.serviceRef.port"] },
    {
      port: undefined,
      expected: [],
      problems: ["Invalid VirtualService edge/api spec.backends.serviceRef.port"],
    },
  ])("serviceRef.port $port resolves through the Service", ({ port, expected, problems }) => {
    const r = computeDesired(
      snapshot({
        virtualServices: [
          vs("api", {
            ...api,
            backends: { serviceRef: { name: "api", ...(port === undefined ? {} : { port }) }, weight: 2 },
          }),
        ],
        services: [svc],
        endpointSlices: [slice("api-1", "api", [{ address: "198.51.100.120" }], ports)],
      }),
      NODE,
    );
    expect(summary(r)).toEqual({ [apiKey]: expected });
    expect(problemSummary(r)).toEqual(problems);
  });

  it("a single-port Service needs no port name; unnamed ports match unnamed slice ports", () => {
    const r = computeDesired(
      snapshot({
        virtualServices: [vs("api", { ...api, backends: { serviceRef: { name: "api" } } })],
        services: [service("api", [{ port: 80 }])],
        endpointSlices: [slice("api-1", "api", [{ address: "198.51.100.120" }], [{ port: 8080 }])],
      }),
      NODE,
    );
    expect(summary(r)).toEqual({ [apiKey]: ["198.51.100.120:8080 w=1 NAT"] });
  });

  it("missing Service: NotFound on the VirtualService, RealServers still planned", () => {
    const r = computeDesired(
      snapshot({
        virtualServices: [vs("api", api)],
        realServers: [rs("a", { address: "198.51.100.5", virtualServiceRef: { name: "api" } })],
      }),
      NODE,
    );
    expect(summary(r)).toEqual({ [apiKey]: ["198.51.100.5:80 w=1 NAT"] });
    expect(problemSummary(r)).toEqual(["NotFound VirtualService edge/api spec.backends.serviceRef.name"]);
  });

  it("Service port protocol must match the virtual service protocol", () => {
    const r = computeDesired(
      snapshot({
        virtualServices: [vs("api", { ...api, protocol: "UDP" })],
        services: [svc],
        endpointSlices: [slice("api-1", "api", [{ address: "198.51.100.120" }], ports)],
      }),
      NODE,
    );
    expect(summary(r)).toEqual({ "UDP 192.0.2.30:80": [] });
    expect(problemSummary(r)).toEqual(["Invalid VirtualService edge/api spec.backends.serviceRef.port"]);
  });

  it("core/v1 Endpoints when backends.source is Endpoints: addresses ready, notReadyAddresses absent", () => {
    const r = computeDesired(
      snapshot({
        virtualServices: [vs("api", { ...api, backends: { ...api.backends, source: "Endpoints" } })],
        services: [svc],
        endpoints: [
          coreEndpoints(
            "api",
            ["198.51.100.130", "198.51.100.131"],
            ["198.51.100.132"],
            [{ name: "http", port: 8080 }],
          ),
        ],
        endpointSlices: [slice("api-1", "api", [{ address: "198.51.100.120" }], ports)],
      }),
      NODE,
    );
    expect(summary(r)).toEqual({ [apiKey]: ["198.51.100.130:8080 w=2 NAT", "198.51.100.131:8080 w=2 NAT"] });
  });

  it("a destination from both a RealServer and an endpoint: the RealServer wins", () => {
    const r = computeDesired(
      snapshot({
        virtualServices: [vs("api", api)],
        services: [svc],
        endpointSlices: [
          slice("api-1", "api", [{ address: "198.51.100.120" }, { address: "198.51.100.121" }], ports),
        ],
        realServers: [
          rs("pinned", {
            address: "198.51.100.120",
            port: 8080,
            weight: 9,
            virtualServiceRef: { name: "api" },
          }),
        ],
      }),
      NODE,
    );
    expect(summary(r)).toEqual({ [apiKey]: ["198.51.100.120:8080 w=9 NAT", "198.51.100.121:8080 w=2 NAT"] });
    expect(problemSummary(r)).toEqual(["Duplicate RealServer edge/pinned spec.address"]);
    expect(r.table[0]!.destinations[0]!.source.kind).toBe("RealServer");
  });

  it("DirectRouting: endpoints must listen on the service port; destination port = service port", () => {
    const dr = { ...api, forwarding: { method: "DirectRouting" } };
    const good = computeDesired(
      snapshot({
        virtualServices: [vs("api", dr)],
        services: [svc],
        endpointSlices: [
          slice("api-1", "api", [{ address: "198.51.100.120" }], [{ name: "http", port: 80 }]),
        ],
      }),
      NODE,
    );
    expect(summary(good)).toEqual({ [apiKey]: ["198.51.100.120:80 w=2 DirectRouting"] });
    const bad = computeDesired(
      snapshot({
        virtualServices: [vs("api", dr)],
        services: [svc],
        endpointSlices: [slice("api-1", "api", [{ address: "198.51.100.120" }], ports)],
      }),
      NODE,
    );
    expect(summary(bad)).toEqual({ [apiKey]: [] });
    expect(problemSummary(bad)).toEqual([
      "Unsupported VirtualService edge/api spec.backends.serviceRef.port",
    ]);
  });

  it("all-ports service: endpoint destinations get port 0; fwmark NAT keeps the endpoint port", () => {
    const r = computeDesired(
      snapshot({
        virtualServices: [
          vs("api", { ...api, port: 0, persistence: {} }),
          vs("mark", { firewallMark: 3, family: "IPv4", backends: api.backends }),
        ],
        services: [svc],
        endpointSlices: [slice("api-1", "api", [{ address: "198.51.100.120" }], ports)],
      }),
      NODE,
    );
    expect(summary(r)).toEqual({
      "TCP 192.0.2.30:0": ["198.51.100.120:0 w=2 NAT"],
      "FWM 3 IPv4": ["198.51.100.120:8080 w=2 NAT"],
    });
  });
});

describe("computeDesired: health and sorry server", () => {
  const shop = {
    ...WEB,
    healthCheck: { type: "TCP", onFailure: "Quiesce" },
    sorryServer: { address: "198.51.100.149", port: 8080 },
  };
  const servers = [
    rs("a", { address: "198.51.100.140", port: 8080 }),
    rs("b", { address: "198.51.100.141", port: 8080 }),
  ];
  const h = (a: boolean | undefined, b: boolean | undefined) => {
    const m = new Map<string, boolean>();
    if (a !== undefined) m.set("edge/web|198.51.100.140|8080", a);
    if (b !== undefined) m.set("edge/web|198.51.100.141|8080", b);
    return m;
  };

  it.each([
    {
      name: "both healthy",
      health: h(true, true),
      expected: ["198.51.100.140:8080 w=1 NAT", "198.51.100.141:8080 w=1 NAT"],
    },
    {
      name: "one unhealthy: quiesced",
      health: h(true, false),
      expected: ["198.51.100.140:8080 w=1 NAT", "198.51.100.141:8080 w=0 NAT"],
    },
    {
      name: "none healthy: sorry server, the quiesced ones stay at weight 0",
      health: h(false, false),
      expected: ["198.51.100.140:8080 w=0 NAT", "198.51.100.141:8080 w=0 NAT", "198.51.100.149:8080 w=1 NAT"],
    },
    {
      name: "no results yet: initialState Unhealthy (default) -> sorry server",
      health: h(undefined, undefined),
      expected: ["198.51.100.140:8080 w=0 NAT", "198.51.100.141:8080 w=0 NAT", "198.51.100.149:8080 w=1 NAT"],
    },
  ])("Quiesce with sorry server: $name", ({ health, expected }) => {
    const r = computeDesired(
      snapshot({ virtualServices: [vs("web", shop)], realServers: servers }),
      NODE,
      health,
    );
    expect(summary(r)).toEqual({ [KEY]: expected });
    expect(
      r.table[0]!.destinations.every((d) => d.source.kind !== "SorryServer" || d.source.name === "web"),
    ).toBe(true);
  });

  it("Remove: unhealthy backends are absent; initialState Healthy counts until a result arrives", () => {
    const spec = { ...WEB, healthCheck: { type: "HTTP", onFailure: "Remove", initialState: "Healthy" } };
    const r = computeDesired(
      snapshot({ virtualServices: [vs("web", spec)], realServers: servers }),
      NODE,
      h(false, undefined),
    );
    expect(summary(r)).toEqual({ [KEY]: ["198.51.100.141:8080 w=1 NAT"] });
  });

  it("a RealServer's own health check replaces the service's; type None is always healthy", () => {
    const r = computeDesired(
      snapshot({
        virtualServices: [vs("web", { ...WEB, healthCheck: { type: "TCP" } })],
        realServers: [
          rs("a", { address: "198.51.100.140", port: 8080, healthCheck: { type: "None" } }),
          servers[1],
        ],
      }),
      NODE,
    );
    expect(summary(r)).toEqual({ [KEY]: ["198.51.100.140:8080 w=1 NAT", "198.51.100.141:8080 w=0 NAT"] });
    expect(r.healthTargets.map((t) => t.key)).toEqual(["edge/web|198.51.100.141|8080"]);
  });

  it("sorry server when there are no real servers at all; not when one has weight", () => {
    const empty = computeDesired(
      snapshot({ virtualServices: [vs("web", { ...WEB, sorryServer: { address: "198.51.100.149" } })] }),
      NODE,
    );
    expect(summary(empty)).toEqual({ [KEY]: ["198.51.100.149:80 w=1 NAT"] });
    expect(empty.table[0]!.destinations[0]!.source).toEqual({
      kind: "SorryServer",
      namespace: "edge",
      name: "web",
    });
    const withOne = computeDesired(
      snapshot({
        virtualServices: [vs("web", { ...WEB, sorryServer: { address: "198.51.100.149" } })],
        realServers: [servers[0]],
      }),
      NODE,
    );
    expect(summary(withOne)).toEqual({ [KEY]: ["198.51.100.140:8080 w=1 NAT"] });
  });

  it("health targets list every probed backend with its check, endpoints included", () => {
    const r = computeDesired(
      snapshot({
        virtualServices: [
          vs("web", {
            ...WEB,
            healthCheck: { type: "HTTP", path: "/healthz" },
            backends: { serviceRef: { name: "api" } },
          }),
        ],
        services: [service("api", [{ port: 80 }])],
        endpointSlices: [slice("api-1", "api", [{ address: "198.51.100.120" }], [{ port: 8080 }])],
        realServers: [servers[0]],
      }),
      NODE,
      new Map([["edge/web|198.51.100.120|8080", true]]),
    );
    expect(r.healthTargets.map((t) => [t.key, t.source.kind, t.healthCheck.path])).toEqual([
      ["edge/web|198.51.100.120|8080", "Endpoint", "/healthz"],
      ["edge/web|198.51.100.140|8080", "RealServer", "/healthz"],
    ]);
    expect(summary(r)).toEqual({ [KEY]: ["198.51.100.120:8080 w=1 NAT", "198.51.100.140:8080 w=0 NAT"] });
  });
});

describe("computeDesired: uniqueNames (a source that holds one object per name)", () => {
  const parts = {
    virtualServices: [vs("web", WEB), vs("api", { address: "192.0.2.11", port: 80 })],
    realServers: [
      rs("a", { address: "198.51.100.5" }),
      rs("b", { address: "198.51.100.6", virtualServiceRef: { name: "api" } }),
      rs("c", { address: "198.51.100.5" }),
    ],
  };

  it("with unique names, gives what the search for duplicates gives", () => {
    const searched = computeDesired(snapshot(parts), NODE);
    const trusted = computeDesired({ ...snapshot(parts), uniqueNames: true }, NODE);
    expect(summary(trusted)).toEqual(summary(searched));
    expect(problemSummary(trusted)).toEqual(problemSummary(searched));
  });

  it("with unique names, the older of two RealServers for one destination wins in any input order", () => {
    const pair = [
      rs("young", { address: "198.51.100.5", weight: 2 }, { creationTimestamp: "2025-02-01T00:00:00Z" }),
      rs("old", { address: "198.51.100.5", weight: 3 }, { creationTimestamp: "2025-01-01T00:00:00Z" }),
      rs("z", { address: "198.51.100.7" }),
      rs("y", { address: "198.51.100.7", weight: 4 }),
    ];
    for (const realServers of [pair, [...pair].reverse()]) {
      const trusted = computeDesired(
        { ...snapshot({ virtualServices: [vs("web", WEB)], realServers }), uniqueNames: true },
        NODE,
      );
      expect(summary(trusted)).toEqual({ [KEY]: ["198.51.100.5:80 w=3 NAT", "198.51.100.7:80 w=4 NAT"] });
      expect(problemSummary(trusted)).toEqual([
        "Duplicate RealServer edge/young spec.address",
        "Duplicate RealServer edge/z spec.address",
      ]);
    }
  });

  it("is what decides whether two objects with one name are looked for", () => {
    const twice = {
      virtualServices: [vs("web", WEB)],
      realServers: [rs("a", { address: "198.51.100.6" }), rs("a", { address: "198.51.100.5" })],
    };
    expect(problemSummary(computeDesired(snapshot(twice), NODE))).toEqual(["Duplicate RealServer edge/a"]);
    // A source that breaks the promise: both objects are read, nothing is reported as a duplicate name.
    const trusted = computeDesired({ ...snapshot(twice), uniqueNames: true }, NODE);
    expect(problemSummary(trusted)).toEqual([]);
    expect(summary(trusted)).toEqual({ [KEY]: ["198.51.100.5:80 w=1 NAT", "198.51.100.6:80 w=1 NAT"] });
  });
});

describe("computeDesired: determinism", () => {
  it("gives the same result whatever the order of the snapshot", () => {
    const parts = {
      virtualServices: [
        vs("web", { ...WEB, backends: { serviceRef: { name: "api" } } }),
        vs("dup", WEB, { creationTimestamp: "2030-01-01T00:00:00Z" }),
        vs("v6", { address: "2001:db8::1", port: 80 }),
        vs("bad", { port: 80 }),
      ],
      realServers: [
        rs("a", { address: "198.51.100.5" }),
        rs("b", { address: "198.51.100.6" }),
        rs("c", { address: "198.51.100.5" }),
        rs("d", { address: "2001:db8::5", virtualServiceRef: { name: "v6" } }),
        rs("e", { address: "198.51.100.9", virtualServiceRef: { name: "dup" } }),
      ],
      services: [service("api", [{ port: 80 }])],
      endpointSlices: [
        slice("s1", "api", [{ address: "198.51.100.20" }, { address: "198.51.100.6" }], [{ port: 80 }]),
        slice(
          "s2",
          "api",
          [
            { address: "198.51.100.21" },
            { address: "198.51.100.20", ready: false, serving: true, terminating: true },
          ],
          [{ port: 80 }],
        ),
      ],
    };
    const forward = computeDesired(snapshot(parts), NODE);
    const reversed = computeDesired(
      snapshot({
        virtualServices: [...parts.virtualServices].reverse(),
        realServers: [...parts.realServers].reverse(),
        services: parts.services,
        endpointSlices: [...parts.endpointSlices].reverse(),
      }),
      NODE,
    );
    expect(reversed).toEqual(forward);
    expect(forward.problems.length).toBeGreaterThan(2);
  });

  it("orders objects that are literally named <unnamed> (valid names) by their JSON text, whatever the input order", () => {
    // Such names escape the duplicate check (it leaves the nameless to validation), so the age-then-name
    // order ties between them and their JSON text has to decide.
    const virtualServices = [
      vs("<unnamed>", { ...WEB, scheduler: "wlc" }),
      vs("<unnamed>", { ...WEB, scheduler: "rr" }),
    ];
    const realServers = [
      rs("<unnamed>", { address: "198.51.100.5", weight: 3 }),
      rs("<unnamed>", { address: "198.51.100.5", weight: 2 }),
    ];
    for (const reversed of [false, true]) {
      const order = <T>(list: T[]) => (reversed ? [...list].reverse() : list);
      const conflict = computeDesired(snapshot({ virtualServices: order(virtualServices) }), NODE);
      expect(conflict.table.map((e) => e.service.config.scheduler)).toEqual(["rr"]);
      const duplicate = computeDesired(
        snapshot({ virtualServices: [vs("web", WEB)], realServers: order(realServers) }),
        NODE,
      );
      expect(summary(duplicate)).toEqual({ [KEY]: ["198.51.100.5:80 w=2 NAT"] });
    }
  });
});

describe("computeDesired: Service port and protocol", () => {
  // kube-dns: one port number, two protocols; the slice ports tell which one was chosen.
  const dnsService = service("kube-dns", [
    { name: "dns-tcp", port: 53, protocol: "TCP" },
    { name: "dns", port: 53, protocol: "UDP" },
    { name: "metrics", port: 9153, protocol: "TCP" },
  ]);
  const dnsSlice = slice(
    "kube-dns-1",
    "kube-dns",
    [{ address: "198.51.100.53" }],
    [
      { name: "dns-tcp", port: 5353, protocol: "TCP" },
      { name: "dns", port: 5300, protocol: "UDP" },
      { name: "metrics", port: 9153, protocol: "TCP" },
    ],
  );
  const bad = ["Invalid VirtualService edge/dns spec.backends.serviceRef.port"];
  it.each([
    {
      name: "UDP by number picks the UDP port",
      spec: { protocol: "UDP", port: 53 },
      ref: 53,
      want: ["198.51.100.53:5300 w=1 NAT"],
      problems: [],
    },
    {
      name: "TCP by number picks the TCP port",
      spec: { protocol: "TCP", port: 53 },
      ref: 53,
      want: ["198.51.100.53:5353 w=1 NAT"],
      problems: [],
    },
    {
      name: "UDP, port omitted: the single UDP port",
      spec: { protocol: "UDP", port: 53 },
      ref: undefined,
      want: ["198.51.100.53:5300 w=1 NAT"],
      problems: [],
    },
    {
      name: "TCP, port omitted: two TCP ports are ambiguous",
      spec: { protocol: "TCP", port: 53 },
      ref: undefined,
      want: [],
      problems: bad,
    },
    {
      name: "UDP by the name of the TCP port: protocol mismatch",
      spec: { protocol: "UDP", port: 53 },
      ref: "dns-tcp",
      want: [],
      problems: bad,
    },
    {
      name: "SCTP by number: no SCTP port 53",
      spec: { protocol: "SCTP", port: 53 },
      ref: 53,
      want: [],
      problems: bad,
    },
    {
      name: "fwmark by number: two protocols are ambiguous",
      spec: { firewallMark: 5, family: "IPv4" },
      ref: 53,
      want: [],
      problems: bad,
    },
    {
      name: "fwmark by name",
      spec: { firewallMark: 5, family: "IPv4" },
      ref: "dns",
      want: ["198.51.100.53:5300 w=1 NAT"],
      problems: [],
    },
    {
      name: "fwmark by an unambiguous number",
      spec: { firewallMark: 5, family: "IPv4" },
      ref: 9153,
      want: ["198.51.100.53:9153 w=1 NAT"],
      problems: [],
    },
  ])("$name", ({ spec, ref, want, problems }) => {
    const address = "firewallMark" in spec ? {} : { address: "10.96.0.10" };
    const r = computeDesired(
      snapshot({
        virtualServices: [
          vs("dns", {
            ...address,
            ...spec,
            backends: { serviceRef: { name: "kube-dns", ...(ref === undefined ? {} : { port: ref }) } },
          }),
        ],
        services: [dnsService],
        endpointSlices: [dnsSlice],
      }),
      NODE,
    );
    expect(Object.values(summary(r))).toEqual([want]);
    expect(problemSummary(r)).toEqual(problems);
  });
});

describe("computeDesired: malformed Services, EndpointSlices and Endpoints", () => {
  const api = { address: "192.0.2.30", port: 80, backends: { serviceRef: { name: "api" } } };
  const apiEndpoints = { ...api, backends: { serviceRef: { name: "api" }, source: "Endpoints" } };
  const svc = service("api", [{ port: 80 }]);
  const good = slice("api-good", "api", [{ address: "198.51.100.1" }], [{ port: 8080 }]);
  const rsA = rs("a", { address: "198.51.100.5", virtualServiceRef: { name: "api" } });
  /** A slice of Service api with its fields replaced by `over`. */
  const raw = (name: string, over: Record<string, unknown>) =>
    ({ ...slice(name, "api", [], [{ port: 8080 }]), ...over }) as unknown as V1EndpointSlice;
  const rawEndpoints = (over: Record<string, unknown>) =>
    ({ ...coreEndpoints("api", [], [], []), ...over }) as unknown as V1Endpoints;

  it.each([
    {
      name: "endpoints is not a list: that slice is skipped",
      vs: api,
      services: [svc],
      slices: [good, raw("api-bad", { endpoints: 5 })],
      endpoints: [],
      table: ["198.51.100.1:8080 w=1 NAT", "198.51.100.5:80 w=1 NAT"],
      problems: ["Invalid EndpointSlice edge/api-bad endpoints"],
    },
    {
      name: "ports is not a list: that slice is skipped",
      vs: api,
      services: [svc],
      slices: [good, raw("api-bad", { ports: { a: 1 }, endpoints: [{ addresses: ["198.51.100.2"] }] })],
      endpoints: [],
      table: ["198.51.100.1:8080 w=1 NAT", "198.51.100.5:80 w=1 NAT"],
      problems: ["Invalid EndpointSlice edge/api-bad ports"],
    },
    {
      name: "a slice port number that is not a port: that slice is skipped",
      vs: api,
      services: [svc],
      slices: [
        good,
        raw("api-bad", { ports: [{ port: "80" }], endpoints: [{ addresses: ["198.51.100.2"] }] }),
      ],
      endpoints: [],
      table: ["198.51.100.1:8080 w=1 NAT", "198.51.100.5:80 w=1 NAT"],
      problems: ["Invalid EndpointSlice edge/api-bad ports[0].port"],
    },
    {
      name: "malformed endpoints are reported and skipped, the good ones of the same slice are used",
      vs: api,
      services: [svc],
      slices: [
        raw("api-1", {
          endpoints: [
            { addresses: ["198.51.100.1"] },
            { addresses: "198.51.100.2" },
            { addresses: ["010.1.0.7"] },
            7,
            { addresses: ["198.51.100.3"], conditions: { ready: "yes" } },
            { addresses: ["2001:db8::9"] },
            { addresses: ["198.51.100.4"], conditions: { ready: null } },
          ],
        }),
      ],
      endpoints: [],
      table: ["198.51.100.1:8080 w=1 NAT", "198.51.100.4:8080 w=1 NAT", "198.51.100.5:80 w=1 NAT"],
      problems: [
        "Invalid EndpointSlice edge/api-1 endpoints[1].addresses",
        "Invalid EndpointSlice edge/api-1 endpoints[2].addresses[0]",
        "Invalid EndpointSlice edge/api-1 endpoints[3]",
        "Invalid EndpointSlice edge/api-1 endpoints[4].conditions.ready",
        "Invalid EndpointSlice edge/api-1 endpoints[5].addresses[0]",
      ],
    },
    {
      name: "malformed Service: reported on it; the VirtualService depends on it and keeps its RealServers",
      vs: api,
      services: [{ ...svc, spec: { ports: [{ port: 80 }, { port: 70000, name: 3 }] } } as V1Service],
      slices: [good],
      endpoints: [],
      table: ["198.51.100.5:80 w=1 NAT"],
      problems: [
        "Invalid Service edge/api spec.ports[1].name",
        "Invalid Service edge/api spec.ports[1].port",
        "Dependency VirtualService edge/api spec.backends.serviceRef.name",
      ],
    },
    {
      name: "Service with spec.ports that is not a list",
      vs: api,
      services: [{ ...svc, spec: { ports: "80" } } as unknown as V1Service],
      slices: [good],
      endpoints: [],
      table: ["198.51.100.5:80 w=1 NAT"],
      problems: [
        "Invalid Service edge/api spec.ports",
        "Dependency VirtualService edge/api spec.backends.serviceRef.name",
      ],
    },
    {
      name: "Endpoints with subsets that is not a list: skipped, reported",
      vs: apiEndpoints,
      services: [svc],
      slices: [],
      endpoints: [rawEndpoints({ subsets: 5 })],
      table: ["198.51.100.5:80 w=1 NAT"],
      problems: ["Invalid Endpoints edge/api subsets"],
    },
    {
      name: "Endpoints: a malformed address is reported and skipped, the others are used",
      vs: apiEndpoints,
      services: [svc],
      slices: [],
      endpoints: [
        rawEndpoints({
          subsets: [
            { addresses: [{ ip: "198.51.100.1" }, { ip: "010.1.0.7" }, "x"], ports: [{ port: 8080 }] },
          ],
        }),
      ],
      table: ["198.51.100.1:8080 w=1 NAT", "198.51.100.5:80 w=1 NAT"],
      problems: [
        "Invalid Endpoints edge/api subsets[0].addresses[1].ip",
        "Invalid Endpoints edge/api subsets[0].addresses[2].ip",
      ],
    },
    {
      name: "junk in the lists (null, numbers) is not an error of the VirtualService",
      vs: api,
      services: [null, 3, svc] as unknown as V1Service[],
      slices: [null, "x", good] as unknown as V1EndpointSlice[],
      endpoints: [],
      table: ["198.51.100.1:8080 w=1 NAT", "198.51.100.5:80 w=1 NAT"],
      problems: [],
    },
  ])("$name", (c) => {
    const r = computeDesired(
      snapshot({
        virtualServices: [vs("api", c.vs)],
        realServers: [rsA],
        services: c.services,
        endpointSlices: c.slices,
        endpoints: c.endpoints,
      }),
      NODE,
    );
    expect(summary(r)).toEqual({ "TCP 192.0.2.30:80": c.table });
    expect(problemSummary(r)).toEqual(c.problems);
    for (const p of r.problems) expect(formatProblem(p)).not.toMatch(/undefined|\[object/);
  });
});

describe("computeDesired: when the sorry server is used", () => {
  const SORRY = "198.51.100.149:80 w=1 NAT";
  const base = { ...WEB, sorryServer: { address: "198.51.100.149" } };
  const checked = { ...base, healthCheck: { type: "TCP", onFailure: "Quiesce" } };
  const a = (spec: Record<string, unknown> = {}) => rs("a", { address: "198.51.100.140", ...spec });
  const b = (spec: Record<string, unknown> = {}) => rs("b", { address: "198.51.100.141", ...spec });
  const up = (...addresses: string[]) => new Map(addresses.map((x) => [`edge/web|${x}|80`, true]));
  const down = (...addresses: string[]) => new Map(addresses.map((x) => [`edge/web|${x}|80`, false]));
  const dup = ["Duplicate VirtualService edge/web spec.sorryServer.address"];

  it.each([
    { name: "no backend at all: sorry server only", spec: base, servers: [], table: [SORRY] },
    {
      name: "only a disabled RealServer: kept at weight 0 next to the sorry server",
      spec: base,
      servers: [a({ enabled: false })],
      table: ["198.51.100.140:80 w=0 NAT", SORRY],
    },
    {
      name: "a healthy RealServer at weight 0 (no health check) counts as healthy: no sorry server",
      spec: base,
      servers: [a({ weight: 0 })],
      table: ["198.51.100.140:80 w=0 NAT"],
    },
    {
      name: "a disabled and a healthy one: no sorry server",
      spec: base,
      servers: [a({ enabled: false }), b()],
      table: ["198.51.100.140:80 w=0 NAT", "198.51.100.141:80 w=1 NAT"],
    },
    {
      name: "health-checked, all unhealthy (Quiesce): kept at 0, sorry server added",
      spec: checked,
      servers: [a(), b()],
      health: down("198.51.100.140", "198.51.100.141"),
      table: ["198.51.100.140:80 w=0 NAT", "198.51.100.141:80 w=0 NAT", SORRY],
    },
    {
      name: "health-checked, one healthy: no sorry server",
      spec: checked,
      servers: [a(), b()],
      health: up("198.51.100.140"),
      table: ["198.51.100.140:80 w=1 NAT", "198.51.100.141:80 w=0 NAT"],
    },
    {
      name: "health-checked with onFailure Remove, all unhealthy: sorry server only",
      spec: { ...base, healthCheck: { type: "TCP", onFailure: "Remove" } },
      servers: [a(), b()],
      health: down("198.51.100.140", "198.51.100.141"),
      table: [SORRY],
    },
    {
      name: "a healthy backend at weight 0 with a health check: no sorry server",
      spec: checked,
      servers: [a({ weight: 0 })],
      health: up("198.51.100.140"),
      table: ["198.51.100.140:80 w=0 NAT"],
    },
    {
      name: "only a draining (terminating) endpoint: it keeps draining, sorry server added",
      spec: { ...base, backends: { serviceRef: { name: "api" } } },
      servers: [],
      slices: [
        slice(
          "api-1",
          "api",
          [{ address: "198.51.100.120", ready: false, serving: true, terminating: true }],
          [{ port: 80 }],
        ),
      ],
      table: ["198.51.100.120:80 w=0 NAT draining", SORRY],
    },
    {
      name: "sorry server = a disabled RealServer: reported, the RealServer's weight 0 is kept",
      spec: { ...base, sorryServer: { address: "198.51.100.140" } },
      servers: [a({ enabled: false })],
      table: ["198.51.100.140:80 w=0 NAT"],
      problems: dup,
    },
    {
      name: "sorry server = a healthy RealServer: reported, the RealServer is unchanged",
      spec: { ...base, sorryServer: { address: "198.51.100.140", port: 80 } },
      servers: [a({ weight: 3 })],
      table: ["198.51.100.140:80 w=3 NAT"],
      problems: dup,
    },
  ])("$name", (c) => {
    const r = computeDesired(
      snapshot({
        virtualServices: [vs("web", c.spec)],
        realServers: c.servers,
        services: [service("api", [{ port: 80 }])],
        endpointSlices: c.slices ?? [],
      }),
      NODE,
      c.health ?? new Map(),
    );
    expect(summary(r)).toEqual({ [KEY]: c.table });
    expect(problemSummary(r)).toEqual(c.problems ?? []);
  });
});
