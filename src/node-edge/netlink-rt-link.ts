/**
 * NetlinkRtLink: RtLink over rtnetlink (NETLINK_ROUTE), using the `netlink` package for the socket
 * and the message framing only. The package's rtnetlink wrapper is not used: its errors lose the
 * errno, its link parser rejects the grown rtnl_link_stats64 of newer kernels (node_netlink #21) and
 * its address attributes have no IFA_PROTO. The few messages needed here are encoded below.
 *
 * A dump runs alone on the socket (the package keeps multipart state per socket); other requests
 * may overlap each other (the binder sends a window of address changes at once). Every request has
 * a timeout.
 */
import {
  AttrStream,
  createNetlink,
  Flags,
  FlagsGet,
  FlagsNew,
  MessageType,
  type NetlinkMessage,
  type NetlinkSocket,
  Protocol,
  parseAttributes,
  parseError,
  putString,
  putU32,
} from "netlink";
import { bytesToIp, ipFamily, ipToBytes } from "../vocabulary/addresses.ts";
import type { Family } from "../vocabulary/table.ts";
import {
  type NewAddress,
  type RtAddress,
  type RtLink,
  RtLinkError,
  type RtLinkInfo,
  rtErrnoName,
  TUNNEL_DEVICE,
  type TunnelKind,
} from "./rt-link.ts";

const RTM_NEWLINK = 16;
const RTM_GETLINK = 18;
const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
const RTM_GETADDR = 22;
const IFLA_IFNAME = 3;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_FLAGS = 8;
const IFA_PROTO = 11;
const IFA_F_NODAD = 0x02;
const IFF_UP = 0x1;
const AF_INET = 2;
const AF_INET6 = 10;

export interface NetlinkRtLinkOptions {
  /** Per-request timeout (default 5000 ms). */
  timeoutMs?: number;
}

function ifinfomsg(index: number, flags: number, change: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32LE(index, 4); // family u8, pad u8, type u16 stay 0
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(change, 12);
  return b;
}

function ifaddrmsg(family: number, prefixLength: number, flags: number, index: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(family, 0);
  b.writeUInt8(prefixLength, 1);
  b.writeUInt8(flags & 0xff, 2);
  b.writeUInt8(0, 3); // RT_SCOPE_UNIVERSE
  b.writeUInt32LE(index, 4);
  return b;
}

/** Decodes an RTM_NEWLINK message (only what RtLinkInfo needs; stats and the rest are skipped). */
export function decodeLink(data: Buffer): RtLinkInfo {
  const index = data.readInt32LE(4);
  const flags = data.readUInt32LE(8);
  let name = "";
  let kind: string | undefined;
  parseAttributes(data.subarray(16), (a) => {
    if (a.type === IFLA_IFNAME) name = a.data.toString("utf8").replace(/\0.*$/s, "");
    if (a.type === IFLA_LINKINFO) {
      parseAttributes(a.data, (i) => {
        if (i.type === IFLA_INFO_KIND) kind = i.data.toString("utf8").replace(/\0.*$/s, "");
      });
    }
  });
  return { index, name, kind, up: (flags & IFF_UP) !== 0 };
}

/** Decodes an RTM_NEWADDR message; undefined for a family other than IPv4/IPv6. */
export function decodeAddress(data: Buffer): (RtAddress & { index: number }) | undefined {
  const afamily = data.readUInt8(0);
  const family: Family | undefined = afamily === AF_INET ? "IPv4" : afamily === AF_INET6 ? "IPv6" : undefined;
  if (!family) return undefined;
  const prefixLength = data.readUInt8(1);
  let flags = data.readUInt8(2);
  const index = data.readUInt32LE(4);
  let local: Buffer | undefined;
  let address: Buffer | undefined;
  let protocol = 0;
  parseAttributes(data.subarray(8), (a) => {
    if (a.type === IFA_LOCAL) local = a.data;
    if (a.type === IFA_ADDRESS) address = a.data;
    if (a.type === IFA_FLAGS && a.data.length >= 4) flags = a.data.readUInt32LE(0);
    if (a.type === IFA_PROTO && a.data.length >= 1) protocol = a.data.readUInt8(0);
  });
  // IPv4: IFA_LOCAL is the interface's own address (IFA_ADDRESS the peer on point-to-point links).
  const bytes = local ?? address;
  if (!bytes) return undefined;
  return {
    index,
    family,
    address: bytesToIp(bytes, family),
    prefixLength,
    protocol,
    noDad: (flags & IFA_F_NODAD) !== 0,
  };
}

export class NetlinkRtLink implements RtLink {
  readonly #socket: NetlinkSocket;
  readonly #timeoutMs: number;
  /** The last dump (or close): everything sent later waits for it. */
  #exclusive: Promise<unknown> = Promise.resolve();
  /** Requests other than dumps in flight: they may overlap each other, never a dump. */
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  constructor(options: NetlinkRtLinkOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 5000;
    // The package types recvBufferSize/sendBufferSize as required (a typing bug): pass both.
    this.#socket = createNetlink(Protocol.ROUTE, { recvBufferSize: 1024 * 1024, sendBufferSize: 256 * 1024 });
  }

  async getLink(name: string): Promise<RtLinkInfo | undefined> {
    const attrs = new AttrStream();
    attrs.push(IFLA_IFNAME, putString(name));
    try {
      const replies = await this.#request(
        "getLink",
        name,
        RTM_GETLINK,
        [ifinfomsg(0, 0, 0), ...attrs.bufs],
        0,
      );
      const link = replies.find((m) => m.type === RTM_NEWLINK);
      return link ? decodeLink(link.data) : undefined;
    } catch (e) {
      if (e instanceof RtLinkError && e.errno === "ENODEV") return undefined;
      throw e;
    }
  }

  async createDummy(name: string): Promise<RtLinkInfo> {
    await this.#newLink("createDummy", name, "dummy");
    return await this.#created("createDummy", name);
  }

  async ensureTunnelDevice(kind: TunnelKind): Promise<RtLinkInfo> {
    const name = TUNNEL_DEVICE[kind];
    const present = await this.getLink(name);
    if (present) return present;
    // The kernel loads the module for the kind (which creates the device), then finds the name taken.
    try {
      await this.#newLink("ensureTunnelDevice", name, kind);
    } catch (e) {
      if (!(e instanceof RtLinkError && e.errno === "EEXIST")) throw e;
    }
    return await this.#created("ensureTunnelDevice", name);
  }

  async #newLink(operation: string, name: string, kind: string): Promise<void> {
    const attrs = new AttrStream();
    attrs.push(IFLA_IFNAME, putString(name));
    attrs.push(IFLA_LINKINFO, (info) => info.push(IFLA_INFO_KIND, putString(kind)));
    await this.#request(
      operation,
      name,
      RTM_NEWLINK,
      [ifinfomsg(0, 0, 0), ...attrs.bufs],
      FlagsNew.CREATE | FlagsNew.EXCL,
    );
  }

  async #created(operation: string, name: string): Promise<RtLinkInfo> {
    const link = await this.getLink(name);
    if (!link) throw new RtLinkError(operation, name, "ENODEV", "created but not found");
    return link;
  }

  async setUp(index: number): Promise<void> {
    await this.#request("setUp", `link ${index}`, RTM_NEWLINK, [ifinfomsg(index, IFF_UP, IFF_UP)], 0);
  }

  async listAddresses(index: number): Promise<RtAddress[]> {
    const out: RtAddress[] = [];
    for (const family of [AF_INET, AF_INET6]) {
      const replies = await this.#request(
        "listAddresses",
        `link ${index}`,
        RTM_GETADDR,
        [ifaddrmsg(family, 0, 0, index)],
        FlagsGet.DUMP,
      );
      for (const m of replies) {
        if (m.type !== RTM_NEWADDR) continue;
        const a = decodeAddress(m.data);
        if (!a || a.index !== index) continue; // a kernel without strict dump filtering sends every link's
        const { index: _index, ...address } = a;
        out.push(address);
      }
    }
    return out;
  }

  async addAddress(index: number, address: NewAddress): Promise<void> {
    const family = ipFamily(address.address);
    const object = `${address.address}/${address.prefixLength} on link ${index}`;
    if (!family) throw new RtLinkError("addAddress", object, "EINVAL", "not an IP address");
    const bytes = Buffer.from(ipToBytes(address.address));
    const flags = family === "IPv6" && address.noDad ? IFA_F_NODAD : 0;
    const attrs = new AttrStream();
    attrs.push(IFA_LOCAL, bytes);
    attrs.push(IFA_ADDRESS, bytes);
    attrs.push(IFA_FLAGS, putU32(flags));
    if (address.protocol) attrs.push(IFA_PROTO, Buffer.of(address.protocol));
    const header = ifaddrmsg(family === "IPv4" ? AF_INET : AF_INET6, address.prefixLength, flags, index);
    await this.#request(
      "addAddress",
      object,
      RTM_NEWADDR,
      [header, ...attrs.bufs],
      FlagsNew.CREATE | FlagsNew.EXCL,
    );
  }

  async deleteAddress(index: number, address: { address: string; prefixLength: number }): Promise<void> {
    const family = ipFamily(address.address);
    const object = `${address.address}/${address.prefixLength} on link ${index}`;
    if (!family) throw new RtLinkError("deleteAddress", object, "EINVAL", "not an IP address");
    const bytes = Buffer.from(ipToBytes(address.address));
    const attrs = new AttrStream();
    attrs.push(IFA_LOCAL, bytes);
    attrs.push(IFA_ADDRESS, bytes);
    const header = ifaddrmsg(family === "IPv4" ? AF_INET : AF_INET6, address.prefixLength, 0, index);
    await this.#request("deleteAddress", object, RTM_DELADDR, [header, ...attrs.bufs], 0);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([this.#exclusive, ...this.#inFlight]);
    this.#socket.socket.close();
  }

  /** One request at a time; resolves with the replies (ACKs removed), throws RtLinkError on an error. */
  #request(
    operation: string,
    object: string,
    type: number,
    data: Uint8Array[],
    flags: number,
  ): Promise<NetlinkMessage[]> {
    // A dump's replies span datagrams and the package keeps one multipart state per socket, so a dump
    // runs alone; single requests (one reply or ACK each, matched by sequence number) may overlap.
    const dump = (flags & FlagsGet.DUMP) === FlagsGet.DUMP;
    const after = dump ? Promise.allSettled([this.#exclusive, ...this.#inFlight]) : this.#exclusive;
    const run = after.then(async () => {
      if (this.#closed) throw new RtLinkError(operation, object, "EIO", "rtnetlink handle is closed");
      let replies: NetlinkMessage[];
      try {
        [replies] = await this.#socket.request(type, data, {
          flags,
          checkError: false,
          timeout: this.#timeoutMs,
        });
      } catch (e) {
        const timedOut = e instanceof Error && /timeout/i.test(e.message);
        throw new RtLinkError(operation, object, timedOut ? "ETIMEDOUT" : "EIO", String(e));
      }
      const out: NetlinkMessage[] = [];
      for (const m of replies) {
        if (m.type === MessageType.ERROR) {
          const { errno } = parseError(m.data, m.flags);
          if (errno !== 0) throw new RtLinkError(operation, object, rtErrnoName(errno));
          continue;
        }
        if (m.type === MessageType.DONE || (m.flags & Flags.REQUEST) !== 0) continue;
        out.push(m);
      }
      return out;
    });
    const settled = run.catch(() => undefined);
    if (dump) {
      this.#exclusive = settled;
    } else {
      this.#inFlight.add(settled);
      void settled.then(() => this.#inFlight.delete(settled));
    }
    return run;
  }
}
