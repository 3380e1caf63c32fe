/**
 * Canonical ordering of IPVS tables, so every output of the pure core (plans, drift, tables,
 * ipvsadm text) comes out the same whatever order its inputs arrived in.
 *
 * Services: IPv4 before IPv6, address services before fwmark services, then protocol (TCP, UDP,
 * SCTP: IANA number order), address bytes, port; fwmark services by mark.
 * Destinations: IPv4 before IPv6, address bytes, port.
 */
import { ipToBytes } from "./addresses.ts";
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
  const x4 = ipv4Value(a);
  const y4 = ipv4Value(b);
  if (x4 !== undefined && y4 !== undefined) {
    // The same result as the byte loop below, without building the bytes (the common case, in every sort).
    for (let shift = 24; shift >= 0; shift -= 8) {
      const d = ((x4 >>> shift) & 0xff) - ((y4 >>> shift) & 0xff);
      if (d !== 0) return d;
    }
    return 0;
  }
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

/**
 * The 32-bit value of an IPv4 address written exactly as net.isIPv4 accepts it (four dot-separated parts
 * 0..255 without leading zeros); undefined for anything else. ipToBytes() gives the same four bytes.
 */
export function ipv4Value(address: string): number | undefined {
  if (typeof address !== "string") return undefined;
  const n = address.length;
  if (n < 7 || n > 15) return undefined;
  let value = 0;
  let part = 0;
  let digits = 0;
  let first = 0;
  let parts = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? address.charCodeAt(i) : DOT;
    if (c === DOT) {
      if (digits === 0 || part > 255 || (digits > 1 && first === ZERO)) return undefined;
      value = value * 256 + part;
      parts++;
      part = 0;
      digits = 0;
    } else if (c >= ZERO && c <= ZERO + 9) {
      if (digits === 0) first = c;
      if (++digits > 3) return undefined;
      part = part * 10 + (c - ZERO);
    } else {
      return undefined;
    }
  }
  return parts === 4 ? value : undefined;
}

const DOT = 46;
const ZERO = 48;

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

/**
 * A sorted copy (services and each service's destinations); the input is not modified. The order is
 * that of compareServiceKey / compareDestinationKey; each key is reduced once to a sort key (the address
 * parsed once, not in every comparison), so a table of N services sorts in O(N log N) cheap comparisons.
 */
export function sortTable<S extends IpvsService, D extends IpvsDestination>(
  table: readonly IpvsTableEntry<S, D>[],
): IpvsTableEntry<S, D>[] {
  const entries = table.map((entry) => ({
    ...entry,
    destinations: sortBy(entry.destinations, (d) => destinationSortKey(d.key), compareDestinationSortKeys),
  }));
  return sortBy(entries, (e) => serviceSortKey(e.service.key), compareServiceSortKeys);
}

/** Destinations in canonical order (each key computed once). */
export function sortDestinations<D extends IpvsDestination>(destinations: readonly D[]): D[] {
  const ranks = plainRanks(destinations, (d) => plainDestinationRank(d.key));
  if (ranks) return sortByRank(destinations, ranks);
  return sortBy(destinations, (d) => destinationSortKey(d.key), compareDestinationSortKeys);
}

/** Items in the canonical order of their service keys (each key computed once). */
export function sortByServiceKey<T>(items: readonly T[], key: (item: T) => ServiceKey): T[] {
  const ranks = plainRanks(items, (item) => plainServiceRank(key(item)));
  if (ranks) return sortByRank(items, ranks);
  return sortBy(items, (item) => serviceSortKey(key(item)), compareServiceSortKeys);
}

/**
 * True when the destinations are already in canonical order and no two have one key: then no two have
 * one destinationKeyString either. Answered for plain keys only (see plainDestinationRank); false
 * whenever that is not certain, so a caller sorts and de-duplicates as usual.
 */
export function inStrictDestinationOrder(destinations: readonly IpvsDestination[]): boolean {
  let last = -1;
  for (const d of destinations) {
    const rank = plainDestinationRank(d.key);
    if (rank === undefined || rank <= last) return false;
    last = rank;
  }
  return true;
}

function sortBy<T, K>(items: readonly T[], key: (item: T) => K, compare: (a: K, b: K) => number): T[] {
  const decorated = items.map((item) => ({ item, key: key(item) }));
  decorated.sort((x, y) => compare(x.key, y.key));
  return decorated.map((x) => x.item);
}

// ---- plain keys ---------------------------------------------------------------------------------
// Nearly every key in practice is IPv4 with a dotted-quad address and a port 0..65535. Such a key's place
// in the canonical order is one exact integer (its rank), so a list of them sorts by numbers, and a list
// already in order (computeDesired's output, read again by diff) is recognized in one pass.

const PROTOCOL_RANK: Readonly<Record<string, number>> = { TCP: 0, UDP: 1, SCTP: 2 };
const TWO_32 = 4294967296;

function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= 65535;
}

/** IPv4 destination: address value x 2^16 + port; the order of compareDestinationSortKeys among them. */
function plainDestinationRank(key: DestinationKey): number | undefined {
  if (key.family !== "IPv4" || !isPort(key.port)) return undefined;
  const value = ipv4Value(key.address);
  return value === undefined ? undefined : value * 65536 + key.port;
}

/** IPv4 address service: (protocol, address, port) as one integer below 3 x 2^48; compareServiceSortKeys' order. */
function plainServiceRank(key: ServiceKey): number | undefined {
  if (key.kind !== "address" || key.family !== "IPv4" || !isPort(key.port)) return undefined;
  const protocol = Object.hasOwn(PROTOCOL_RANK, key.protocol) ? PROTOCOL_RANK[key.protocol] : undefined;
  const value = ipv4Value(key.address);
  if (protocol === undefined || value === undefined) return undefined;
  return (protocol * TWO_32 + value) * 65536 + key.port;
}

/** Every item's rank, or undefined as soon as one has none. */
function plainRanks<T>(items: readonly T[], rank: (item: T) => number | undefined): number[] | undefined {
  const ranks = new Array<number>(items.length);
  for (let i = 0; i < items.length; i++) {
    const r = rank(items[i] as T);
    if (r === undefined) return undefined;
    ranks[i] = r;
  }
  return ranks;
}

/** A stable sort by rank (equal ranks keep their order, as equal keys do in sortBy). */
function sortByRank<T>(items: readonly T[], ranks: readonly number[]): T[] {
  let sorted = true;
  for (let i = 1; i < ranks.length && sorted; i++) sorted = (ranks[i - 1] as number) <= (ranks[i] as number);
  if (sorted) return items.slice();
  if (items.length <= 16) return insertionSortByRank(items, ranks);
  const order = Array.from(items, (_, i) => i);
  order.sort((a, b) => (ranks[a] as number) - (ranks[b] as number));
  return order.map((i) => items[i] as T);
}

/**
 * sortByRank for a short list (a service's destinations, which the kernel lists newest first):
 * stable, and without the index array and comparator calls of Array.prototype.sort.
 */
function insertionSortByRank<T>(items: readonly T[], ranks: readonly number[]): T[] {
  const out = items.slice();
  const r = ranks.slice();
  for (let i = 1; i < out.length; i++) {
    const rank = r[i] as number;
    const item = out[i] as T;
    let j = i - 1;
    while (j >= 0 && (r[j] as number) > rank) {
      r[j + 1] = r[j] as number;
      out[j + 1] = out[j] as T;
      j--;
    }
    r[j + 1] = rank;
    out[j + 1] = item;
  }
  return out;
}

/**
 * compareAddress() precomputed: rank 0 = IPv4 (by its 32-bit value), 1 = IPv6 (by its bytes in
 * fixed-width hex), 2 = not an address (by its text), so that compareAddressSortKeys gives the same order.
 */
interface AddressSortKey {
  rank: 0 | 1 | 2;
  value: number;
  text: string;
}

function addressSortKey(address: string): AddressSortKey {
  const v4 = ipv4Value(address);
  if (v4 !== undefined) return { rank: 0, value: v4, text: "" };
  const bytes = safeBytes(address);
  if (!bytes) return { rank: 2, value: 0, text: address };
  // ipToBytes gives 4 bytes exactly for what ipv4Value reads, so these are the 16 of an IPv6 address.
  let text = "";
  for (const b of bytes) text += b.toString(16).padStart(2, "0");
  return { rank: 1, value: 0, text };
}

function compareAddressSortKeys(a: AddressSortKey, b: AddressSortKey): number {
  if (a.rank !== b.rank) return a.rank - b.rank;
  if (a.rank === 0) return a.value - b.value;
  return compareText(a.text, b.text);
}

interface ServiceSortKey {
  family: number;
  kind: ServiceKey["kind"];
  /** The mark of a fwmark service, the protocol's order of an address service. */
  major: number;
  address: AddressSortKey | undefined;
  port: number;
}

function serviceSortKey(key: ServiceKey): ServiceSortKey {
  const family = FAMILY_ORDER[key.family];
  if (key.kind === "fwmark")
    return { family, kind: key.kind, major: key.fwmark, address: undefined, port: 0 };
  return {
    family,
    kind: key.kind,
    major: PROTOCOL_ORDER[key.protocol],
    address: addressSortKey(key.address),
    port: key.port,
  };
}

/** compareServiceKey on sort keys: the same steps, so the same results (also for malformed keys). */
function compareServiceSortKeys(a: ServiceSortKey, b: ServiceSortKey): number {
  const family = a.family - b.family;
  if (family !== 0) return family;
  if (a.kind !== b.kind) return a.kind === "address" ? -1 : 1;
  if (a.kind === "fwmark") return a.major - b.major;
  if (a.kind !== "address" || !a.address || !b.address) return 0;
  const protocol = a.major - b.major;
  if (protocol !== 0) return protocol;
  const address = compareAddressSortKeys(a.address, b.address);
  if (address !== 0) return address;
  return a.port - b.port;
}

interface DestinationSortKey {
  family: number;
  address: AddressSortKey;
  port: number;
}

function destinationSortKey(key: DestinationKey): DestinationSortKey {
  return { family: FAMILY_ORDER[key.family], address: addressSortKey(key.address), port: key.port };
}

function compareDestinationSortKeys(a: DestinationSortKey, b: DestinationSortKey): number {
  const family = a.family - b.family;
  if (family !== 0) return family;
  const address = compareAddressSortKeys(a.address, b.address);
  if (address !== 0) return address;
  return a.port - b.port;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
