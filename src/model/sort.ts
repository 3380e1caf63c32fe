/**
 * Canonical ordering of IPVS tables, so every output of the pure core (plans, drift, tables,
 * ipvsadm text) comes out the same whatever order its inputs arrived in.
 *
 * Services: IPv4 before IPv6, address services before fwmark services, then protocol (TCP, UDP,
 * SCTP: IANA number order), address bytes, port; fwmark services by mark.
 * Destinations: IPv4 before IPv6, address bytes, port.
 */
import { ipToBytes } from "./ip.ts";
import type {
  DestinationKey,
  Family,
  IpvsDestination,
  IpvsService,
  IpvsTableEntry,
  Protocol,
  ServiceKey,
} from "./table.ts";

const FAMILY_ORDER: Record<Family, number> = { IPv4: 0, IPv6: 1 };
const PROTOCOL_ORDER: Record<Protocol, number> = { TCP: 6, UDP: 17, SCTP: 132 };

/** Byte-wise address comparison that never throws: a malformed address sorts after valid ones, by text. */
export function compareAddress(a: string, b: string): number {
  const x = safeBytes(a);
  const y = safeBytes(b);
  if (x && y) {
    if (x.length !== y.length) return x.length - y.length;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return 0;
  }
  if (x) return -1;
  if (y) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function safeBytes(address: string): Uint8Array | undefined {
  try {
    return ipToBytes(address);
  } catch {
    return undefined;
  }
}

export function compareServiceKey(a: ServiceKey, b: ServiceKey): number {
  const family = FAMILY_ORDER[a.family] - FAMILY_ORDER[b.family];
  if (family !== 0) return family;
  if (a.kind !== b.kind) return a.kind === "address" ? -1 : 1;
  if (a.kind === "fwmark" && b.kind === "fwmark") return a.fwmark - b.fwmark;
  if (a.kind === "address" && b.kind === "address") {
    const protocol = PROTOCOL_ORDER[a.protocol] - PROTOCOL_ORDER[b.protocol];
    if (protocol !== 0) return protocol;
    const address = compareAddress(a.address, b.address);
    if (address !== 0) return address;
    return a.port - b.port;
  }
  return 0;
}

export function compareDestinationKey(a: DestinationKey, b: DestinationKey): number {
  const family = FAMILY_ORDER[a.family] - FAMILY_ORDER[b.family];
  if (family !== 0) return family;
  const address = compareAddress(a.address, b.address);
  if (address !== 0) return address;
  return a.port - b.port;
}

/** A sorted copy (services and each service's destinations); the input is not modified. */
export function sortTable<S extends IpvsService, D extends IpvsDestination>(
  table: readonly IpvsTableEntry<S, D>[],
): IpvsTableEntry<S, D>[] {
  return table
    .map((entry) => ({
      ...entry,
      destinations: [...entry.destinations].sort((x, y) => compareDestinationKey(x.key, y.key)),
    }))
    .sort((x, y) => compareServiceKey(x.service.key, y.service.key));
}
