/**
 * Rendering of an IPVS table as the `ipvsadm -Sn` text: what ipvsadm 1.31 prints for that table,
 * line for line and in ipvsadm's order. (ipvsadm-parse.ts reads such text back into a table;
 * ipvsadm-normalize.ts puts it in a canonical order for comparing.)
 *
 * Facts from ipvsadm 1.31 (ipvsadm.c print_service_entry / print_tunnel_rule, libipvs.c
 * ipvs_cmp_services / ipvs_cmp_dests), which this module reproduces:
 * - One `-A` line per service, then one `-a` line per destination of it.
 * - Service line: `-A <svc> -s <sched>` then ` -p <timeout>` when persistent, followed (only when
 *   persistent) by ` -M <dotted mask>` for IPv4 unless the mask is 255.255.255.255, or ` -M <prefix>`
 *   for IPv6 unless it is 128; then ` --pe <name>` whenever an engine is set; ` -o` for one-packet;
 *   ` -b <flags>` when any scheduler flag bit is set. Flag names depend on the scheduler: sh prints
 *   only sh-fallback/sh-port, mh only mh-fallback/mh-port, every other scheduler flag-1..3
 *   (so "sh" with only flag 3 prints a bare "-b " with nothing after it, as ipvsadm does).
 * - `<svc>` is `-t a:p`, `-u a:p`, `--sctp-service a:p`, `-f <mark>` or `-f <mark> -6`; IPv6
 *   addresses in brackets; the port always printed (":0" too). The mark prints with %d, so marks
 *   >= 2^31 come out negative.
 * - Destination line: `-a <svc> -r <addr:port> <-m|-g|-i> -w <weight>`; Local forwarding prints -g,
 *   Bypass prints "(null)" (glibc's printf of a NULL string). Tunnel destinations add
 *   ` --tun-type ipip`, ` --tun-type gue --tun-port <p> <csum>` or ` --tun-type gre <csum>` with
 *   <csum> one of --tun-nocsum, --tun-csum, --tun-remcsum.
 * - Thresholds (-x / -y) are never printed by -S.
 *
 * ORDER. The kernel dumps services in hash-table order, and its hash mixes in the address of the
 * per-namespace IPVS structure (`(size_t)ipvs >> 8` in ip_vs_svc_hashkey), so the kernel order
 * changes from boot to boot. ipvsadm does not print that order, though: without --nosort it qsorts
 * services with ipvs_cmp_services (fwmark, family, protocol, address, port) and destinations with
 * ipvs_cmp_dests (address, port). Those comparators subtract unsigned 32-bit words and keep the
 * result as a signed int, so two addresses more than 2^31 apart compare "backwards": 192.168.0.1
 * sorts BEFORE 10.0.0.1. The renderer uses exactly these comparators (see compareServicesLikeIpvsadm).
 * While the comparator is a consistent order on the table (true unless one group of services, or
 * one service's destinations, spans more than half the 32-bit circle, e.g. 10.x + 100.x + 200.x),
 * the rendered order is exactly ipvsadm's, whatever the kernel's order (checked against ipvsadm
 * 1.31 on kernel 6.1). Otherwise ipvsadm's result depends on the order it received, which the
 * renderer reproduces as far as it is knowable, using glibc's merge sort: destinations come from
 * the kernel newest first, so the renderer feeds them in reverse table order (exact when the table
 * lists them in the order they were added, as parseIpvsadmSave does); services come in hash order,
 * which mixes in a per-namespace pointer and cannot be known, so the renderer feeds them in the
 * canonical order and may differ from a live kernel there, unless the table is a kernel dump in dump
 * order and the caller says so ({ tableOrder: "kernelDump" }).
 * normalizeIpvsadmSave() (ipvsadm-normalize.ts) sorts service blocks and destination lines into a
 * canonical, always well-defined order, so live output and rendered output can be compared in every
 * case.
 */

import { bytesToIp, ipToBytes, numberToIpv4Mask } from "../vocabulary/addresses.ts";
import { compareServiceKey } from "../vocabulary/order.ts";
import type {
  DestinationKey,
  Family,
  ForwardingMethod,
  IpvsDestination,
  IpvsService,
  IpvsTable,
  Protocol,
  ServiceConfig,
  ServiceKey,
  TunnelChecksum,
} from "../vocabulary/table.ts";

const PROTOCOL_NUMBER: Record<Protocol, number> = { TCP: 6, UDP: 17, SCTP: 132 };
const FAMILY_NUMBER: Record<Family, number> = { IPv4: 2, IPv6: 10 };
const PROTOCOL_OPTION: Record<Protocol, string> = { TCP: "-t", UDP: "-u", SCTP: "--sctp-service" };
const CHECKSUM_OPTION: Record<TunnelChecksum, string> = {
  None: "--tun-nocsum",
  Checksum: "--tun-csum",
  RemoteChecksum: "--tun-remcsum",
};
const FORWARDING_SWITCH: Record<ForwardingMethod, string> = {
  NAT: "-m",
  Tunnel: "-i",
  DirectRouting: "-g",
  Local: "-g",
  Bypass: "(null)",
};

export interface RenderIpvsadmOptions {
  /**
   * What the table's order means; it matters only where ipvsadm's comparator is not a consistent
   * order (see the module doc). "added" (default): destinations are listed in the order they were
   * added; service order carries no meaning. "kernelDump": services and destinations are in the
   * order a kernel dump returned them (GET_SERVICE / GET_DEST), which is exactly what ipvsadm sorts,
   * so the output is ipvsadm's even then.
   */
  tableOrder?: "added" | "kernelDump";
}

/** The text `ipvsadm -Sn` prints once `table` is the whole kernel table (order: see module doc). */
export function renderIpvsadmSave(table: IpvsTable, options: RenderIpvsadmOptions = {}): string {
  const dump = options.tableOrder === "kernelDump";
  const input = dump
    ? [...table]
    : [...table].sort((a, b) => compareServiceKey(a.service.key, b.service.key));
  const entries = ipvsadmSort(input, (a, b) => compareServicesLikeIpvsadm(a.service.key, b.service.key));
  const lines: string[] = [];
  for (const entry of entries) {
    const svc = serviceOption(entry.service.key);
    lines.push(`-A ${svc}${serviceOptions(entry.service)}`);
    // The kernel lists a service's destinations newest first (list_add at the head), and that is
    // what ipvsadm sorts; the table's order is taken as the order they were added.
    const destInput = dump ? [...entry.destinations] : [...entry.destinations].reverse();
    const dests = ipvsadmSort(destInput, (a, b) => compareDestinationsLikeIpvsadm(a.key, b.key));
    for (const dest of dests) lines.push(destinationLine(svc, dest));
  }
  return lines.map((l) => `${l}\n`).join("");
}

/** The `-t 192.0.2.10:80` / `-f 7 -6` part of a line. */
export function serviceOption(key: ServiceKey): string {
  if (key.kind === "fwmark") {
    const mark = key.fwmark | 0; // printed with %d
    return key.family === "IPv6" ? `-f ${mark} -6` : `-f ${mark}`;
  }
  return `${PROTOCOL_OPTION[key.protocol]} ${ipvsadmAddrPort(key.address, key.port, key.family)}`;
}

function serviceOptions(service: IpvsService): string {
  const { key, config } = service;
  let out = ` -s ${config.scheduler}`;
  if (config.flags.persistent) {
    out += ` -p ${config.timeout}`;
    if (key.family === "IPv4" && config.netmask >>> 0 !== 0xffffffff) {
      out += ` -M ${numberToIpv4Mask(config.netmask)}`;
    }
    if (key.family === "IPv6" && config.netmask !== 128) out += ` -M ${config.netmask | 0}`;
  }
  if (config.persistenceEngine) out += ` --pe ${config.persistenceEngine}`;
  if (config.flags.onePacket) out += " -o";
  const f = config.flags;
  if (f.schedFlag1 || f.schedFlag2 || f.schedFlag3) out += ` -b ${schedulerFlagWords(config).join(",")}`;
  return out;
}

/** The -b words ipvsadm prints for a service's scheduler flags. */
export function schedulerFlagWords(config: Pick<ServiceConfig, "scheduler" | "flags">): string[] {
  const f = config.flags;
  const words: string[] = [];
  if (config.scheduler === "sh" || config.scheduler === "mh") {
    if (f.schedFlag1) words.push(`${config.scheduler}-fallback`);
    if (f.schedFlag2) words.push(`${config.scheduler}-port`);
    return words;
  }
  if (f.schedFlag1) words.push("flag-1");
  if (f.schedFlag2) words.push("flag-2");
  if (f.schedFlag3) words.push("flag-3");
  return words;
}

function destinationLine(svc: string, dest: IpvsDestination): string {
  const { key, config } = dest;
  const head = `-a ${svc} -r ${ipvsadmAddrPort(key.address, key.port, key.family)} ${FORWARDING_SWITCH[config.forwarding]} -w ${config.weight | 0}`;
  if (config.forwarding !== "Tunnel") return head;
  switch (config.tunnelType) {
    case "GRE":
      return `${head} --tun-type gre ${CHECKSUM_OPTION[config.tunnelChecksum]}`;
    case "GUE":
      return `${head} --tun-type gue --tun-port ${config.tunnelPort} ${CHECKSUM_OPTION[config.tunnelChecksum]}`;
    default:
      return `${head} --tun-type ipip`;
  }
}

/** `addr:port` as ipvsadm -n prints it: IPv6 in brackets, the address as glibc's inet_ntop writes it. */
export function ipvsadmAddrPort(address: string, port: number, family: Family): string {
  const text = inetNtop(address, family);
  return family === "IPv6" ? `[${text}]:${port}` : `${text}:${port}`;
}

/**
 * glibc inet_ntop. Equal to ip.ts's canonical form except for IPv4-compatible addresses
 * (::a.b.c.d with the first 96 bits zero), which glibc prints in the dotted tail form.
 */
function inetNtop(address: string, family: Family): string {
  const bytes = ipToBytes(address);
  if (family === "IPv6" && bytes.length === 16) {
    const zeroHead = bytes.subarray(0, 12).every((b) => b === 0);
    if (zeroHead && (bytes[12]! !== 0 || bytes[13]! !== 0)) {
      return `::${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
    }
  }
  return bytesToIp(bytes, family);
}

// ---------------------------------------------------------------------------------------------
// Ordering

/** Signed-int result of subtracting two unsigned 32-bit values, as C does in ipvs_cmp_*. */
function wrapDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** Address as four big-endian 32-bit words (IPv4: [addr, 0, 0, 0], as in union nf_inet_addr). */
function addressWords(address: string): number[] {
  const b = ipToBytes(address);
  const words = [0, 0, 0, 0];
  for (let i = 0; i < b.length / 4; i++) {
    words[i] = ((b[i * 4]! << 24) | (b[i * 4 + 1]! << 16) | (b[i * 4 + 2]! << 8) | b[i * 4 + 3]!) >>> 0;
  }
  return words;
}

/** libipvs ipvs_cmp_services, bit for bit (including its wrap-around). */
export function compareServicesLikeIpvsadm(a: ServiceKey, b: ServiceKey): number {
  let r = wrapDiff(a.kind === "fwmark" ? a.fwmark >>> 0 : 0, b.kind === "fwmark" ? b.fwmark >>> 0 : 0);
  if (r !== 0) return r;
  r = FAMILY_NUMBER[a.family] - FAMILY_NUMBER[b.family];
  if (r !== 0) return r;
  // ipvsadm creates fwmark services with protocol TCP; the kernel keeps it.
  r =
    (a.kind === "address" ? PROTOCOL_NUMBER[a.protocol] : 6) -
    (b.kind === "address" ? PROTOCOL_NUMBER[b.protocol] : 6);
  if (r !== 0) return r;
  if (a.kind === "fwmark" || b.kind === "fwmark") return 0; // same mark and family: the same service
  const x = addressWords(a.address);
  const y = addressWords(b.address);
  const n = a.family === "IPv6" ? 4 : 1;
  for (let i = 0; r === 0 && i < n; i++) r = wrapDiff(x[i]!, y[i]!);
  if (r !== 0) return r;
  return a.port - b.port;
}

/** libipvs ipvs_cmp_dests: address words (as many as the first one's family has), then port. */
export function compareDestinationsLikeIpvsadm(a: DestinationKey, b: DestinationKey): number {
  const x = addressWords(a.address);
  const y = addressWords(b.address);
  const n = a.family === "IPv6" ? 4 : 1;
  let r = 0;
  for (let i = 0; r === 0 && i < n; i++) r = wrapDiff(x[i]!, y[i]!);
  if (r !== 0) return r;
  return a.port - b.port;
}

/**
 * glibc's qsort for arrays it can copy (msort_with_tmp): top-down merge sort, left half n/2,
 * ties and "<= 0" taken from the left. Matters only when cmp is not a consistent order.
 */
function ipvsadmSort<T>(items: T[], cmp: (a: T, b: T) => number): T[] {
  if (items.length <= 1) return items;
  const n1 = Math.floor(items.length / 2);
  const left = ipvsadmSort(items.slice(0, n1), cmp);
  const right = ipvsadmSort(items.slice(n1), cmp);
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length && j < right.length) {
    if (cmp(left[i]!, right[j]!) <= 0) out.push(left[i++]!);
    else out.push(right[j++]!);
  }
  while (i < left.length) out.push(left[i++]!);
  while (j < right.length) out.push(right[j++]!);
  return out;
}
