/**
 * The IPVS table as plain values: what the kernel holds, what a node should hold.
 *
 * This is the contract between the pure core (computeDesired, diff, ipvsadm text)
 * and the kernel edge (codec, netlink, fake). Everything here is normalised:
 * - addresses are canonical strings (IPv4 dotted quad, IPv6 RFC 5952 lower case, see ip.ts);
 * - the HASHED service flag never appears (the kernel edge strips it on read);
 * - tunnel fields are always present (IPIP / port 0 / None when the method is not Tunnel).
 */

export type Family = "IPv4" | "IPv6";

/** The IPVS schedulers of mainline Linux (module ip_vs_<name>); twos arrived in 6.2. */
export const IPVS_SCHEDULERS = [
  "rr",
  "wrr",
  "lc",
  "wlc",
  "lblc",
  "lblcr",
  "dh",
  "sh",
  "sed",
  "nq",
  "fo",
  "ovf",
  "mh",
  "twos",
] as const;
export type IpvsScheduler = (typeof IPVS_SCHEDULERS)[number];
export type Protocol = "TCP" | "UDP" | "SCTP";

/** Kernel forwarding methods. The API exposes NAT, DirectRouting and Tunnel; the kernel may report the others. */
export type ForwardingMethod = "NAT" | "Local" | "Tunnel" | "DirectRouting" | "Bypass";
export type TunnelType = "IPIP" | "GUE" | "GRE";
export type TunnelChecksum = "None" | "Checksum" | "RemoteChecksum";

/** A service is keyed either by address+port+protocol or by firewall mark+family (ipvsadm -f). */
export type ServiceKey =
  | { kind: "address"; family: Family; protocol: Protocol; address: string; port: number }
  | { kind: "fwmark"; family: Family; fwmark: number };

export interface ServiceFlags {
  persistent: boolean; // IP_VS_SVC_F_PERSISTENT 0x1
  onePacket: boolean; // IP_VS_SVC_F_ONEPACKET 0x4
  schedFlag1: boolean; // 0x8: sh-fallback / mh-fallback
  schedFlag2: boolean; // 0x10: sh-port / mh-port
  schedFlag3: boolean; // 0x20
}

export interface ServiceConfig {
  /** Scheduler module name without the ip_vs_ prefix: rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos. */
  scheduler: string;
  flags: ServiceFlags;
  /** Persistence timeout in seconds (0 when not persistent). */
  timeout: number;
  /**
   * Persistence granularity. IPv4: the mask as an unsigned 32-bit number (0xffffffff = /32).
   * IPv6: the prefix length 1..128.
   */
  netmask: number;
  /** Persistence engine name ("sip"), "" for none. */
  persistenceEngine: string;
}

export interface IpvsService {
  key: ServiceKey;
  config: ServiceConfig;
}

export interface DestinationKey {
  /** Family of the destination address; differs from the service family only with Tunnel forwarding. */
  family: Family;
  address: string;
  port: number;
}

export interface DestinationConfig {
  forwarding: ForwardingMethod;
  /** 0..2^31-1 in the kernel; the API limits it to 0..65535. 0 = quiescent (no new connections). */
  weight: number;
  /** ipvsadm -x; 0 = no limit. */
  upperThreshold: number;
  /** ipvsadm -y. */
  lowerThreshold: number;
  tunnelType: TunnelType;
  /** GUE destination port; 0 otherwise. */
  tunnelPort: number;
  tunnelChecksum: TunnelChecksum;
}

export interface IpvsDestination {
  key: DestinationKey;
  config: DestinationConfig;
}

/** Counters the kernel keeps per service and destination (STATS64 when present). */
export interface IpvsStats {
  connections: bigint;
  inPackets: bigint;
  outPackets: bigint;
  inBytes: bigint;
  outBytes: bigint;
  cps: bigint;
  inPps: bigint;
  outPps: bigint;
  inBps: bigint;
  outBps: bigint;
}

/** A service as read back from a kernel. */
export interface KernelService extends IpvsService {
  stats?: IpvsStats;
}

/** A destination as read back from a kernel, with its connection counters. */
export interface KernelDestination extends IpvsDestination {
  activeConnections: number;
  inactiveConnections: number;
  persistentConnections: number;
  stats?: IpvsStats;
}

/** A whole table: services, each with its destinations. Order is not significant (see sortTable). */
export interface IpvsTableEntry<
  S extends IpvsService = IpvsService,
  D extends IpvsDestination = IpvsDestination,
> {
  service: S;
  destinations: D[];
}
export type IpvsTable = IpvsTableEntry[];
export type KernelTable = IpvsTableEntry<KernelService, KernelDestination>[];

/**
 * A kernel entry the decoder could not read: an unknown protocol, address family, forwarding method or
 * tunnel type, or a malformed attribute. It is never modified or deleted (the agent cannot know what it
 * is), and it is reported as Foreign drift with the reason. The rest of the table is read as usual.
 */
export interface UndecodableEntry {
  /** What could be read of the service: serviceKeyString() when its key decoded, else a description. */
  service: string;
  /** The service key, when it decoded (then no desired service may take that key). */
  key?: ServiceKey;
  /** destinationKeyString() or a description, when the entry is a destination of a readable service. */
  destination?: string;
  /** Why it could not be decoded. */
  reason: string;
}

/** One full read of the kernel: the decodable table plus every entry that could not be decoded. */
export interface KernelSnapshot {
  table: KernelTable;
  undecodable: UndecodableEntry[];
}

/** Kernel-wide connection timeouts in seconds (ipvsadm --set tcp tcpfin udp). */
export interface IpvsTimeouts {
  tcp: number;
  tcpFin: number;
  udp: number;
}

export type SyncDaemonState = "Master" | "Backup";
export interface SyncDaemonConfig {
  state: SyncDaemonState;
  interface: string;
  syncId: number;
  /** Optional tuning; undefined leaves the kernel default. */
  maxLength?: number;
  group?: string; // IPv4 or IPv6 multicast group
  port?: number;
  ttl?: number;
}

export interface IpvsInfo {
  /** Version code as reported (0x010201 for 1.2.1). */
  versionCode: number;
  /** Dotted form, "1.2.1". */
  version: string;
  connectionTableSize: number;
}

export const NO_FLAGS: ServiceFlags = Object.freeze({
  persistent: false,
  onePacket: false,
  schedFlag1: false,
  schedFlag2: false,
  schedFlag3: false,
});

/** Tunnel fields of a destination that does not tunnel. */
export const NO_TUNNEL = Object.freeze({
  tunnelType: "IPIP",
  tunnelPort: 0,
  tunnelChecksum: "None",
} as const);

/** Stable text form of a service key, used in logs, drift reports and as a map key: "TCP 192.0.2.10:80", "FWM 7 IPv6". */
export function serviceKeyString(key: ServiceKey): string {
  if (key.kind === "fwmark") return `FWM ${key.fwmark} ${key.family}`;
  return `${key.protocol} ${hostPort(key.address, key.port, key.family)}`;
}

/** Stable text form of a destination key: "198.51.100.5:8080", "[2001:db8::5]:8080". */
export function destinationKeyString(key: DestinationKey): string {
  return hostPort(key.address, key.port, key.family);
}

export function hostPort(address: string, port: number, family: Family): string {
  return family === "IPv6" ? `[${address}]:${port}` : `${address}:${port}`;
}

export function sameServiceKey(a: ServiceKey, b: ServiceKey): boolean {
  return serviceKeyString(a) === serviceKeyString(b);
}

export function sameDestinationKey(a: DestinationKey, b: DestinationKey): boolean {
  return a.family === b.family && a.address === b.address && a.port === b.port;
}
