/**
 * Decoding of IPVS generic netlink replies: datagram -> netlink messages -> typed table values.
 * Pure (no sockets, no clock). One attribute walker (walkAttributes) reads every attribute list and
 * one address decoder (addressText) every address. Unknown attributes are skipped; malformed ones
 * give IpvsDecodeError (never another exception), and a dump entry that does not decode is
 * described instead (DecodedEntry, describeServiceEntry, describeDestinationEntry).
 *
 * Addresses come back as 16 bytes (requests may carry 4 for IPv4); the kernel's HASHED service flag
 * is stripped on read.
 */
import { readS32, readU16, readU32 } from "netlink";
import { bytesToIp } from "../vocabulary/addresses.ts";
import type {
  Family,
  ForwardingMethod,
  IpvsInfo,
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
import {
  AF,
  CTRL_ATTR_FAMILY_ID,
  DAEMON_STATE,
  FWD_MASK,
  GENL_HDRLEN,
  IPVS_CMD_ATTR,
  IPVS_DAEMON_ATTR,
  IPVS_DEST_ATTR,
  IPVS_INFO_ATTR,
  IPVS_STATS_ATTR,
  IPVS_SVC_ATTR,
  isLE,
  NLMSG_HDRLEN,
  SVC_FLAG,
  TUN_FLAG,
} from "./ipvs-protocol.ts";

/** One received netlink message. */
export interface NetlinkReply {
  type: number;
  flags: number;
  seq: number;
  port: number;
  payload: Buffer;
}

function decodeFail(what: string): never {
  throw new IpvsDecodeError(`malformed IPVS reply: ${what}`);
}

/**
 * The message walker: calls `visit(buf, at, length)` for each netlink message of a datagram, in
 * place (`at` is the header's offset, `length` the message's). Throws IpvsDecodeError on a truncated
 * header or length; trailing zero padding is allowed.
 */
export function walkMessages<T>(
  datagram: Uint8Array,
  visit: (into: T, buf: Buffer, at: number, length: number) => void,
  into: T,
): void {
  const buf = Buffer.isBuffer(datagram)
    ? datagram
    : Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength);
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
    visit(into, buf, offset, length);
    offset += (length + 3) & ~3;
  }
}

/** The header fields of the message at `at` (see walkMessages). */
export function messageType(buf: Buffer, at: number): number {
  return readU16.call(buf, at + 4);
}
export function messageSeq(buf: Buffer, at: number): number {
  return readU32.call(buf, at + 8);
}

/** The message at `at` (see walkMessages), its payload a view of `buf`. */
export function replyAt(buf: Buffer, at: number, length: number): NetlinkReply {
  return {
    type: readU16.call(buf, at + 4),
    flags: readU16.call(buf, at + 6),
    seq: readU32.call(buf, at + 8),
    port: readU32.call(buf, at + 12),
    payload: buf.subarray(at + NLMSG_HDRLEN, at + length),
  };
}

function pushReply(out: NetlinkReply[], buf: Buffer, at: number, length: number): void {
  out.push(replyAt(buf, at, length));
}

/** Splits a datagram into messages. Throws IpvsDecodeError on a truncated header or length. */
export function decodeMessages(datagram: Uint8Array): NetlinkReply[] {
  const out: NetlinkReply[] = [];
  walkMessages(datagram, pushReply, out);
  return out;
}

/** The errno of the NLMSG_ERROR (or NLMSG_DONE) payload buf[from, to), read in place. */
export function errnoAt(buf: Buffer, from: number, to: number): number {
  if (to - from < 4) decodeFail(`NLMSG_ERROR payload of ${to - from} bytes`);
  return 0 - readS32.call(buf, from);
}

/** The errno of an NLMSG_ERROR payload: 0 for an ACK, else a positive errno number. */
export function decodeErrorPayload(payload: Buffer): number {
  return errnoAt(payload, 0, payload.length);
}

/** Command and top-level attribute bytes of a generic netlink message payload. */
export function decodeGenlPayload(payload: Buffer): { cmd: number; version: number; attrs: Buffer } {
  if (payload.length < GENL_HDRLEN) decodeFail(`generic netlink payload of ${payload.length} bytes`);
  return { cmd: payload[0]!, version: payload[1]!, attrs: payload.subarray(GENL_HDRLEN) };
}

function afToFamily(af: number, field: string): Family {
  if (af === AF.INET) return "IPv4";
  if (af === AF.INET6) return "IPv6";
  return decodeFail(`${field} ${af} is neither AF_INET nor AF_INET6`);
}

// Replies are decoded by offset over the reply's own bytes: one walk records where the last
// attribute of each type starts (an AttrIndex), then fields are read in place. No Buffer or Map per
// attribute; for 1000 services x 4 destinations this is most of the JavaScript cost of reading the
// table.

/** Attribute types below this are indexed; every attribute type read here is below it. */
const INDEX_TYPES = 16;

/** For each type t < INDEX_TYPES: [2t] data start (-1 when absent), [2t + 1] data length. */
type AttrIndex = Int32Array;

// One index per nesting level; decoding is synchronous and each level only calls the next one,
// so a level's index is never overwritten while it is still being read.
const topIndex: AttrIndex = new Int32Array(2 * INDEX_TYPES);
const entryIndex: AttrIndex = new Int32Array(2 * INDEX_TYPES);
const statsIndex: AttrIndex = new Int32Array(2 * INDEX_TYPES);

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
 * The attribute walker: for each attribute in buf[from, to), calls `visit(into, buf, type, start,
 * length)` with its type (flag bits masked off), data start and data length. Framing rules and
 * error texts are the netlink package's: a header needs 4 bytes, a length covers at least the
 * header and fits the remaining bytes, and the next attribute starts at the 4-byte aligned end.
 * (`visit` is a plain function and `into` its target, so that a walk allocates nothing.)
 */
function walkAttributes<T>(
  buf: Buffer,
  from: number,
  to: number,
  where: string,
  visit: (into: T, buf: Buffer, type: number, start: number, length: number) => void,
  into: T,
): void {
  let at = from;
  while (at < to) {
    if (to - at < 4) decodeFail(`attributes of ${where}: Not enough data`);
    const length = hostU16(buf, at);
    if (length < 4 || to - at < length)
      decodeFail(`attributes of ${where}: Invalid attribute length (${length})`);
    visit(into, buf, hostU16(buf, at + 2) & 0x3fff, at + 4, length - 4);
    at += (length + 3) & ~3;
  }
}

function recordInIndex(index: AttrIndex, _buf: Buffer, type: number, start: number, length: number): void {
  if (type < INDEX_TYPES) {
    index[2 * type] = start;
    index[2 * type + 1] = length;
  }
}

/** Records the attributes in buf[from, to) into `index` (the last of a type wins). */
function indexAttributes(buf: Buffer, from: number, to: number, index: AttrIndex, where: string): void {
  index.fill(-1);
  walkAttributes(buf, from, to, where, recordInIndex, index);
}

function recordInMap(
  map: Map<number, Buffer>,
  buf: Buffer,
  type: number,
  start: number,
  length: number,
): void {
  map.set(type, buf.subarray(start, start + length));
}

/** Attributes by type (the last one wins), as data views of `bytes`; for reading requests back in tests. */
export function attributeMap(bytes: Buffer, where: string): Map<number, Buffer> {
  const map = new Map<number, Buffer>();
  walkAttributes(bytes, 0, bytes.length, where, recordInMap, map);
  return map;
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

/**
 * The address decoder: the `length` bytes at `start` as an address of `family`, or undefined when
 * the length fits neither form. Replies carry 16 bytes (union nf_inet_addr); requests may carry
 * exactly 4 for IPv4.
 */
function addressText(buf: Buffer, start: number, length: number, family: Family): string | undefined {
  if (length !== 16 && length !== (family === "IPv4" ? 4 : 16)) return undefined;
  if (family === "IPv4") return `${buf[start]}.${buf[start + 1]}.${buf[start + 2]}.${buf[start + 3]}`;
  return bytesToIp(buf.subarray(start, start + 16), family);
}

function addressAt(buf: Buffer, index: AttrIndex, type: number, family: Family, field: string): string {
  const start = needAt(index, type, field);
  const length = index[2 * type + 1]!;
  return addressText(buf, start, length, family) ?? decodeFail(`${field} has ${length} bytes`);
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

function serviceAt(buf: Buffer, from: number, to: number, withStats = true): KernelService {
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
  if (!withStats) return service;
  const stats = pickStats(buf, m, IPVS_SVC_ATTR.STATS64, IPVS_SVC_ATTR.STATS, "service");
  if (stats) service.stats = stats;
  return service;
}

/** The nested SERVICE attribute's content (as in a NEW_SERVICE reply of a GET_SERVICE dump). */
export function decodeServiceAttrs(bytes: Buffer): KernelService {
  return serviceAt(bytes, 0, bytes.length);
}

/** A NEW_SERVICE message's top-level attributes (one entry of a GET_SERVICE dump). */
export function decodeServiceMessage(attrs: Buffer, withStats = true): KernelService {
  indexAttributes(attrs, 0, attrs.length, topIndex, "service message");
  const start = needAt(topIndex, IPVS_CMD_ATTR.SERVICE, "SERVICE attribute");
  return serviceAt(attrs, start, start + topIndex[2 * IPVS_CMD_ATTR.SERVICE + 1]!, withStats);
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

/** A u32 that may be absent (0 then). */
function optionalU32(buf: Buffer, index: AttrIndex, type: number, field: string): number {
  return index[2 * type]! < 0 ? 0 : u32At(buf, index, type, field);
}

function destinationAt(
  buf: Buffer,
  from: number,
  to: number,
  serviceFamily: Family,
  withStats = true,
): KernelDestination {
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
    activeConnections: optionalU32(buf, m, IPVS_DEST_ATTR.ACTIVE_CONNS, "destination ACTIVE_CONNS"),
    inactiveConnections: optionalU32(buf, m, IPVS_DEST_ATTR.INACT_CONNS, "destination INACT_CONNS"),
    persistentConnections: optionalU32(buf, m, IPVS_DEST_ATTR.PERSIST_CONNS, "destination PERSIST_CONNS"),
  };
  if (!withStats) return dest;
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
export function decodeServiceEntry(attrs: Buffer, withStats = true): DecodedEntry<KernelService> {
  try {
    return { ok: true, value: decodeServiceMessage(attrs, withStats) };
  } catch (e) {
    return { ok: false, reason: reasonOf(e) };
  }
}

/** A GET_DEST dump entry (top-level attributes): the destination, or why it does not decode. */
export function decodeDestinationEntry(
  attrs: Buffer,
  serviceFamily: Family,
): DecodedEntry<KernelDestination> {
  const entry = decodeDestinationEntryAt(attrs, 0, attrs.length, serviceFamily);
  return typeof entry === "string" ? { ok: false, reason: entry } : { ok: true, value: entry };
}

/**
 * A GET_DEST dump entry whose top-level attributes are buf[from, to), read in place (the reply
 * datagram itself: no Buffer and no wrapper object per entry, the read of a large table makes
 * thousands): the destination, or the reason (a string) it does not decode.
 */
export function decodeDestinationEntryAt(
  buf: Buffer,
  from: number,
  to: number,
  serviceFamily: Family,
  withStats = true,
): KernelDestination | string {
  try {
    indexAttributes(buf, from, to, topIndex, "destination message");
    const start = needAt(topIndex, IPVS_CMD_ATTR.DEST, "DEST attribute");
    return destinationAt(buf, start, start + topIndex[2 * IPVS_CMD_ATTR.DEST + 1]!, serviceFamily, withStats);
  } catch (e) {
    return reasonOf(e);
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
  const family = af === AF.INET ? "IPv4" : af === AF.INET6 ? "IPv6" : undefined;
  const text = family === undefined ? undefined : addressText(buf, start, length, family);
  return text ?? `0x${buf.toString("hex", start, start + length)}`;
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
  const m = topIndex;
  indexAttributes(attrs, 0, attrs.length, m, "config");
  return {
    tcp: optionalU32(attrs, m, IPVS_CMD_ATTR.TIMEOUT_TCP, "TIMEOUT_TCP"),
    tcpFin: optionalU32(attrs, m, IPVS_CMD_ATTR.TIMEOUT_TCP_FIN, "TIMEOUT_TCP_FIN"),
    udp: optionalU32(attrs, m, IPVS_CMD_ATTR.TIMEOUT_UDP, "TIMEOUT_UDP"),
  };
}

/** GET_INFO reply. */
export function decodeInfo(attrs: Buffer): IpvsInfo {
  const m = topIndex;
  indexAttributes(attrs, 0, attrs.length, m, "info");
  const versionCode = requiredU32(attrs, m, IPVS_INFO_ATTR.VERSION, "info VERSION");
  return {
    versionCode,
    version: `${(versionCode >> 16) & 0xff}.${(versionCode >> 8) & 0xff}.${versionCode & 0xff}`,
    connectionTableSize: requiredU32(attrs, m, IPVS_INFO_ATTR.CONN_TAB_SIZE, "info CONN_TAB_SIZE"),
  };
}

/** One NEW_DAEMON message of a GET_DAEMON dump. */
export function decodeDaemonMessage(attrs: Buffer): SyncDaemonConfig {
  indexAttributes(attrs, 0, attrs.length, topIndex, "daemon message");
  const start = needAt(topIndex, IPVS_CMD_ATTR.DAEMON, "DAEMON attribute");
  const m = entryIndex;
  indexAttributes(attrs, start, start + topIndex[2 * IPVS_CMD_ATTR.DAEMON + 1]!, m, "daemon");
  const stateNumber = requiredU32(attrs, m, IPVS_DAEMON_ATTR.STATE, "daemon STATE");
  const state: SyncDaemonState | undefined =
    stateNumber === DAEMON_STATE.Master
      ? "Master"
      : stateNumber === DAEMON_STATE.Backup
        ? "Backup"
        : undefined;
  if (!state) decodeFail(`daemon STATE ${stateNumber} is neither master nor backup`);
  needAt(m, IPVS_DAEMON_ATTR.MCAST_IFN, "daemon MCAST_IFN");
  const config: SyncDaemonConfig = {
    state,
    interface: stringAt(attrs, m, IPVS_DAEMON_ATTR.MCAST_IFN),
    syncId: requiredU32(attrs, m, IPVS_DAEMON_ATTR.SYNC_ID, "daemon SYNC_ID"),
  };
  const has = (type: number) => m[2 * type]! >= 0;
  if (has(IPVS_DAEMON_ATTR.SYNC_MAXLEN)) {
    config.maxLength = u16At(attrs, m, IPVS_DAEMON_ATTR.SYNC_MAXLEN, "daemon SYNC_MAXLEN");
  }
  if (has(IPVS_DAEMON_ATTR.MCAST_GROUP6)) {
    config.group = addressAt(attrs, m, IPVS_DAEMON_ATTR.MCAST_GROUP6, "IPv6", "daemon MCAST_GROUP6");
  } else if (has(IPVS_DAEMON_ATTR.MCAST_GROUP)) {
    config.group = addressAt(attrs, m, IPVS_DAEMON_ATTR.MCAST_GROUP, "IPv4", "daemon MCAST_GROUP");
  }
  if (has(IPVS_DAEMON_ATTR.MCAST_PORT)) {
    config.port = u16At(attrs, m, IPVS_DAEMON_ATTR.MCAST_PORT, "daemon MCAST_PORT");
  }
  if (has(IPVS_DAEMON_ATTR.MCAST_TTL)) {
    config.ttl = u8At(attrs, m, IPVS_DAEMON_ATTR.MCAST_TTL, "daemon MCAST_TTL");
  }
  return config;
}

/** CTRL_CMD_GETFAMILY reply: the family id. */
export function decodeFamilyId(attrs: Buffer): number {
  indexAttributes(attrs, 0, attrs.length, topIndex, "ctrl family");
  needAt(topIndex, CTRL_ATTR_FAMILY_ID, "CTRL_ATTR_FAMILY_ID");
  return u16At(attrs, topIndex, CTRL_ATTR_FAMILY_ID, "CTRL_ATTR_FAMILY_ID");
}
