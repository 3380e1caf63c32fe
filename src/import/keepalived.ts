/**
 * Reads keepalived.conf and turns its IPVS part (`virtual_server`, `virtual_server_group`) into
 * ipvs.dev/v1alpha1 VirtualService and RealServer objects, with a report of everything that has no
 * equivalent in the API and a list of errors in the input. Pure: files are read through a callback.
 *
 * ```ts
 * importKeepalived(text, {
 *   file: "/etc/keepalived/keepalived.conf", // names the text in notes; includes are relative to it
 *   readFile: (path) => string | undefined,   // included files (undefined = cannot be read)
 *   glob: (pattern) => string[],               // optional: expands wildcards of `include`
 *   namespace: "edge", namePrefix: "lb",       // optional, as `import` (src/model/import-resources.ts)
 * }) // -> { objects, report, errors }, each note { file, line, message }
 * ```
 *
 * - `objects`: VirtualService objects each followed by its RealServer objects, in canonical service
 *   order, named as the ipvsadm import names them (`tcp-192-0-2-10-80`, `fwm-7`, ...): the table is
 *   built as keepalived would program it and handed to importResources, which names and validates
 *   it; health checks and sorry servers are then added and every object is validated again.
 * - `report`: what keepalived does and the objects cannot say (quorum, notify scripts, VRRP, digest,
 *   retry delays, connect_ip, ...), and what was not imported because the API cannot express it.
 * - `errors`: input keepalived would reject or that cannot be read safely (unbalanced braces, an
 *   unknown lb_kind or scheduler, bad addresses, ports or numbers, missing include files). The
 *   statement in error is left out (a virtual_server with a bad key, scheduler or forwarding method as a
 *   whole), the rest is imported. Nothing throws on any input.
 * - keepalived's own corrections are applied (and reported), as keepalived 2.2.7 programs them in the
 *   VM round trip (e2e/vm/tests/keepalived-roundtrip.vm.test.ts): no `protocol` is UDP, `ops` is cleared
 *   on TCP/SCTP, port 0 without persistence gets persistence 360 s, DR/TUN real servers get the
 *   service's port (0 for fwmark services).
 *
 * Mapping of keepalived's checkers to `healthCheck` (all checkers of keepalived need one success to
 * bring a real server up and `retry` + 1 failures to take it down):
 * TCP_CHECK -> TCP, HTTP_GET -> HTTP, SSL_GET -> HTTPS, UDP_CHECK -> UDP (payload and require_reply
 * as hex bytes), DNS_CHECK -> DNS (type, default SOA; name, default "."), MISC_CHECK -> Exec (misc_path
 * split into argv as keepalived does);
 * intervalSeconds = delay_loop (default 60), timeoutSeconds = connect_timeout (default 5; misc_timeout
 * for MISC_CHECK), fallCount = retry + 1 (nb_get_retry is the old name; default 1, DNS_CHECK 3,
 * MISC_CHECK 0), riseCount = 1, initialState = Unhealthy with `alpha` else Healthy, onFailure = Quiesce
 * with `inhibit_on_failure` else Remove; connect_port -> port; the first url's path, status_code
 * (default 200-299) and regex -> path, expectStatus, expectBody; virtualhost -> host. A checker
 * parameter may be given on the checker, the real_server or the virtual_server (nearest wins). When
 * all real servers of a virtual_server get the same check it is the VirtualService's, otherwise each
 * RealServer carries its own. A real server with several checkers keeps the first one that maps.
 */

import { posix } from "node:path";
import { HealthCheckSchema } from "../api/v1alpha1/index.ts";
import { validateRealServer, validateVirtualService } from "../api/v1alpha1/validate.ts";
import { importResources } from "../model/import-resources.ts";
import { bytesToIp, canonicalIp, ipFamily, ipToBytes, ipv4MaskToNumber } from "../vocabulary/addresses.ts";
import {
  destinationKeyString,
  type Family,
  IPVS_SCHEDULERS,
  type IpvsDestination,
  type IpvsService,
  type IpvsTable,
  type Protocol,
  type ServiceKey,
  serviceKeyString,
  type TunnelChecksum,
  type TunnelType,
} from "../vocabulary/table.ts";

export interface KeepalivedImportOptions {
  /** Path of the main file: named in notes, and the directory relative includes start from. */
  file: string;
  /** Contents of an included file, undefined when it cannot be read. */
  readFile(path: string): string | undefined;
  /** Paths matching a wildcard pattern (`*`, `?`, `[...]`, `{a,b}`); without it wildcards are errors. */
  glob?(pattern: string): string[];
  /** metadata.namespace of every object. */
  namespace?: string;
  /** Prepended to every name. */
  namePrefix?: string;
}

export interface KeepalivedNote {
  file: string;
  line: number;
  message: string;
}

export interface KeepalivedImport {
  objects: Record<string, unknown>[];
  /** What the objects do not carry over (no equivalent in the API), with where it was written. */
  report: KeepalivedNote[];
  /** Input that is invalid; the statement in error is left out. */
  errors: KeepalivedNote[];
}

// ---------------------------------------------------------------------------------------------
// Lexing, includes and blocks

interface Where {
  file: string;
  line: number;
}

interface Line extends Where {
  words: string[];
}

interface Stmt extends Where {
  words: string[];
  children?: Stmt[];
}

interface Sink {
  report(at: Where, message: string): void;
  error(at: Where, message: string): void;
}

const MAX_INCLUDE_DEPTH = 16;
const MAX_LINES = 1_000_000;
/** Addresses one group range may expand to (keepalived programs one service per address). */
const MAX_RANGE = 1024;

/** The words of one line: quotes group words (and are removed), `!` and `#` start a comment. */
function lexLine(text: string, at: Where, sink: Sink): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === " " || c === "\t" || c === "\r" || c === "\f" || c === "\v") {
      i++;
    } else if (c === "!" || c === "#") {
      break;
    } else if (c === "{" || c === "}") {
      words.push(c);
      i++;
    } else if (c === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) {
        sink.error(at, "unterminated quoted string (a quote is closed at the end of the line)");
        words.push(text.slice(i + 1));
        break;
      }
      words.push(text.slice(i + 1, end));
      i = end + 1;
    } else {
      let j = i;
      while (j < text.length && !/[\s{}"!#]/.test(text[j] as string)) j++;
      words.push(text.slice(i, j));
      i = j;
    }
  }
  return words;
}

const INCLUDE_WORDS = new Set(["include", "includer", "includem", "includew", "includeb", "includea"]);

function hasWildcard(pattern: string): boolean {
  return /[*?[{]/.test(pattern);
}

/** The lines of `text` with the lines of included files spliced in where they are included. */
function readLines(
  text: string,
  file: string,
  options: KeepalivedImportOptions,
  sink: Sink,
  stack: string[],
  out: Line[],
): void {
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    if (out.length >= MAX_LINES) {
      sink.error({ file, line: n + 1 }, `more than ${MAX_LINES} lines; the rest is not read`);
      return;
    }
    const at = { file, line: n + 1 };
    const words = lexLine(lines[n] as string, at, sink);
    if (words.length === 0) continue;
    const first = words[0] as string;
    if (first.startsWith("$") || first.startsWith("@") || first.startsWith("~SEQ")) {
      sink.error(
        at,
        `parameter definitions, conditional lines and ~SEQ are not supported (${first}); line not read`,
      );
      continue;
    }
    if (words.some((w) => w.includes("${"))) {
      sink.error(at, "parameter substitution (a $NAME in braces) is not supported; line not read");
      continue;
    }
    if (INCLUDE_WORDS.has(first)) {
      if (words.length !== 2) {
        sink.error(at, `${first} takes one file name or pattern`);
        continue;
      }
      include(words[1] as string, at, first, options, sink, stack, out);
      continue;
    }
    out.push({ ...at, words });
  }
}

function include(
  pattern: string,
  at: Where,
  keyword: string,
  options: KeepalivedImportOptions,
  sink: Sink,
  stack: string[],
  out: Line[],
): void {
  const full = posix.isAbsolute(pattern) ? pattern : posix.join(posix.dirname(at.file), pattern);
  let paths: string[];
  if (hasWildcard(pattern)) {
    if (!options.glob) {
      sink.error(at, `cannot expand the wildcard pattern ${full} (no glob given); not included`);
      return;
    }
    try {
      paths = [...options.glob(full)].sort();
    } catch (error) {
      sink.error(at, `cannot expand ${full}: ${String(error)}; not included`);
      return;
    }
    if (paths.length === 0) {
      // keepalived: only `include`/`includew` without a match are silent when include_check allows it.
      if (keyword === "includer" || keyword === "include") sink.report(at, `${full} matches no file`);
      else sink.error(at, `${full} matches no file`);
      return;
    }
  } else paths = [full];
  for (const path of paths) {
    if (stack.includes(path)) {
      sink.error(at, `${path} includes itself (through ${stack.join(" -> ")}); not included again`);
      continue;
    }
    if (stack.length >= MAX_INCLUDE_DEPTH) {
      sink.error(at, `includes nested deeper than ${MAX_INCLUDE_DEPTH}; ${path} not included`);
      continue;
    }
    let text: string | undefined;
    try {
      text = options.readFile(path);
    } catch {
      text = undefined;
    }
    if (text === undefined) {
      sink.error(at, `cannot read included file ${path}`);
      continue;
    }
    readLines(text, path, options, sink, [...stack, path], out);
  }
}

const TOP_LEVEL_BLOCKS = /^(virtual_server|virtual_server_group|global_defs|vrrp_\w+|static_\w+)$/;

/** Statements and their blocks. Braces that do not balance are errors; the tree is closed anyway. */
function buildTree(lines: Line[], sink: Sink): Stmt[] {
  const root: Stmt[] = [];
  const stack: { list: Stmt[]; opener?: Stmt }[] = [{ list: root }];
  for (const line of lines) {
    let words: string[] = [];
    const top = () => stack[stack.length - 1] as { list: Stmt[]; opener?: Stmt };
    const flush = () => {
      if (words.length > 0) top().list.push({ file: line.file, line: line.line, words });
      words = [];
    };
    for (const w of line.words) {
      if (w === "{") {
        let stmt: Stmt | undefined;
        if (words.length > 0) {
          // A top-level block inside a block: the block before it was never closed.
          if (stack.length > 1 && TOP_LEVEL_BLOCKS.test(words[0] as string)) {
            const opener = stack[1]?.opener;
            if (opener) sink.error(opener, `'{' of ${opener.words[0]} is never closed`);
            stack.length = 1;
          }
          stmt = { file: line.file, line: line.line, words };
          top().list.push(stmt);
          words = [];
        } else {
          // `{` on a line of its own opens the block of the statement before it.
          const last = top().list[top().list.length - 1];
          if (last && last.children === undefined) stmt = last;
          else {
            sink.error(line, "'{' without a keyword before it");
            stmt = { file: line.file, line: line.line, words: ["{"] };
            top().list.push(stmt);
          }
        }
        stmt.children = [];
        stack.push({ list: stmt.children, opener: stmt });
      } else if (w === "}") {
        flush();
        if (stack.length === 1) sink.error(line, "'}' without a matching '{'");
        else stack.pop();
      } else words.push(w);
    }
    flush();
  }
  for (let i = stack.length - 1; i >= 1; i--) {
    const opener = stack[i]?.opener;
    if (opener) sink.error(opener, `'{' of ${opener.words[0]} is never closed`);
  }
  return root;
}

// ---------------------------------------------------------------------------------------------
// Values

function parseUint(text: string | undefined, max: number): number | undefined {
  if (text === undefined || !/^\d{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= max ? n : undefined;
}

/** keepalived timers: seconds, with up to 6 decimals. */
function parseTimer(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,9}(\.\d{1,6})?$/.test(text)) return undefined;
  return Number(text);
}

function parseBool(words: string[]): boolean | undefined {
  const v = words[1];
  if (v === undefined) return true;
  if (/^(true|on|yes|1)$/i.test(v)) return true;
  if (/^(false|off|no|0)$/i.test(v)) return false;
  return undefined;
}

/** A canonical address, or undefined. IPv6 may be written in brackets. */
function parseAddress(text: string | undefined): { address: string; family: Family } | undefined {
  if (text === undefined) return undefined;
  const t = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  const family = ipFamily(t);
  if (!family) return undefined;
  return { address: canonicalIp(t), family };
}

function bytesToBig(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

function bigToIp(value: bigint, family: Family): string {
  const n = family === "IPv4" ? 4 : 16;
  const bytes = new Uint8Array(n);
  let v = value;
  for (let i = n - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return bytesToIp(bytes, family);
}

/**
 * Addresses of a group entry: an address, `A-N` (the last IPv4 byte or IPv6 hextet up to N),
 * `A-B` (full addresses) or `A/len`. Returns the reason when it cannot be read.
 */
function expandRange(text: string): { family: Family; addresses: string[] } | string {
  let first: string;
  let last: bigint;
  let family: Family;
  const slash = text.indexOf("/");
  const dash = text.indexOf("-");
  if (slash >= 0) {
    const a = parseAddress(text.slice(0, slash));
    if (!a) return `${text} is not an address/prefix`;
    family = a.family;
    const bits = family === "IPv4" ? 32 : 128;
    const len = parseUint(text.slice(slash + 1), bits);
    if (len === undefined) return `${text}: prefix length must be 0..${bits}`;
    const size = 1n << BigInt(bits - len);
    const base = (bytesToBig(ipToBytes(a.address)) / size) * size;
    first = bigToIp(base, family);
    last = base + size - 1n;
  } else if (dash >= 0) {
    const a = parseAddress(text.slice(0, dash));
    if (!a) return `${text} is not an address range`;
    family = a.family;
    first = a.address;
    const end = text.slice(dash + 1);
    const full = parseAddress(end);
    if (full) {
      if (full.family !== family) return `${text}: both ends must be of one family`;
      last = bytesToBig(ipToBytes(full.address));
    } else {
      const base = bytesToBig(ipToBytes(first));
      if (family === "IPv4") {
        const n = parseUint(end, 255);
        if (n === undefined) return `${text}: the end of the range must be 0..255 or an address`;
        last = (base & ~0xffn) | BigInt(n);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(end)) return `${text}: the end of the range must be a hextet`;
        last = (base & ~0xffffn) | BigInt(Number.parseInt(end, 16));
      }
    }
  } else {
    const a = parseAddress(text);
    if (!a) return `${text} is not an IP address`;
    return { family: a.family, addresses: [a.address] };
  }
  const start = bytesToBig(ipToBytes(first));
  if (last < start) return `${text}: the range ends before it starts`;
  if (last - start >= BigInt(MAX_RANGE))
    return `${text} has ${last - start + 1n} addresses, more than the ${MAX_RANGE} this import expands`;
  const addresses: string[] = [];
  for (let v = start; v <= last; v++) addresses.push(bigToIp(v, family));
  return { family, addresses };
}

// ---------------------------------------------------------------------------------------------
// The configuration as keepalived reads it

interface Forwarding {
  method: "NAT" | "DirectRouting" | "Tunnel";
  tunnelType: TunnelType;
  tunnelPort: number;
  tunnelChecksum: TunnelChecksum;
}

/** Checker parameters that cascade virtual_server -> real_server -> checker. */
interface CheckParams {
  delayLoop?: number;
  connectTimeout?: number;
  retry?: number;
  delayBeforeRetry?: { value: number; at: Where };
  warmup?: { value: number; at: Where };
  alpha?: boolean;
  inhibit?: boolean;
  virtualhost?: string;
}

interface Checker extends Where {
  kind: string;
  params: CheckParams;
  stmt: Stmt;
}

interface RealServerConf extends Where {
  address: string;
  family: Family;
  port?: number;
  weight: number;
  upperThreshold: number;
  lowerThreshold: number;
  forwarding?: Forwarding;
  params: CheckParams;
  checkers: Checker[];
}

interface GroupEntry extends Where {
  /** address entries */
  addresses?: { family: Family; list: string[]; port: number };
  fwmark?: { mark: number; family?: Family };
}

interface VirtualServerConf extends Where {
  keys: { key: ServiceKey; at: Where }[];
  scheduler: string;
  flags: IpvsService["config"]["flags"];
  forwarding: Forwarding;
  persistenceTimeout?: number;
  granularity?: { text: string; at: Where };
  persistenceEngine: string;
  sorry?: { address: string; family: Family; port?: number; at: Where };
  params: CheckParams;
  weight: number;
  realServers: RealServerConf[];
}

const REPORTED_VS_WORDS: Record<string, string> = {
  quorum: "quorum has no equivalent: every healthy real server is used, the sorry server when none is",
  hysteresis: "hysteresis (of the quorum) has no equivalent",
  quorum_up: "quorum_up scripts are not run by the operator",
  quorum_down: "quorum_down scripts are not run by the operator",
  omega: "omega (notify scripts at shutdown) has no equivalent",
  smtp_alert: "smtp_alert has no equivalent (the operator reports through conditions, events and metrics)",
  ha_suspend: "ha_suspend has no equivalent (checks run on every node that programs the service)",
  snmp_name: "snmp_name has no equivalent",
  hashed: "hashed is ignored (the kernel sets it on every service)",
};

const REPORTED_RS_WORDS: Record<string, string> = {
  notify_up: "notify_up scripts are not run by the operator",
  notify_down: "notify_down scripts are not run by the operator",
  smtp_alert: "smtp_alert has no equivalent (the operator reports through conditions, events and metrics)",
  snmp_name: "snmp_name has no equivalent",
};

const CHECKERS = new Set([
  "TCP_CHECK",
  "HTTP_GET",
  "SSL_GET",
  "UDP_CHECK",
  "DNS_CHECK",
  "MISC_CHECK",
  "SMTP_CHECK",
  "PING_CHECK",
  "BFD_CHECK",
  "FILE_CHECK",
]);

const CASCADING = new Set([
  "delay_loop",
  "connect_timeout",
  "retry",
  "nb_get_retry",
  "nb_sock_retry",
  "delay_before_retry",
  "warmup",
  "alpha",
  "inhibit_on_failure",
  "virtualhost",
]);

/** Reads a keyword that cascades to checkers; false when `words` is not one. */
function readCheckParam(words: string[], at: Where, params: CheckParams, sink: Sink): boolean {
  const kw = words[0];
  if (words.length > 2 && CASCADING.has(kw as string)) {
    sink.error(at, `${kw} takes one value, got ${words.slice(1).join(" ")}; ignored`);
    return true;
  }
  const timer = (name: string) => {
    const v = parseTimer(words[1]);
    if (v === undefined)
      sink.error(at, `${name} needs a number of seconds, got ${words[1] ?? "nothing"}; ignored`);
    return v;
  };
  switch (kw) {
    case "delay_loop": {
      const v = timer(kw);
      if (v !== undefined) params.delayLoop = v;
      return true;
    }
    case "connect_timeout": {
      const v = timer(kw);
      if (v !== undefined) params.connectTimeout = v;
      return true;
    }
    case "retry":
    case "nb_get_retry":
    case "nb_sock_retry": {
      const v = parseUint(words[1], 0xffffffff);
      if (v === undefined) sink.error(at, `${kw} needs a count, got ${words[1] ?? "nothing"}; ignored`);
      else params.retry = v;
      return true;
    }
    case "delay_before_retry": {
      const v = timer(kw);
      if (v !== undefined) params.delayBeforeRetry = { value: v, at };
      return true;
    }
    case "warmup": {
      const v = timer(kw);
      if (v !== undefined) params.warmup = { value: v, at };
      return true;
    }
    case "alpha":
    case "inhibit_on_failure": {
      const v = parseBool(words);
      if (v === undefined) sink.error(at, `${kw} takes true or false, got ${words[1]}`);
      else if (kw === "alpha") params.alpha = v;
      else params.inhibit = v;
      return true;
    }
    case "virtualhost":
      if (words[1] === undefined) sink.error(at, "virtualhost needs a host name");
      else params.virtualhost = words[1];
      return true;
    default:
      return false;
  }
}

/** lb_kind / lvs_method NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]. */
function readForwarding(words: string[], at: Where, sink: Sink, consequence: string): Forwarding | undefined {
  const fail = (message: string) => sink.error(at, `${message}; ${consequence}`);
  const kind = words[1];
  const f: Forwarding = { method: "NAT", tunnelType: "IPIP", tunnelPort: 0, tunnelChecksum: "None" };
  if (kind === "NAT") f.method = "NAT";
  else if (kind === "DR") f.method = "DirectRouting";
  else if (kind === "TUN") f.method = "Tunnel";
  else {
    fail(`unknown ${words[0]} ${kind ?? "(missing)"}: keepalived knows NAT, DR and TUN`);
    return undefined;
  }
  for (let i = 2; i < words.length; i++) {
    const w = words[i];
    if (f.method === "Tunnel" && w === "type") {
      const t = words[++i];
      if (t === "ipip") f.tunnelType = "IPIP";
      else if (t === "gre") f.tunnelType = "GRE";
      else if (t === "gue") f.tunnelType = "GUE";
      else {
        fail(`unknown tunnel type ${t ?? "(missing)"}: keepalived knows ipip, gue and gre`);
        return undefined;
      }
    } else if (f.method === "Tunnel" && w === "port") {
      const p = parseUint(words[++i], 65535);
      if (!p) {
        fail(`tunnel port must be 1..65535, got ${words[i] ?? "nothing"}`);
        return undefined;
      }
      f.tunnelPort = p;
    } else if (f.method === "Tunnel" && (w === "nocsum" || w === "csum" || w === "remcsum")) {
      f.tunnelChecksum = w === "nocsum" ? "None" : w === "csum" ? "Checksum" : "RemoteChecksum";
    } else {
      fail(`unexpected ${w} in ${words[0]}`);
      return undefined;
    }
  }
  if (f.tunnelType === "GUE" && f.tunnelPort === 0) {
    fail("tunnel type gue needs a port");
    return undefined;
  }
  if (f.tunnelType !== "GUE" && f.tunnelPort !== 0) {
    fail("a tunnel port is only for type gue");
    return undefined;
  }
  return f;
}

function readGroup(stmt: Stmt, sink: Sink): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const s of stmt.children ?? []) {
    if (s.children) {
      sink.error(s, `unexpected block in virtual_server_group ${stmt.words[1]}; ignored`);
      continue;
    }
    const [w0, w1, w2] = s.words;
    if (w0 === "fwmark") {
      const mark = parseUint(w1, 0xffffffff);
      if (!mark) {
        sink.error(s, `fwmark must be 1..4294967295, got ${w1 ?? "nothing"}; entry ignored`);
        continue;
      }
      let family: Family | undefined;
      if (w2 === "inet") family = "IPv4";
      else if (w2 === "inet6") family = "IPv6";
      else if (w2 !== undefined) {
        sink.error(s, `fwmark family must be inet or inet6, got ${w2}; entry ignored`);
        continue;
      }
      entries.push({ file: s.file, line: s.line, fwmark: { mark, ...(family ? { family } : {}) } });
      continue;
    }
    const range = expandRange(w0 as string);
    if (typeof range === "string") {
      sink.error(s, `${range}; entry ignored`);
      continue;
    }
    const port = w1 === undefined ? 0 : parseUint(w1, 65535);
    if (port === undefined || s.words.length > 2) {
      sink.error(s, `expected <address or range> [<port>], got ${s.words.join(" ")}; entry ignored`);
      continue;
    }
    entries.push({
      file: s.file,
      line: s.line,
      addresses: { family: range.family, list: range.addresses, port },
    });
  }
  return entries;
}

function readRealServer(stmt: Stmt, sink: Sink): RealServerConf | undefined {
  const a = parseAddress(stmt.words[1]);
  if (!a) {
    sink.error(stmt, `real_server needs an IP address, got ${stmt.words[1] ?? "nothing"}; not imported`);
    return undefined;
  }
  let port: number | undefined;
  if (stmt.words[2] !== undefined) {
    port = parseUint(stmt.words[2], 65535);
    if (port === undefined || stmt.words.length > 3) {
      sink.error(
        stmt,
        `real_server port must be 0..65535, got ${stmt.words.slice(2).join(" ")}; not imported`,
      );
      return undefined;
    }
  }
  const rs: RealServerConf = {
    file: stmt.file,
    line: stmt.line,
    address: a.address,
    family: a.family,
    weight: -1,
    upperThreshold: 0,
    lowerThreshold: 0,
    params: {},
    checkers: [],
    ...(port !== undefined ? { port } : {}),
  };
  let ok = true;
  for (const s of stmt.children ?? []) {
    const kw = s.words[0] as string;
    if (CHECKERS.has(kw)) {
      rs.checkers.push({ file: s.file, line: s.line, kind: kw, params: {}, stmt: s });
      continue;
    }
    if (s.children && kw !== "{") {
      sink.error(s, `unknown block ${kw} in real_server; ignored`);
      continue;
    }
    if (readCheckParam(s.words, s, rs.params, sink)) continue;
    if (kw === "lvs_method" || kw === "lb_kind") {
      const f = readForwarding(s.words, s, sink, "real server not imported");
      if (f) rs.forwarding = f;
      ok &&= f !== undefined;
      continue;
    }
    switch (kw) {
      case "weight": {
        const w = parseUint(s.words[1], 0xffffffff);
        if (w === undefined) {
          sink.error(
            s,
            `weight must be a whole number, got ${s.words[1] ?? "nothing"}; real server not imported`,
          );
          ok = false;
        } else rs.weight = w;
        break;
      }
      case "uthreshold":
      case "lthreshold": {
        const v = parseUint(s.words[1], 0xffffffff);
        if (v === undefined) {
          sink.error(
            s,
            `${kw} must be 0..4294967295, got ${s.words[1] ?? "nothing"}; real server not imported`,
          );
          ok = false;
        } else if (kw === "uthreshold") rs.upperThreshold = v;
        else rs.lowerThreshold = v;
        break;
      }
      default:
        if (REPORTED_RS_WORDS[kw]) sink.report(s, REPORTED_RS_WORDS[kw]);
        else sink.report(s, `unknown real_server keyword ${kw}; ignored`);
    }
  }
  return ok ? rs : undefined;
}

function readVirtualServer(
  stmt: Stmt,
  groups: Map<string, GroupEntry[]>,
  sink: Sink,
): VirtualServerConf | undefined {
  const [, w1, w2, w3] = stmt.words;
  const vs: VirtualServerConf = {
    file: stmt.file,
    line: stmt.line,
    keys: [],
    scheduler: "",
    flags: { persistent: false, onePacket: false, schedFlag1: false, schedFlag2: false, schedFlag3: false },
    forwarding: { method: "NAT", tunnelType: "IPIP", tunnelPort: 0, tunnelChecksum: "None" },
    persistenceEngine: "",
    params: {},
    weight: 1,
    realServers: [],
  };
  let ok = true;
  const fail = (at: Where, message: string) => {
    sink.error(at, `${message}; virtual_server not imported`);
    ok = false;
  };
  let protocol: Protocol | undefined;
  let opsAt: Where | undefined;
  let ipFamilyWord: Family | undefined;
  const schedFlags: { word: string; at: Where }[] = [];
  for (const s of stmt.children ?? []) {
    const kw = s.words[0] as string;
    if (kw === "real_server") {
      if (!s.children) sink.error(s, "real_server without a block");
      const rs = readRealServer(s, sink);
      if (rs) vs.realServers.push(rs);
      continue;
    }
    if (s.children) {
      sink.error(s, `unknown block ${kw} in virtual_server; ignored`);
      continue;
    }
    if (readCheckParam(s.words, s, vs.params, sink)) continue;
    switch (kw) {
      case "lb_algo":
      case "lvs_sched": {
        const name = s.words[1];
        if (!name || !(IPVS_SCHEDULERS as readonly string[]).includes(name))
          fail(s, `unknown scheduler ${name ?? "(missing)"}: keepalived knows ${IPVS_SCHEDULERS.join(" ")}`);
        else vs.scheduler = name;
        break;
      }
      case "lb_kind":
      case "lvs_method": {
        const f = readForwarding(s.words, s, sink, "virtual_server not imported");
        if (f) vs.forwarding = f;
        else ok = false;
        break;
      }
      case "persistence_timeout": {
        if (s.words[1] === undefined) vs.persistenceTimeout = 360;
        else {
          const t = parseUint(s.words[1], 2147483);
          if (!t) fail(s, `persistence_timeout must be 1..2147483, got ${s.words[1]}`);
          else vs.persistenceTimeout = t;
        }
        break;
      }
      case "persistence_granularity":
        if (s.words[1] === undefined) fail(s, "persistence_granularity needs a netmask or prefix length");
        else vs.granularity = { text: s.words[1], at: s };
        break;
      case "persistence_engine":
        vs.persistenceEngine = s.words[1] ?? "";
        break;
      case "protocol": {
        const p = s.words[1]?.toUpperCase();
        if (p === "TCP" || p === "UDP" || p === "SCTP") protocol = p;
        else fail(s, `protocol must be TCP, UDP or SCTP, got ${s.words[1] ?? "nothing"}`);
        break;
      }
      case "ip_family":
        if (s.words[1] === "inet") ipFamilyWord = "IPv4";
        else if (s.words[1] === "inet6") ipFamilyWord = "IPv6";
        else fail(s, `ip_family must be inet or inet6, got ${s.words[1] ?? "nothing"}`);
        break;
      case "ops":
        vs.flags.onePacket = true;
        opsAt = s;
        break;
      case "flag-1":
      case "flag-2":
      case "flag-3":
      case "sh-port":
      case "sh-fallback":
      case "mh-port":
      case "mh-fallback":
        schedFlags.push({ word: kw, at: s });
        break;
      case "weight": {
        const w = parseUint(s.words[1], 0xffffffff);
        if (w === undefined) fail(s, `weight must be a whole number, got ${s.words[1] ?? "nothing"}`);
        else vs.weight = w;
        break;
      }
      case "sorry_server": {
        const a = parseAddress(s.words[1]);
        const port = s.words[2] === undefined ? undefined : parseUint(s.words[2], 65535);
        if (!a || (s.words[2] !== undefined && !port))
          sink.error(
            s,
            `sorry_server needs <address> [<port 1..65535>], got ${s.words.slice(1).join(" ")}; ignored`,
          );
        else vs.sorry = { ...a, at: s, ...(port ? { port } : {}) };
        break;
      }
      case "sorry_server_inhibit":
        sink.report(
          s,
          "sorry_server_inhibit has no equivalent: the sorry server is added while no real server is healthy and removed otherwise",
        );
        break;
      case "sorry_server_lvs_method":
        sink.report(
          s,
          "sorry_server_lvs_method has no equivalent: the sorry server uses the service's forwarding",
        );
        break;
      default:
        if (REPORTED_VS_WORDS[kw]) sink.report(s, REPORTED_VS_WORDS[kw]);
        else sink.report(s, `unknown virtual_server keyword ${kw}; ignored`);
    }
  }
  vs.scheduler ||= "wlc";
  for (const { word, at } of schedFlags) {
    if (word === "flag-1") vs.flags.schedFlag1 = true;
    else if (word === "flag-2") vs.flags.schedFlag2 = true;
    else if (word === "flag-3") vs.flags.schedFlag3 = true;
    else if (word.slice(0, 2) !== vs.scheduler)
      sink.report(at, `${word} is ignored with scheduler ${vs.scheduler} (as keepalived does)`);
    else if (word.endsWith("fallback")) vs.flags.schedFlag1 = true;
    else vs.flags.schedFlag2 = true;
  }
  if (vs.persistenceTimeout !== undefined || vs.granularity) vs.flags.persistent = true;

  // The keys.
  const rsFamily = vs.realServers.find((r) => !r.forwarding || r.forwarding.method !== "Tunnel")?.family;
  const fwmarkFamily = (given?: Family): Family =>
    given ??
    ipFamilyWord ??
    (vs.granularity && !vs.granularity.text.includes(".") ? "IPv6" : undefined) ??
    rsFamily ??
    "IPv4";
  if (w1 === "fwmark") {
    const mark = parseUint(w2, 0xffffffff);
    if (!mark || w3 !== undefined)
      fail(stmt, `virtual_server fwmark needs a mark 1..4294967295, got ${w2 ?? "nothing"}`);
    else vs.keys.push({ key: { kind: "fwmark", fwmark: mark, family: fwmarkFamily() }, at: stmt });
  } else if (w1 === "group") {
    const entries = w2 === undefined ? undefined : groups.get(w2);
    if (!entries) fail(stmt, `virtual_server_group ${w2 ?? "(no name)"} is not defined`);
    else {
      if (entries.length === 0)
        sink.report(stmt, `virtual_server_group ${w2} has no entries; nothing to import`);
      for (const e of entries) {
        if (e.fwmark) {
          vs.keys.push({
            key: { kind: "fwmark", fwmark: e.fwmark.mark, family: fwmarkFamily(e.fwmark.family) },
            at: e,
          });
        } else if (e.addresses) {
          for (const address of e.addresses.list) {
            vs.keys.push({
              key: {
                kind: "address",
                family: e.addresses.family,
                protocol: protocol ?? "UDP",
                address,
                port: e.addresses.port,
              },
              at: e,
            });
          }
        }
      }
    }
  } else {
    const a = parseAddress(w1);
    const port = w2 === undefined ? 0 : parseUint(w2, 65535);
    if (!a) fail(stmt, `virtual_server needs an IP address, fwmark N or group NAME, got ${w1 ?? "nothing"}`);
    else if (port === undefined || w3 !== undefined)
      fail(stmt, `virtual_server port must be 0..65535, got ${stmt.words.slice(2).join(" ")}`);
    else
      vs.keys.push({
        key: { kind: "address", family: a.family, protocol: protocol ?? "UDP", address: a.address, port },
        at: stmt,
      });
  }
  // keepalived's own fixes of an address service (check_data.c validate_check_config).
  const addressBased =
    w1 !== "fwmark" && (w1 !== "group" || (groups.get(w2 ?? "")?.some((e) => e.addresses) ?? false));
  // (Only for a virtual_server that is imported: notes about one that is not would be noise.)
  if (ok && addressBased && protocol === undefined) {
    sink.report(
      stmt,
      'no protocol: keepalived programs UDP ("no protocol set - defaulting to UDP"), so this is imported as UDP; write protocol TCP if TCP was meant',
    );
    protocol = "UDP";
  }
  if (ok && addressBased && opsAt && protocol !== "UDP") {
    sink.report(opsAt, "ops is only for UDP services; keepalived clears it, and so does the import");
    vs.flags.onePacket = false;
  }

  if (ok && !vs.flags.persistent && vs.keys.some(({ key }) => key.kind === "address" && key.port === 0)) {
    sink.report(
      stmt,
      "port 0 (all ports) needs persistence: keepalived sets persistence_timeout 360, and so does the import",
    );
    vs.flags.persistent = true;
    vs.persistenceTimeout = 360;
  }
  if (ipFamilyWord && w1 !== "fwmark" && w1 !== "group")
    sink.report(stmt, "ip_family is only for fwmark services; ignored");
  if (!stmt.children) sink.error(stmt, "virtual_server without a block");
  return ok ? vs : undefined;
}

// ---------------------------------------------------------------------------------------------
// Health checks

const DEFAULT_RETRY: Record<string, number> = { DNS_CHECK: 3, MISC_CHECK: 0 };

/** Splits misc_path into argv the way keepalived does (quotes group, backslash escapes). */
function splitCommand(text: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quote = "";
  let has = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quote) {
      if (c === quote) quote = "";
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      has = true;
    } else if (c === "\\" && i + 1 < text.length) {
      cur += text[++i];
      has = true;
    } else if (/\s/.test(c)) {
      if (has || cur) out.push(cur);
      cur = "";
      has = false;
    } else cur += c;
  }
  if (has || cur) out.push(cur);
  return out;
}

function secondsFor(value: number, name: string, at: Where, sink: Sink, min: number): number {
  let v = Math.ceil(value);
  if (v !== value)
    sink.report(at, `${name} ${value} s is rounded up to ${v} s (the API counts whole seconds)`);
  if (v < min) {
    sink.report(at, `${name} ${value} s becomes ${min} s (the API's minimum)`);
    v = min;
  }
  if (v > 3600) {
    sink.report(at, `${name} ${value} s becomes 3600 s (the API's maximum)`);
    v = 3600;
  }
  return v;
}

/** The API health check of one real server, or undefined when it has none that maps. */
function healthCheckOf(
  vs: VirtualServerConf,
  rs: RealServerConf,
  sink: Sink,
): Record<string, unknown> | undefined {
  let chosen: Record<string, unknown> | undefined;
  for (const checker of rs.checkers) {
    const hc = mapChecker(vs, rs, checker, sink, chosen === undefined);
    if (hc && chosen)
      sink.report(
        checker,
        `${checker.kind} is a second checker: the API has one check per real server, the first is kept`,
      );
    else if (hc) chosen = hc;
  }
  return chosen;
}

function mapChecker(
  vs: VirtualServerConf,
  rs: RealServerConf,
  checker: Checker,
  sink: Sink,
  first: boolean,
): Record<string, unknown> | undefined {
  const kind = checker.kind;
  const own: CheckParams = {};
  const extra: Record<string, { words: string[]; at: Where }> = {};
  const urls: Stmt[] = [];
  // Reports about a checker that is not kept would be noise: collected, and given only if it is kept.
  const notes: { at: Where; message: string }[] = [];
  const local: Sink = {
    report: (at, message) => notes.push({ at, message }),
    error: sink.error,
  };
  for (const s of checker.stmt.children ?? []) {
    const kw = s.words[0] as string;
    if (kw === "url" && (kind === "HTTP_GET" || kind === "SSL_GET")) {
      urls.push(s);
      continue;
    }
    if (s.children) {
      sink.error(s, `unknown block ${kw} in ${kind}; ignored`);
      continue;
    }
    if (readCheckParam(s.words, s, own, sink)) continue;
    extra[kw] = { words: s.words, at: s };
  }
  // Nearest wins: the checker's own, then the real_server's, then the virtual_server's.
  const p: CheckParams = { ...vs.params, ...rs.params, ...own };
  const hc: Record<string, unknown> = {};
  const take = (name: string) => {
    const e = extra[name];
    delete extra[name];
    return e;
  };
  switch (kind) {
    case "TCP_CHECK":
      hc.type = "TCP";
      break;
    case "HTTP_GET":
    case "SSL_GET":
      hc.type = kind === "HTTP_GET" ? "HTTP" : "HTTPS";
      break;
    case "UDP_CHECK": {
      hc.type = "UDP";
      const udp: Record<string, string> = {};
      const payload = take("payload");
      if (payload?.words[1] !== undefined) udp.payloadHex = payload.words[1].replace(/^0x/i, "");
      const reply = take("require_reply");
      // require_reply with bytes: the reply must be them; without: any reply will do.
      if (reply) {
        if (reply.words[1] !== undefined) udp.expectReplyHex = reply.words[1].replace(/^0x/i, "");
        else udp.expectReply = "[\\s\\S]*";
      }
      for (const name of ["min_reply_length", "max_reply_length"]) {
        const e = take(name);
        if (e) local.report(e.at, `UDP_CHECK ${name} has no equivalent: the reply's length is not checked`);
      }
      if (Object.keys(udp).length > 0) hc.udp = udp;
      break;
    }
    case "DNS_CHECK": {
      hc.type = "DNS";
      const type = take("type");
      const name = take("name");
      hc.dns = { name: name?.words[1] ?? ".", type: (type?.words[1] ?? "SOA").toUpperCase() };
      break;
    }
    case "MISC_CHECK": {
      hc.type = "Exec";
      const path = take("misc_path");
      if (path && path.words.length > 2)
        sink.error(
          path.at,
          "misc_path takes one value (quote a command with arguments); the rest is ignored",
        );
      const argv = path?.words[1] === undefined ? [] : splitCommand(path.words[1]);
      if (argv.length === 0) {
        sink.error(checker, "MISC_CHECK needs misc_path; checker ignored");
        return undefined;
      }
      hc.command = argv;
      const timeout = take("misc_timeout");
      if (timeout) {
        const t = parseUint(timeout.words[1], 0xffffffff);
        if (!t)
          sink.error(
            timeout.at,
            `misc_timeout must be a number of seconds, got ${timeout.words[1] ?? "nothing"}`,
          );
        else p.connectTimeout = t;
      } else p.connectTimeout = undefined;
      const dyn = take("misc_dynamic");
      if (dyn)
        local.report(
          dyn.at,
          "misc_dynamic has no equivalent: the exit status does not set the weight (0 = healthy, other = unhealthy)",
        );
      const user = take("user");
      if (user) local.report(user.at, "user has no equivalent: the command runs as the agent's user");
      local.report(
        checker,
        "MISC_CHECK becomes an Exec check: the command runs on every node that programs the service, with the real server in $IPVS_RS_ADDRESS and $IPVS_RS_PORT",
      );
      break;
    }
    default:
      if (first)
        sink.report(
          checker,
          `${kind} has no equivalent in the API's healthCheck (TCP, HTTP, HTTPS, UDP, Exec); not imported`,
        );
      else sink.report(checker, `${kind} has no equivalent in the API's healthCheck; not imported`);
      return undefined;
  }
  if (hc.type !== "Exec") {
    const port = take("connect_port");
    if (port) {
      const n = parseUint(port.words[1], 65535);
      if (!n)
        sink.error(port.at, `connect_port must be 1..65535, got ${port.words[1] ?? "nothing"}; ignored`);
      else hc.port = n;
    }
  }
  if (hc.type === "HTTP" || hc.type === "HTTPS") {
    const url = urls[0];
    let host = p.virtualhost;
    if (url) {
      const u: Record<string, string[]> = {};
      const uAt: Record<string, Where> = {};
      for (const s of url.children ?? []) {
        u[s.words[0] as string] = s.words.slice(1);
        uAt[s.words[0] as string] = s;
      }
      const path = u.path?.[0];
      if (path === undefined) sink.error(url, "url without path (keepalived ignores it)");
      else if (/^\/\S*$/.test(path) && path.length <= 2048) hc.path = path;
      else
        sink.error(
          uAt.path ?? url,
          `url path ${JSON.stringify(path)} is not a path starting with '/'; ignored`,
        );
      const codes = u.status_code;
      if (codes) {
        const ok =
          codes.length > 0 &&
          codes.length <= 16 &&
          codes.every((c) => /^[1-5][0-9]{2}(-[1-5][0-9]{2})?$/.test(c));
        if (ok) hc.expectStatus = codes;
        else
          sink.error(
            uAt.status_code ?? url,
            `status_code ${codes.join(" ")} cannot be read (codes 100-599 or ranges, at most 16); 200-299 used`,
          );
      }
      if (u.digest)
        local.report(
          uAt.digest ?? url,
          "digest has no equivalent (the API does not hash the body); the body is not checked",
        );
      if (u.regex?.[0] !== undefined) {
        if (u.regex_no_match)
          local.report(
            uAt.regex_no_match ?? url,
            "regex_no_match has no equivalent (expectBody must match); the body is not checked",
          );
        else hc.expectBody = u.regex[0];
      }
      for (const k of [
        "regex_options",
        "regex_stack",
        "regex_min_offset",
        "regex_max_offset",
        "tls_compliant",
      ])
        if (u[k]) local.report(uAt[k] ?? url, `url ${k} has no equivalent`);
      if (u.virtualhost?.[0] !== undefined) host = u.virtualhost[0];
      const unknown = Object.keys(u).filter(
        (k) =>
          ![
            "path",
            "status_code",
            "digest",
            "regex",
            "regex_no_match",
            "virtualhost",
            "regex_options",
            "regex_stack",
            "regex_min_offset",
            "regex_max_offset",
            "tls_compliant",
          ].includes(k),
      );
      for (const k of unknown) local.report(uAt[k] ?? url, `unknown url keyword ${k}; ignored`);
      for (const more of urls.slice(1))
        local.report(
          more,
          "a second url: the API checks one path per real server; only the first url is checked",
        );
    } else local.report(checker, `${kind} without url: the API checks the path /`);
    hc.expectStatus ??= ["200-299"];
    if (host !== undefined) {
      if (/^[A-Za-z0-9.:[\]-]+$/.test(host) && host.length <= 253) hc.host = host;
      else sink.error(checker, `virtualhost ${JSON.stringify(host)} is not a host name; not used`);
    }
  } else if (p.virtualhost !== undefined && own.virtualhost !== undefined)
    local.report(checker, `virtualhost is only used by HTTP_GET and SSL_GET; ignored`);

  // Timing: keepalived checks every delay_loop; after a failure it retries `retry` times.
  hc.intervalSeconds = secondsFor(p.delayLoop ?? 60, "delay_loop", checker, local, 1);
  const timeout = p.connectTimeout ?? (kind === "MISC_CHECK" ? (p.delayLoop ?? 60) : 5);
  hc.timeoutSeconds = secondsFor(
    timeout,
    kind === "MISC_CHECK" ? "misc_timeout" : "connect_timeout",
    checker,
    local,
    1,
  );
  if ((hc.timeoutSeconds as number) > (hc.intervalSeconds as number)) {
    local.report(
      checker,
      `the timeout ${hc.timeoutSeconds} s becomes the interval ${hc.intervalSeconds} s (the API's limit)`,
    );
    hc.timeoutSeconds = hc.intervalSeconds;
  }
  const retry = p.retry ?? DEFAULT_RETRY[kind] ?? 1;
  let fall = retry + 1;
  if (fall > 100) {
    local.report(checker, `retry ${retry} becomes fallCount 100 (the API's maximum)`);
    fall = 100;
  }
  hc.riseCount = 1;
  hc.fallCount = fall;
  if (p.delayBeforeRetry && retry > 0)
    local.report(
      p.delayBeforeRetry.at,
      `delay_before_retry has no equivalent: retries come every intervalSeconds (${hc.intervalSeconds} s)`,
    );
  if (p.warmup)
    local.report(p.warmup.at, "warmup has no equivalent (first probes are not delayed at random)");
  hc.initialState = p.alpha ? "Unhealthy" : "Healthy";
  hc.onFailure = p.inhibit ? "Quiesce" : "Remove";

  for (const [name, e] of Object.entries(extra)) {
    if (name === "connect_ip")
      local.report(e.at, "connect_ip has no equivalent: the check probes the real server's own address");
    else if (
      [
        "bindto",
        "bind_if",
        "bind_port",
        "fwmark",
        "log_all_failures",
        "http_protocol",
        "fast_recovery",
        "enable_sni",
        "sni_name",
        "tls_compliant",
      ].includes(name)
    )
      local.report(e.at, `${kind} ${name} has no equivalent; ignored`);
    else local.report(e.at, `unknown ${kind} keyword ${name}; ignored`);
  }
  const parsed = HealthCheckSchema.safeParse(hc);
  if (!parsed.success) {
    sink.error(
      checker,
      `${kind} cannot be written as a health check (${parsed.error.issues.map((i) => i.message).join("; ")}); not imported`,
    );
    return undefined;
  }
  if (first) for (const n of notes) sink.report(n.at, n.message);
  return hc;
}

// ---------------------------------------------------------------------------------------------
// The import

function specKey(spec: Record<string, unknown>): string {
  return spec.firewallMark !== undefined
    ? `fwm|${spec.firewallMark}|${spec.family}`
    : `addr|${spec.protocol}|${spec.address}|${spec.port}`;
}

function keyText(key: ServiceKey): string {
  return key.kind === "fwmark"
    ? `fwm|${key.fwmark}|${key.family}`
    : `addr|${key.protocol}|${key.address}|${key.port}`;
}

const SKIPPED_BLOCKS: [RegExp, string][] = [
  [
    /^global_defs$/,
    "global_defs is not read (router_id, notification, script and daemon settings have no equivalent)",
  ],
  [
    /^vrrp_/,
    "VRRP has no equivalent: the operator does not move addresses between nodes (bindAddress puts the VIP on every selected node)",
  ],
  [/^static_(ipaddress|routes|rules)$/, "static addresses, routes and rules have no equivalent"],
  [
    /^(bfd_instance|linkbeat_interfaces|track_\w+|garp_group|net_namespace\w*|SSL)$/,
    "has no equivalent; not read",
  ],
];

/** The port keepalived gives a real server's destination: DR and TUN always use the service's port. */
function programmedPort(vs: VirtualServerConf, rs: RealServerConf, servicePort: number): number {
  return (rs.forwarding ?? vs.forwarding).method === "NAT" ? (rs.port ?? servicePort) : servicePort;
}

/** See the module documentation. */
export function importKeepalived(text: string, options: KeepalivedImportOptions): KeepalivedImport {
  const report: KeepalivedNote[] = [];
  const errors: KeepalivedNote[] = [];
  const sink: Sink = {
    report: (at, message) => report.push({ file: at.file, line: at.line, message }),
    error: (at, message) => errors.push({ file: at.file, line: at.line, message }),
  };
  const lines: Line[] = [];
  readLines(text, options.file, options, sink, [options.file], lines);
  const tree = buildTree(lines, sink);

  const groups = new Map<string, GroupEntry[]>();
  for (const s of tree) {
    if (s.words[0] !== "virtual_server_group") continue;
    const name = s.words[1];
    if (name === undefined || !s.children) sink.error(s, "virtual_server_group needs a name and a block");
    else if (groups.has(name))
      sink.error(s, `virtual_server_group ${name} is defined twice; the second is ignored`);
    else groups.set(name, readGroup(s, sink));
  }
  const services: VirtualServerConf[] = [];
  for (const s of tree) {
    const kw = s.words[0] as string;
    if (kw === "virtual_server_group") continue;
    if (kw === "virtual_server") {
      const vs = readVirtualServer(s, groups, sink);
      if (vs) services.push(vs);
      continue;
    }
    const skip = SKIPPED_BLOCKS.find(([re]) => re.test(kw));
    if (skip) sink.report(s, skip[1].startsWith("has") ? `${kw} ${skip[1]}` : skip[1]);
    else sink.report(s, `unknown top-level keyword ${kw}; ignored`);
  }

  // The table keepalived programs, and where each of its parts was written.
  const table: IpvsTable = [];
  const where = new Map<string, Where>();
  const owner = new Map<string, { vs: VirtualServerConf; at: Where }>();
  const checks = new Map<VirtualServerConf, (Record<string, unknown> | undefined)[]>();
  const portNoted = new Set<RealServerConf>();
  for (const vs of services) {
    const hcs = vs.realServers.map((rs) => healthCheckOf(vs, rs, sink));
    checks.set(vs, hcs);
    for (const { key, at } of vs.keys) {
      const k = keyText(key);
      const before = owner.get(k);
      if (before) {
        sink.error(
          at,
          `${serviceKeyString(key)} is already a service (${before.at.file}:${before.at.line}); not imported again`,
        );
        continue;
      }
      owner.set(k, { vs, at });
      const subject = serviceKeyString(key);
      where.set(subject, at);
      const persistence = vs.flags.persistent;
      let netmask = key.family === "IPv6" ? 128 : 0xffffffff;
      if (vs.granularity) {
        const g = vs.granularity.text;
        if (key.family === "IPv6") {
          const n = parseUint(g, 128);
          if (!n) {
            sink.error(
              vs.granularity.at,
              `persistence_granularity of an IPv6 service must be 1..128, got ${g}; ${subject} not imported`,
            );
            continue;
          }
          netmask = n;
        } else {
          if (ipFamily(g) !== "IPv4") {
            sink.error(
              vs.granularity.at,
              `persistence_granularity of an IPv4 service must be a netmask, got ${g}; ${subject} not imported`,
            );
            continue;
          }
          netmask = ipv4MaskToNumber(g);
        }
      }
      const destinations: IpvsDestination[] = [];
      const seen = new Map<string, Where>();
      const servicePort = key.kind === "address" ? key.port : 0;
      for (const rs of vs.realServers) {
        const f = rs.forwarding ?? vs.forwarding;
        // keepalived programs a DR or TUN destination with the service's port (0 for a fwmark
        // service) whatever the real_server says; NAT keeps the real_server's port.
        const port = programmedPort(vs, rs, servicePort);
        if (rs.port !== undefined && port !== rs.port) {
          if (!portNoted.has(rs)) {
            portNoted.add(rs);
            sink.report(
              rs,
              `port ${rs.port} is ignored: keepalived programs ${f.method} real servers with the service's port (${key.kind === "fwmark" ? "0 for a fwmark service" : servicePort})`,
            );
          }
        }
        const dkey = { family: rs.family, address: rs.address, port };
        const dsubject = `${subject} -> ${destinationKeyString(dkey)}`;
        const prev = seen.get(dsubject);
        if (prev) {
          sink.error(
            rs,
            `real_server ${destinationKeyString(dkey)} is already in this virtual_server (${prev.file}:${prev.line}); not imported again`,
          );
          continue;
        }
        seen.set(dsubject, rs);
        where.set(dsubject, rs);
        destinations.push({
          key: dkey,
          config: {
            forwarding: f.method,
            weight: rs.weight >= 0 ? rs.weight : vs.weight,
            upperThreshold: rs.upperThreshold,
            lowerThreshold: rs.lowerThreshold,
            tunnelType: f.tunnelType,
            tunnelPort: f.tunnelPort,
            tunnelChecksum: f.tunnelChecksum,
          },
        });
      }
      table.push({
        service: {
          key,
          config: {
            scheduler: vs.scheduler,
            flags: { ...vs.flags },
            timeout: persistence ? (vs.persistenceTimeout ?? 360) : 0,
            netmask,
            persistenceEngine: vs.persistenceEngine,
          },
        },
        destinations,
      });
    }
  }

  const imported = importResources(table, {
    ...(options.namespace !== undefined ? { namespace: options.namespace } : {}),
    ...(options.namePrefix !== undefined ? { namePrefix: options.namePrefix } : {}),
  });
  for (const p of imported.problems) {
    const at = where.get(p.subject) ?? { file: options.file, line: 0 };
    sink.report(at, `${p.subject}: ${p.message}`);
  }

  // Health checks and sorry servers on top of what the ipvsadm import wrote.
  const objects: Record<string, unknown>[] = [];
  let current: { vs: VirtualServerConf; shared: boolean; servicePort: number; at: Where } | undefined;
  const byName = new Map<string, typeof current>();
  for (const obj of imported.objects) {
    const spec = obj.spec as Record<string, unknown>;
    const name = (obj.metadata as { name: string }).name;
    if (obj.kind === "VirtualService") {
      const o = owner.get(specKey(spec));
      if (!o) {
        objects.push(obj);
        continue;
      }
      const { vs, at } = o;
      const hcs = checks.get(vs) ?? [];
      const firstText = JSON.stringify(hcs[0]);
      const shared =
        hcs.length > 0 && hcs[0] !== undefined && hcs.every((h) => JSON.stringify(h) === firstText);
      const extended = { ...spec };
      if (extended.forwarding === undefined && vs.realServers.length === 0) {
        const f = vs.forwarding;
        extended.forwarding =
          f.method !== "Tunnel" || (f.tunnelType === "IPIP" && f.tunnelChecksum === "None")
            ? { method: f.method }
            : {
                method: "Tunnel",
                tunnel: {
                  type: f.tunnelType,
                  ...(f.tunnelType === "GUE" ? { port: f.tunnelPort } : {}),
                  ...(f.tunnelChecksum !== "None" ? { checksum: f.tunnelChecksum } : {}),
                },
              };
      }
      if (shared) extended.healthCheck = hcs[0];
      if (vs.sorry) {
        extended.sorryServer = {
          address: vs.sorry.address,
          ...(vs.sorry.port ? { port: vs.sorry.port } : {}),
        };
      }
      let out = { ...obj, spec: extended };
      const r = validateVirtualService(out);
      if (!r.ok) {
        const withoutSorry = { ...extended };
        delete withoutSorry.sorryServer;
        const r2 = validateVirtualService({ ...obj, spec: withoutSorry });
        const msg = r.issues.map((i) => `${i.path}: ${i.message}`).join("; ");
        if (vs.sorry && r2.ok) {
          sink.error(vs.sorry.at, `sorry_server cannot be imported for ${name} (${msg}); left out`);
          out = { ...obj, spec: withoutSorry };
        } else {
          sink.error(
            at,
            `${name} cannot carry its health check or sorry server (${msg}); imported without them`,
          );
          out = obj as typeof out;
        }
      }
      objects.push(out);
      current = {
        vs,
        shared,
        servicePort: typeof spec.port === "number" ? spec.port : 0,
        at,
      };
      byName.set(name, current);
      continue;
    }
    const ref = (spec.virtualServiceRef as { name: string } | undefined)?.name;
    const c = ref === undefined ? undefined : byName.get(ref);
    if (!c || c.shared) {
      objects.push(obj);
      continue;
    }
    const port = (spec.port as number | undefined) ?? c.servicePort;
    const i = c.vs.realServers.findIndex(
      (rs) => rs.address === spec.address && programmedPort(c.vs, rs, c.servicePort) === port,
    );
    const hc = checks.get(c.vs)?.[i];
    if (i < 0 || hc === undefined) {
      objects.push(obj);
      continue;
    }
    const out = { ...obj, spec: { ...spec, healthCheck: hc } };
    const r = validateRealServer(out);
    if (!r.ok) {
      sink.error(
        c.vs.realServers[i] as Where,
        `${name} cannot carry its health check (${r.issues.map((x) => x.message).join("; ")}); imported without it`,
      );
      objects.push(obj);
    } else objects.push(out);
  }
  // Notes in the order of the configuration: files as they were read, then lines (stable).
  const rank = new Map<string, number>([[options.file, 0]]);
  for (const l of lines) if (!rank.has(l.file)) rank.set(l.file, rank.size);
  const order = (a: KeepalivedNote, b: KeepalivedNote) =>
    (rank.get(a.file) ?? rank.size) - (rank.get(b.file) ?? rank.size) || a.line - b.line;
  return { objects, report: report.sort(order), errors: errors.sort(order) };
}
