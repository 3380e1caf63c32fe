/**
 * Objects for the schema tests and the CEL/zod equivalence test. Invalid entries name the path where
 * the runtime validation must report the issue (relative to the object root).
 */

export interface Case {
  name: string;
  kind: "VirtualService" | "RealServer" | "IPVSNode";
  /** spec for VirtualService / RealServer, status for IPVSNode. */
  body: Record<string, unknown>;
  /** For update cases: the previous spec. */
  old?: Record<string, unknown>;
  /** undefined = valid; otherwise the path of the expected issue, e.g. "spec.port". */
  invalidAt?: string;
  /**
   * The object is invalid only through an unknown field: the apiserver itself prunes it and accepts the
   * rest, but kubectl's default strict field validation rejects it, and so does the runtime validation.
   */
  unknownField?: true;
}

const v4 = { address: "192.0.2.10", port: 80 };
const v6 = { address: "2001:db8::10", port: 443, protocol: "TCP" };
const fw4 = { firewallMark: 7, family: "IPv4" };
const fw6 = { firewallMark: 8, family: "IPv6" };
const vs = (name: string, body: Record<string, unknown>, invalidAt?: string): Case =>
  invalidAt === undefined
    ? { name, kind: "VirtualService", body }
    : { name, kind: "VirtualService", body, invalidAt };
const rs = (name: string, extra: Record<string, unknown>, invalidAt?: string): Case => {
  const body = { virtualServiceRef: { name: "web" }, address: "198.51.100.5", ...extra };
  return invalidAt === undefined
    ? { name, kind: "RealServer", body }
    : { name, kind: "RealServer", body, invalidAt };
};
const unknown = (c: Case): Case => ({ ...c, unknownField: true });
const upd = (
  name: string,
  old: Record<string, unknown>,
  body: Record<string, unknown>,
  invalidAt?: string,
): Case =>
  invalidAt === undefined
    ? { name, kind: "VirtualService", body, old }
    : { name, kind: "VirtualService", body, old, invalidAt };

export const CORPUS: Case[] = [
  // ---- valid VirtualServices
  vs("minimal IPv4", v4),
  vs("minimal IPv6", v6),
  vs("fwmark IPv4", fw4),
  vs("fwmark IPv6 with prefixLength", { ...fw6, persistence: { prefixLength: 64 } }),
  vs("full example", {
    ...v4,
    protocol: "TCP",
    family: "IPv4",
    scheduler: "sh",
    schedulerFlags: ["sh-fallback", "sh-port"],
    persistence: { timeoutSeconds: 600, netmask: "255.255.255.0", engine: "sip" },
    forwarding: { method: "Tunnel", tunnel: { type: "GUE", port: 6080, checksum: "RemoteChecksum" } },
    backends: { serviceRef: { name: "web", port: "http" }, weight: 5, source: "Endpoints" },
    nodeSelector: {
      matchLabels: { "ipvs.dev/edge": "true" },
      matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }],
    },
    bindAddress: false,
    healthCheck: {
      type: "HTTP",
      port: 8080,
      path: "/healthz",
      host: "example.com",
      expectStatus: ["200-399", "404"],
      expectBody: "ok",
      intervalSeconds: 5,
      timeoutSeconds: 5,
      riseCount: 1,
      fallCount: 1,
      initialState: "Healthy",
      onFailure: "Remove",
    },
    sorryServer: { address: "192.0.2.99", port: 80 },
    drain: { timeoutSeconds: 0 },
    driftPolicy: "Report",
  }),
  vs("port 0 with persistence", { ...v4, port: 0, persistence: {} }),
  vs("UDP one-packet", { ...v4, protocol: "UDP", onePacket: true }),
  vs("fwmark one-packet", { ...fw4, onePacket: true }),
  vs("mh flags", { ...v4, scheduler: "mh", schedulerFlags: ["mh-port"] }),
  vs("tunnel IPIP without port", { ...v4, forwarding: { method: "Tunnel", tunnel: { type: "IPIP" } } }),
  vs("tunnel absent", { ...v4, forwarding: { method: "Tunnel" } }),
  vs("exec health check", { ...v4, healthCheck: { type: "Exec", command: ["/bin/check", "--fast"] } }),
  vs("https check verifying with a CA", {
    ...v4,
    healthCheck: {
      type: "HTTPS",
      tls: { verify: true, ca: "-----BEGIN CERTIFICATE-----", serverName: "a.example" },
    },
  }),
  vs("udp check with payload and reply", {
    ...v4,
    healthCheck: { type: "UDP", udp: { payloadHex: "0001", expectReply: "^pong" } },
  }),
  vs("dns check", {
    ...v4,
    healthCheck: { type: "DNS", port: 53, dns: { name: "probe.test", type: "AAAA" } },
  }),
  vs("backends port number", { ...v4, backends: { serviceRef: { name: "web", port: 8080 } } }),
  vs("sorry server IPv6", { ...v6, sorryServer: { address: "2001:db8::99" } }),
  vs("netmask 0.0.0.0", { ...v4, persistence: { netmask: "0.0.0.0" } }),
  vs("embedded IPv4 in IPv6 (not mapped)", { address: "64:ff9b::192.0.2.1", port: 80 }),

  // ---- invalid VirtualServices, one rule each
  vs("both address and fwmark", { ...v4, ...fw4 }, "spec"),
  vs("neither address nor fwmark", { scheduler: "rr" }, "spec"),
  vs("address without port", { address: "192.0.2.10" }, "spec.port"),
  vs("fwmark with port", { ...fw4, port: 80 }, "spec.firewallMark"),
  vs("fwmark with protocol", { ...fw4, protocol: "UDP" }, "spec.firewallMark"),
  vs("fwmark without family", { firewallMark: 7 }, "spec.family"),
  vs("family mismatch", { ...v4, family: "IPv6" }, "spec.family"),
  vs("port 0 without persistence", { ...v4, port: 0 }, "spec.port"),
  vs("sh flag with wlc", { ...v4, schedulerFlags: ["sh-port"] }, "spec.schedulerFlags"),
  vs("mh flag with sh", { ...v4, scheduler: "sh", schedulerFlags: ["mh-port"] }, "spec.schedulerFlags"),
  vs(
    "duplicate flag",
    { ...v4, scheduler: "sh", schedulerFlags: ["sh-port", "sh-port"] },
    "spec.schedulerFlags",
  ),
  vs("one-packet TCP", { ...v4, onePacket: true }, "spec.onePacket"),
  vs(
    "tunnel with NAT",
    { ...v4, forwarding: { method: "NAT", tunnel: { type: "IPIP" } } },
    "spec.forwarding.tunnel",
  ),
  vs(
    "GUE without port",
    { ...v4, forwarding: { method: "Tunnel", tunnel: { type: "GUE" } } },
    "spec.forwarding.tunnel.port",
  ),
  vs(
    "tunnel port with GRE",
    { ...v4, forwarding: { method: "Tunnel", tunnel: { type: "GRE", port: 6080 } } },
    "spec.forwarding.tunnel.port",
  ),
  vs("netmask on IPv6", { ...v6, persistence: { netmask: "255.255.255.0" } }, "spec.persistence.netmask"),
  vs(
    "netmask on fwmark IPv6",
    { ...fw6, persistence: { netmask: "255.255.255.0" } },
    "spec.persistence.netmask",
  ),
  vs("prefixLength on IPv4", { ...v4, persistence: { prefixLength: 64 } }, "spec.persistence.prefixLength"),
  vs(
    "netmask and prefixLength",
    { ...fw4, persistence: { netmask: "255.0.0.0", prefixLength: 8 } },
    "spec.persistence.prefixLength",
  ),
  vs(
    "non-contiguous netmask",
    { ...v4, persistence: { netmask: "255.0.255.0" } },
    "spec.persistence.netmask",
  ),
  vs("unknown engine", { ...v4, persistence: { engine: "ftp" } }, "spec.persistence.engine"),
  vs(
    "weight out of range",
    { ...v4, backends: { serviceRef: { name: "w" }, weight: 65536 } },
    "spec.backends.weight",
  ),
  vs("port out of range", { ...v4, port: 65536 }, "spec.port"),
  vs("negative port", { ...v4, port: -1 }, "spec.port"),
  vs("fwmark 0", { firewallMark: 0, family: "IPv4" }, "spec.firewallMark"),
  vs("fwmark too big", { firewallMark: 4294967296, family: "IPv4" }, "spec.firewallMark"),
  vs("not an address", { address: "example.com", port: 80 }, "spec.address"),
  vs("IPv4-mapped address", { address: "::ffff:192.0.2.1", port: 80 }, "spec.address"),
  vs("zoned address", { address: "fe80::1%eth0", port: 80 }, "spec.address"),
  vs("leading zero IPv4", { address: "192.0.2.010", port: 80 }, "spec.address"),
  vs("unknown scheduler", { ...v4, scheduler: "random" }, "spec.scheduler"),
  vs("path on TCP check", { ...v4, healthCheck: { type: "TCP", path: "/x" } }, "spec.healthCheck.path"),
  vs("host on UDP check", { ...v4, healthCheck: { type: "UDP", host: "a" } }, "spec.healthCheck.host"),
  vs(
    "expectStatus on TCP",
    { ...v4, healthCheck: { type: "TCP", expectStatus: ["200"] } },
    "spec.healthCheck.expectStatus",
  ),
  vs(
    "expectBody on Exec",
    { ...v4, healthCheck: { type: "Exec", command: ["x"], expectBody: "ok" } },
    "spec.healthCheck.expectBody",
  ),
  vs("Exec without command", { ...v4, healthCheck: { type: "Exec" } }, "spec.healthCheck.command"),
  vs("tls on HTTP", { ...v4, healthCheck: { type: "HTTP", tls: {} } }, "spec.healthCheck.tls"),
  vs("udp on TCP", { ...v4, healthCheck: { type: "TCP", udp: {} } }, "spec.healthCheck.udp"),
  vs("DNS without dns", { ...v4, healthCheck: { type: "DNS" } }, "spec.healthCheck.dns"),
  vs("dns on TCP", { ...v4, healthCheck: { type: "TCP", dns: { name: "a" } } }, "spec.healthCheck.dns"),
  vs(
    "ca without verify",
    { ...v4, healthCheck: { type: "HTTPS", tls: { ca: "x" } } },
    "spec.healthCheck.tls.ca",
  ),
  vs(
    "payload twice",
    { ...v4, healthCheck: { type: "UDP", udp: { payload: "a", payloadHex: "00" } } },
    "spec.healthCheck.udp.payloadHex",
  ),
  vs(
    "expected reply twice",
    { ...v4, healthCheck: { type: "UDP", udp: { expectReply: "a", expectReplyHex: "00" } } },
    "spec.healthCheck.udp.expectReplyHex",
  ),
  vs(
    "odd hex",
    { ...v4, healthCheck: { type: "UDP", udp: { payloadHex: "abc" } } },
    "spec.healthCheck.udp.payloadHex",
  ),
  vs("command on HTTP", { ...v4, healthCheck: { type: "HTTP", command: ["x"] } }, "spec.healthCheck.command"),
  vs("port on None check", { ...v4, healthCheck: { type: "None", port: 80 } }, "spec.healthCheck.port"),
  vs(
    "timeout above interval",
    { ...v4, healthCheck: { type: "TCP", intervalSeconds: 2 } },
    "spec.healthCheck.timeoutSeconds",
  ),
  vs(
    "bad status range",
    { ...v4, healthCheck: { type: "HTTP", expectStatus: ["2xx"] } },
    "spec.healthCheck.expectStatus[0]",
  ),
  vs("rise 0", { ...v4, healthCheck: { type: "TCP", riseCount: 0 } }, "spec.healthCheck.riseCount"),
  vs(
    "sorry family mismatch",
    { ...v4, sorryServer: { address: "2001:db8::99" } },
    "spec.sorryServer.address",
  ),
  vs(
    "sorry family mismatch fwmark",
    { ...fw6, sorryServer: { address: "192.0.2.1" } },
    "spec.sorryServer.address",
  ),
  vs(
    "sorry port differs with DirectRouting",
    { ...v4, forwarding: { method: "DirectRouting" }, sorryServer: { address: "192.0.2.99", port: 8080 } },
    "spec.sorryServer.port",
  ),
  vs("snat masquerade", { ...v4, snat: {} }),
  vs("snat to an address", { ...v4, snat: { mode: "Address", address: "192.0.2.1" } }),
  vs("snat fwmark v6 to an address", { ...fw6, snat: { mode: "Address", address: "2001:db8::1" } }),
  vs("snat Address without address", { ...v4, snat: { mode: "Address" } }, "spec.snat.address"),
  vs("snat address with Masquerade", { ...v4, snat: { address: "192.0.2.1" } }, "spec.snat.address"),
  vs(
    "snat address family mismatch",
    { ...v4, snat: { mode: "Address", address: "2001:db8::1" } },
    "spec.snat.address",
  ),
  vs(
    "snat address family mismatch fwmark",
    { ...fw6, snat: { mode: "Address", address: "192.0.2.1" } },
    "spec.snat.address",
  ),
  vs("snat unknown mode", { ...v4, snat: { mode: "Random" } }, "spec.snat.mode"),
  vs("sorry port equal with Tunnel", {
    ...v4,
    forwarding: { method: "Tunnel" },
    sorryServer: { address: "192.0.2.99", port: 80 },
  }),
  vs("sorry port with DirectRouting fwmark", {
    ...fw4,
    forwarding: { method: "DirectRouting" },
    sorryServer: { address: "192.0.2.99", port: 8080 },
  }),
  vs(
    "backends port name invalid",
    { ...v4, backends: { serviceRef: { name: "w", port: "HTTP_" } } },
    "spec.backends.serviceRef.port",
  ),
  vs(
    "backends port 0",
    { ...v4, backends: { serviceRef: { name: "w", port: 0 } } },
    "spec.backends.serviceRef.port",
  ),
  vs("backends without serviceRef", { ...v4, backends: { weight: 1 } }, "spec.backends.serviceRef"),
  vs(
    "In without values",
    { ...v4, nodeSelector: { matchExpressions: [{ key: "zone", operator: "In" }] } },
    "spec.nodeSelector.matchExpressions[0].values",
  ),
  vs(
    "Exists with values",
    { ...v4, nodeSelector: { matchExpressions: [{ key: "zone", operator: "Exists", values: ["a"] }] } },
    "spec.nodeSelector.matchExpressions[0].values",
  ),
  vs("drift policy unknown", { ...v4, driftPolicy: "Ignore" }, "spec.driftPolicy"),
  vs("non-integer port", { ...v4, port: 80.5 }, "spec.port"),
  vs("string port", { ...v4, port: "80" }, "spec.port"),

  // ---- nulls: the apiserver prunes them under known fields and then defaults, like absent fields
  vs("null optional and defaulted fields", {
    ...v4,
    scheduler: null,
    persistence: null,
    sorryServer: null,
    healthCheck: null,
    backends: null,
    forwarding: null,
    drain: null,
    schedulerFlags: null,
  }),
  vs("null nested fields", {
    ...v4,
    forwarding: { method: null, tunnel: null },
    drain: { timeoutSeconds: null },
    healthCheck: { type: "TCP", intervalSeconds: null, port: null },
    nodeSelector: { matchLabels: { zone: null }, matchExpressions: null },
  }),
  vs("null persistence is no persistence", { ...v4, port: 0, persistence: null }, "spec.port"),
  vs("null key field is absent", { address: null, port: 80 }, "spec"),
  vs("null list item stays", { ...v4, scheduler: "sh", schedulerFlags: [null] }, "spec.schedulerFlags[0]"),

  // ---- unknown fields: pruned by the apiserver, rejected by kubectl's strict field validation
  unknown(vs("typo in a field name", { ...v4, shceduler: "rr" }, "spec.shceduler")),
  unknown(vs("unknown nested field", { ...v4, persistence: { timeout: 60 } }, "spec.persistence.timeout")),
  unknown(
    vs(
      "unknown field in a health check",
      { ...v4, healthCheck: { type: "TCP", interval: 5 } },
      "spec.healthCheck.interval",
    ),
  ),
  unknown(
    vs(
      "unknown field in serviceRef",
      { ...v4, backends: { serviceRef: { name: "w", namespace: "other" } } },
      "spec.backends.serviceRef.namespace",
    ),
  ),
  unknown(
    vs(
      "unknown field in a selector requirement",
      { ...v4, nodeSelector: { matchExpressions: [{ key: "zone", operator: "Exists", value: ["a"] }] } },
      "spec.nodeSelector.matchExpressions[0].value",
    ),
  ),
  unknown(vs("unknown field with null value", { ...v4, scheduler: null, weight: null }, "spec.weight")),

  // ---- updates (key immutability)
  upd("update weight-like field", v4, { ...v4, scheduler: "rr" }),
  upd("update adds matching family", v4, { ...v4, family: "IPv4" }),
  upd("update adds protocol TCP explicitly", v4, { ...v4, protocol: "TCP" }),
  upd("update changes address", v4, { ...v4, address: "192.0.2.11" }, "spec.address"),
  upd("update changes port", v4, { ...v4, port: 81 }, "spec.port"),
  upd("update changes protocol", v4, { ...v4, protocol: "UDP" }, "spec.protocol"),
  upd("update changes fwmark", fw4, { ...fw4, firewallMark: 9 }, "spec.firewallMark"),
  upd("update changes family", fw4, { firewallMark: 7, family: "IPv6" }, "spec.family"),
  upd("update fwmark to address", fw4, v4, "spec.address"),
  upd("update null protocol is TCP", { ...v4, protocol: "TCP" }, { ...v4, protocol: null }),
  upd("update null port", v4, { ...v4, port: null }, "spec.port"),

  // ---- RealServers
  rs("rs minimal", {}),
  rs("rs full", {
    port: 8080,
    weight: 0,
    upperThreshold: 100,
    lowerThreshold: 50,
    forwarding: { method: "DirectRouting" },
    healthCheck: { type: "TCP" },
    enabled: false,
  }),
  rs("rs IPv6", { address: "2001:db8::5" }),
  rs("rs lower above upper", { upperThreshold: 10, lowerThreshold: 11 }, "spec.lowerThreshold"),
  rs("rs lower without upper (kernel: ERANGE)", { lowerThreshold: 11 }, "spec.lowerThreshold"),
  rs("rs lower equal to upper", { upperThreshold: 10, lowerThreshold: 10 }),
  rs("rs weight too big", { weight: 70000 }, "spec.weight"),
  rs("rs port 0", { port: 0 }, "spec.port"),
  rs("rs bad address", { address: "1.2.3" }, "spec.address"),
  rs("rs missing ref", { virtualServiceRef: undefined }, "spec.virtualServiceRef"),
  rs("rs bad ref name", { virtualServiceRef: { name: "Web" } }, "spec.virtualServiceRef.name"),
  rs("rs tunnel on DR", { forwarding: { method: "DirectRouting", tunnel: {} } }, "spec.forwarding.tunnel"),
  rs("rs exec without command", { healthCheck: { type: "Exec" } }, "spec.healthCheck.command"),
  rs("rs threshold too big", { upperThreshold: 4294967296 }, "spec.upperThreshold"),
  rs("rs null port, weight, thresholds and overrides", {
    port: null,
    weight: null,
    upperThreshold: null,
    lowerThreshold: null,
    forwarding: null,
    healthCheck: null,
    enabled: null,
  }),
  rs("rs null address", { address: null }, "spec.address"),
  unknown(rs("rs unknown field", { wieght: 3 }, "spec.wieght")),
  unknown(
    rs(
      "rs unknown field in the reference",
      { virtualServiceRef: { name: "web", namespace: "x" } },
      "spec.virtualServiceRef.namespace",
    ),
  ),

  // ---- IPVSNode status
  {
    name: "node status",
    kind: "IPVSNode",
    body: {
      kernel: { ipvsVersion: "1.2.1", connectionTableSize: 4096, schedulers: ["rr", "wrr"] },
      lastSync: { time: "2026-11-22T05:40:00Z", durationMilliseconds: 12, result: "Success", operations: 3 },
      services: 1,
      destinations: 2,
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "Synced",
          message: "",
          lastTransitionTime: "2026-11-22T05:40:00Z",
        },
      ],
      drift: [
        {
          detectedAt: "2026-11-22T05:39:58Z",
          kind: "Modified",
          service: "TCP 192.0.2.10:80",
          destination: "198.51.100.5:8080",
          field: "weight",
          expected: "5",
          actual: "0",
          action: "Repaired",
        },
      ],
      virtualServices: [{ name: "edge/web", programmed: true }],
      backends: [{ virtualService: "edge/web", address: "198.51.100.5", port: 8080, healthy: true }],
    },
  },
  {
    name: "node bad drift kind",
    kind: "IPVSNode",
    body: {
      drift: [{ detectedAt: "2026-11-22T05:39:58Z", kind: "Changed", service: "x", action: "Repaired" }],
    },
    invalidAt: "status.drift[0].kind",
  },
  {
    name: "node duplicate condition",
    kind: "IPVSNode",
    body: {
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "A",
          message: "",
          lastTransitionTime: "2026-11-22T05:40:00Z",
        },
        {
          type: "Ready",
          status: "False",
          reason: "B",
          message: "",
          lastTransitionTime: "2026-11-22T05:40:00Z",
        },
      ],
    },
    invalidAt: "status.conditions",
  },
];
