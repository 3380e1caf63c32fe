/**
 * The rtnetlink decoding of NetlinkRtLink on the host, from bytes laid out as the kernel sends
 * them (struct ifinfomsg / ifaddrmsg + attributes). The VM suite runs the real exchange.
 */
import { describe, expect, it } from "vitest";
import { decodeAddress, decodeLink } from "../../src/node-edge/netlink-rt-link.ts";

function attr(type: number, data: Buffer): Buffer {
  const len = 4 + data.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  data.copy(out, 4);
  return out;
}
const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
};

function ifaddrmsg(family: number, prefixLength: number, flags: number, index: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(family, 0);
  b.writeUInt8(prefixLength, 1);
  b.writeUInt8(flags, 2);
  b.writeUInt32LE(index, 4);
  return b;
}

describe("decodeAddress", () => {
  it("reads an IPv4 address from IFA_LOCAL, with its IFA_PROTO", () => {
    const msg = Buffer.concat([
      ifaddrmsg(2, 32, 0x80, 7),
      attr(1, Buffer.from([10, 0, 0, 2])), // IFA_ADDRESS (the peer on point-to-point links)
      attr(2, Buffer.from([198, 18, 0, 1])), // IFA_LOCAL
      attr(3, Buffer.from("ipvs0\0")),
      attr(8, u32(0x80)),
      attr(11, Buffer.of(73)),
    ]);
    expect(decodeAddress(msg)).toEqual({
      index: 7,
      family: "IPv4",
      address: "198.18.0.1",
      prefixLength: 32,
      protocol: 73,
      noDad: false,
    });
  });

  it("reads an IPv6 address from IFA_ADDRESS; IFA_FLAGS (u32) wins over the header's u8 flags", () => {
    const v6 = Buffer.from("20010db8ed9e00000000000000000001", "hex");
    const msg = Buffer.concat([ifaddrmsg(10, 128, 0, 9), attr(1, v6), attr(8, u32(0x02 | 0x80))]);
    expect(decodeAddress(msg)).toEqual({
      index: 9,
      family: "IPv6",
      address: "2001:db8:ed9e::1",
      prefixLength: 128,
      protocol: 0,
      noDad: true,
    });
  });

  it("skips other families and messages without an address", () => {
    expect(decodeAddress(ifaddrmsg(17, 0, 0, 1))).toBeUndefined();
    expect(decodeAddress(ifaddrmsg(2, 32, 0, 1))).toBeUndefined();
  });
});

describe("decodeLink", () => {
  it("reads index, name, IFF_UP and the IFLA_INFO_KIND nested in IFLA_LINKINFO, skipping the rest", () => {
    const ifi = Buffer.alloc(16);
    ifi.writeInt32LE(12, 4);
    ifi.writeUInt32LE(0x1 | 0x80 | 0x10000, 8); // UP | NOARP | LOWER_UP
    const stats64 = Buffer.alloc(200, 0xff); // a grown rtnl_link_stats64 must not matter
    const msg = Buffer.concat([
      ifi,
      attr(3, Buffer.from("ipvs0\0")),
      attr(23, stats64),
      attr(18, Buffer.concat([attr(1, Buffer.from("dummy\0"))])),
    ]);
    expect(decodeLink(msg)).toEqual({ index: 12, name: "ipvs0", kind: "dummy", up: true });
    ifi.writeUInt32LE(0x80, 8);
    expect(decodeLink(Buffer.concat([ifi, attr(3, Buffer.from("lo\0"))]))).toEqual({
      index: 12,
      name: "lo",
      kind: undefined,
      up: false,
    });
  });
});
