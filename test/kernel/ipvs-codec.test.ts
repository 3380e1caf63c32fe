import { endianness } from "node:os";
import fc from "fast-check";
import { AttrStream, putU16, putU32, putU64 } from "netlink";
import { describe, expect, it } from "vitest";
import { IpvsDecodeError } from "../../src/kernel/errors.ts";
import {
  attributeMap,
  decodeDaemonMessage,
  decodeDestinationAttrs,
  decodeDestinationEntry,
  decodeDestinationMessage,
  decodeErrorPayload,
  decodeFamilyId,
  decodeGenlPayload,
  decodeInfo,
  decodeMessages,
  decodeServiceAttrs,
  decodeServiceEntry,
  decodeServiceMessage,
  decodeStats,
  decodeTimeouts,
  describeDestinationEntry,
  describeServiceEntry,
} from "../../src/kernel/ipvs-decode.ts";
import {
  destinationAttr,
  destinationDumpFrames,
  encodeOperation,
  frameRequest,
  IpvsEncodeError,
  listDestinationsRequest,
  newDaemonRequest,
  serviceAttr,
  setConfigRequest,
} from "../../src/kernel/ipvs-encode.ts";
import { IPVS_CMD, IPVS_CMD_ATTR, IPVS_DEST_ATTR, IPVS_SVC_ATTR } from "../../src/kernel/ipvs-protocol.ts";
import { canonicalIp } from "../../src/vocabulary/addresses.ts";
import type { Operation } from "../../src/vocabulary/operations.ts";
import type { IpvsDestination, IpvsService, ServiceKey } from "../../src/vocabulary/table.ts";
import { NO_FLAGS } from "../../src/vocabulary/table.ts";
import { attributeDataAt } from "./attribute-at.ts";
import { KERNEL_DEST_DUMP, KERNEL_SERVICE_DUMP } from "./kernel-captures.ts";

// Golden bytes are written for a little-endian host (x86_64, arm64): netlink integers are host order.
const hex = (bufs: Uint8Array[] | Uint8Array) =>
  Buffer.concat(Array.isArray(bufs) ? bufs : [bufs])
    .toString("hex")
    .replace(/(..)/g, "$1 ")
    .trim();
const bytes = (text: string) => Buffer.from(text.replace(/\s+/g, ""), "hex");

const tcp80: ServiceKey = {
  kind: "address",
  family: "IPv4",
  protocol: "TCP",
  address: "192.0.2.10",
  port: 80,
};
const wlc: IpvsService = {
  key: tcp80,
  config: {
    scheduler: "wlc",
    flags: { ...NO_FLAGS },
    timeout: 0,
    netmask: 0xffffffff,
    persistenceEngine: "",
  },
};
const gueDest: IpvsDestination = {
  key: { family: "IPv4", address: "198.51.100.5", port: 8080 },
  config: {
    forwarding: "Tunnel",
    weight: 100000,
    upperThreshold: 0,
    lowerThreshold: 0,
    tunnelType: "GUE",
    tunnelPort: 6080,
    tunnelChecksum: "Checksum",
  },
};

/** The content of the first top-level attribute of `type` in encoded attribute bytes. */
function nestedContent(bufs: Uint8Array[], type: number): Buffer {
  const v = attributeMap(Buffer.concat(bufs), "test").get(type);
  if (!v) throw new Error(`no attribute ${type}`);
  return v;
}

describe("ipvs codec: golden bytes", () => {
  it("runs on a little-endian host (the golden bytes assume it)", () => {
    expect(endianness()).toBe("LE");
  });

  it("encodes a full IPv4 TCP service (NEW_SERVICE)", () => {
    expect(hex(serviceAttr(wlc))).toBe(
      hex(
        bytes(`
        48 00 01 00
          06 00 01 00 02 00 00 00
          06 00 02 00 06 00 00 00
          08 00 03 00 c0 00 02 0a
          06 00 04 00 00 50 00 00
          08 00 06 00 77 6c 63 00
          0c 00 07 00 00 00 00 00 ff ff ff ff
          08 00 08 00 00 00 00 00
          08 00 09 00 ff ff ff ff`),
      ),
    );
  });

  it("encodes persistence: flags with a full mask, IPv4 netmask in network order, IPv6 prefix in host order", () => {
    const persistent = { ...NO_FLAGS, persistent: true, schedFlag2: true };
    const v4 = serviceAttr({
      key: tcp80,
      config: { ...wlc.config, flags: persistent, timeout: 600, netmask: 0xffffff00 },
    });
    const c4 = nestedContent(v4, IPVS_CMD_ATTR.SERVICE);
    const m4 = attributeMap(c4, "svc");
    expect(hex(m4.get(IPVS_SVC_ATTR.FLAGS)!)).toBe("11 00 00 00 ff ff ff ff");
    expect(hex(m4.get(IPVS_SVC_ATTR.TIMEOUT)!)).toBe("58 02 00 00");
    expect(hex(m4.get(IPVS_SVC_ATTR.NETMASK)!)).toBe("ff ff ff 00");
    const v6 = serviceAttr({
      key: { kind: "fwmark", family: "IPv6", fwmark: 0x01020304 },
      config: { ...wlc.config, netmask: 64, persistenceEngine: "sip" },
    });
    const m6 = attributeMap(nestedContent(v6, IPVS_CMD_ATTR.SERVICE), "svc");
    expect(hex(m6.get(IPVS_SVC_ATTR.AF)!)).toBe("0a 00");
    expect(hex(m6.get(IPVS_SVC_ATTR.FWMARK)!)).toBe("04 03 02 01");
    expect(m6.has(IPVS_SVC_ATTR.ADDR)).toBe(false);
    expect(hex(m6.get(IPVS_SVC_ATTR.NETMASK)!)).toBe("40 00 00 00");
    expect(hex(m6.get(IPVS_SVC_ATTR.PE_NAME)!)).toBe("73 69 70 00");
  });

  it("encodes a GUE tunnel destination with a u32 weight and big-endian ports", () => {
    expect(hex(destinationAttr(gueDest))).toBe(
      hex(
        bytes(`
        52 00 02 00
          06 00 0b 00 02 00 00 00
          08 00 01 00 c6 33 64 05
          06 00 02 00 1f 90 00 00
          08 00 03 00 02 00 00 00
          08 00 04 00 a0 86 01 00
          08 00 05 00 00 00 00 00
          08 00 06 00 00 00 00 00
          05 00 0d 00 01 00 00 00
          06 00 0e 00 17 c0 00 00
          06 00 0f 00 01 00 00 00`),
      ),
    );
  });

  it("frames a destination request so both top-level attributes are found (alignment between lists)", () => {
    const op: Operation = { op: "addDestination", service: tcp80, destination: gueDest };
    const framed = frameRequest(encodeOperation(op), 42, 7);
    expect(framed.length % 4).toBe(0);
    const [msg, ...rest] = decodeMessages(framed);
    expect(rest).toEqual([]);
    expect(msg).toMatchObject({ type: 42, flags: 0x5, seq: 7, port: 0 });
    expect(framed.readUInt32LE(0)).toBe(framed.length);
    const { cmd, version, attrs } = decodeGenlPayload(msg!.payload);
    expect([cmd, version]).toEqual([IPVS_CMD.NEW_DEST, 1]);
    const top = attributeMap(attrs, "request");
    expect([...top.keys()]).toEqual([IPVS_CMD_ATTR.SERVICE, IPVS_CMD_ATTR.DEST]);
    const decoded = decodeDestinationAttrs(top.get(IPVS_CMD_ATTR.DEST)!, "IPv4");
    expect({ key: decoded.key, config: decoded.config }).toEqual(gueDest);
  });

  it("frames every GET_DEST dump of a read in one buffer, each request byte for byte what frameRequest gives", () => {
    const keys: ServiceKey[] = [
      tcp80,
      { kind: "address", family: "IPv6", protocol: "SCTP", address: "2001:db8::1", port: 0 },
      { kind: "fwmark", family: "IPv4", fwmark: 0xfffffffe },
      { kind: "address", family: "IPv4", protocol: "UDP", address: "10.0.0.1", port: 65535 },
    ];
    // 3000 more, so the writer grows its buffer several times, between and inside attributes.
    for (let i = 0; i < 3000; i++) {
      const v6 = i >= 1000 && i % 3 === 0; // IPv4 first: 56 bytes each, growth lands in a PORT (at 292, 585)
      const address = v6 ? `2001:db8::${i.toString(16)}` : `10.${i >> 8}.${i & 0xff}.1`;
      const family = v6 ? "IPv6" : "IPv4";
      keys.push({ kind: "address", family, protocol: "TCP", address, port: 1 + i });
    }
    const seqs = keys.map((_, i) => [7, 8, 0x7fffffff, 1][i] ?? 100 + i);
    const { bytes: all, offsets } = destinationDumpFrames(keys, 30, seqs);
    expect(offsets[keys.length]).toBe(all.length);
    keys.forEach((key, i) => {
      const one = all.subarray(offsets[i], offsets[i + 1]);
      expect(hex(one)).toBe(hex(frameRequest(listDestinationsRequest(key), 30, seqs[i]!)));
    });
    expect(() => destinationDumpFrames([{ kind: "fwmark", family: "IPv4", fwmark: 0 }], 30, [1])).toThrow(
      IpvsEncodeError,
    );
  });

  it("frames dumps with NLM_F_DUMP and no ACK", () => {
    const [msg] = decodeMessages(frameRequest(listDestinationsRequest(tcp80), 30, 1));
    expect(msg?.flags).toBe(0x301);
    expect(decodeGenlPayload(msg!.payload).cmd).toBe(IPVS_CMD.GET_DEST);
  });

  it("decodes a kernel service reply: 16-byte address, HASHED stripped, STATS64 preferred, PAD and unknowns skipped", () => {
    const stats64 = new AttrStream();
    stats64.push(1, putU64(5n));
    stats64.push(11, new Uint8Array(0));
    stats64.push(4, putU64(0x1_0000_0000n));
    const stats32 = new AttrStream();
    stats32.push(1, putU32(1));
    const s = new AttrStream();
    s.push(IPVS_CMD_ATTR.SERVICE, (o) => {
      o.push(IPVS_SVC_ATTR.AF, putU16(2));
      o.push(IPVS_SVC_ATTR.PROTOCOL, putU16(17));
      o.push(IPVS_SVC_ATTR.ADDR, bytes("c000020a 00000000 00000000 00000000"));
      o.push(IPVS_SVC_ATTR.PORT, bytes("0035"));
      o.push(IPVS_SVC_ATTR.SCHED_NAME, Buffer.from("rr\0"));
      o.push(IPVS_SVC_ATTR.FLAGS, bytes("03000000 ffffffff"));
      o.push(IPVS_SVC_ATTR.TIMEOUT, putU32(300));
      o.push(IPVS_SVC_ATTR.NETMASK, bytes("ffffff00"));
      o.push(IPVS_SVC_ATTR.STATS, stats32.bufs);
      o.push(99, Buffer.from("future attribute"));
      o.push(IPVS_SVC_ATTR.STATS64, stats64.bufs);
    });
    const svc = decodeServiceMessage(Buffer.concat(s.bufs));
    expect(svc.key).toEqual({
      kind: "address",
      family: "IPv4",
      protocol: "UDP",
      address: "192.0.2.10",
      port: 53,
    });
    expect(svc.config).toEqual({
      scheduler: "rr",
      flags: { ...NO_FLAGS, persistent: true },
      timeout: 300,
      netmask: 0xffffff00,
      persistenceEngine: "",
    });
    expect(svc.stats?.connections).toBe(5n);
    expect(svc.stats?.inBytes).toBe(0x1_0000_0000n);
    expect(svc.stats?.outPackets).toBe(0n);
  });

  it("decodes a destination without ADDR_FAMILY or tunnel attributes (old kernels) from the service family", () => {
    const d = new AttrStream();
    d.push(IPVS_CMD_ATTR.DEST, (o) => {
      o.push(IPVS_DEST_ATTR.ADDR, bytes("20010db8 00000000 00000000 00000005"));
      o.push(IPVS_DEST_ATTR.PORT, bytes("0050"));
      o.push(IPVS_DEST_ATTR.FWD_METHOD, putU32(3));
      o.push(IPVS_DEST_ATTR.WEIGHT, putU32(70000));
      o.push(IPVS_DEST_ATTR.U_THRESH, putU32(10));
      o.push(IPVS_DEST_ATTR.L_THRESH, putU32(5));
      o.push(IPVS_DEST_ATTR.ACTIVE_CONNS, putU32(3));
      o.push(IPVS_DEST_ATTR.INACT_CONNS, putU32(4));
      o.push(IPVS_DEST_ATTR.PERSIST_CONNS, putU32(5));
    });
    const dest = decodeDestinationMessage(Buffer.concat(d.bufs), "IPv6");
    expect(dest).toEqual({
      key: { family: "IPv6", address: "2001:db8::5", port: 80 },
      config: {
        forwarding: "DirectRouting",
        weight: 70000,
        upperThreshold: 10,
        lowerThreshold: 5,
        tunnelType: "IPIP",
        tunnelPort: 0,
        tunnelChecksum: "None",
      },
      activeConnections: 3,
      inactiveConnections: 4,
      persistentConnections: 5,
    });
  });

  it("decodes config, info, daemons, family ids and error payloads", () => {
    const cfg = new AttrStream();
    cfg.push(IPVS_CMD_ATTR.TIMEOUT_TCP, putU32(900));
    cfg.push(IPVS_CMD_ATTR.TIMEOUT_TCP_FIN, putU32(120));
    cfg.push(IPVS_CMD_ATTR.TIMEOUT_UDP, putU32(300));
    expect(decodeTimeouts(Buffer.concat(cfg.bufs))).toEqual({ tcp: 900, tcpFin: 120, udp: 300 });
    expect(decodeInfo(bytes("08000100 01020100 08000200 00100000"))).toEqual({
      versionCode: 0x010201,
      version: "1.2.1",
      connectionTableSize: 4096,
    });
    const daemon = newDaemonRequest({
      state: "Backup",
      interface: "eth0",
      syncId: 9,
      group: "ff02::12:1",
      port: 8848,
      ttl: 2,
    });
    expect(decodeDaemonMessage(Buffer.concat(daemon.attrs))).toEqual({
      state: "Backup",
      interface: "eth0",
      syncId: 9,
      group: "ff02::12:1",
      port: 8848,
      ttl: 2,
    });
    expect(decodeFamilyId(bytes("0600 0100 2300 0000"))).toBe(0x23);
    expect(decodeErrorPayload(bytes("feffffff 14000000 05000100 01000000 00000000"))).toBe(2);
    expect(decodeErrorPayload(bytes("00000000 14000000 05000100 01000000 00000000"))).toBe(0);
  });

  it("encodes SET_CONFIG with only the given fields", () => {
    expect(hex(setConfigRequest({ tcpFin: 30 }).attrs)).toBe("08 00 05 00 1e 00 00 00");
  });
});

describe("ipvs codec: encoding refuses what the protocol cannot carry", () => {
  const bad: [string, Operation][] = [
    ["port 65536", { op: "deleteService", key: { ...tcp80, port: 65536 } }],
    ["a non-address", { op: "deleteService", key: { ...tcp80, address: "example.com" } }],
    ["an IPv6 address in an IPv4 key", { op: "deleteService", key: { ...tcp80, address: "2001:db8::1" } }],
    ["fwmark 0", { op: "deleteService", key: { kind: "fwmark", family: "IPv4", fwmark: 0 } }],
    [
      "a 16-byte scheduler name",
      { op: "addService", service: { ...wlc, config: { ...wlc.config, scheduler: "x".repeat(16) } } },
    ],
    [
      "a negative weight",
      {
        op: "addDestination",
        service: tcp80,
        destination: { ...gueDest, config: { ...gueDest.config, weight: -1 } },
      },
    ],
    [
      "weight 2^32",
      {
        op: "addDestination",
        service: tcp80,
        destination: { ...gueDest, config: { ...gueDest.config, weight: 2 ** 32 } },
      },
    ],
    ["protocol ICMP", { op: "deleteService", key: { ...tcp80, protocol: "ICMP" as "TCP" } }],
  ];
  for (const [label, op] of bad) {
    it(`refuses ${label}`, () => {
      expect(() => encodeOperation(op)).toThrow(IpvsEncodeError);
    });
  }
});

describe("ipvs codec: replies captured from the real kernel", () => {
  it("decodes a GET_SERVICE dump message", () => {
    const [msg, ...rest] = decodeMessages(bytes(KERNEL_SERVICE_DUMP));
    expect(rest).toEqual([]);
    expect(msg?.flags).toBe(0x2); // NLM_F_MULTI
    const { cmd, attrs } = decodeGenlPayload(msg!.payload);
    expect(cmd).toBe(IPVS_CMD.NEW_SERVICE);
    const svc = decodeServiceMessage(attrs);
    expect(svc.key).toEqual({
      kind: "address",
      family: "IPv4",
      protocol: "UDP",
      address: "192.0.2.10",
      port: 53,
    });
    expect(svc.config).toEqual({
      scheduler: "sh",
      flags: { ...NO_FLAGS, persistent: true, schedFlag2: true },
      timeout: 300,
      netmask: 0xffffff00,
      persistenceEngine: "",
    });
    expect(svc.stats?.connections).toBe(0n);
  });

  it("decodes a GET_DEST dump message of a mixed-family GUE destination", () => {
    const [msg] = decodeMessages(bytes(KERNEL_DEST_DUMP));
    const { cmd, attrs } = decodeGenlPayload(msg!.payload);
    expect(cmd).toBe(IPVS_CMD.NEW_DEST);
    const dest = decodeDestinationMessage(attrs, "IPv4");
    expect(dest).toMatchObject({
      key: { family: "IPv6", address: "2001:db8::5", port: 53 },
      config: {
        forwarding: "Tunnel",
        weight: 100000,
        upperThreshold: 9,
        lowerThreshold: 3,
        tunnelType: "GUE",
        tunnelPort: 6080,
        tunnelChecksum: "RemoteChecksum",
      },
      activeConnections: 0,
      inactiveConnections: 0,
      persistentConnections: 0,
    });
  });
});

// ------------------------------------------------------------------------------------------
// Properties

const ipv4 = fc.ipV4().map(canonicalIp);
const ipv6 = fc.ipV6().map(canonicalIp);
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const flags = fc.record({
  persistent: fc.boolean(),
  onePacket: fc.boolean(),
  schedFlag1: fc.boolean(),
  schedFlag2: fc.boolean(),
  schedFlag3: fc.boolean(),
});
const family = fc.constantFrom("IPv4" as const, "IPv6" as const);
const serviceKey: fc.Arbitrary<ServiceKey> = fc.oneof(
  fc
    .tuple(
      family,
      fc.constantFrom("TCP" as const, "UDP" as const, "SCTP" as const),
      ipv4,
      ipv6,
      fc.nat(0xffff),
    )
    .map(([f, protocol, a4, a6, port]) => ({
      kind: "address" as const,
      family: f,
      protocol,
      address: f === "IPv4" ? a4 : a6,
      port,
    })),
  fc
    .tuple(family, fc.integer({ min: 1, max: 0xffffffff }))
    .map(([f, fwmark]) => ({ kind: "fwmark" as const, family: f, fwmark })),
);
const service: fc.Arbitrary<IpvsService> = fc.record({
  key: serviceKey,
  config: fc.record({
    scheduler: fc.constantFrom("rr", "wlc", "sh", "mh", "none", "twos"),
    flags,
    timeout: u32,
    netmask: u32,
    persistenceEngine: fc.constantFrom("", "sip"),
  }),
});
const destination: fc.Arbitrary<IpvsDestination> = fc.record({
  key: fc
    .tuple(family, ipv4, ipv6, fc.nat(0xffff))
    .map(([f, a4, a6, port]) => ({ family: f, address: f === "IPv4" ? a4 : a6, port })),
  config: fc.record({
    forwarding: fc.constantFrom(
      "NAT" as const,
      "Local" as const,
      "Tunnel" as const,
      "DirectRouting" as const,
      "Bypass" as const,
    ),
    weight: u32,
    upperThreshold: u32,
    lowerThreshold: u32,
    tunnelType: fc.constantFrom("IPIP" as const, "GUE" as const, "GRE" as const),
    tunnelPort: fc.nat(0xffff),
    tunnelChecksum: fc.constantFrom("None" as const, "Checksum" as const, "RemoteChecksum" as const),
  }),
});

/** Decoding may give a value or IpvsDecodeError, nothing else. */
function decodesOrRejects(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof IpvsDecodeError)) throw e;
  }
}

describe("ipvs codec: properties", () => {
  it("service encode -> decode is the identity (canonical addresses)", () => {
    fc.assert(
      fc.property(service, (s) => {
        const decoded = decodeServiceAttrs(nestedContent(serviceAttr(s), IPVS_CMD_ATTR.SERVICE));
        expect({ key: decoded.key, config: decoded.config }).toEqual(s);
      }),
    );
  });

  it("destination encode -> decode is the identity", () => {
    fc.assert(
      fc.property(destination, family, (d, svcFamily) => {
        const decoded = decodeDestinationAttrs(
          nestedContent(destinationAttr(d), IPVS_CMD_ATTR.DEST),
          svcFamily,
        );
        expect({ key: decoded.key, config: decoded.config }).toEqual(d);
      }),
    );
  });

  it("every request frames into whole, 4-byte aligned messages that decode back", () => {
    const op: fc.Arbitrary<Operation> = fc.oneof(
      service.map((s) => ({ op: "addService" as const, service: s })),
      fc
        .tuple(serviceKey, destination)
        .map(([k, d]) => ({ op: "updateDestination" as const, service: k, destination: d })),
      fc
        .tuple(serviceKey, destination)
        .map(([k, d]) => ({ op: "deleteDestination" as const, service: k, key: d.key })),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 5 }), (ops) => {
        const datagram = Buffer.concat(ops.map((o, i) => frameRequest(encodeOperation(o), 99, i + 1)));
        const msgs = decodeMessages(datagram);
        expect(msgs.map((m) => m.seq)).toEqual(ops.map((_, i) => i + 1));
        for (const m of msgs) attributeMap(decodeGenlPayload(m.payload).attrs, "request");
      }),
    );
  });

  it("random bytes decode to a value or IpvsDecodeError, never another exception", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (raw) => {
        const buf = Buffer.from(raw);
        decodesOrRejects(() => decodeMessages(buf));
        decodesOrRejects(() => decodeServiceMessage(buf));
        decodesOrRejects(() => decodeDestinationMessage(buf, "IPv4"));
        decodesOrRejects(() => decodeDaemonMessage(buf));
        decodesOrRejects(() => decodeTimeouts(buf));
        decodesOrRejects(() => decodeInfo(buf));
        decodesOrRejects(() => decodeStats(buf, "stats"));
        decodesOrRejects(() => decodeFamilyId(buf));
        decodesOrRejects(() => decodeErrorPayload(buf));
        decodesOrRejects(() => decodeGenlPayload(buf));
      }),
      { numRuns: 2000 },
    );
  });

  it("truncated or bit-flipped valid replies decode to a value or IpvsDecodeError", () => {
    fc.assert(
      fc.property(service, destination, fc.nat(), fc.nat(), (s, d, cut, flip) => {
        for (const whole of [Buffer.concat(serviceAttr(s)), Buffer.concat(destinationAttr(d))]) {
          const truncated = whole.subarray(0, cut % (whole.length + 1));
          const flipped = Buffer.from(whole);
          flipped[flip % flipped.length]! ^= 0xff;
          for (const b of [truncated, flipped]) {
            decodesOrRejects(() => decodeServiceMessage(b));
            decodesOrRejects(() => decodeDestinationMessage(b, "IPv6"));
          }
        }
      }),
    );
  });

  it("a truncated reply is an IpvsDecodeError that says what is wrong", () => {
    const whole = Buffer.concat(serviceAttr(wlc));
    expect(() => decodeServiceMessage(whole.subarray(0, 40))).toThrow(IpvsDecodeError);
    expect(() => decodeServiceMessage(whole.subarray(0, 40))).toThrow(/malformed IPVS reply/);
    const noSched = new AttrStream();
    noSched.push(IPVS_CMD_ATTR.SERVICE, (o) => {
      o.push(IPVS_SVC_ATTR.AF, putU16(2));
      o.push(IPVS_SVC_ATTR.FWMARK, putU32(1));
    });
    expect(() => decodeServiceMessage(Buffer.concat(noSched.bufs))).toThrow(/FLAGS is missing/);
  });

  it("stats counters decode to exactly the sent values, whatever their width", () => {
    const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    fc.assert(
      fc.property(fc.array(u64, { minLength: 10, maxLength: 10 }), u32, u64, (wide, conns, inBytes) => {
        const s64 = new AttrStream();
        wide.forEach((v, i) => {
          s64.push(i + 1, putU64(v));
        });
        const s32 = new AttrStream();
        s32.push(1, putU32(conns));
        s32.push(4, putU64(inBytes));
        const d = new AttrStream();
        d.push(IPVS_CMD_ATTR.DEST, (o) => {
          o.push(IPVS_DEST_ATTR.ADDR, bytes("c6336405 00000000 00000000 00000000"));
          o.push(IPVS_DEST_ATTR.PORT, bytes("0050"));
          o.push(IPVS_DEST_ATTR.FWD_METHOD, putU32(0));
          o.push(IPVS_DEST_ATTR.WEIGHT, putU32(1));
          o.push(IPVS_DEST_ATTR.U_THRESH, putU32(0));
          o.push(IPVS_DEST_ATTR.L_THRESH, putU32(0));
          o.push(IPVS_DEST_ATTR.STATS64, s64.bufs);
        });
        const stats = decodeDestinationMessage(Buffer.concat(d.bufs), "IPv4").stats;
        expect(stats && Object.values(stats)).toEqual(wide);
        const narrow = decodeStats(Buffer.concat(s32.bufs), "stats");
        expect([narrow.connections, narrow.inBytes, narrow.outBytes]).toEqual([BigInt(conns), inBytes, 0n]);
      }),
    );
  });

  it("decodes a reply inside a larger buffer, the last attribute of a type winning", () => {
    const d = new AttrStream();
    d.push(IPVS_CMD_ATTR.DEST, (o) => {
      o.push(IPVS_DEST_ATTR.ADDR_FAMILY, putU16(2));
      o.push(IPVS_DEST_ATTR.ADDR, bytes("c6336405 00000000 00000000 00000000"));
      o.push(IPVS_DEST_ATTR.PORT, bytes("1f90"));
      o.push(IPVS_DEST_ATTR.FWD_METHOD, putU32(3));
      o.push(IPVS_DEST_ATTR.WEIGHT, putU32(7));
      o.push(IPVS_DEST_ATTR.U_THRESH, putU32(0));
      o.push(IPVS_DEST_ATTR.L_THRESH, putU32(0));
      o.push(IPVS_DEST_ATTR.WEIGHT, putU32(9));
      o.push(IPVS_DEST_ATTR.ACTIVE_CONNS, putU32(4));
    });
    const message = Buffer.concat(d.bufs);
    const around = Buffer.concat([Buffer.alloc(12, 0xee), message, Buffer.alloc(8, 0xee)]);
    const decoded = decodeDestinationMessage(around.subarray(12, 12 + message.length), "IPv6");
    expect(decoded.key).toEqual({ family: "IPv4", address: "198.51.100.5", port: 8080 });
    expect(decoded.config.forwarding).toBe("DirectRouting");
    expect(decoded.config.weight).toBe(9);
    expect(decoded.activeConnections).toBe(4);
    expect(decoded.stats).toBeUndefined();
  });

  it("names the field and the sizes when an attribute has the wrong width", () => {
    const badTimeout = new AttrStream();
    badTimeout.push(IPVS_CMD_ATTR.SERVICE, (o) => {
      o.push(IPVS_SVC_ATTR.AF, putU16(2));
      o.push(IPVS_SVC_ATTR.FWMARK, putU32(1));
      o.push(IPVS_SVC_ATTR.SCHED_NAME, Buffer.from("rr\0"));
      o.push(IPVS_SVC_ATTR.FLAGS, bytes("00000000 ffffffff"));
      o.push(IPVS_SVC_ATTR.TIMEOUT, putU16(300));
      o.push(IPVS_SVC_ATTR.NETMASK, bytes("ffffffff"));
    });
    expect(() => decodeServiceMessage(Buffer.concat(badTimeout.bufs))).toThrow(
      "malformed IPVS reply: service TIMEOUT has 2 bytes, expected 4",
    );
    const badCounter = new AttrStream();
    badCounter.push(IPVS_SVC_ATTR.STATS64, (o) => o.push(2, Buffer.from([1, 2, 3])));
    expect(() => decodeStats(Buffer.concat(badCounter.bufs).subarray(4), "service STATS64")).toThrow(
      "malformed IPVS reply: service STATS64 inpkts has 3 bytes",
    );
  });
});

// ------------------------------------------------------------------------------------------
// Entry by entry: the real kernel's replies with one field changed to what this decoder does not know

const attrDataAt = (attrs: Buffer, path: number[]) => attributeDataAt(attrs, path);

/** The kernel's GET_SERVICE / GET_DEST capture (top-level attributes), copied so it can be patched. */
const serviceAttrs = () =>
  Buffer.from(decodeGenlPayload(decodeMessages(bytes(KERNEL_SERVICE_DUMP))[0]!.payload).attrs);
const destAttrs = () =>
  Buffer.from(decodeGenlPayload(decodeMessages(bytes(KERNEL_DEST_DUMP))[0]!.payload).attrs);

describe("ipvs codec: entry by entry (what the decoder does not know is described, never thrown)", () => {
  const S = IPVS_CMD_ATTR.SERVICE;
  const D = IPVS_CMD_ATTR.DEST;

  it("decodes the unpatched captures as entries", () => {
    expect(decodeServiceEntry(serviceAttrs())).toMatchObject({ ok: true, value: { key: { port: 53 } } });
    expect(decodeDestinationEntry(destAttrs(), "IPv4")).toMatchObject({
      ok: true,
      value: { key: { port: 53 } },
    });
  });

  it("an unknown protocol: no key, the raw protocol number in the description", () => {
    const attrs = serviceAttrs();
    attrs.writeUInt16LE(99, attrDataAt(attrs, [S, IPVS_SVC_ATTR.PROTOCOL]));
    expect(decodeServiceEntry(attrs)).toEqual({
      ok: false,
      reason: "service PROTOCOL 99 is not TCP, UDP or SCTP",
    });
    expect(describeServiceEntry(attrs)).toEqual({ text: "protocol 99 192.0.2.10:53" });
  });

  it("an unknown address family: no key, the AF in the description", () => {
    const attrs = serviceAttrs();
    attrs.writeUInt16LE(99, attrDataAt(attrs, [S, IPVS_SVC_ATTR.AF]));
    expect(decodeServiceEntry(attrs)).toEqual({
      ok: false,
      reason: "service AF 99 is neither AF_INET nor AF_INET6",
    });
    expect(describeServiceEntry(attrs).key).toBeUndefined();
    expect(describeServiceEntry(attrs).text).toMatch(/^UDP 0x[0-9a-f]+:53 \(AF 99\)$/);
  });

  it("a malformed attribute after a good key: the key is kept, so the service can be left alone", () => {
    const attrs = serviceAttrs();
    // FLAGS claims 6 bytes instead of 8 (and 4 + 6 still fits the 12 the attribute takes)
    attrs.writeUInt16LE(4 + 6, attrDataAt(attrs, [S, IPVS_SVC_ATTR.FLAGS]) - 4);
    expect(decodeServiceEntry(attrs)).toEqual({ ok: false, reason: "service FLAGS has 6 bytes, expected 8" });
    expect(describeServiceEntry(attrs)).toEqual({
      key: { kind: "address", family: "IPv4", protocol: "UDP", address: "192.0.2.10", port: 53 },
      text: "UDP 192.0.2.10:53",
    });
  });

  it("attributes whose lengths do not add up: described as malformed, not thrown", () => {
    const attrs = serviceAttrs();
    attrs.writeUInt16LE(0xfff0, 0); // the SERVICE attribute claims more bytes than the message has
    expect(decodeServiceEntry(attrs)).toMatchObject({
      ok: false,
      reason: expect.stringContaining("Invalid attribute length"),
    });
    expect(describeServiceEntry(attrs)).toEqual({ text: "a service entry with malformed attributes" });
  });

  it("an unknown forwarding method or tunnel type of a destination: the destination is named", () => {
    const fwd = destAttrs();
    fwd.writeUInt32LE(5, attrDataAt(fwd, [D, IPVS_DEST_ATTR.FWD_METHOD]));
    expect(decodeDestinationEntry(fwd, "IPv4")).toEqual({
      ok: false,
      reason: "destination FWD_METHOD 5 is not known",
    });
    expect(describeDestinationEntry(fwd, "IPv4")).toBe("[2001:db8::5]:53");
    const tun = destAttrs();
    tun.writeUInt8(3, attrDataAt(tun, [D, IPVS_DEST_ATTR.TUN_TYPE]));
    expect(decodeDestinationEntry(tun, "IPv4")).toEqual({
      ok: false,
      reason: "destination TUN_TYPE 3 is not known",
    });
  });

  it("a destination of an unknown family: the raw address and the AF", () => {
    const attrs = destAttrs();
    attrs.writeUInt16LE(99, attrDataAt(attrs, [D, IPVS_DEST_ATTR.ADDR_FAMILY]));
    expect(decodeDestinationEntry(attrs, "IPv4")).toMatchObject({ ok: false });
    expect(describeDestinationEntry(attrs, "IPv4")).toBe("0x20010db8000000000000000000000005:53 (AF 99)");
  });

  it("random bytes give an entry or a reason, and a description, never an exception", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (raw) => {
        const buf = Buffer.from(raw);
        decodeServiceEntry(buf);
        decodeDestinationEntry(buf, "IPv6");
        expect(typeof describeServiceEntry(buf).text).toBe("string");
        expect(typeof describeDestinationEntry(buf, "IPv4")).toBe("string");
      }),
    );
  });
});
