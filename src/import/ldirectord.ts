/**
 * Reads ldirectord.cf (ldirectord of ClusterLabs resource-agents) and turns it into ipvs.dev/v1alpha1
 * VirtualService and RealServer objects, with a report of everything that has no equivalent in the
 * API and a list of errors in the input. Pure, and nothing throws on any input.
 *
 * ```ts
 * importLdirectord(text, { file: "/etc/ha.d/ldirectord.cf", namespace: "edge", namePrefix: "lb" })
 * // -> { objects, report, errors }, each note { file, line, message }
 * ```
 *
 * The file as ldirectord reads it: a line `virtual=` / `virtual6=` at column 0 opens a block; the lines
 * after it that are indented by at least 4 spaces (a tab counts as 4) belong to it, and the first line
 * that is not (an empty one too) ends it. Lines whose first non-blank character is `#` are comments, and
 * `#` ends every line. There are no continuation lines. Everything else at column 0 is a global
 * setting; an indented line outside a block (a `real=` after an empty line) is an error, as in
 * ldirectord. Host names are never resolved (an error); port names are looked up (getservbyname).
 *
 * - `objects`: the table ldirectord programs (`virtual` -> service: `ip:port` with protocol tcp, or
 *   udp for port 53, or `protocol=`; `N` -> fwmark N; `real=` with gate/masq/ipip, weight, `l:`/`u:`
 *   thresholds, and `a->b` IPv4 ranges; scheduler (default wrr), persistent, netmask, ops, schedflags)
 *   handed to importResources, which names and validates it; then each VirtualService gets its
 *   `healthCheck` and `sorryServer` (fallback / fallback6, the virtual's or the global one), a
 *   RealServer with its own "request", "receive" gets its own HTTP(S) check, and every object is
 *   validated again.
 * - Checks: checktype negotiate (the default) with service http / https -> HTTP / HTTPS (request ->
 *   path, receive -> expectBody, virtualhost -> host, expectStatus 200-299 as LWP's is_success);
 *   service none (the default of ports ldirectord has no check for, and of fwmark virtuals) and
 *   checktype on -> None; connect -> TCP (UDP for a udp virtual, where ldirectord pings); the other
 *   services (dns, smtp, ftp, mysql, sip, ...) and ping -> TCP or UDP by the protocol, reported (the
 *   dialogue or ICMP echo is not checked); checktype N -> the negotiate check every time, reported;
 *   external / external-perl -> Exec `/bin/sh -c 'exec CMD VIP VPORT "$IPVS_RS_ADDRESS" "$IPVS_RS_PORT"'`
 *   (the four arguments ldirectord passes); off -> real servers with enabled: false (ldirectord adds
 *   none), reported. intervalSeconds = checkinterval (default 10; a virtual's only with fork = yes),
 *   timeoutSeconds = negotiatetimeout for negotiate checks (default 30) and checktimeout for the others
 *   (default 5), each defaulting to the other as ldirectord does, at most the interval (reported);
 *   fallCount = failurecount (default 1), riseCount 1, initialState Unhealthy (ldirectord adds a real
 *   server after a check succeeds); onFailure Quiesce with quiescent = yes, else Remove (the code's
 *   default is no); checkport -> port (a fwmark virtual probes the service's well-known port).
 * - `report`: what has no equivalent (emailalert, logfile, fork, maintenancedir, login/passwd,
 *   fallbackcommand, httpmethod HEAD, ...), with file:line; what importResources did not import.
 * - `errors`: what ldirectord rejects or this import cannot read (bad addresses and ports, an unknown
 *   forwarding method, scheduler, checktype or service, a real= outside a virtual, host names,
 *   duplicates); the line (a virtual with a bad address or protocol: the whole block) is left out.
 */

import { validateRealServer, validateVirtualService } from "../api/v1alpha1/validate.ts";
import { importResources } from "../model/import-resources.ts";
import { FALLBACK_SERVICE_NAMES, parseEtcServices, type ServicePortLookup } from "../model/service-names.ts";
import { bytesToIp, canonicalIp, ipFamily, ipToBytes, ipv4MaskToNumber } from "../vocabulary/addresses.ts";
import {
  destinationKeyString,
  type Family,
  IPVS_SCHEDULERS,
  type IpvsDestination,
  type IpvsTable,
  type ServiceKey,
  serviceKeyString,
} from "../vocabulary/table.ts";

export interface LdirectordImportOptions {
  /** Path of the file, named in notes. */
  file: string;
  /** Port names (default: the built-in list of common names). */
  servicePort?: ServicePortLookup;
  namespace?: string;
  namePrefix?: string;
}

export interface LdirectordNote {
  file: string;
  line: number;
  message: string;
}

export interface LdirectordImport {
  objects: Record<string, unknown>[];
  /** What the objects do not carry over (no equivalent in the API), with where it was written. */
  report: LdirectordNote[];
  /** Input that ldirectord rejects or that cannot be read; the line in error is left out. */
  errors: LdirectordNote[];
}

type Method = "NAT" | "DirectRouting" | "Tunnel";
const METHODS: Record<string, Method> = { masq: "NAT", gate: "DirectRouting", ipip: "Tunnel" };
const MAX_RANGE = 1024;
const MAX_LINES = 1_000_000;

/** Settings that a virtual may override (the global value is the default). */
interface Shared {
  checktimeout?: number;
  negotiatetimeout?: number;
  checkinterval?: { value: number; line: number };
  failurecount?: number;
  quiescent?: boolean;
  checkcount?: number;
}

interface Fallback {
  line: number;
  address: string;
  family: Family;
  /** A number, a name (resolved with the virtual's protocol) or absent (the virtual's port). */
  port?: string;
  method: Method;
}

interface RealConf {
  line: number;
  address: string;
  family: Family;
  port: string;
  method: Method;
  weight: number;
  lower: number;
  upper: number;
  request?: string;
  receive?: string;
}

interface VirtualConf extends Shared {
  line: number;
  ok: boolean;
  family: Family;
  fwmark?: number;
  address?: string;
  portText?: string;
  protocol: "tcp" | "udp" | "fwm";
  scheduler: string;
  persistent?: number;
  netmask?: { text: string; line: number };
  schedflags?: { text: string; line: number };
  ops: boolean;
  opsLine?: number;
  checktype: string;
  checktypeLine?: number;
  checkcommand: string;
  service?: string;
  serviceLine?: number;
  request: string;
  receive: string;
  httpHead?: number;
  virtualhost?: string;
  checkport?: number;
  fallback?: Fallback;
  reals: RealConf[];
}

const LD_SERVICE_PORTS: Record<string, number> = {
  ftp: 21,
  smtp: 25,
  dns: 53,
  http: 80,
  pop: 110,
  nntp: 119,
  imap: 143,
  ldap: 389,
  https: 443,
  submission: 587,
  ldaps: 636,
  imaps: 993,
  pops: 995,
  oracle: 1521,
  radius: 1812,
  http_proxy: 3128,
  mysql: 3306,
  sip: 5060,
  pgsql: 5432,
};
const LD_SERVICES = new Set([...Object.keys(LD_SERVICE_PORTS), "none", "simpletcp"]);
const CHECKTYPES = new Set(["connect", "negotiate", "ping", "off", "on", "external", "external-perl"]);

/** Settings with no equivalent: a word of why. */
const NO_EQUIVALENT: Record<string, string> = {
  emailalert: "the operator reports through conditions, events and metrics",
  emailalertfreq: "the operator reports through conditions, events and metrics",
  emailalertstatus: "the operator reports through conditions, events and metrics",
  emailalertfrom: "the operator reports through conditions, events and metrics",
  smtp: "the operator sends no mail",
  logfile: "the agent logs to stderr",
  autoreload: "the operator follows its objects",
  callback: "the operator follows its objects",
  execute: "one configuration is imported at a time",
  supervised: "the agent runs in the foreground",
  fork: "checks run concurrently in the agent",
  cleanstop: "deleting the objects removes the services",
  maintenancedir: "set a RealServer's enabled: false to drain it",
  readdquiescent: "the operator keeps the table as the objects say",
  fallbackcommand: "the operator runs no commands when all real servers are down",
  monitorfile: "check results are in the RealServer status and metrics",
  servicename: "the object name names the service",
  comment: "add an annotation to the VirtualService",
  login: "checks do not log in",
  passwd: "checks do not log in",
  database: "checks run no queries",
  secret: "checks send no RADIUS requests",
  load: "load checks are not made",
};

// ---------------------------------------------------------------------------------------------
// Values

function parseCount(text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined || !/^\d{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

function yesNo(text: string): boolean | undefined {
  return text === "yes" ? true : text === "no" ? false : undefined;
}

function unquote(text: string): string {
  return text.length >= 2 && text.startsWith('"') && text.endsWith('"') ? text.slice(1, -1) : text;
}

/** A canonical address of `family` (IPv6 in brackets), or undefined. */
function parseAddress(text: string, family: Family): string | undefined {
  let t = text;
  if (family === "IPv6") {
    if (!(t.startsWith("[") && t.endsWith("]"))) return undefined;
    t = t.slice(1, -1);
  }
  return ipFamily(t) === family ? canonicalIp(t) : undefined;
}

function shellQuote(text: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

// ---------------------------------------------------------------------------------------------
// Reading

interface Sink {
  report(line: number, message: string): void;
  error(line: number, message: string): void;
}

/** Reads a setting that globals and virtuals share; false when `key` is not one. */
function readShared(key: string, value: string, line: number, into: Shared, sink: Sink): boolean {
  switch (key) {
    case "checktimeout":
    case "negotiatetimeout":
    case "failurecount":
    case "checkcount": {
      if (key === "checkcount")
        sink.report(line, "checkcount has no equivalent (deprecated in ldirectord: use failurecount)");
      const n = parseCount(value, 1, 0xffffffff);
      if (n === undefined) sink.error(line, `${key} must be a whole number above 0, got "${value}"; ignored`);
      else into[key] = n;
      return true;
    }
    case "checkinterval": {
      const n = parseCount(value, 1, 0xffffffff);
      if (n === undefined) sink.error(line, `${key} must be a whole number above 0, got "${value}"; ignored`);
      else into.checkinterval = { value: n, line };
      return true;
    }
    case "quiescent": {
      const b = yesNo(value);
      if (b === undefined) sink.error(line, `quiescent must be yes or no, got "${value}"; ignored`);
      else into.quiescent = b;
      return true;
    }
    case "connecttimeout":
      sink.error(line, "connecttimeout is no longer accepted by ldirectord (use negotiatetimeout); ignored");
      return true;
    default:
      return false;
  }
}

function parseFallback(value: string, family: Family, line: number, sink: Sink): Fallback | undefined {
  const m = /^(\S+)(?:\s+(\S+))?$/.exec(value);
  if (!m) {
    sink.error(line, `fallback needs <address>[:<port>] [gate|masq|ipip], got "${value}"; ignored`);
    return undefined;
  }
  let target = m[1] as string;
  const method = m[2] === undefined ? "DirectRouting" : METHODS[m[2]];
  if (!method) {
    sink.error(line, `fallback forwarding must be gate, masq or ipip, got "${m[2]}"; ignored`);
    return undefined;
  }
  let port: string | undefined;
  const p = /:(\d+|[A-Za-z0-9_-]+)$/.exec(target);
  if (p && !(family === "IPv6" && !target.endsWith(`]${p[0]}`))) {
    port = p[1];
    target = target.slice(0, -p[0].length);
  }
  const address = parseAddress(target, family);
  if (!address) {
    const want = family === "IPv6" ? "an IPv6 address in brackets" : "an IPv4 address";
    sink.error(line, `fallback needs ${want} (host names are not resolved), got "${target}"; ignored`);
    return undefined;
  }
  return { line, address, family, method, ...(port !== undefined ? { port } : {}) };
}

const REAL_RE =
  /^(\d+\.\d+\.\d+\.\d+|[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?:->(\d+\.\d+\.\d+\.\d+|[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]))?(?::(\d+|[A-Za-z0-9_-]+))?\s+(.*)$/;

function parseReals(value: string, family: Family, line: number, sink: Sink): RealConf[] {
  const m = REAL_RE.exec(value);
  if (!m) {
    sink.error(
      line,
      `real needs <address>[:<port>] gate|masq|ipip [weight] ["request", "receive"], got "${value}"; not imported`,
    );
    return [];
  }
  const first = m[1] as string;
  const last = m[2];
  const port = m[3] ?? "0";
  const flagText = m[4] as string;
  const addr = parseAddress(first, family);
  if (!addr) {
    sink.error(
      line,
      `real server address ${first} is not ${family === "IPv6" ? "an IPv6 address in brackets (real6)" : "an IPv4 address (real)"}; host names are not resolved; not imported`,
    );
    return [];
  }
  let flags = flagText;
  const fm = /^(\w+)(.*)$/.exec(flags);
  const method = fm ? METHODS[fm[1] as string] : undefined;
  if (!fm || !method) {
    sink.error(line, `forwarding must be gate, masq or ipip, got "${flags.split(/\s/)[0]}"; not imported`);
    return [];
  }
  flags = fm[2] as string;
  const base: RealConf = { line, address: addr, family, port, method, weight: 1, lower: 0, upper: 0 };
  let m2 = /^\s+(\d+)(.*)$/.exec(flags);
  if (m2) {
    const w = parseCount(m2[1], 0, 0xffffffff);
    if (w === undefined) {
      sink.error(line, `weight ${m2[1]} is out of range; not imported`);
      return [];
    }
    base.weight = w;
    flags = m2[2] as string;
  }
  m2 = /^\s+"(.*)"[, ]\s*"(.*)"(.*)$/.exec(flags);
  if (m2) {
    const request = m2[1] as string;
    base.request = request.startsWith("/") ? request : `/${request}`;
    base.receive = m2[2] as string;
    flags = m2[3] as string;
  }
  for (const [re, field] of [
    [/^\s+l:(\d+)(.*)$/, "lower"],
    [/^\s+u:(\d+)(.*)$/, "upper"],
  ] as const) {
    m2 = re.exec(flags);
    if (!m2) continue;
    const n = parseCount(m2[1], 0, 0xffffffff);
    if (n === undefined) {
      sink.error(line, `threshold ${m2[1]} is out of range; not imported`);
      return [];
    }
    base[field] = n;
    flags = m2[2] as string;
  }
  if (/\S/.test(flags)) {
    sink.error(line, `unexpected "${flags.trim()}" at the end of the real server; not imported`);
    return [];
  }
  if (last === undefined) return [base];
  if (family === "IPv6") {
    sink.error(line, "ldirectord does not support IPv6 address ranges; not imported");
    return [];
  }
  const end = parseAddress(last, "IPv4");
  if (!end) {
    sink.error(line, `range end ${last} is not an IPv4 address; not imported`);
    return [];
  }
  const toInt = (a: string) => ipToBytes(a).reduce((v, b) => v * 256 + b, 0);
  const a = toInt(addr);
  const b = toInt(end);
  if (b < a) {
    sink.error(line, `range ${addr}->${end} ends before it starts; not imported`);
    return [];
  }
  if (b - a >= MAX_RANGE) {
    sink.error(
      line,
      `range ${addr}->${end} has ${b - a + 1} addresses, more than ${MAX_RANGE}; not imported`,
    );
    return [];
  }
  const out: RealConf[] = [];
  for (let v = a; v <= b; v++) {
    const bytes = new Uint8Array([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
    out.push({ ...base, address: bytesToIp(bytes, "IPv4") });
  }
  return out;
}

function newVirtual(line: number, family: Family, value: string, sink: Sink): VirtualConf {
  const v: VirtualConf = {
    line,
    ok: true,
    family,
    protocol: "tcp",
    scheduler: "wrr",
    ops: false,
    checktype: "negotiate",
    checkcommand: "/bin/true",
    request: "/",
    receive: "",
    reals: [],
  };
  const word = family === "IPv6" ? "virtual6" : "virtual";
  const v4 = /^(\d+\.\d+\.\d+\.\d+):([0-9A-Za-z_-]+)$/.exec(value);
  const v6 = /^\[([0-9A-Fa-f:.]+)\]:([0-9A-Za-z_-]+)$/.exec(value);
  if (/^\d+$/.test(value)) {
    const mark = parseCount(value, 1, 0xffffffff);
    if (mark === undefined) {
      sink.error(line, `${word}: a firewall mark must be 1..4294967295, got ${value}; virtual not imported`);
      v.ok = false;
    } else v.fwmark = mark;
    v.protocol = "fwm";
    v.service = "none";
    return v;
  }
  const m = family === "IPv4" ? v4 : v6;
  const address = m ? parseAddress(family === "IPv6" ? `[${m[1]}]` : (m[1] as string), family) : undefined;
  if (!m || !address) {
    let why = "is not <address>:<port> or a firewall mark";
    if (family === "IPv4" && v6) why = "is IPv6: use virtual6";
    else if (family === "IPv6" && v4) why = "is IPv4: use virtual";
    else if (family === "IPv6" && !v6) why = "is not [<IPv6 address>]:<port> or a firewall mark";
    else if (/^[A-Za-z0-9._+-]+:[0-9A-Za-z_-]+$/.test(value))
      why = "has a host name (names are not resolved)";
    sink.error(line, `${word}=${value} ${why}; virtual not imported`);
    v.ok = false;
    return v;
  }
  v.address = address;
  v.portText = m[2] as string;
  if (v.portText === "53" || v.portText === "domain") v.protocol = "udp";
  return v;
}

function readVirtualLine(v: VirtualConf, key: string, value: string, line: number, sink: Sink): void {
  const quoted = /^"(.*)"/.exec(value)?.[1];
  if (readShared(key, value, line, v, sink)) return;
  switch (key) {
    case "real":
    case "real6": {
      if ((key === "real6") !== (v.family === "IPv6")) {
        sink.error(
          line,
          `${key} in a ${v.family === "IPv6" ? "virtual6" : "virtual"} block: use ${v.family === "IPv6" ? "real6" : "real"}; not imported`,
        );
        return;
      }
      v.reals.push(...parseReals(value, v.family, line, sink));
      return;
    }
    case "request":
    case "receive":
      if (quoted === undefined || (key === "request" && quoted === "")) {
        sink.error(line, `${key} needs a non-empty string in double quotes; ignored`);
        return;
      }
      if (key === "request") v.request = quoted.startsWith("/") ? quoted : `/${quoted}`;
      else v.receive = quoted;
      return;
    case "checktype":
      if (/^\d+$/.test(value)) v.checktype = value;
      else if (CHECKTYPES.has(value)) v.checktype = value;
      else {
        sink.error(
          line,
          `checktype must be connect, negotiate, ping, off, on, external, external-perl or a number, got "${value}"; ignored`,
        );
        return;
      }
      v.checktypeLine = line;
      return;
    case "checkcommand":
      if (unquote(value) === "") sink.error(line, "checkcommand is empty; ignored");
      else v.checkcommand = unquote(value);
      return;
    case "checkport": {
      const n = parseCount(value, 1, 65535);
      if (n === undefined) sink.error(line, `checkport must be 1..65535, got "${value}"; ignored`);
      else v.checkport = n;
      return;
    }
    case "scheduler":
      if (!(IPVS_SCHEDULERS as readonly string[]).includes(value)) {
        sink.error(
          line,
          `unknown scheduler "${value}" (the kernel has ${IPVS_SCHEDULERS.join(" ")}); virtual not imported`,
        );
        v.ok = false;
      } else v.scheduler = value;
      return;
    case "persistent": {
      const n = parseCount(value, 1, 2147483);
      if (n === undefined) {
        sink.error(line, `persistent must be 1..2147483 seconds, got "${value}"; virtual not imported`);
        v.ok = false;
      } else v.persistent = n;
      return;
    }
    case "netmask":
      v.netmask = { text: value, line };
      return;
    case "schedflags":
      v.schedflags = { text: value, line };
      return;
    case "protocol":
      if (v.protocol === "fwm" ? value !== "fwm" : value !== "tcp" && value !== "udp") {
        sink.error(
          line,
          v.protocol === "fwm"
            ? `protocol must be fwm for a firewall-mark virtual, got "${value}"; virtual not imported`
            : `protocol must be tcp or udp for an address virtual (ldirectord knows no ${value}), got "${value}"; virtual not imported`,
        );
        v.ok = false;
      } else v.protocol = value as VirtualConf["protocol"];
      return;
    case "ops": {
      const b = yesNo(value);
      if (b === undefined) sink.error(line, `ops must be yes or no, got "${value}"; ignored`);
      else {
        v.ops = b;
        v.opsLine = line;
      }
      return;
    }
    case "service":
      if (!LD_SERVICES.has(value))
        sink.error(
          line,
          `unknown service "${value}" (ldirectord knows ${[...LD_SERVICES].join(" ")}); ignored`,
        );
      else {
        v.service = value;
        v.serviceLine = line;
      }
      return;
    case "httpmethod":
      if (value.toUpperCase() === "HEAD") v.httpHead = line;
      else if (value.toUpperCase() === "GET") v.httpHead = undefined;
      else sink.error(line, `httpmethod must be GET or HEAD, got "${value}"; ignored`);
      return;
    case "virtualhost":
      v.virtualhost = unquote(value);
      return;
    case "fallback":
    case "fallback6":
      if ((key === "fallback6") !== (v.family === "IPv6")) {
        sink.error(
          line,
          `${key} in a ${v.family === "IPv6" ? "virtual6" : "virtual"} block: use ${v.family === "IPv6" ? "fallback6" : "fallback"}; ignored`,
        );
        return;
      }
      {
        const f = parseFallback(value, v.family, line, sink);
        if (f) v.fallback = f;
      }
      return;
    default:
      if (key === "maintenancedir") sink.error(line, "maintenancedir is only a global setting; ignored");
      else if (NO_EQUIVALENT[key])
        sink.report(line, `${key} has no equivalent (${NO_EQUIVALENT[key]}); ignored`);
      else sink.error(line, `unknown setting "${key}" in a virtual block; ignored`);
  }
}

// ---------------------------------------------------------------------------------------------
// Health checks

/** ldirectord's check of a virtual, as the API writes it, with its per-real variants. */
interface CheckPlan {
  hc?: Record<string, unknown>;
  /** checktype off: ldirectord never adds the real servers. */
  off: boolean;
  /** HTTP(S): the per-real request/receive apply. */
  http: boolean;
}

function clampSeconds(value: number, name: string, line: number, sink: Sink): number {
  if (value > 3600) {
    sink.report(line, `${name} ${value} s becomes 3600 s (the API's maximum)`);
    return 3600;
  }
  return value;
}

function planCheck(v: VirtualConf, g: Shared, fork: boolean, vport: number, sink: Sink): CheckPlan {
  const ctLine = v.checktypeLine ?? v.line;
  const proto = v.protocol;
  const byProtocol = proto === "udp" ? "UDP" : "TCP";
  let type: string;
  let negotiate = false;
  const hc: Record<string, unknown> = {};
  const service = v.service ?? LD_SERVICE_PORTS_BY_PORT.get(v.portText ?? "") ?? "none";
  const negotiateType = (): string => {
    negotiate = true;
    if (service === "http" || service === "https") return service.toUpperCase();
    if (service === "none") return "None";
    const at = v.serviceLine ?? ctLine;
    if (service === "http_proxy")
      sink.report(at, "service http_proxy becomes a TCP check: no request is sent through the proxy");
    else
      sink.report(
        at,
        `service ${service} becomes a ${byProtocol} check: the ${service} ${service === "simpletcp" ? "request and answer are" : "dialogue is"} not checked`,
      );
    return service === "http_proxy" ? "TCP" : byProtocol;
  };
  const ct = v.checktype;
  if (ct === "off") {
    sink.report(
      ctLine,
      "checktype off: ldirectord adds neither real servers nor fallback; the real servers are imported with enabled: false (weight 0)",
    );
    return { off: true, http: false };
  } else if (ct === "on") type = "None";
  else if (ct === "negotiate") type = negotiateType();
  else if (/^\d+$/.test(ct)) {
    type = negotiateType();
    sink.report(
      ctLine,
      `checktype ${ct} (connect checks, a negotiate check every ${ct}): every probe is the ${type} check`,
    );
  } else if (ct === "connect") {
    type = byProtocol;
    if (proto === "udp")
      sink.report(
        ctLine,
        "checktype connect of a udp virtual is an ICMP ping in ldirectord; it becomes a UDP check (a datagram, no ICMP error expected)",
      );
  } else if (ct === "ping") {
    type = byProtocol;
    sink.report(
      ctLine,
      `checktype ping: ICMP echo has no equivalent; it becomes a ${type} check of the real server's port`,
    );
  } else {
    type = "Exec";
    const vip = v.fwmark !== undefined ? String(v.fwmark) : (v.address as string);
    hc.command = [
      "/bin/sh",
      "-c",
      `exec ${shellQuote(v.checkcommand)} ${shellQuote(vip)} ${vport} "$IPVS_RS_ADDRESS" "$IPVS_RS_PORT"`,
    ];
    if (ct === "external-perl")
      sink.report(
        ctLine,
        "checktype external-perl: the command is run as a program, not evaluated inside ldirectord's Perl",
      );
  }
  if (type === "None") return { hc: { type }, off: false, http: false };
  hc.type = type;
  if (type !== "Exec") {
    const port = v.checkport ?? (v.fwmark !== undefined ? LD_SERVICE_PORTS[service] : undefined);
    if (port !== undefined) hc.port = port;
    else if (v.fwmark !== undefined) {
      sink.report(
        ctLine,
        "a check of a firewall-mark virtual needs checkport (or a service with a well-known port); no health check imported",
      );
      return { off: false, http: false };
    }
  }
  const http = type === "HTTP" || type === "HTTPS";
  if (http) {
    hc.path = v.request;
    if (v.receive !== "") hc.expectBody = v.receive;
    hc.expectStatus = ["200-299"];
    if (v.virtualhost !== undefined && v.virtualhost !== "") hc.host = v.virtualhost;
    if (v.httpHead !== undefined)
      sink.report(v.httpHead, "httpmethod HEAD has no equivalent: the check sends GET");
  } else if (v.virtualhost !== undefined)
    sink.report(v.line, "virtualhost is only used by http and https checks; ignored");
  // Timing.
  const interval = fork && v.checkinterval ? v.checkinterval.value : (g.checkinterval?.value ?? 10);
  if (v.checkinterval && !fork)
    sink.report(
      v.checkinterval.line,
      "checkinterval in a virtual is ignored by ldirectord unless fork = yes; the global value is used",
    );
  hc.intervalSeconds = clampSeconds(interval, "checkinterval", v.checkinterval?.line ?? v.line, sink);
  const checkTimeout = v.checktimeout ?? v.negotiatetimeout ?? g.checktimeout ?? g.negotiatetimeout ?? 5;
  const negotiateTimeout = v.negotiatetimeout ?? v.checktimeout ?? g.negotiatetimeout ?? g.checktimeout ?? 30;
  let timeout = negotiate ? negotiateTimeout : checkTimeout;
  const timeoutName = negotiate ? "negotiatetimeout" : "checktimeout";
  timeout = clampSeconds(timeout, timeoutName, v.line, sink);
  if (timeout > (hc.intervalSeconds as number)) {
    sink.report(
      ctLine,
      `${timeoutName} ${timeout} s becomes the check interval ${hc.intervalSeconds} s (the API's limit: the timeout is at most the interval)`,
    );
    timeout = hc.intervalSeconds as number;
  }
  hc.timeoutSeconds = timeout;
  let fall = v.failurecount ?? g.failurecount ?? 1;
  if (fall > 100) {
    sink.report(ctLine, `failurecount ${fall} becomes 100 (the API's maximum)`);
    fall = 100;
  }
  hc.riseCount = 1;
  hc.fallCount = fall;
  hc.initialState = "Unhealthy";
  hc.onFailure = (v.quiescent ?? g.quiescent ?? false) ? "Quiesce" : "Remove";
  return { hc, off: false, http };
}

const LD_SERVICE_PORTS_BY_PORT = new Map(
  Object.entries(LD_SERVICE_PORTS).map(([name, port]) => [String(port), name] as const),
);

// ---------------------------------------------------------------------------------------------
// The import

/** See the module documentation. */
export function importLdirectord(text: string, options: LdirectordImportOptions): LdirectordImport {
  const file = options.file;
  const report: LdirectordNote[] = [];
  const errors: LdirectordNote[] = [];
  const sink: Sink = {
    report: (line, message) => report.push({ file, line, message }),
    error: (line, message) => errors.push({ file, line, message }),
  };
  const servicePort = options.servicePort ?? parseEtcServices(FALLBACK_SERVICE_NAMES);
  const globals: Shared = {};
  const fallbacks: Partial<Record<Family, Fallback>> = {};
  let fork = false;
  const virtuals: VirtualConf[] = [];
  const lines = text.split("\n");
  if (lines.length > MAX_LINES) {
    sink.error(MAX_LINES + 1, `more than ${MAX_LINES} lines; the rest is not read`);
    lines.length = MAX_LINES;
  }
  const setting = (body: string) => /^([A-Za-z][\w-]*)\s*=\s*(.*?)\s*$/.exec(body);
  let current: VirtualConf | undefined;
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const raw = (lines[i] as string).replace(/\r$/, "");
    if (/^\s*#/.test(raw)) continue;
    const body = raw.replace(/#.*/, "");
    if (current) {
      const m = /^ {4,}(.*\S.*)$/.exec(body.replace(/\t/g, "    "));
      if (m) {
        const s = setting((m[1] as string).trim());
        if (!s) sink.error(n, `cannot read "${(m[1] as string).trim()}" (expected name = value); ignored`);
        else readVirtualLine(current, s[1] as string, s[2] as string, n, sink);
        continue;
      }
      current = undefined;
    }
    if (body.trim() === "") continue;
    const vm = /^virtual(6)?\s*=\s*(.*?)\s*$/.exec(body);
    if (vm) {
      current = newVirtual(n, vm[1] ? "IPv6" : "IPv4", vm[2] as string, sink);
      virtuals.push(current);
      continue;
    }
    if (/^\s/.test(body)) {
      const what = body.trim().split(/\s*=/)[0];
      sink.error(
        n,
        `an indented "${what}" outside a virtual block (an empty or unindented line ends a block); ignored`,
      );
      continue;
    }
    const s = setting(body);
    if (!s) {
      sink.error(n, `cannot read "${body.trim()}" (expected name = value); ignored`);
      continue;
    }
    const [, key, value] = s as unknown as [string, string, string];
    if (readShared(key, value, n, globals, sink)) continue;
    if (key === "fallback" || key === "fallback6") {
      const family = key === "fallback6" ? "IPv6" : "IPv4";
      const f = parseFallback(value, family, n, sink);
      if (f) fallbacks[family] = f;
    } else if (key === "fork") {
      const b = yesNo(value);
      if (b === undefined) sink.error(n, `fork must be yes or no, got "${value}"; ignored`);
      else fork = b;
      sink.report(n, `fork has no equivalent (${NO_EQUIVALENT.fork}); ignored`);
    } else if (
      NO_EQUIVALENT[key] &&
      !["login", "passwd", "database", "secret", "load", "monitorfile", "servicename", "comment"].includes(
        key,
      )
    )
      sink.report(n, `${key} has no equivalent (${NO_EQUIVALENT[key]}); ignored`);
    else if (key === "timeout")
      sink.error(
        n,
        "timeout is no longer accepted by ldirectord (use checktimeout and negotiatetimeout); ignored",
      );
    else if (key.startsWith("real") || NO_EQUIVALENT[key] || readVirtualKeys.has(key))
      sink.error(n, `${key} outside a virtual block (it must follow a virtual= line, indented); ignored`);
    else sink.error(n, `unknown setting "${key}"; ignored`);
  }
  // The table ldirectord programs.
  const table: IpvsTable = [];
  const where = new Map<string, number>();
  const owner = new Map<string, VirtualConf>();
  const plans = new Map<VirtualConf, CheckPlan>();
  for (const v of virtuals) {
    if (!v.ok) continue;
    const protocol = v.protocol === "udp" ? "UDP" : "TCP";
    let key: ServiceKey;
    if (v.fwmark !== undefined) key = { kind: "fwmark", fwmark: v.fwmark, family: v.family };
    else {
      const port = resolvePort(v.portText as string, v.protocol === "udp" ? "udp" : "tcp", servicePort);
      if (port === undefined) {
        sink.error(
          v.line,
          `virtual port "${v.portText}" is not a number 0..65535 or a known service name; virtual not imported`,
        );
        continue;
      }
      key = { kind: "address", family: v.family, protocol, address: v.address as string, port };
    }
    const subject = serviceKeyString(key);
    const kText = JSON.stringify(key);
    const before = owner.get(kText);
    if (before) {
      sink.error(v.line, `${subject} is already a virtual (${file}:${before.line}); not imported again`);
      continue;
    }
    let netmask = v.family === "IPv6" ? 128 : 0xffffffff;
    if (v.netmask) {
      const t = v.netmask.text;
      const ok =
        v.family === "IPv6"
          ? parseCount(t, 1, 128)
          : /^\d+\.\d+\.\d+\.\d+$/.test(t) && ipFamily(t) === "IPv4";
      if (!ok) {
        sink.error(
          v.netmask.line,
          `netmask must be ${v.family === "IPv6" ? "a prefix length 1..128" : "a dotted-quad IPv4 mask"}, got "${t}"; virtual not imported`,
        );
        continue;
      }
      if (v.persistent === undefined)
        sink.report(v.netmask.line, "netmask without persistent is ignored (as ldirectord does)");
      else netmask = v.family === "IPv6" ? Number(t) : ipv4MaskToNumber(t);
    }
    const flags = {
      persistent: v.persistent !== undefined,
      onePacket: false,
      schedFlag1: false,
      schedFlag2: false,
      schedFlag3: false,
    };
    if (v.ops) {
      if (v.protocol === "udp") flags.onePacket = true;
      else
        sink.report(v.opsLine ?? v.line, "ops is only used for udp virtuals (as ldirectord does); ignored");
    }
    if (v.schedflags) {
      let bad = false;
      for (const f of v.schedflags.text.split(",")) {
        if (f === "flag-1" || f === `${v.scheduler}-fallback`) flags.schedFlag1 = true;
        else if (f === "flag-2" || f === `${v.scheduler}-port`) flags.schedFlag2 = true;
        else if (f === "flag-3") flags.schedFlag3 = true;
        else bad = true;
      }
      if (bad) {
        sink.error(
          v.schedflags.line,
          `schedflags "${v.schedflags.text}" are not flags of scheduler ${v.scheduler} (ipvsadm -b rejects them); virtual not imported`,
        );
        continue;
      }
    }
    owner.set(kText, v);
    where.set(subject, v.line);
    const servicePortNumber = key.kind === "address" ? key.port : 0;
    const plan = planCheck(v, globals, fork, servicePortNumber, sink);
    plans.set(v, plan);
    const destinations: IpvsDestination[] = [];
    const seen = new Map<string, number>();
    for (const r of v.reals) {
      let port = resolvePort(r.port, v.protocol === "udp" ? "udp" : "tcp", servicePort);
      if (port === undefined) {
        sink.error(
          r.line,
          `real server port "${r.port}" is not a number 0..65535 or a known service name; not imported`,
        );
        continue;
      }
      if (port === 0) port = servicePortNumber;
      const dkey = { family: r.family, address: r.address, port };
      const dsubject = `${subject} -> ${destinationKeyString(dkey)}`;
      const prev = seen.get(dsubject);
      if (prev !== undefined) {
        sink.error(
          r.line,
          `real server ${destinationKeyString(dkey)} is already in this virtual (${file}:${prev}); not imported again`,
        );
        continue;
      }
      seen.set(dsubject, r.line);
      where.set(dsubject, r.line);
      destinations.push({
        key: dkey,
        config: {
          forwarding: r.method,
          weight: r.weight,
          upperThreshold: r.upper,
          lowerThreshold: r.lower,
          tunnelType: "IPIP",
          tunnelPort: 0,
          tunnelChecksum: "None",
        },
      });
      if ((r.request !== undefined || r.receive !== undefined) && !plan.http)
        sink.report(
          r.line,
          `the real server's "request", "receive" are only used by http and https checks here; ignored`,
        );
    }
    table.push({
      service: {
        key,
        config: {
          scheduler: v.scheduler,
          flags,
          timeout: v.persistent ?? 0,
          netmask,
          persistenceEngine: "",
        },
      },
      destinations,
    });
  }
  const imported = importResources(table, {
    ...(options.namespace !== undefined ? { namespace: options.namespace } : {}),
    ...(options.namePrefix !== undefined ? { namePrefix: options.namePrefix } : {}),
  });
  for (const p of imported.problems) {
    const line = where.get(p.subject) ?? 0;
    if (p.message.includes("not imported")) sink.error(line, `${p.subject}: ${p.message}`);
    else sink.report(line, `${p.subject}: ${p.message}`);
  }

  // Health checks, fallbacks and per-real checks on top of what the table import wrote.
  const objects: Record<string, unknown>[] = [];
  const byName = new Map<string, { v: VirtualConf; servicePort: number }>();
  for (const obj of imported.objects) {
    const spec = obj.spec as Record<string, unknown>;
    const name = (obj.metadata as { name: string }).name;
    if (obj.kind === "VirtualService") {
      const key: ServiceKey =
        spec.firewallMark !== undefined
          ? { kind: "fwmark", fwmark: spec.firewallMark as number, family: spec.family as Family }
          : {
              kind: "address",
              family: ipFamily(spec.address as string) as Family,
              protocol: spec.protocol as "TCP",
              address: spec.address as string,
              port: spec.port as number,
            };
      const v = owner.get(JSON.stringify(key));
      if (!v) {
        objects.push(obj);
        continue;
      }
      const plan = plans.get(v) as CheckPlan;
      const servicePortNumber = typeof spec.port === "number" ? spec.port : 0;
      const extended: Record<string, unknown> = { ...spec };
      if (plan.hc) extended.healthCheck = plan.hc;
      const fb = v.fallback ?? fallbacks[v.family];
      let fallbackOk = false;
      if (fb && !plan.off) {
        const port =
          fb.port === undefined
            ? undefined
            : resolvePort(fb.port, v.protocol === "udp" ? "udp" : "tcp", servicePort);
        if (fb.port !== undefined && (port === undefined || port === 0))
          sink.error(
            fb.line,
            `fallback port "${fb.port}" is not a number 1..65535 or a known service name; fallback of ${name} left out`,
          );
        else {
          extended.sorryServer = {
            address: fb.address,
            ...(port !== undefined && port !== servicePortNumber ? { port } : {}),
          };
          fallbackOk = true;
          if (extended.forwarding === undefined) extended.forwarding = { method: fb.method };
          else if ((extended.forwarding as { method: string }).method !== fb.method)
            sink.report(
              fb.line,
              `the fallback's forwarding (${fb.method}) has no field: the sorry server of ${name} uses the service's forwarding (${(extended.forwarding as { method: string }).method})`,
            );
        }
      }
      let out = { ...obj, spec: extended };
      const r = validateVirtualService(out);
      if (!r.ok) {
        const msg = r.issues.map((i) => `${i.path}: ${i.message}`).join("; ");
        const withoutSorry = { ...extended };
        delete withoutSorry.sorryServer;
        if (fallbackOk && fb && validateVirtualService({ ...obj, spec: withoutSorry }).ok) {
          sink.error(fb.line, `the fallback cannot be the sorry server of ${name} (${msg}); left out`);
          out = { ...obj, spec: withoutSorry };
        } else {
          sink.error(
            v.line,
            `${name} cannot carry its health check or fallback (${msg}); imported without them`,
          );
          out = obj as typeof out;
        }
      }
      objects.push(out);
      byName.set(name, { v, servicePort: servicePortNumber });
      continue;
    }
    const ref = (spec.virtualServiceRef as { name: string } | undefined)?.name;
    const c = ref === undefined ? undefined : byName.get(ref);
    if (!c) {
      objects.push(obj);
      continue;
    }
    const plan = plans.get(c.v) as CheckPlan;
    const port = (spec.port as number | undefined) ?? c.servicePort;
    const real = c.v.reals.find(
      (r) =>
        r.address === spec.address &&
        (resolvePort(r.port, c.v.protocol === "udp" ? "udp" : "tcp", servicePort) || c.servicePort) === port,
    );
    const extended: Record<string, unknown> = { ...spec };
    if (plan.off) extended.enabled = false;
    if (plan.http && plan.hc && real && real.request !== undefined) {
      const hc = { ...plan.hc };
      let path = real.request;
      const abs = /^\/?(https?):\/\/([^/\s]+)(\/\S*)?$/.exec(path);
      if (abs) {
        path = abs[3] ?? "/";
        sink.report(
          real.line,
          `the request URL ${real.request}: ldirectord probes that host; the API probes the real server with the path ${path}`,
        );
      }
      if (/^\/\S*$/.test(path) && path.length <= 2048) hc.path = path;
      else
        sink.error(
          real.line,
          `request "${real.request}" is not a path the API accepts (no spaces); the virtual's path is used`,
        );
      if (real.receive) hc.expectBody = real.receive;
      else delete hc.expectBody;
      if (JSON.stringify(hc) !== JSON.stringify(plan.hc)) extended.healthCheck = hc;
    }
    const out = { ...obj, spec: extended };
    const r = validateRealServer(out);
    if (!r.ok) {
      sink.error(
        real?.line ?? c.v.line,
        `${(obj.metadata as { name: string }).name} cannot carry its own health check (${r.issues.map((x) => x.message).join("; ")}); imported without it`,
      );
      objects.push(obj);
    } else objects.push(out);
  }
  report.sort((a, b) => a.line - b.line);
  errors.sort((a, b) => a.line - b.line);
  return { objects, report, errors };
}

const readVirtualKeys = new Set([
  "request",
  "receive",
  "checktype",
  "checkcommand",
  "checkport",
  "scheduler",
  "persistent",
  "netmask",
  "schedflags",
  "protocol",
  "ops",
  "service",
  "httpmethod",
  "virtualhost",
]);

function resolvePort(text: string, protocol: "tcp" | "udp", lookup: ServicePortLookup): number | undefined {
  if (/^\d+$/.test(text)) return parseCount(text, 0, 65535);
  try {
    return lookup(text, protocol) ?? lookup(text, protocol === "tcp" ? "udp" : "tcp");
  } catch {
    return undefined;
  }
}
