/**
 * Encoding of IPVS generic netlink requests: typed table values -> attribute bytes -> framed
 * netlink messages. Pure (no sockets, no clock): NetlinkIpvsKernel sends what this module frames,
 * and the FakeIpvsKernel runs the same encoders so that both reject un-encodable input the same way
 * (IpvsEncodeError).
 *
 * Integers are written in host order except ports and the IPv4 netmask (ipvs-protocol.ts); FLAGS is
 * always sent with mask 0xffffffff.
 */
import { AttrStream, putString, putU8, putU16, putU32 } from "netlink";
import { ipFamily, ipToBytes } from "../vocabulary/addresses.ts";
import type { Operation } from "../vocabulary/operations.ts";
import type {
  DestinationKey,
  Family,
  ForwardingMethod,
  IpvsDestination,
  IpvsService,
  IpvsTimeouts,
  Protocol,
  ServiceFlags,
  ServiceKey,
  SyncDaemonConfig,
  SyncDaemonState,
  TunnelChecksum,
  TunnelType,
} from "../vocabulary/table.ts";
import {
  AF,
  CTRL_ATTR_FAMILY_NAME,
  CTRL_CMD_GETFAMILY,
  DAEMON_STATE,
  FWD_METHOD,
  GENL_HDRLEN,
  GENL_ID_CTRL,
  IFNAME_MAXLEN,
  IPPROTO,
  IPVS_CMD,
  IPVS_CMD_ATTR,
  IPVS_DAEMON_ATTR,
  IPVS_DEST_ATTR,
  IPVS_GENL_VERSION,
  IPVS_SVC_ATTR,
  isLE,
  NLM_F,
  NLMSG_HDRLEN,
  PE_NAME_MAXLEN,
  SCHED_NAME_MAXLEN,
  SVC_FLAG,
  TUN_FLAG,
  TUN_TYPE,
} from "./ipvs-protocol.ts";

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

/** UTF-8 length of a name that must be shorter than `max` bytes and hold no NUL (it is sent NUL-terminated). */
function nameLength(name: string, max: number, field: string): number {
  const length = Buffer.byteLength(name, "utf8");
  if (length >= max || name.includes("\0")) {
    throw new IpvsEncodeError(
      `${field} must be shorter than ${max} bytes without NUL, got ${JSON.stringify(name)}`,
    );
  }
  return length;
}

function nameBytes(name: string, max: number, field: string): Uint8Array {
  nameLength(name, max, field);
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

  // Each writer takes the offset from #head() BEFORE touching #buf: #head() may replace #buf with
  // a larger copy, and `this.#buf.write(value, this.#head(...))` would write into the old one.
  u8(type: number, value: number): void {
    const at = this.#head(type, 1);
    this.#buf[at] = value;
  }
  u16(type: number, value: number): void {
    const at = this.#head(type, 2);
    if (isLE) this.#buf.writeUInt16LE(value, at);
    else this.#buf.writeUInt16BE(value, at);
  }
  be16(type: number, value: number): void {
    const at = this.#head(type, 2);
    this.#buf.writeUInt16BE(value, at);
  }
  u32(type: number, value: number): void {
    const at = this.#head(type, 4);
    if (isLE) this.#buf.writeUInt32LE(value, at);
    else this.#buf.writeUInt32BE(value, at);
  }
  be32(type: number, value: number): void {
    const at = this.#head(type, 4);
    this.#buf.writeUInt32BE(value, at);
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
    const at = this.#head(type, bytes.length);
    this.#buf.set(bytes, at);
  }
  /** A NUL-terminated name shorter than `max` bytes. */
  name(type: number, name: string, max: number, field: string): void {
    const length = nameLength(name, max, field);
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
  /**
   * Starts a generic netlink request message (nlmsghdr in host order, then genlmsghdr); finish it
   * with endMessage() and the returned offset.
   */
  message(familyId: number, flags: number, seq: number, cmd: number, version: number): number {
    this.#room(NLMSG_HDRLEN + GENL_HDRLEN);
    this.#pad();
    const at = this.#at;
    const b = this.#buf;
    if (isLE) {
      b.writeUInt16LE(familyId, at + 4);
      b.writeUInt16LE(flags, at + 6);
      b.writeUInt32LE(seq, at + 8);
    } else {
      b.writeUInt16BE(familyId, at + 4);
      b.writeUInt16BE(flags, at + 6);
      b.writeUInt32BE(seq, at + 8);
    }
    b.writeUInt32LE(0, at + 12); // port 0: the kernel
    b[at + 16] = cmd;
    b[at + 17] = version;
    b.writeUInt16LE(0, at + 18);
    this.#at = at + NLMSG_HDRLEN + GENL_HDRLEN;
    return at;
  }
  endMessage(start: number): void {
    this.#pad();
    if (isLE) this.#buf.writeUInt32LE(this.#at - start, start);
    else this.#buf.writeUInt32BE(this.#at - start, start);
  }
  get length(): number {
    return this.#at;
  }
  /** A copy of the bytes written, padded to 4 (so separately built attribute lists concatenate). */
  bytes(): Buffer {
    this.#pad();
    return Buffer.from(this.#buf.subarray(0, this.#at));
  }

  /** bytes() as the attribute list GenlRequest takes. */
  done(): Uint8Array[] {
    return [this.bytes()];
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

/**
 * The GET_DEST dump request of every key (sequence number seqs[i]), framed back to back in one
 * allocation: request i is bytes [offsets[i], offsets[i + 1]). readTable() sends one per service;
 * building them together costs one writer and one copy instead of several buffers per service.
 */
export function destinationDumpFrames(
  keys: readonly ServiceKey[],
  familyId: number,
  seqs: ArrayLike<number>,
): { bytes: Buffer; offsets: Uint32Array } {
  const w = new AttrWriter();
  const offsets = new Uint32Array(keys.length + 1);
  keys.forEach((key, i) => {
    offsets[i] = w.length;
    const at = w.message(
      familyId,
      NLM_F.REQUEST | NLM_F.DUMP,
      seqs[i]!,
      IPVS_CMD.GET_DEST,
      IPVS_GENL_VERSION,
    );
    writeServiceKeyAttr(w, key);
    w.endMessage(at);
  });
  offsets[keys.length] = w.length;
  return { bytes: w.bytes(), offsets };
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
