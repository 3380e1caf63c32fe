/**
 * RtLink: the narrow rtnetlink interface the VIP binder uses (one link by name, its addresses).
 * Two implementations pass one contract suite (test/node-edge/rt-link-contract.ts):
 * NetlinkRtLink (rtnetlink over the `netlink` package) and FakeRtLink (in memory).
 */
import type { ErrnoName } from "../kernel/errors.ts";
import type { Family } from "../vocabulary/table.ts";

export interface RtLinkInfo {
  index: number;
  name: string;
  /** IFLA_INFO_KIND ("dummy", "veth" ...); undefined for a device without one (lo, a physical NIC). */
  kind: string | undefined;
  /** IFF_UP is set. */
  up: boolean;
}

export interface RtAddress {
  family: Family;
  /** Canonical text form (canonicalIp). */
  address: string;
  prefixLength: number;
  /** IFA_PROTO: who added the address (0 = unspecified: `ip addr add` without `proto`, or a kernel < 5.18). */
  protocol: number;
  /** IFA_F_NODAD is set. */
  noDad: boolean;
}

export interface NewAddress {
  address: string;
  prefixLength: number;
  /** IFA_PROTO to record; 0 sends none. */
  protocol: number;
  /** IPv6 only: IFA_F_NODAD, so the address is usable at once (no duplicate address detection). */
  noDad: boolean;
}

/**
 * Tunnel kinds whose fallback device decapsulates for any remote and any local address: the device a
 * real server behind an IPVS Tunnel director receives on. The module creates it when it loads
 * (`tunl0` for ipip, IPv4 in IPv4; `ip6tnl0` for ip6tnl, IPv6 in IPv6; `gre0` and `ip6gre0` for GRE
 * over IPv4 and IPv6).
 */
export type TunnelKind = "ipip" | "ip6tnl" | "gre" | "ip6gre";
export const TUNNEL_DEVICE: Readonly<Record<TunnelKind, string>> = {
  ipip: "tunl0",
  ip6tnl: "ip6tnl0",
  gre: "gre0",
  ip6gre: "ip6gre0",
};
/**
 * What each tunnel kind's device receives: the IPVS tunnel type, and the family of the outer packet
 * (the real server's address). GRE carries either family inside; IPIP the same family only.
 */
export const TUNNEL_CARRIES: Readonly<Record<TunnelKind, { type: "IPIP" | "GRE"; family: Family }>> = {
  ipip: { type: "IPIP", family: "IPv4" },
  ip6tnl: { type: "IPIP", family: "IPv6" },
  gre: { type: "GRE", family: "IPv4" },
  ip6gre: { type: "GRE", family: "IPv6" },
};
export const TUNNEL_KINDS = Object.keys(TUNNEL_DEVICE) as TunnelKind[];

export interface RtLink {
  /** The link of that name, or undefined when there is none. */
  getLink(name: string): Promise<RtLinkInfo | undefined>;
  /** Creates a dummy link (down, as the kernel creates it). EEXIST when the name is taken. */
  createDummy(name: string): Promise<RtLinkInfo>;
  /**
   * The fallback device of a tunnel kind (TUNNEL_DEVICE), brought into being when missing: a new link
   * of that kind and name makes the kernel load the module, which creates the device. Down, as the
   * module creates it. EOPNOTSUPP when the kernel has no such module.
   */
  ensureTunnelDevice(kind: TunnelKind): Promise<RtLinkInfo>;
  /** Sets IFF_UP. ENODEV for an index that does not exist. */
  setUp(index: number): Promise<void>;
  /** Addresses of one link, IPv4 then IPv6, each in the kernel's order. */
  listAddresses(index: number): Promise<RtAddress[]>;
  /** EEXIST when the address is already on the link, ENODEV for a missing link. */
  addAddress(index: number, address: NewAddress): Promise<void>;
  /** EADDRNOTAVAIL when the address is not on the link. */
  deleteAddress(index: number, address: { address: string; prefixLength: number }): Promise<void>;
  close(): Promise<void>;
}

/** errnos of rtnetlink the node edge names (the IPVS set of src/kernel/errors.ts lacks some). */
export const RT_ERRNO: Record<string, number> = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  EACCES: 13,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  EOPNOTSUPP: 95,
  EADDRNOTAVAIL: 99,
  ETIMEDOUT: 110,
};

/** The IPVS errno names plus the address ones of rtnetlink. */
export type RtErrnoName = ErrnoName | "EADDRNOTAVAIL";

export function rtErrnoName(errno: number): RtErrnoName {
  const n = Math.abs(errno);
  for (const [name, value] of Object.entries(RT_ERRNO)) if (value === n) return name as RtErrnoName;
  return `E${n}`;
}

/** A request the kernel (or the fake) rejected, or that got no answer. */
export class RtLinkError extends Error {
  override readonly name = "RtLinkError";
  readonly operation: string;
  /** e.g. "ipvs0", "192.0.2.10/32 on ipvs0". */
  readonly object: string;
  readonly errno: RtErrnoName;
  constructor(operation: string, object: string, errno: RtErrnoName, detail?: string) {
    super(`${operation} ${object} failed: ${errno}${detail ? ` (${detail})` : ""}`);
    this.operation = operation;
    this.object = object;
    this.errno = errno;
  }
}

/** Full-length prefix of a family: /32 or /128. */
export function hostPrefix(family: Family): number {
  return family === "IPv4" ? 32 : 128;
}
