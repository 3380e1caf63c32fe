/**
 * Parsing of `ipvsadm -L` / `-Ln` listings back into an IPVS table, with a problem (line number and
 * message) for every line that cannot be read or imported. Pure: names are looked up through the
 * caller's services table, host names are never resolved.
 *
 * What ipvsadm 1.31 prints (print_title / print_service_entry, checked in the VM test bed):
 *
 * ```
 * IP Virtual Server version 1.2.1 (size=4096)
 * Prot LocalAddress:Port Scheduler Flags
 *   -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
 * TCP  192.0.2.13:8443 sh (sh-fallback,sh-port) persistent 600 mask 255.255.255.0
 *   -> 198.51.100.40:8443           Masq    1      0          0
 * UDP  [2001:db8::11]:53 rr ops
 * UDP  192.0.2.16:5060 rr persistent 60 pe sip
 * FWM  7 lblc persistent 360            (IPv4 marks print no family; -1 for mark 2^32-1)
 * FWM  8 IPv6 sed
 * ```
 * - The version line is left out when one service is listed (`-L -t ...`).
 * - Service lines are the same in the plain, `--thresholds` and `--persistent-conn` listings; the
 *   destination columns differ: `Forward Weight ActiveConn InActConn`, `Uthreshold Lthreshold
 *   ActiveConn InActConn`, `Weight PersistConn ActiveConn InActConn`. `--stats` and `--rate` print
 *   counters instead of the scheduler: nothing to import from them.
 * - Scheduler flags: `(sh-fallback,sh-port)` for sh, `(mh-...)` for mh, `(flag-1,flag-2,flag-3)` for the
 *   others; sh / mh print flag 3 as nothing, so `sh ()` is flag 3 alone. `mask` is printed only when
 *   persistent and not /32 (/128), `pe` only when persistent.
 * - Forward: Masq, Route, Tunnel, Local; the kernel's bypass method prints `(null)`. The tunnel type
 *   (ipip, gue, gre), its port and checksum are not printed.
 * - Without -n, addresses print as host names and ports as service names; ipvsadm cuts an IPv4
 *   service column at 33 characters and a destination at 28.
 *
 * Several listings in one text are merged by key: `ipvsadm -Ln; ipvsadm -Ln --thresholds` gives the
 * forwarding method and weight from the first and the thresholds from the second. A destination
 * whose forwarding method or weight no listing shows is a problem and left out. Thresholds that no
 * listing shows are 0, as when importing `ipvsadm -Sn` (which never prints them).
 */

import { canonicalIp, ipFamily, ipv4MaskToNumber } from "../vocabulary/addresses.ts";
import type {
  DestinationConfig,
  DestinationKey,
  Family,
  ForwardingMethod,
  IpvsTable,
  Protocol,
  ServiceConfig,
  ServiceFlags,
  ServiceKey,
} from "../vocabulary/table.ts";
import { destinationKeyString, NO_FLAGS, NO_TUNNEL, serviceKeyString } from "../vocabulary/table.ts";
import {
  IPVSADM_MAX_TIMEOUT_SECONDS,
  type IpvsadmTextProblem,
  type ParsedIpvsadmSave,
} from "./ipvsadm-parse.ts";
import type { ServicePortLookup, ServiceProtocol } from "./service-names.ts";

export interface ListParseOptions {
  /** Port of a service name (getservbyname), for listings made without -n. None: names are problems. */
  servicePort?: ServicePortLookup;
}

/** What the destination columns of a listing are. */
type Columns = "rules" | "thresholds" | "persistent-conn" | "stats" | "rate" | "connections";

const TITLES: Record<string, Columns> = {
  "Scheduler Flags": "rules",
  "Uthreshold Lthreshold ActiveConn InActConn": "thresholds",
  "Weight PersistConn ActiveConn InActConn": "persistent-conn",
  "Conns InPkts OutPkts InBytes OutBytes": "stats",
  "CPS InPPS OutPPS InBPS OutBPS": "rate",
};

const FORWARD: Record<string, ForwardingMethod> = {
  Masq: "NAT",
  Route: "DirectRouting",
  Tunnel: "Tunnel",
  // ipvsadm -S prints -g for a Local destination and -R of that gives the same entry again.
  Local: "DirectRouting",
};

const VERSION_LINE = /^IP Virtual Server version \d+\.\d+\.\d+ \(size=\d+\)$/;
const SERVICE_LINE = /^(TCP|UDP|SCTP) {1,2}\S/;
const FWM_LINE = /^FWM +-?\d/;
const DEST_LINE = /^ +-> /;

/** True when a line looks like part of an `ipvsadm -L` listing (used to detect the format). */
export function looksLikeListingLine(line: string): boolean {
  const text = line.replace(/\s+$/, "");
  return (
    VERSION_LINE.test(text) ||
    text.startsWith("Prot LocalAddress:Port") ||
    DEST_LINE.test(text) ||
    SERVICE_LINE.test(text) ||
    FWM_LINE.test(text) ||
    text === "IPVS connection entries"
  );
}

interface ListedService {
  key: ServiceKey;
  config: ServiceConfig;
  line: number;
  /** Destinations in first-listed order, by key text. */
  dests: Map<string, ListedDest>;
}

interface ListedDest {
  key: DestinationKey;
  line: number;
  forwarding?: { method: ForwardingMethod; line: number };
  weight?: { value: number; line: number };
  thresholds?: { upper: number; lower: number; line: number };
}

/** An integer in [min, max] in decimal, or undefined. */
function intIn(text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined || !/^-?\d{1,20}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

/**
 * Parses `ipvsadm -L` / `-Ln` listings (see the module doc). Never throws: every line that cannot be
 * read or imported is a problem with its line number, and what reads is still imported.
 */
export function parseIpvsadmList(text: string, opts: ListParseOptions = {}): ParsedIpvsadmSave {
  const problems: IpvsadmTextProblem[] = [];
  const services = new Map<string, ListedService>();
  let columns: Columns | undefined;
  /** The service the following destination lines belong to (undefined: none, or not imported). */
  let current: { service?: ListedService; line: number; listedHere: Set<string> } | undefined;
  /** Services of the listing being read (a version or title line starts another). */
  let sectionServices = new Set<string>();

  const lines = text.split("\n");
  for (let index = 0; index < lines.length; index++) {
    const line = index + 1;
    const raw = lines[index]!.replace(/\s+$/, "");
    const problem = (message: string) => problems.push({ line, message });
    if (raw.trim() === "") continue;

    if (VERSION_LINE.test(raw)) {
      columns = undefined;
      current = undefined;
      sectionServices = new Set();
      continue;
    }
    if (raw.startsWith("Prot LocalAddress:Port")) {
      const rest = raw.slice("Prot LocalAddress:Port".length).trim().split(/\s+/).join(" ");
      columns = TITLES[rest];
      current = undefined;
      sectionServices = new Set();
      if (!columns) problem(`unknown listing columns ${JSON.stringify(rest)}`);
      else if (columns === "stats" || columns === "rate") {
        problem(
          `a --${columns} listing shows counters, not schedulers, forwarding methods or weights: nothing is imported from it (list with ipvsadm -Ln)`,
        );
      }
      continue;
    }
    if (/^ +-> RemoteAddress:Port/.test(raw)) {
      const rest = raw
        .replace(/^ +-> RemoteAddress:Port/, "")
        .trim()
        .split(/\s+/)
        .join(" ");
      const expected = columns === "rules" ? "Forward Weight ActiveConn InActConn" : "";
      if (columns !== undefined && rest !== expected)
        problem(`unexpected column titles ${JSON.stringify(rest)}`);
      continue;
    }
    if (raw === "IPVS connection entries") {
      columns = "connections";
      current = undefined;
      problem("a connection listing (ipvsadm -Lc) has no services to import: skipped");
      continue;
    }
    if (columns === "connections") continue;
    if (/^Timeout \(tcp tcpfin udp\):/.test(raw)) {
      problem("timeouts (ipvsadm -L --timeout) are not part of the table: skipped");
      continue;
    }
    if (/^(master|backup) sync daemon/.test(raw)) {
      problem("sync daemons (ipvsadm -L --daemon) are not part of the table: skipped");
      continue;
    }
    if (columns === "stats" || columns === "rate") {
      if (SERVICE_LINE.test(raw) || FWM_LINE.test(raw) || DEST_LINE.test(raw)) continue;
    }

    if (SERVICE_LINE.test(raw) || FWM_LINE.test(raw)) {
      const read = readServiceLine(raw, opts);
      if ("error" in read) {
        problem(read.error);
        current = { line, listedHere: new Set() };
        continue;
      }
      const name = serviceKeyString(read.key);
      const known = services.get(name);
      if (sectionServices.has(name)) {
        problem(`service ${name} is listed twice in one listing: this line and its real servers are ignored`);
        current = { line, listedHere: new Set() };
        continue;
      }
      sectionServices.add(name);
      if (known) {
        if (JSON.stringify(known.config) !== JSON.stringify(read.config)) {
          problem(
            `service ${name} is listed again with other settings than on line ${known.line}: this line is ignored`,
          );
        }
        current = { service: known, line, listedHere: new Set() };
      } else {
        const service: ListedService = { key: read.key, config: read.config, line, dests: new Map() };
        services.set(name, service);
        current = { service, line, listedHere: new Set() };
      }
      continue;
    }

    if (DEST_LINE.test(raw)) {
      if (!current) {
        problem("a real server line without a service line before it");
        continue;
      }
      const service = current.service;
      if (!service) {
        problem(`the service of line ${current.line} was not imported, nor is this real server`);
        continue;
      }
      const read = readDestLine(raw, service.key, columns, opts);
      if ("error" in read) {
        problem(read.error);
        continue;
      }
      const keyText = `${read.key.address}|${read.key.port}`;
      if (current.listedHere.has(keyText)) {
        problem(
          `real server ${destinationKeyString(read.key)} is listed twice under the service of line ${current.line}`,
        );
        continue;
      }
      current.listedHere.add(keyText);
      let dest = service.dests.get(keyText);
      if (!dest) {
        dest = { key: read.key, line };
        service.dests.set(keyText, dest);
      }
      const conflict = (what: string, earlier: number) =>
        problem(
          `real server ${destinationKeyString(read.key)}: ${what} differs from line ${earlier}: this line's is ignored`,
        );
      if (read.forwarding !== undefined) {
        if (!dest.forwarding) dest.forwarding = { method: read.forwarding, line };
        else if (dest.forwarding.method !== read.forwarding)
          conflict("the forwarding method", dest.forwarding.line);
      }
      if (read.weight !== undefined) {
        if (!dest.weight) dest.weight = { value: read.weight, line };
        else if (dest.weight.value !== read.weight) conflict("the weight", dest.weight.line);
      }
      if (read.thresholds) {
        const t = read.thresholds;
        if (!dest.thresholds) dest.thresholds = { ...t, line };
        else if (dest.thresholds.upper !== t.upper || dest.thresholds.lower !== t.lower)
          conflict("the thresholds", dest.thresholds.line);
      }
      continue;
    }

    problem(
      `not a line of an ipvsadm listing: ${JSON.stringify(raw.length > 60 ? `${raw.slice(0, 60)}...` : raw)}`,
    );
  }

  const table: IpvsTable = [];
  for (const service of services.values()) {
    const destinations = [];
    for (const dest of service.dests.values()) {
      const problem = (message: string) => problems.push({ line: dest.line, message });
      const label = destinationKeyString(dest.key);
      if (!dest.forwarding) {
        problem(
          `real server ${label}: no Forward column in the input (--thresholds and --persistent-conn listings have none; add the ipvsadm -Ln listing): left out`,
        );
        continue;
      }
      if (!dest.weight) {
        problem(`real server ${label}: no listing shows its weight: left out`);
        continue;
      }
      const method = dest.forwarding.method;
      if (method === "Bypass") {
        problems.push({
          line: dest.forwarding.line,
          message: `real server ${label}: forwarding method "(null)" (not one ipvsadm knows: a kernel with another method?): left out`,
        });
        continue;
      }
      if (dest.key.family !== service.key.family && method !== "Tunnel") {
        problems.push({
          line: dest.forwarding.line,
          message: `real server ${label}: a different address family is allowed only for tunneling servers: left out`,
        });
        continue;
      }
      if (method === "Tunnel") {
        problems.push({
          line: dest.forwarding.line,
          message: `real server ${label}: a listing does not show the tunnel type (ipip, gue, gre): imported as ipip, ipvsadm's default; ipvsadm -Sn shows the type`,
        });
      }
      const config: DestinationConfig = {
        forwarding: method,
        weight: dest.weight.value,
        upperThreshold: dest.thresholds?.upper ?? 0,
        lowerThreshold: dest.thresholds?.lower ?? 0,
        ...(method === "Tunnel" ? { tunnelType: "IPIP", tunnelPort: 0, tunnelChecksum: "None" } : NO_TUNNEL),
      };
      destinations.push({ key: dest.key, config });
    }
    table.push({ service: { key: service.key, config: service.config }, destinations });
  }
  problems.sort((a, b) => a.line - b.line);
  return { table, problems };
}

function protocolWord(key: ServiceKey): ServiceProtocol {
  return key.kind === "fwmark" ? "tcp" : (key.protocol.toLowerCase() as ServiceProtocol);
}

/**
 * "192.0.2.1:80", "[2001:db8::1]:80", "localhost:http": the address (an IP literal) and the port
 * (a number, or a name looked up for `protocol`).
 */
function readAddrPort(
  text: string,
  protocol: ServiceProtocol,
  opts: ListParseOptions,
): { family: Family; address: string; port: number } | { error: string } {
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":")
      return { error: `cannot read address:port ${JSON.stringify(text)}` };
    host = text.slice(1, close);
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(":");
    if (colon <= 0 || text.indexOf(":") !== colon)
      return { error: `cannot read address:port ${JSON.stringify(text)}` };
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
  }
  const family = ipFamily(host);
  if (!family || (text.startsWith("[") && family !== "IPv6")) {
    return {
      error: `${JSON.stringify(host)} is a host name, not an IP address: names are not resolved (list with ipvsadm -Ln)`,
    };
  }
  let port = intIn(portText, 0, 65535);
  if (port === undefined && /^\d+$/.test(portText)) return { error: `port ${portText} is out of range` };
  if (port === undefined) {
    port = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(portText)
      ? opts.servicePort?.(portText, protocol)
      : undefined;
    if (port === undefined)
      return {
        error: `unknown ${protocol} service name ${JSON.stringify(portText)} (not in the services database)`,
      };
  }
  return { family, address: canonicalIp(host), port };
}

/** One service line: `PROT  addr:port sched [(flags)] [persistent N [mask M] [pe NAME]] [ops]`. */
function readServiceLine(
  raw: string,
  opts: ListParseOptions,
): { key: ServiceKey; config: ServiceConfig } | { error: string } {
  const words = raw.trim().split(/\s+/);
  let i = 1;
  let key: ServiceKey;
  if (words[0] === "FWM") {
    // Printed with %d: marks >= 2^31 come out negative.
    const mark = intIn(words[1], -2147483648, 4294967295);
    if (mark === undefined || mark === 0) return { error: `invalid fwmark ${JSON.stringify(words[1])}` };
    i = 2;
    let family: Family = "IPv4";
    if (words[2] === "IPv6" || words[2] === "IPv4") {
      family = words[2];
      i = 3;
    }
    key = { kind: "fwmark", family, fwmark: mark >>> 0 };
  } else {
    const protocol = words[0] as Protocol;
    const addrText = words[1]!;
    if (!addrText.startsWith("[") && `${protocol.padEnd(4)} ${addrText}`.length >= 33) {
      return {
        error: `ipvsadm cuts this column at 33 characters: ${JSON.stringify(addrText)} may be cut (list with ipvsadm -Ln)`,
      };
    }
    const addr = readAddrPort(addrText, protocol.toLowerCase() as ServiceProtocol, opts);
    if ("error" in addr) return { error: `virtual service: ${addr.error}` };
    key = { kind: "address", family: addr.family, protocol, address: addr.address, port: addr.port };
    i = 2;
  }
  const family = key.family;
  const scheduler = words[i++];
  if (scheduler === undefined) return { error: "no scheduler on the service line" };
  if (!/^[a-z][a-z0-9_]{0,15}$/.test(scheduler))
    return { error: `invalid scheduler ${JSON.stringify(scheduler)}` };
  const flags: ServiceFlags = { ...NO_FLAGS };
  let timeout = 0;
  let netmask = family === "IPv6" ? 128 : 0xffffffff;
  let pe = "";
  if (words[i]?.startsWith("(")) {
    const m = /^\((.*)\)$/.exec(words[i]!);
    if (!m) return { error: `cannot read scheduler flags ${JSON.stringify(words[i])}` };
    const names = m[1] === "" ? [] : m[1]!.split(",");
    const named = scheduler === "sh" || scheduler === "mh";
    if (names.length === 0) {
      // sh / mh print flag 3 as nothing; other schedulers name every flag, so "()" never comes from them.
      if (!named) return { error: `empty scheduler flags "()" for scheduler ${scheduler}` };
      flags.schedFlag3 = true;
    }
    for (const name of names) {
      const expected: Record<string, number> = named
        ? { [`${scheduler}-fallback`]: 1, [`${scheduler}-port`]: 2 }
        : { "flag-1": 1, "flag-2": 2, "flag-3": 3 };
      const bit = expected[name];
      if (bit === undefined)
        return { error: `scheduler flag ${JSON.stringify(name)} is not one ipvsadm prints for ${scheduler}` };
      if (bit === 1) flags.schedFlag1 = true;
      else if (bit === 2) flags.schedFlag2 = true;
      else flags.schedFlag3 = true;
    }
    i++;
  }
  if (words[i] === "persistent") {
    const t = intIn(words[i + 1], 1, IPVSADM_MAX_TIMEOUT_SECONDS);
    if (t === undefined) return { error: `invalid persistence timeout ${JSON.stringify(words[i + 1])}` };
    flags.persistent = true;
    timeout = t;
    i += 2;
    if (words[i] === "mask") {
      const m = words[i + 1];
      if (family === "IPv4") {
        if (m === undefined || ipFamily(m) !== "IPv4")
          return { error: `invalid persistence mask ${JSON.stringify(m)}` };
        netmask = ipv4MaskToNumber(m);
      } else {
        const n = intIn(m, 0, 128);
        if (n === undefined) return { error: `invalid IPv6 persistence prefix ${JSON.stringify(m)}` };
        netmask = n;
      }
      i += 2;
    }
    if (words[i] === "pe") {
      const name = words[i + 1];
      if (name === undefined || !/^[a-z][a-z0-9_]*$/.test(name))
        return { error: `invalid persistence engine ${JSON.stringify(name)}` };
      pe = name;
      i += 2;
    }
  }
  if (words[i] === "ops") {
    flags.onePacket = true;
    i++;
  }
  if (i < words.length)
    return { error: `unexpected ${JSON.stringify(words.slice(i).join(" "))} on the service line` };
  return { key, config: { scheduler, flags, timeout, netmask, persistenceEngine: pe } };
}

/** One destination line under the columns of its listing. */
function readDestLine(
  raw: string,
  service: ServiceKey,
  columns: Columns | undefined,
  opts: ListParseOptions,
):
  | {
      key: DestinationKey;
      forwarding?: ForwardingMethod;
      weight?: number;
      thresholds?: { upper: number; lower: number };
    }
  | { error: string } {
  const words = raw.trim().split(/\s+/);
  const addrText = words[1] ?? "";
  if (!addrText.startsWith("[") && addrText.length >= 28) {
    return {
      error: `ipvsadm cuts this column at 28 characters: ${JSON.stringify(addrText)} may be cut (list with ipvsadm -Ln)`,
    };
  }
  const addr = readAddrPort(addrText, protocolWord(service), opts);
  if ("error" in addr) return { error: `real server: ${addr.error}` };
  const key: DestinationKey = { family: addr.family, address: addr.address, port: addr.port };
  let kind = columns;
  if (kind === undefined) {
    if (words.length === 6 && (words[2]! in FORWARD || words[2] === "(null)")) kind = "rules";
    else
      return {
        error:
          "no column titles before this line: cannot tell what its numbers are (include the title lines)",
      };
  }
  if (words.length !== 6) return { error: `expected 6 columns, found ${words.length}` };
  const u32 = (text: string) => intIn(text, 0, 4294967295);
  const [, , a, b, c, d] = words as [string, string, string, string, string, string];
  if (u32(c) === undefined || u32(d) === undefined)
    return { error: `invalid connection counts ${JSON.stringify(`${c} ${d}`)}` };
  switch (kind) {
    case "rules": {
      const forwarding = a === "(null)" ? "Bypass" : FORWARD[a];
      if (!forwarding) return { error: `unknown forwarding method ${JSON.stringify(a)}` };
      const weight = intIn(b, 0, 2147483647);
      if (weight === undefined) return { error: `invalid weight ${JSON.stringify(b)}` };
      return { key, forwarding, weight };
    }
    case "thresholds": {
      const upper = u32(a);
      const lower = u32(b);
      if (upper === undefined || lower === undefined)
        return { error: `invalid thresholds ${JSON.stringify(`${a} ${b}`)}` };
      return { key, thresholds: { upper, lower } };
    }
    case "persistent-conn": {
      const weight = intIn(a, 0, 2147483647);
      if (weight === undefined) return { error: `invalid weight ${JSON.stringify(a)}` };
      if (u32(b) === undefined) return { error: `invalid persistent connection count ${JSON.stringify(b)}` };
      return { key, weight };
    }
    default:
      return { error: "a real server line in a listing that is not imported" };
  }
}
