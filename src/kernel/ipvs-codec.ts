/**
 * Pure codec for the IPVS generic netlink protocol: typed table values <-> message bytes.
 *
 * No sockets and no clock here: NetlinkIpvsKernel frames and sends what this module encodes, and the
 * FakeIpvsKernel runs the same encoders so both reject un-encodable input the same way.
 * Wire facts (include/uapi/linux/ip_vs.h, net/netfilter/ipvs/ip_vs_ctl.c):
 * - integers are host order, except ports (service, destination, GUE tunnel) and the IPv4 netmask;
 * - addresses are sent as 4 or 16 bytes and always come back as 16;
 * - FLAGS is {flags, mask}; we always send mask 0xffffffff and strip the kernel's HASHED bit on read;
 * - unknown attributes are skipped, malformed ones give IpvsDecodeError (never another exception).
 */
import {
  AttrStream,
  parseAttributes,
  putString,
  putU8,
  putU16,
  putU32,
  readS32,
  readU16,
  readU32,
} from "netlink";
import { bytesToIp, ipFamily, ipToBytes } from "../vocabulary/addresses.ts";
import type { Operation } from "../vocabulary/operations.ts";
import type {
  DestinationKey,
  Family,
  ForwardingMethod,
  IpvsDestination,
  IpvsInfo,
  IpvsService,
  IpvsStats,
  IpvsTimeouts,
  KernelDestination,
  KernelService,
  Protocol,
  ServiceFlags,
  ServiceKey,
  SyncDaemonConfig,
  SyncDaemonState,
  TunnelChecksum,
  TunnelType,
} from "../vocabulary/table.ts";
import { serviceKeyString } from "../vocabulary/table.ts";
import { IpvsDecodeError } from "./errors.ts";

// ---------------------------------------------------------------------------------------------
// Protocol constants

export const IPVS_GENL_NAME = "IPVS";
export const IPVS_GENL_VERSION = 1;

export const GENL_ID_CTRL = 16;
export const CTRL_CMD_GETFAMILY = 3;
export const CTRL_ATTR_FAMILY_ID = 1;
export const CTRL_ATTR_FAMILY_NAME = 2;

export const NLMSG = { NOOP: 1, ERROR: 2, DONE: 3, OVERRUN: 4 } as const;
export const NLM_F = { REQUEST: 0x1, MULTI: 0x2, ACK: 0x4, DUMP: 0x300 } as const;
export const NLMSG_HDRLEN = 16;
export const GENL_HDRLEN = 4;

export const IPVS_CMD = {
  NEW_SERVICE: 1,
  SET_SERVICE: 2,
  DEL_SERVICE: 3,
  GET_SERVICE: 4,
  NEW_DEST: 5,
  SET_DEST: 6,
  DEL_DEST: 7,
  GET_DEST: 8,
  NEW_DAEMON: 9,
  DEL_DAEMON: 10,
  GET_DAEMON: 11,
  SET_CONFIG: 12,
  GET_CONFIG: 13,
  SET_INFO: 14,
  GET_INFO: 15,
  ZERO: 16,
  FLUSH: 17,
} as const;

export const IPVS_CMD_ATTR = {
  SERVICE: 1,
  DEST: 2,
  DAEMON: 3,
  TIMEOUT_TCP: 4,
  TIMEOUT_TCP_FIN: 5,
  TIMEOUT_UDP: 6,
} as const;

export const IPVS_SVC_ATTR = {
  AF: 1,
  PROTOCOL: 2,
  ADDR: 3,
  PORT: 4,
  FWMARK: 5,
  SCHED_NAME: 6,
  FLAGS: 7,
  TIMEOUT: 8,
  NETMASK: 9,
  STATS: 10,
  PE_NAME: 11,
  STATS64: 12,
} as const;

export const IPVS_DEST_ATTR = {
  ADDR: 1,
  PORT: 2,
  FWD_METHOD: 3,
  WEIGHT: 4,
  U_THRESH: 5,
  L_THRESH: 6,
  ACTIVE_CONNS: 7,
  INACT_CONNS: 8,
  PERSIST_CONNS: 9,
  STATS: 10,
  ADDR_FAMILY: 11,
  STATS64: 12,
  TUN_TYPE: 13,
  TUN_PORT: 14,
  TUN_FLAGS: 15,
} as const;

export const IPVS_DAEMON_ATTR = {
  STATE: 1,
  MCAST_IFN: 2,
  SYNC_ID: 3,
  SYNC_MAXLEN: 4,
  MCAST_GROUP: 5,
  MCAST_GROUP6: 6,
  MCAST_PORT: 7,
  MCAST_TTL: 8,
} as const;

export const IPVS_INFO_ATTR = { VERSION: 1, CONN_TAB_SIZE: 2 } as const;

export const IPVS_STATS_ATTR = {
  CONNS: 1,
  INPKTS: 2,
  OUTPKTS: 3,
  INBYTES: 4,
  OUTBYTES: 5,
  CPS: 6,
  INPPS: 7,
  OUTPPS: 8,
  INBPS: 9,
  OUTBPS: 10,
  PAD: 11,
} as const;

export const AF = { INET: 2, INET6: 10 } as const;
export const IPPROTO = { TCP: 6, UDP: 17, SCTP: 132 } as const;

export const SVC_FLAG = {
  PERSISTENT: 0x1,
  HASHED: 0x2,
  ONEPACKET: 0x4,
  SCHED1: 0x8,
  SCHED2: 0x10,
  SCHED3: 0x20,
} as const;

export const FWD_METHOD = { NAT: 0, Local: 1, Tunnel: 2, DirectRouting: 3, Bypass: 4 } as const;
export const FWD_MASK = 0x7;
export const TUN_TYPE = { IPIP: 0, GUE: 1, GRE: 2 } as const;
export const TUN_FLAG = { CSUM: 0x1, REMCSUM: 0x2 } as const;
export const DAEMON_STATE = { Master: 1, Backup: 2 } as const;

export const SCHED_NAME_MAXLEN = 16;
export const PE_NAME_MAXLEN = 16;
export const IFNAME_MAXLEN = 16;

// ---------------------------------------------------------------------------------------------
// Encoding

/** A value the protocol cannot carry (not an address, port out of range, name too long...). */
export class IpvsEncodeError extends Error {
  override readonly name = "IpvsEncodeError";
}

/** One generic netlink request: command, top-level attributes, and whether it is a dump. */
export interface GenlRequest {
  cmd: number;
  attrs: Uint8Array[];
  dump: boolean;
}

/** Bytes of an AttrStream padded to a 4-byte boundary, so that separately built attribute lists concatenate. */
function aligned(out: AttrStream): Uint8Array[] {
  const length = out.bufs.reduce((n, b) => n + b.length, 0);
  const pad = (4 - (length % 4)) % 4;
  return pad ? [...out.bufs, new Uint8Array(pad)] : out.bufs;
}

function familyToAf(family: Family): number {
  if (family === "IPv4") return AF.INET;
  if (family === "IPv6") return AF.INET6;
  throw new IpvsEncodeError(`family must be IPv4 or IPv6, got ${JSON.stringify(family)}`);
}

function protocolNumber(protocol: Protocol): number {
  const n = (IPPROTO as Record<string, number>)[protocol];
  if (n === undefined)
    throw new IpvsEncodeError(`protocol must be TCP, UDP or SCTP, got ${JSON.stringify(protocol)}`);
  return n;
}

function checkUint(value: number, max: number, field: string): number {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new IpvsEncodeError(`${field} must be an integer 0..${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function addressBytes(address: string, family: Family, field: string): Uint8Array {
  const actual = ipFamily(address);
  if (!actual) throw new IpvsEncodeError(`${field} is not an IP address: ${JSON.stringify(address)}`);
  if (actual !== family) throw new IpvsEncodeError(`${field} ${address} is not an ${family} address`);
  return ipToBytes(address);
}

function nameBytes(name: string, max: number, field: string): Uint8Array {
  const bytes = Buffer.from(name, "utf8");
  if (bytes.length >= max || bytes.includes(0)) {
    throw new IpvsEncodeError(
      `${field} must be shorter than ${max} bytes without NUL, got ${JSON.stringify(name)}`,
    );
  }
  return putString(name);
}

export function encodeServiceFlags(flags: ServiceFlags): number {
  return (
    (flags.persistent ? SVC_FLAG.PERSISTENT : 0) |
    (flags.onePacket ? SVC_FLAG.ONEPACKET : 0) |
    (flags.schedFlag1 ? SVC_FLAG.SCHED1 : 0) |
    (flags.schedFlag2 ? SVC_FLAG.SCHED2 : 0) |
    (flags.schedFlag3 ? SVC_FLAG.SCHED3 : 0)
  );
}

/**
 * Writes attributes straight into one buffer, byte for byte what the netlink package's AttrStream
 * writes (each attribute starts 4-byte aligned, zero padding before it; a nested attribute's length
 * ends with its last attribute), without a Buffer per header and value: encoding thousands of
 * operations for apply() is JavaScript the test-bed VM spends most of a cold apply on.
 */
class AttrWriter {
  static #scratch = Buffer.alloc(4096);
  #buf = AttrWriter.#scratch;
  #at = 0;

  #room(n: number): void {
    if (this.#at + n + 3 <= this.#buf.length) return;
    const bigger = Buffer.alloc(Math.max(2 * this.#buf.length, this.#at + n + 4096));
    this.#buf.copy(bigger, 0, 0, this.#at);
    this.#buf = bigger;
  }

  #pad(): void {
    while (this.#at & 3) this.#buf[this.#at++] = 0;
  }

  /** Header of an attribute with `size` data bytes; returns where the data starts. */
  #head(type: number, size: number): number {
    this.#room(4 + size);
    this.#pad();
    const at = this.#at;
    this.#buf.writeUInt16LE(4 + size, at);
    this.#buf.writeUInt16LE(type & 0x3fff, at + 2);
    this.#at = at + 4 + size;
    return at + 4;
  }

  u8(type: number, value: number): void {
    this.#buf[this.#head(type, 1)] = value;
  }
  u16(type: number, value: number): void {
    const at = this.#head(type, 2);
    if (isLE) this.#buf.writeUInt16LE(value, at);
    else this.#buf.writeUInt16BE(value, at);
  }
  be16(type: number, value: number): void {
    this.#buf.writeUInt16BE(value, this.#head(type, 2));
  }
  u32(type: number, value: number): void {
    const at = this.#head(type, 4);
    if (isLE) this.#buf.writeUInt32LE(value, at);
    else this.#buf.writeUInt32BE(value, at);
  }
  be32(type: number, value: number): void {
    this.#buf.writeUInt32BE(value, this.#head(type, 4));
  }
  /** FLAGS: {flags, mask} as two host-order u32. */
  u32pair(type: number, a: number, b: number): void {
    const at = this.#head(type, 8);
    if (isLE) {
      this.#buf.writeUInt32LE(a, at);
      this.#buf.writeUInt32LE(b, at + 4);
    } else {
      this.#buf.writeUInt32BE(a, at);
      this.#buf.writeUInt32BE(b, at + 4);
    }
  }
  /** An address: a canonical dotted quad is written without a detour through ipToBytes. */
  address(type: number, address: string, family: Family, field: string): void {
    if (family === "IPv4") {
      const at = this.#head(type, 4);
      if (writeDottedQuad(address, this.#buf, at)) return;
      this.#at = at - 4; // not a canonical dotted quad: validate (and explain) the slow way
    }
    const bytes = addressBytes(address, family, field);
    this.#buf.set(bytes, this.#head(type, bytes.length));
  }
  /** A NUL-terminated name shorter than `max` bytes. */
  name(type: number, name: string, max: number, field: string): void {
    const length = Buffer.byteLength(name, "utf8");
    if (length >= max || name.includes("\0")) {
      throw new IpvsEncodeError(
        `${field} must be shorter than ${max} bytes without NUL, got ${JSON.stringify(name)}`,
      );
    }
    const at = this.#head(type, length + 1);
    this.#buf.write(name, at, "utf8");
    this.#buf[at + length] = 0;
  }
  /** Starts a nested attribute; close() it with the returned offset. */
  open(type: number): number {
    const at = this.#head(type, 0);
    this.#buf.writeUInt16LE(type & 0x3fff, at - 2);
    return at - 4;
  }
  close(start: number): void {
    this.#buf.writeUInt16LE(this.#at - start, start);
  }
  /** The bytes written, padded to 4 (so separately built attribute lists concatenate). */
  done(): Uint8Array[] {
    this.#pad();
    return [Buffer.from(this.#buf.subarray(0, this.#at))];
  }
}

/** Writes a canonical dotted quad ("192.0.2.1": no leading zeros) as 4 bytes; false for anything else. */
function writeDottedQuad(text: string, out: Buffer, at: number): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46;
    if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return false; // leading zero
      value = value * 10 + (c - 48);
      if (++digits > 3 || value > 255) return false;
    } else if (c === 46 && digits > 0 && part < 4) {
      out[at + part++] = value;
      value = 0;
      digits = 0;
    } else {
      return false;
    }
  }
  return part === 4;
}

function writeServiceKey(w: AttrWriter, key: ServiceKey): void {
  w.u16(IPVS_SVC_ATTR.AF, familyToAf(key.family));
  if (key.kind === "fwmark") {
    // fwmark 0 would make the kernel fall back to an (empty) address key.
    if (checkUint(key.fwmark, 0xffffffff, "fwmark") === 0)
      throw new IpvsEncodeError("fwmark must be 1..4294967295");
    w.u32(IPVS_SVC_ATTR.FWMARK, key.fwmark);
    return;
  }
  w.u16(IPVS_SVC_ATTR.PROTOCOL, protocolNumber(key.protocol));
  w.address(IPVS_SVC_ATTR.ADDR, key.address, key.family, "service address");
  w.be16(IPVS_SVC_ATTR.PORT, checkUint(key.port, 0xffff, "service port"));
}

function writeServiceKeyAttr(w: AttrWriter, key: ServiceKey): void {
  const at = w.open(IPVS_CMD_ATTR.SERVICE);
  writeServiceKey(w, key);
  w.close(at);
}

/** The nested SERVICE attribute holding only the key (delete, list destinations, zero). */
export function serviceKeyAttr(key: ServiceKey): Uint8Array[] {
  const w = new AttrWriter();
  writeServiceKeyAttr(w, key);
  return w.done();
}

function writeServiceAttr(w: AttrWriter, service: IpvsService): void {
  const { key, config } = service;
  const at = w.open(IPVS_CMD_ATTR.SERVICE);
  writeServiceKey(w, key);
  w.name(IPVS_SVC_ATTR.SCHED_NAME, config.scheduler, SCHED_NAME_MAXLEN, "scheduler");
  if (config.persistenceEngine !== "") {
    w.name(IPVS_SVC_ATTR.PE_NAME, config.persistenceEngine, PE_NAME_MAXLEN, "persistenceEngine");
  }
  w.u32pair(IPVS_SVC_ATTR.FLAGS, encodeServiceFlags(config.flags), 0xffffffff);
  w.u32(IPVS_SVC_ATTR.TIMEOUT, checkUint(config.timeout, 0xffffffff, "timeout"));
  if (key.family === "IPv4") {
    w.be32(IPVS_SVC_ATTR.NETMASK, checkUint(config.netmask, 0xffffffff, "netmask"));
  } else {
    // The kernel validates 1..128 itself (EINVAL); only refuse what cannot be carried.
    w.u32(IPVS_SVC_ATTR.NETMASK, checkUint(config.netmask, 0xffffffff, "netmask"));
  }
  w.close(at);
}

/** The nested SERVICE attribute with every field NEW_SERVICE / SET_SERVICE need. */
export function serviceAttr(service: IpvsService): Uint8Array[] {
  const w = new AttrWriter();
  writeServiceAttr(w, service);
  return w.done();
}

function tunnelTypeNumber(type: TunnelType): number {
  const n = (TUN_TYPE as Record<string, number>)[type];
  if (n === undefined)
    throw new IpvsEncodeError(`tunnelType must be IPIP, GUE or GRE, got ${JSON.stringify(type)}`);
  return n;
}

function tunnelFlagsNumber(checksum: TunnelChecksum): number {
  if (checksum === "None") return 0;
  if (checksum === "Checksum") return TUN_FLAG.CSUM;
  if (checksum === "RemoteChecksum") return TUN_FLAG.REMCSUM;
  throw new IpvsEncodeError(
    `tunnelChecksum must be None, Checksum or RemoteChecksum, got ${JSON.stringify(checksum)}`,
  );
}

function forwardingNumber(method: ForwardingMethod): number {
  const n = (FWD_METHOD as Record<string, number>)[method];
  if (n === undefined) throw new IpvsEncodeError(`forwarding method ${JSON.stringify(method)} is not known`);
  return n;
}

function writeDestinationKey(w: AttrWriter, key: DestinationKey): void {
  w.u16(IPVS_DEST_ATTR.ADDR_FAMILY, familyToAf(key.family));
  w.address(IPVS_DEST_ATTR.ADDR, key.address, key.family, "destination address");
  w.be16(IPVS_DEST_ATTR.PORT, checkUint(key.port, 0xffff, "destination port"));
}

function writeDestinationKeyAttr(w: AttrWriter, key: DestinationKey): void {
  const at = w.open(IPVS_CMD_ATTR.DEST);
  writeDestinationKey(w, key);
  w.close(at);
}

/** The nested DEST attribute with only the key (DEL_DEST). */
export function destinationKeyAttr(key: DestinationKey): Uint8Array[] {
  const w = new AttrWriter();
  writeDestinationKeyAttr(w, key);
  return w.done();
}

function writeDestinationAttr(w: AttrWriter, destination: IpvsDestination): void {
  const { key, config } = destination;
  const at = w.open(IPVS_CMD_ATTR.DEST);
  writeDestinationKey(w, key);
  w.u32(IPVS_DEST_ATTR.FWD_METHOD, forwardingNumber(config.forwarding));
  w.u32(IPVS_DEST_ATTR.WEIGHT, checkUint(config.weight, 0xffffffff, "weight"));
  w.u32(IPVS_DEST_ATTR.U_THRESH, checkUint(config.upperThreshold, 0xffffffff, "upperThreshold"));
  w.u32(IPVS_DEST_ATTR.L_THRESH, checkUint(config.lowerThreshold, 0xffffffff, "lowerThreshold"));
  w.u8(IPVS_DEST_ATTR.TUN_TYPE, tunnelTypeNumber(config.tunnelType));
  w.be16(IPVS_DEST_ATTR.TUN_PORT, checkUint(config.tunnelPort, 0xffff, "tunnelPort"));
  w.u16(IPVS_DEST_ATTR.TUN_FLAGS, tunnelFlagsNumber(config.tunnelChecksum));
  w.close(at);
}

/** The nested DEST attribute with every field NEW_DEST / SET_DEST need (tunnel fields always sent). */
export function destinationAttr(destination: IpvsDestination): Uint8Array[] {
  const w = new AttrWriter();
  writeDestinationAttr(w, destination);
  return w.done();
}

/** Request for one plan operation. Throws IpvsEncodeError for values the protocol cannot carry. */
export function encodeOperation(op: Operation): GenlRequest {
  const w = new AttrWriter();
  let cmd: number;
  switch (op.op) {
    case "addService":
    case "updateService":
      cmd = op.op === "addService" ? IPVS_CMD.NEW_SERVICE : IPVS_CMD.SET_SERVICE;
      writeServiceAttr(w, op.service);
      break;
    case "deleteService":
      cmd = IPVS_CMD.DEL_SERVICE;
      writeServiceKeyAttr(w, op.key);
      break;
    case "addDestination":
    case "updateDestination":
      cmd = op.op === "addDestination" ? IPVS_CMD.NEW_DEST : IPVS_CMD.SET_DEST;
      writeServiceKeyAttr(w, op.service);
      writeDestinationAttr(w, op.destination);
      break;
    case "deleteDestination":
      cmd = IPVS_CMD.DEL_DEST;
      writeServiceKeyAttr(w, op.service);
      writeDestinationKeyAttr(w, op.key);
      break;
    default:
      throw new IpvsEncodeError(`unknown operation ${JSON.stringify((op as { op: unknown }).op)}`);
  }
  return { cmd, attrs: w.done(), dump: false };
}

export function listServicesRequest(): GenlRequest {
  return { cmd: IPVS_CMD.GET_SERVICE, attrs: [], dump: true };
}

export function listDestinationsRequest(service: ServiceKey): GenlRequest {
  return { cmd: IPVS_CMD.GET_DEST, attrs: serviceKeyAttr(service), dump: true };
}

export function getConfigRequest(): GenlRequest {
  return { cmd: IPVS_CMD.GET_CONFIG, attrs: [], dump: false };
}

export function setConfigRequest(timeouts: Partial<IpvsTimeouts>): GenlRequest {
  const out = new AttrStream();
  const put = (type: number, value: number | undefined, field: string) => {
    if (value !== undefined) out.push(type, putU32(checkUint(value, 0xffffffff, field)));
  };
  put(IPVS_CMD_ATTR.TIMEOUT_TCP, timeouts.tcp, "tcp timeout");
  put(IPVS_CMD_ATTR.TIMEOUT_TCP_FIN, timeouts.tcpFin, "tcpFin timeout");
  put(IPVS_CMD_ATTR.TIMEOUT_UDP, timeouts.udp, "udp timeout");
  return { cmd: IPVS_CMD.SET_CONFIG, attrs: aligned(out), dump: false };
}

export function getInfoRequest(): GenlRequest {
  return { cmd: IPVS_CMD.GET_INFO, attrs: [], dump: false };
}

export function getDaemonsRequest(): GenlRequest {
  return { cmd: IPVS_CMD.GET_DAEMON, attrs: [], dump: true };
}

function daemonStateNumber(state: SyncDaemonState): number {
  const n = (DAEMON_STATE as Record<string, number>)[state];
  if (n === undefined)
    throw new IpvsEncodeError(`daemon state must be Master or Backup, got ${JSON.stringify(state)}`);
  return n;
}

export function newDaemonRequest(config: SyncDaemonConfig): GenlRequest {
  const out = new AttrStream();
  out.push(IPVS_CMD_ATTR.DAEMON, (d) => {
    d.push(IPVS_DAEMON_ATTR.STATE, putU32(daemonStateNumber(config.state)));
    d.push(IPVS_DAEMON_ATTR.MCAST_IFN, nameBytes(config.interface, IFNAME_MAXLEN, "interface"));
    d.push(IPVS_DAEMON_ATTR.SYNC_ID, putU32(checkUint(config.syncId, 0xffffffff, "syncId")));
    if (config.maxLength !== undefined) {
      d.push(IPVS_DAEMON_ATTR.SYNC_MAXLEN, putU16(checkUint(config.maxLength, 0xffff, "maxLength")));
    }
    if (config.group !== undefined) {
      const family = ipFamily(config.group);
      if (!family) throw new IpvsEncodeError(`group is not an IP address: ${JSON.stringify(config.group)}`);
      d.push(
        family === "IPv4" ? IPVS_DAEMON_ATTR.MCAST_GROUP : IPVS_DAEMON_ATTR.MCAST_GROUP6,
        ipToBytes(config.group),
      );
    }
    if (config.port !== undefined)
      d.push(IPVS_DAEMON_ATTR.MCAST_PORT, putU16(checkUint(config.port, 0xffff, "port")));
    if (config.ttl !== undefined)
      d.push(IPVS_DAEMON_ATTR.MCAST_TTL, putU8(checkUint(config.ttl, 0xff, "ttl")));
  });
  return { cmd: IPVS_CMD.NEW_DAEMON, attrs: aligned(out), dump: false };
}

export function delDaemonRequest(state: SyncDaemonState): GenlRequest {
  const out = new AttrStream();
  out.push(IPVS_CMD_ATTR.DAEMON, (d) => d.push(IPVS_DAEMON_ATTR.STATE, putU32(daemonStateNumber(state))));
  return { cmd: IPVS_CMD.DEL_DAEMON, attrs: aligned(out), dump: false };
}

export function zeroRequest(service?: ServiceKey): GenlRequest {
  return { cmd: IPVS_CMD.ZERO, attrs: service ? serviceKeyAttr(service) : [], dump: false };
}

export function flushRequest(): GenlRequest {
  return { cmd: IPVS_CMD.FLUSH, attrs: [], dump: false };
}

/** CTRL_CMD_GETFAMILY for a family name; send it to GENL_ID_CTRL. */
export function getFamilyRequest(name: string): GenlRequest {
  const out = new AttrStream();
  out.push(CTRL_ATTR_FAMILY_NAME, putString(name));
  return { cmd: CTRL_CMD_GETFAMILY, attrs: aligned(out), dump: false };
}

/**
 * One complete netlink message (nlmsghdr + genlmsghdr + attributes) for a request.
 * Doit requests ask for an ACK (unless `ack` is false) so that every request ends with exactly one
 * NLMSG_ERROR; dumps end with NLMSG_DONE. Without NLM_F_ACK the kernel answers a doit request only
 * when it fails (netlink_rcv_skb acks `if (flags & NLM_F_ACK || err)`): NetlinkIpvsKernel.apply()
 * asks for the ACK of the last request of a datagram only, and reads silence before it as success.
 */
export function frameRequest(
  request: GenlRequest,
  familyId: number,
  seq: number,
  port = 0,
  ack = true,
): Buffer {
  return frameRequests([request], familyId, [seq], [ack], port);
}

/** Several requests framed into one datagram, one allocation (`acks[i]`: whether request i asks for an ACK). */
export function frameRequests(
  requests: readonly GenlRequest[],
  familyId: number,
  seqs: readonly number[],
  acks: readonly boolean[],
  port = 0,
): Buffer {
  let total = 0;
  for (const request of requests) {
    let length = NLMSG_HDRLEN + GENL_HDRLEN;
    for (const a of request.attrs) length += a.length;
    total += (length + 3) & ~3;
  }
  const out = Buffer.alloc(total);
  const version = familyId === GENL_ID_CTRL ? 1 : IPVS_GENL_VERSION;
  const u16 = isLE ? out.writeUInt16LE : out.writeUInt16BE;
  const u32 = isLE ? out.writeUInt32LE : out.writeUInt32BE;
  let at = 0;
  requests.forEach((request, i) => {
    let length = NLMSG_HDRLEN + GENL_HDRLEN;
    for (const a of request.attrs) length += a.length;
    const flags = NLM_F.REQUEST | (request.dump ? NLM_F.DUMP : acks[i] ? NLM_F.ACK : 0);
    // nlmsghdr (host order) + genlmsghdr, then the attributes
    u32.call(out, length, at);
    u16.call(out, familyId, at + 4);
    u16.call(out, flags, at + 6);
    u32.call(out, seqs[i]!, at + 8);
    u32.call(out, port, at + 12);
    out[at + 16] = request.cmd;
    out[at + 17] = version;
    let data = at + NLMSG_HDRLEN + GENL_HDRLEN;
    for (const a of request.attrs) {
      out.set(a, data);
      data += a.length;
    }
    at += (length + 3) & ~3;
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** One received netlink message. */
export interface NetlinkReply {
  type: number;
  flags: number;
  seq: number;
  port: number;
  payload: Buffer;
}

function decodeFail(what: string, cause?: unknown): never {
  const detail = cause instanceof Error ? `: ${cause.message}` : "";
  throw new IpvsDecodeError(`malformed IPVS reply: ${what}${detail}`);
}

/** Splits a datagram into messages. Throws IpvsDecodeError on a truncated header or length. */
export function decodeMessages(datagram: Uint8Array): NetlinkReply[] {
  const buf = Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  const out: NetlinkReply[] = [];
  let offset = 0;
  while (offset < buf.length) {
    if (buf.length - offset < NLMSG_HDRLEN) {
      // Trailing alignment padding is allowed; anything else is a truncated header.
      if (buf.subarray(offset).every((b) => b === 0)) break;
      decodeFail(`truncated netlink header at offset ${offset}`);
    }
    const length = readU32.call(buf, offset);
    if (length < NLMSG_HDRLEN || offset + length > buf.length) {
      decodeFail(`netlink message length ${length} at offset ${offset} does not fit ${buf.length} bytes`);
    }
    out.push({
      type: readU16.call(buf, offset + 4),
      flags: readU16.call(buf, offset + 6),
      seq: readU32.call(buf, offset + 8),
      port: readU32.call(buf, offset + 12),
      payload: buf.subarray(offset + NLMSG_HDRLEN, offset + length),
    });
    offset += (length + 3) & ~3;
  }
  return out;
}

/** The errno of an NLMSG_ERROR payload: 0 for an ACK, else a positive errno number. */
export function decodeErrorPayload(payload: Buffer): number {
  if (payload.length < 4) decodeFail(`NLMSG_ERROR payload of ${payload.length} bytes`);
  return 0 - readS32.call(payload, 0);
}

/** Command and top-level attribute bytes of a generic netlink message payload. */
export function decodeGenlPayload(payload: Buffer): { cmd: number; version: number; attrs: Buffer } {
  if (payload.length < GENL_HDRLEN) decodeFail(`generic netlink payload of ${payload.length} bytes`);
  return { cmd: payload[0]!, version: payload[1]!, attrs: payload.subarray(GENL_HDRLEN) };
}

type AttrMap = Map<number, Buffer>;

/** Attributes by type (the last one wins); wraps the package's parser errors as IpvsDecodeError. */
export function attributeMap(bytes: Buffer, where: string): AttrMap {
  const map: AttrMap = new Map();
  try {
    parseAttributes(bytes, (a) => {
      map.set(a.type, a.data);
    });
  } catch (e) {
    decodeFail(`attributes of ${where}`, e);
  }
  return map;
}

function need(map: AttrMap, type: number, field: string): Buffer {
  const v = map.get(type);
  if (v === undefined) decodeFail(`${field} is missing`);
  return v;
}

function u8(data: Buffer, field: string): number {
  if (data.length !== 1) decodeFail(`${field} has ${data.length} bytes, expected 1`);
  return data[0]!;
}

function u16(data: Buffer, field: string): number {
  if (data.length !== 2) decodeFail(`${field} has ${data.length} bytes, expected 2`);
  return readU16.call(data, 0);
}

function u32(data: Buffer, field: string): number {
  if (data.length !== 4) decodeFail(`${field} has ${data.length} bytes, expected 4`);
  return readU32.call(data, 0);
}

function nulString(data: Buffer): string {
  const end = data.indexOf(0);
  return data.subarray(0, end < 0 ? data.length : end).toString("utf8");
}

function afToFamily(af: number, field: string): Family {
  if (af === AF.INET) return "IPv4";
  if (af === AF.INET6) return "IPv6";
  return decodeFail(`${field} ${af} is neither AF_INET nor AF_INET6`);
}

function decodeAddress(data: Buffer, family: Family, field: string): string {
  const need = family === "IPv4" ? 4 : 16;
  // Replies carry 16 bytes (union nf_inet_addr); requests may carry exactly 4 for IPv4.
  if (data.length !== 16 && data.length !== need) decodeFail(`${field} has ${data.length} bytes`);
  return bytesToIp(data.subarray(0, need), family);
}

// Dump replies (GET_SERVICE, GET_DEST) are decoded by offset over the reply's own bytes: one walk
// records where the last attribute of each type starts (an AttrIndex), then fields are read in
// place. No Buffer or Map per attribute; for 1000 services x 4 destinations this is most of the
// JavaScript cost of reading the table. Errors and their messages are those of attributeMap.

/** Attribute types below this are indexed; every IPVS attribute type used here is below it. */
const INDEX_TYPES = 16;

/** For each type t < INDEX_TYPES: [2t] data start (-1 when absent), [2t + 1] data length. */
type AttrIndex = Int32Array;

// One index per nesting level; decoding is synchronous and each level only calls the next one,
// so a level's index is never overwritten while it is still being read.
const topIndex: AttrIndex = new Int32Array(2 * INDEX_TYPES);
const entryIndex: AttrIndex = new Int32Array(2 * INDEX_TYPES);
const statsIndex: AttrIndex = new Int32Array(2 * INDEX_TYPES);

/** Netlink integers are in host order. */
const isLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function hostU16(buf: Buffer, at: number): number {
  return isLE ? buf[at]! | (buf[at + 1]! << 8) : (buf[at]! << 8) | buf[at + 1]!;
}

function hostU32(buf: Buffer, at: number): number {
  return isLE
    ? (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0
    : ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
}

function netU16(buf: Buffer, at: number): number {
  return (buf[at]! << 8) | buf[at + 1]!;
}

function netU32(buf: Buffer, at: number): number {
  return ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
}

/**
 * Records the attributes in buf[from, to) into `index` (the last of a type wins), with the
 * netlink package's framing rules: a header needs 4 bytes, a length covers at least the header
 * and fits the remaining bytes, and the next attribute starts at the 4-byte aligned end.
 */
function indexAttributes(buf: Buffer, from: number, to: number, index: AttrIndex, where: string): void {
  index.fill(-1);
  let at = from;
  while (at < to) {
    if (to - at < 4) decodeFail(`attributes of ${where}: Not enough data`);
    const length = hostU16(buf, at);
    if (length < 4 || to - at < length)
      decodeFail(`attributes of ${where}: Invalid attribute length (${length})`);
    const type = hostU16(buf, at + 2) & 0x3fff;
    if (type < INDEX_TYPES) {
      index[2 * type] = at + 4;
      index[2 * type + 1] = length - 4;
    }
    at += (length + 3) & ~3;
  }
}

/** Data start of a required attribute. */
function needAt(index: AttrIndex, type: number, field: string): number {
  const start = index[2 * type]!;
  if (start < 0) decodeFail(`${field} is missing`);
  return start;
}

function sizeIs(index: AttrIndex, type: number, size: number, field: string): void {
  const length = index[2 * type + 1]!;
  if (length !== size) decodeFail(`${field} has ${length} bytes, expected ${size}`);
}

function u8At(buf: Buffer, index: AttrIndex, type: number, field: string): number {
  sizeIs(index, type, 1, field);
  return buf[index[2 * type]!]!;
}

function u16At(buf: Buffer, index: AttrIndex, type: number, field: string): number {
  sizeIs(index, type, 2, field);
  return hostU16(buf, index[2 * type]!);
}

function be16At(buf: Buffer, index: AttrIndex, type: number, field: string): number {
  sizeIs(index, type, 2, field);
  return netU16(buf, index[2 * type]!);
}

function u32At(buf: Buffer, index: AttrIndex, type: number, field: string): number {
  sizeIs(index, type, 4, field);
  return hostU32(buf, index[2 * type]!);
}

function requiredU32(buf: Buffer, index: AttrIndex, type: number, field: string): number {
  needAt(index, type, field);
  return u32At(buf, index, type, field);
}

/** NUL-terminated (or attribute-long) UTF-8 string of an attribute. */
function stringAt(buf: Buffer, index: AttrIndex, type: number): string {
  const start = index[2 * type]!;
  const end = start + index[2 * type + 1]!;
  let stop = start;
  while (stop < end && buf[stop] !== 0) stop++;
  return buf.toString("utf8", start, stop);
}

function addressAt(buf: Buffer, index: AttrIndex, type: number, family: Family, field: string): string {
  const start = needAt(index, type, field);
  const length = index[2 * type + 1]!;
  const size = family === "IPv4" ? 4 : 16;
  // Replies carry 16 bytes (union nf_inet_addr); requests may carry exactly 4 for IPv4.
  if (length !== 16 && length !== size) decodeFail(`${field} has ${length} bytes`);
  if (family === "IPv4") return `${buf[start]}.${buf[start + 1]}.${buf[start + 2]}.${buf[start + 3]}`;
  return bytesToIp(buf.subarray(start, start + 16), family);
}

/** A counter of 4 or 8 bytes in host order; 0n when absent. Zero, the usual value, allocates nothing. */
function counterAt(buf: Buffer, index: AttrIndex, type: number, where: string, field: string): bigint {
  const start = index[2 * type]!;
  if (start < 0) return 0n;
  const length = index[2 * type + 1]!;
  if (length === 4) {
    const v = hostU32(buf, start);
    return v === 0 ? 0n : BigInt(v);
  }
  if (length === 8) {
    const low = hostU32(buf, isLE ? start : start + 4);
    const high = hostU32(buf, isLE ? start + 4 : start);
    if (high === 0) return low === 0 ? 0n : BigInt(low);
    return (BigInt(high) << 32n) | BigInt(low);
  }
  return decodeFail(`${where} ${field} has ${length} bytes`);
}

function statsAt(buf: Buffer, from: number, to: number, where: string): IpvsStats {
  const m = statsIndex;
  indexAttributes(buf, from, to, m, where);
  return {
    connections: counterAt(buf, m, IPVS_STATS_ATTR.CONNS, where, "conns"),
    inPackets: counterAt(buf, m, IPVS_STATS_ATTR.INPKTS, where, "inpkts"),
    outPackets: counterAt(buf, m, IPVS_STATS_ATTR.OUTPKTS, where, "outpkts"),
    inBytes: counterAt(buf, m, IPVS_STATS_ATTR.INBYTES, where, "inbytes"),
    outBytes: counterAt(buf, m, IPVS_STATS_ATTR.OUTBYTES, where, "outbytes"),
    cps: counterAt(buf, m, IPVS_STATS_ATTR.CPS, where, "cps"),
    inPps: counterAt(buf, m, IPVS_STATS_ATTR.INPPS, where, "inpps"),
    outPps: counterAt(buf, m, IPVS_STATS_ATTR.OUTPPS, where, "outpps"),
    inBps: counterAt(buf, m, IPVS_STATS_ATTR.INBPS, where, "inbps"),
    outBps: counterAt(buf, m, IPVS_STATS_ATTR.OUTBPS, where, "outbps"),
  };
}

/** STATS (32-bit counters, 64-bit bytes) or STATS64: sizes decide the width; PAD and unknown skipped. */
export function decodeStats(bytes: Buffer, where: string): IpvsStats {
  return statsAt(bytes, 0, bytes.length, where);
}

/** STATS64 when present, else STATS, else undefined. Reads `index` before indexing the nested stats. */
function pickStats(
  buf: Buffer,
  index: AttrIndex,
  stats64: number,
  stats32: number,
  where: string,
): IpvsStats | undefined {
  let type = stats64;
  let start = index[2 * stats64]!;
  if (start < 0) {
    type = stats32;
    start = index[2 * stats32]!;
    if (start < 0) return undefined;
  }
  const end = start + index[2 * type + 1]!;
  return statsAt(buf, start, end, type === stats64 ? `${where} STATS64` : `${where} STATS`);
}

export function decodeServiceFlags(flags: number): ServiceFlags {
  return {
    persistent: (flags & SVC_FLAG.PERSISTENT) !== 0,
    onePacket: (flags & SVC_FLAG.ONEPACKET) !== 0,
    schedFlag1: (flags & SVC_FLAG.SCHED1) !== 0,
    schedFlag2: (flags & SVC_FLAG.SCHED2) !== 0,
    schedFlag3: (flags & SVC_FLAG.SCHED3) !== 0,
  };
}

const PROTOCOL_BY_NUMBER: Record<number, Protocol> = { 6: "TCP", 17: "UDP", 132: "SCTP" };

/** The key of an indexed SERVICE attribute. */
function serviceKeyAt(buf: Buffer, m: AttrIndex): ServiceKey {
  needAt(m, IPVS_SVC_ATTR.AF, "service AF");
  const family = afToFamily(u16At(buf, m, IPVS_SVC_ATTR.AF, "service AF"), "service AF");
  if (m[2 * IPVS_SVC_ATTR.FWMARK]! >= 0) {
    return { kind: "fwmark", family, fwmark: u32At(buf, m, IPVS_SVC_ATTR.FWMARK, "service FWMARK") };
  }
  needAt(m, IPVS_SVC_ATTR.PROTOCOL, "service PROTOCOL");
  const protoNumber = u16At(buf, m, IPVS_SVC_ATTR.PROTOCOL, "service PROTOCOL");
  const protocol = PROTOCOL_BY_NUMBER[protoNumber];
  if (!protocol) decodeFail(`service PROTOCOL ${protoNumber} is not TCP, UDP or SCTP`);
  const address = addressAt(buf, m, IPVS_SVC_ATTR.ADDR, family, "service ADDR");
  needAt(m, IPVS_SVC_ATTR.PORT, "service PORT");
  return {
    kind: "address",
    family,
    protocol,
    address,
    port: be16At(buf, m, IPVS_SVC_ATTR.PORT, "service PORT"),
  };
}

function serviceAt(buf: Buffer, from: number, to: number): KernelService {
  const m = entryIndex;
  indexAttributes(buf, from, to, m, "service");
  const key = serviceKeyAt(buf, m);
  const family = key.family;
  const flagsAt = needAt(m, IPVS_SVC_ATTR.FLAGS, "service FLAGS");
  sizeIs(m, IPVS_SVC_ATTR.FLAGS, 8, "service FLAGS");
  const rawFlags = hostU32(buf, flagsAt) & ~SVC_FLAG.HASHED;
  const netmaskAt = needAt(m, IPVS_SVC_ATTR.NETMASK, "service NETMASK");
  sizeIs(m, IPVS_SVC_ATTR.NETMASK, 4, "service NETMASK");
  needAt(m, IPVS_SVC_ATTR.SCHED_NAME, "service SCHED_NAME");
  const scheduler = stringAt(buf, m, IPVS_SVC_ATTR.SCHED_NAME);
  const flags = decodeServiceFlags(rawFlags);
  const timeout = requiredU32(buf, m, IPVS_SVC_ATTR.TIMEOUT, "service TIMEOUT");
  const service: KernelService = {
    key,
    config: {
      scheduler,
      flags,
      timeout,
      netmask: family === "IPv4" ? netU32(buf, netmaskAt) : hostU32(buf, netmaskAt),
      persistenceEngine: m[2 * IPVS_SVC_ATTR.PE_NAME]! < 0 ? "" : stringAt(buf, m, IPVS_SVC_ATTR.PE_NAME),
    },
  };
  const stats = pickStats(buf, m, IPVS_SVC_ATTR.STATS64, IPVS_SVC_ATTR.STATS, "service");
  if (stats) service.stats = stats;
  return service;
}

/** The nested SERVICE attribute's content (as in a NEW_SERVICE reply of a GET_SERVICE dump). */
export function decodeServiceAttrs(bytes: Buffer): KernelService {
  return serviceAt(bytes, 0, bytes.length);
}

/** A NEW_SERVICE message's top-level attributes (one entry of a GET_SERVICE dump). */
export function decodeServiceMessage(attrs: Buffer): KernelService {
  indexAttributes(attrs, 0, attrs.length, topIndex, "service message");
  const start = needAt(topIndex, IPVS_CMD_ATTR.SERVICE, "SERVICE attribute");
  return serviceAt(attrs, start, start + topIndex[2 * IPVS_CMD_ATTR.SERVICE + 1]!);
}

const FORWARDING_BY_NUMBER: Record<number, ForwardingMethod> = {
  0: "NAT",
  1: "Local",
  2: "Tunnel",
  3: "DirectRouting",
  4: "Bypass",
};
const TUNNEL_BY_NUMBER: Record<number, TunnelType> = { 0: "IPIP", 1: "GUE", 2: "GRE" };

function decodeTunnelChecksum(flags: number): TunnelChecksum {
  if (flags & TUN_FLAG.REMCSUM) return "RemoteChecksum";
  if (flags & TUN_FLAG.CSUM) return "Checksum";
  return "None";
}

function optionalCounter(buf: Buffer, index: AttrIndex, type: number, field: string): number {
  return index[2 * type]! < 0 ? 0 : u32At(buf, index, type, field);
}

function destinationAt(buf: Buffer, from: number, to: number, serviceFamily: Family): KernelDestination {
  const m = entryIndex;
  indexAttributes(buf, from, to, m, "destination");
  const family =
    m[2 * IPVS_DEST_ATTR.ADDR_FAMILY]! < 0
      ? serviceFamily
      : afToFamily(
          u16At(buf, m, IPVS_DEST_ATTR.ADDR_FAMILY, "destination ADDR_FAMILY"),
          "destination ADDR_FAMILY",
        );
  const fwd = requiredU32(buf, m, IPVS_DEST_ATTR.FWD_METHOD, "destination FWD_METHOD");
  const forwarding = FORWARDING_BY_NUMBER[fwd & FWD_MASK];
  if (!forwarding) decodeFail(`destination FWD_METHOD ${fwd} is not known`);
  const tunTypeNumber =
    m[2 * IPVS_DEST_ATTR.TUN_TYPE]! < 0 ? 0 : u8At(buf, m, IPVS_DEST_ATTR.TUN_TYPE, "destination TUN_TYPE");
  const tunnelType = TUNNEL_BY_NUMBER[tunTypeNumber];
  if (!tunnelType) decodeFail(`destination TUN_TYPE ${tunTypeNumber} is not known`);
  const address = addressAt(buf, m, IPVS_DEST_ATTR.ADDR, family, "destination ADDR");
  needAt(m, IPVS_DEST_ATTR.PORT, "destination PORT");
  const port = be16At(buf, m, IPVS_DEST_ATTR.PORT, "destination PORT");
  const weight = requiredU32(buf, m, IPVS_DEST_ATTR.WEIGHT, "destination WEIGHT");
  const upperThreshold = requiredU32(buf, m, IPVS_DEST_ATTR.U_THRESH, "destination U_THRESH");
  const lowerThreshold = requiredU32(buf, m, IPVS_DEST_ATTR.L_THRESH, "destination L_THRESH");
  const tunnelPort =
    m[2 * IPVS_DEST_ATTR.TUN_PORT]! < 0 ? 0 : be16At(buf, m, IPVS_DEST_ATTR.TUN_PORT, "destination TUN_PORT");
  const tunnelChecksum = decodeTunnelChecksum(
    m[2 * IPVS_DEST_ATTR.TUN_FLAGS]! < 0
      ? 0
      : u16At(buf, m, IPVS_DEST_ATTR.TUN_FLAGS, "destination TUN_FLAGS"),
  );
  const dest: KernelDestination = {
    key: { family, address, port },
    config: { forwarding, weight, upperThreshold, lowerThreshold, tunnelType, tunnelPort, tunnelChecksum },
    activeConnections: optionalCounter(buf, m, IPVS_DEST_ATTR.ACTIVE_CONNS, "destination ACTIVE_CONNS"),
    inactiveConnections: optionalCounter(buf, m, IPVS_DEST_ATTR.INACT_CONNS, "destination INACT_CONNS"),
    persistentConnections: optionalCounter(buf, m, IPVS_DEST_ATTR.PERSIST_CONNS, "destination PERSIST_CONNS"),
  };
  const stats = pickStats(buf, m, IPVS_DEST_ATTR.STATS64, IPVS_DEST_ATTR.STATS, "destination");
  if (stats) dest.stats = stats;
  return dest;
}

/**
 * The nested DEST attribute's content. `serviceFamily` is the family to assume when the kernel
 * (< 3.18) sends no ADDR_FAMILY.
 */
export function decodeDestinationAttrs(bytes: Buffer, serviceFamily: Family): KernelDestination {
  return destinationAt(bytes, 0, bytes.length, serviceFamily);
}

/** A NEW_DEST message's top-level attributes (one entry of a GET_DEST dump). */
export function decodeDestinationMessage(attrs: Buffer, serviceFamily: Family): KernelDestination {
  indexAttributes(attrs, 0, attrs.length, topIndex, "destination message");
  const start = needAt(topIndex, IPVS_CMD_ATTR.DEST, "DEST attribute");
  return destinationAt(attrs, start, start + topIndex[2 * IPVS_CMD_ATTR.DEST + 1]!, serviceFamily);
}

// ---------------------------------------------------------------------------------------------
// Entry by entry: one entry that does not decode is described, not thrown (NetlinkIpvsKernel.readTable)

/** One entry of a dump: decoded, or the reason it could not be (with what could be read of its key). */
export type DecodedEntry<T> = { ok: true; value: T } | { ok: false; reason: string };

function reasonOf(e: unknown): string {
  if (e instanceof IpvsDecodeError) return e.message.replace(/^malformed IPVS reply: /, "");
  throw e;
}

/** A GET_SERVICE dump entry (top-level attributes): the service, or why it does not decode. */
export function decodeServiceEntry(attrs: Buffer): DecodedEntry<KernelService> {
  try {
    return { ok: true, value: decodeServiceMessage(attrs) };
  } catch (e) {
    return { ok: false, reason: reasonOf(e) };
  }
}

/** A GET_DEST dump entry (top-level attributes): the destination, or why it does not decode. */
export function decodeDestinationEntry(
  attrs: Buffer,
  serviceFamily: Family,
): DecodedEntry<KernelDestination> {
  try {
    return { ok: true, value: decodeDestinationMessage(attrs, serviceFamily) };
  } catch (e) {
    return { ok: false, reason: reasonOf(e) };
  }
}

/** Raw integer of an attribute of 1, 2 or 4 bytes, for descriptions; undefined when absent or odd. */
function rawNumber(buf: Buffer, index: AttrIndex, type: number, network = false): number | undefined {
  const start = index[2 * type]!;
  if (start < 0) return undefined;
  const length = index[2 * type + 1]!;
  if (length === 1) return buf[start]!;
  if (length === 2) return network ? netU16(buf, start) : hostU16(buf, start);
  if (length === 4) return network ? netU32(buf, start) : hostU32(buf, start);
  return undefined;
}

/** Address bytes in the usual text form when their length fits a family, else hex. */
function rawAddress(buf: Buffer, index: AttrIndex, type: number, af: number | undefined): string | undefined {
  const start = index[2 * type]!;
  if (start < 0) return undefined;
  const length = index[2 * type + 1]!;
  const bytes = buf.subarray(start, start + length);
  if (af === AF.INET && (length === 4 || length === 16)) return bytesToIp(bytes.subarray(0, 4), "IPv4");
  if (af === AF.INET6 && length === 16) return bytesToIp(bytes, "IPv6");
  return `0x${bytes.toString("hex")}`;
}

/**
 * What can be read of an undecodable GET_SERVICE entry: its key when the key decodes (then the
 * entry's other attributes were the problem) and a text for reports, e.g. "TCP 192.0.2.1:80" or
 * "protocol 99 192.0.2.1:80 (AF 2)". Never throws.
 */
export function describeServiceEntry(attrs: Buffer): { key?: ServiceKey; text: string } {
  let key: ServiceKey | undefined;
  try {
    key = serviceKeyOf(attrs);
  } catch (e) {
    if (!(e instanceof IpvsDecodeError)) throw e;
  }
  if (key) return { key, text: serviceKeyString(key) };
  try {
    indexAttributes(attrs, 0, attrs.length, topIndex, "service message");
    const start = topIndex[2 * IPVS_CMD_ATTR.SERVICE]!;
    if (start < 0) return { text: "a service entry without a SERVICE attribute" };
    const m = entryIndex;
    indexAttributes(attrs, start, start + topIndex[2 * IPVS_CMD_ATTR.SERVICE + 1]!, m, "service");
    const af = rawNumber(attrs, m, IPVS_SVC_ATTR.AF);
    const fwmark = rawNumber(attrs, m, IPVS_SVC_ATTR.FWMARK);
    const family = af === AF.INET ? "IPv4" : af === AF.INET6 ? "IPv6" : `AF ${af ?? "?"}`;
    if (fwmark !== undefined) return { text: `FWM ${fwmark} ${family}` };
    const protocolNumber = rawNumber(attrs, m, IPVS_SVC_ATTR.PROTOCOL);
    const protocol =
      (protocolNumber !== undefined && PROTOCOL_BY_NUMBER[protocolNumber]) ||
      `protocol ${protocolNumber ?? "?"}`;
    const address = rawAddress(attrs, m, IPVS_SVC_ATTR.ADDR, af) ?? "?";
    const port = rawNumber(attrs, m, IPVS_SVC_ATTR.PORT, true) ?? "?";
    const host = af === AF.INET6 ? `[${address}]:${port}` : `${address}:${port}`;
    return { text: `${protocol} ${host}${af === AF.INET || af === AF.INET6 ? "" : ` (${family})`}` };
  } catch (e) {
    if (!(e instanceof IpvsDecodeError)) throw e;
    return { text: "a service entry with malformed attributes" };
  }
}

/** The key of a GET_SERVICE entry alone (AF, then FWMARK or PROTOCOL + ADDR + PORT). */
function serviceKeyOf(attrs: Buffer): ServiceKey {
  indexAttributes(attrs, 0, attrs.length, topIndex, "service message");
  const start = needAt(topIndex, IPVS_CMD_ATTR.SERVICE, "SERVICE attribute");
  const m = entryIndex;
  indexAttributes(attrs, start, start + topIndex[2 * IPVS_CMD_ATTR.SERVICE + 1]!, m, "service");
  return serviceKeyAt(attrs, m);
}

/**
 * What can be read of an undecodable GET_DEST entry's key, for reports: "198.51.100.5:8080", or the
 * raw address and port when the family is unknown. Never throws.
 */
export function describeDestinationEntry(attrs: Buffer, serviceFamily: Family): string {
  try {
    indexAttributes(attrs, 0, attrs.length, topIndex, "destination message");
    const start = topIndex[2 * IPVS_CMD_ATTR.DEST]!;
    if (start < 0) return "a destination entry without a DEST attribute";
    const m = entryIndex;
    indexAttributes(attrs, start, start + topIndex[2 * IPVS_CMD_ATTR.DEST + 1]!, m, "destination");
    const af =
      rawNumber(attrs, m, IPVS_DEST_ATTR.ADDR_FAMILY) ?? (serviceFamily === "IPv4" ? AF.INET : AF.INET6);
    const address = rawAddress(attrs, m, IPVS_DEST_ATTR.ADDR, af) ?? "?";
    const port = rawNumber(attrs, m, IPVS_DEST_ATTR.PORT, true) ?? "?";
    const host = af === AF.INET6 ? `[${address}]:${port}` : `${address}:${port}`;
    return af === AF.INET || af === AF.INET6 ? host : `${host} (AF ${af})`;
  } catch (e) {
    if (!(e instanceof IpvsDecodeError)) throw e;
    return "a destination entry with malformed attributes";
  }
}

/** GET_CONFIG reply. */
export function decodeTimeouts(attrs: Buffer): IpvsTimeouts {
  const m = attributeMap(attrs, "config");
  const get = (type: number, field: string) => {
    const d = m.get(type);
    return d === undefined ? 0 : u32(d, field);
  };
  return {
    tcp: get(IPVS_CMD_ATTR.TIMEOUT_TCP, "TIMEOUT_TCP"),
    tcpFin: get(IPVS_CMD_ATTR.TIMEOUT_TCP_FIN, "TIMEOUT_TCP_FIN"),
    udp: get(IPVS_CMD_ATTR.TIMEOUT_UDP, "TIMEOUT_UDP"),
  };
}

/** GET_INFO reply. */
export function decodeInfo(attrs: Buffer): IpvsInfo {
  const m = attributeMap(attrs, "info");
  const versionCode = u32(need(m, IPVS_INFO_ATTR.VERSION, "info VERSION"), "info VERSION");
  return {
    versionCode,
    version: `${(versionCode >> 16) & 0xff}.${(versionCode >> 8) & 0xff}.${versionCode & 0xff}`,
    connectionTableSize: u32(
      need(m, IPVS_INFO_ATTR.CONN_TAB_SIZE, "info CONN_TAB_SIZE"),
      "info CONN_TAB_SIZE",
    ),
  };
}

/** One NEW_DAEMON message of a GET_DAEMON dump. */
export function decodeDaemonMessage(attrs: Buffer): SyncDaemonConfig {
  const top = attributeMap(attrs, "daemon message");
  const m = attributeMap(need(top, IPVS_CMD_ATTR.DAEMON, "DAEMON attribute"), "daemon");
  const stateNumber = u32(need(m, IPVS_DAEMON_ATTR.STATE, "daemon STATE"), "daemon STATE");
  const state: SyncDaemonState | undefined =
    stateNumber === DAEMON_STATE.Master
      ? "Master"
      : stateNumber === DAEMON_STATE.Backup
        ? "Backup"
        : undefined;
  if (!state) decodeFail(`daemon STATE ${stateNumber} is neither master nor backup`);
  const config: SyncDaemonConfig = {
    state,
    interface: nulString(need(m, IPVS_DAEMON_ATTR.MCAST_IFN, "daemon MCAST_IFN")),
    syncId: u32(need(m, IPVS_DAEMON_ATTR.SYNC_ID, "daemon SYNC_ID"), "daemon SYNC_ID"),
  };
  const maxLen = m.get(IPVS_DAEMON_ATTR.SYNC_MAXLEN);
  if (maxLen !== undefined) config.maxLength = u16(maxLen, "daemon SYNC_MAXLEN");
  const g4 = m.get(IPVS_DAEMON_ATTR.MCAST_GROUP);
  const g6 = m.get(IPVS_DAEMON_ATTR.MCAST_GROUP6);
  if (g6 !== undefined) config.group = decodeAddress(g6, "IPv6", "daemon MCAST_GROUP6");
  else if (g4 !== undefined) config.group = decodeAddress(g4, "IPv4", "daemon MCAST_GROUP");
  const port = m.get(IPVS_DAEMON_ATTR.MCAST_PORT);
  if (port !== undefined) config.port = u16(port, "daemon MCAST_PORT");
  const ttl = m.get(IPVS_DAEMON_ATTR.MCAST_TTL);
  if (ttl !== undefined) config.ttl = u8(ttl, "daemon MCAST_TTL");
  return config;
}

/** CTRL_CMD_GETFAMILY reply: the family id. */
export function decodeFamilyId(attrs: Buffer): number {
  const m = attributeMap(attrs, "ctrl family");
  return u16(need(m, CTRL_ATTR_FAMILY_ID, "CTRL_ATTR_FAMILY_ID"), "CTRL_ATTR_FAMILY_ID");
}
