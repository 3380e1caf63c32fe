/**
 * Parsing of `ipvsadm -Sn` text (or `-S`, or an `ipvsadm -R` script with long options) back into an
 * IPVS table, applying the lines as ipvsadm -R would, with a problem (line number and message) for
 * each line ipvsadm would reject or this parser cannot read. It reads what ipvsadm-render.ts writes;
 * ipvsadm-normalize.ts reads lines with the same parser (tokenize, readCommand).
 */

import { canonicalIp, ipFamily, ipv4MaskToNumber } from "../vocabulary/addresses.ts";
import type {
  DestinationConfig,
  DestinationKey,
  Family,
  ForwardingMethod,
  IpvsTable,
  IpvsTableEntry,
  Protocol,
  ServiceConfig,
  ServiceFlags,
  ServiceKey,
  TunnelChecksum,
  TunnelType,
} from "../vocabulary/table.ts";
import { NO_FLAGS, NO_TUNNEL, sameDestinationKey, serviceKeyString } from "../vocabulary/table.ts";
import type { ServicePortLookup, ServiceProtocol } from "./service-names.ts";

/** One thing in a text that ipvsadm would reject or that this parser could not understand. */
export interface IpvsadmTextProblem {
  /** 1-based line number in the parsed text. */
  line: number;
  message: string;
}

export interface ParsedIpvsadmSave {
  table: IpvsTable;
  problems: IpvsadmTextProblem[];
}

/** ipvsadm's default scheduler (DEF_SCHED). */
export const IPVSADM_DEFAULT_SCHEDULER = "wlc";
/** What `ipvsadm -p` without a value uses (IPVS_SVC_PERSISTENT_TIMEOUT). */
export const IPVSADM_DEFAULT_PERSISTENCE_SECONDS = 360;
/** ipvsadm's limit for -p (31 days). */
export const IPVSADM_MAX_TIMEOUT_SECONDS = 86400 * 31;

const TUNNEL_WORD: Record<TunnelType, string> = { IPIP: "ipip", GUE: "gue", GRE: "gre" };
const TUNNEL_TYPES: Record<string, TunnelType | undefined> = { ipip: "IPIP", gue: "GUE", gre: "GRE" };

/** A few /etc/services names, for `ipvsadm -S` output without -n when the caller gives no services table. */
const SERVICE_PORTS: Record<string, number> = {
  ftp: 21,
  ssh: 22,
  telnet: 23,
  smtp: 25,
  domain: 53,
  http: 80,
  www: 80,
  pop3: 110,
  ntp: 123,
  imap2: 143,
  imap: 143,
  snmp: 161,
  ldap: 389,
  https: 443,
  submission: 587,
  ldaps: 636,
  imaps: 993,
  pop3s: 995,
  mysql: 3306,
  "http-alt": 8080,
};

interface ParsedService {
  key: ServiceKey;
  config: ServiceConfig;
  /** Options given on the line, by canonical name. */
  given: Set<string>;
}

/** One line read by readCommand. */
export interface ReadCommand {
  command: string | undefined;
  service?: ParsedService;
  dest?: { key: DestinationKey; config: DestinationConfig; portGiven: boolean; given: Set<string> };
  /** Reasons ipvsadm would reject the line: the line changes nothing. */
  errors: string[];
  /** Things worth saying about a line that still applies. */
  notes: string[];
}

/** Splits a line into words; drops `ipvsadm` words and everything from `#` (as ipvsadm -R does). */
export function tokenize(line: string): string[] {
  const hash = line.indexOf("#");
  const body = hash >= 0 ? line.slice(0, hash) : line;
  const words: string[] = [];
  for (const w of body.split(/[ \t\r]+/)) {
    if (w === "" || w === "ipvsadm") continue;
    // popt accepts --long=value
    const eq = w.startsWith("--") ? w.indexOf("=") : -1;
    if (eq > 0) words.push(w.slice(0, eq), w.slice(eq + 1));
    else words.push(w);
  }
  return words;
}

const COMMANDS: Record<string, string> = {
  "-A": "-A",
  "--add-service": "-A",
  "-E": "-E",
  "--edit-service": "-E",
  "-D": "-D",
  "--delete-service": "-D",
  "-a": "-a",
  "--add-server": "-a",
  "-e": "-e",
  "--edit-server": "-e",
  "-d": "-d",
  "--delete-server": "-d",
  "-C": "-C",
  "--clear": "-C",
};

/** Long option -> short name used below; value = whether it takes an argument. */
const OPTIONS: Record<string, [string, "arg" | "none" | "optional"]> = {
  "-t": ["t", "arg"],
  "--tcp-service": ["t", "arg"],
  "-u": ["u", "arg"],
  "--udp-service": ["u", "arg"],
  "--sctp-service": ["sctp", "arg"],
  "-f": ["f", "arg"],
  "--fwmark-service": ["f", "arg"],
  "-6": ["6", "none"],
  "--ipv6": ["6", "none"],
  "-s": ["s", "arg"],
  "--scheduler": ["s", "arg"],
  "-p": ["p", "optional"],
  "--persistent": ["p", "optional"],
  "-M": ["M", "arg"],
  "--netmask": ["M", "arg"],
  "--pe": ["pe", "arg"],
  "-o": ["o", "none"],
  "--ops": ["o", "none"],
  "-b": ["b", "arg"],
  "--sched-flags": ["b", "arg"],
  "-r": ["r", "arg"],
  "--real-server": ["r", "arg"],
  "-g": ["g", "none"],
  "--gatewaying": ["g", "none"],
  "-i": ["i", "none"],
  "--ipip": ["i", "none"],
  "-m": ["m", "none"],
  "--masquerading": ["m", "none"],
  "-w": ["w", "arg"],
  "--weight": ["w", "arg"],
  "-x": ["x", "arg"],
  "--u-threshold": ["x", "arg"],
  "-y": ["y", "arg"],
  "--l-threshold": ["y", "arg"],
  "--tun-type": ["tun-type", "arg"],
  "--tun-port": ["tun-port", "arg"],
  "--tun-nocsum": ["tun-nocsum", "none"],
  "--tun-csum": ["tun-csum", "none"],
  "--tun-remcsum": ["tun-remcsum", "none"],
  "-n": ["n", "none"],
  "--numeric": ["n", "none"],
};

const SERVICE_ONLY = new Set(["s", "p", "M", "pe", "o", "b"]);
const DEST_ONLY = new Set([
  "r",
  "fwd",
  "w",
  "x",
  "y",
  "tun-type",
  "tun-port",
  "tun-nocsum",
  "tun-csum",
  "tun-remcsum",
]);

/** An integer in [min, max] written in decimal (strtol base 10), or undefined. */
function toNumber(text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined || !/^[+-]?\d+$/.test(text.trim())) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

/** ipvsadm parse_service: "a.b.c.d[:port]", "[v6]:port", bare v6; undefined = not understood. */
function parseAddrPort(
  text: string,
  protocol: Protocol,
  servicePort?: ServicePortLookup,
): { family: Family; address: string; port?: number } | { error: string } {
  let host = text;
  let portText: string | undefined;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") return { error: `cannot read address ${JSON.stringify(text)}` };
    host = text.slice(1, close);
    portText = text.slice(close + 2);
  } else if (ipFamily(text) !== "IPv6") {
    const colon = text.lastIndexOf(":");
    if (colon >= 0) {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
    }
  }
  const family = ipFamily(host);
  if (!family) return { error: `${JSON.stringify(host)} is not an IP address (host names are not resolved)` };
  if (portText === undefined) return { family, address: canonicalIp(host) };
  let port = toNumber(portText, 0, 65535);
  if (port === undefined && servicePort)
    port = servicePort(portText, protocol.toLowerCase() as ServiceProtocol);
  else if (port === undefined && protocol !== "SCTP") port = SERVICE_PORTS[portText];
  if (port === undefined) return { error: `unknown port ${JSON.stringify(portText)}` };
  return { family, address: canonicalIp(host), port };
}

/**
 * Reads one command line the way ipvsadm's parse_options + process_options would. `forcePorts`:
 * DR / tunnel real servers take the service port, as ipvsadm does (parseIpvsadmSave); without it
 * the port stays as written (normalizeIpvsadmSave sorts lines by what they say). `servicePort` looks up
 * port names (getservbyname); without it a few well-known names are known.
 */
export function readCommand(
  words: string[],
  forcePorts: boolean,
  servicePort?: ServicePortLookup,
): ReadCommand {
  const errors: string[] = [];
  const notes: string[] = [];
  const command = COMMANDS[words[0] ?? ""];
  if (!command) {
    return { command: undefined, errors: [`unsupported command ${JSON.stringify(words[0] ?? "")}`], notes };
  }
  // State as in ipvsadm's struct ipvs_command_entry after its defaults.
  let svcKind: "address" | "fwmark" | undefined;
  let protocol: Protocol = "TCP";
  let family: Family = "IPv4";
  let address = "";
  let port = 0;
  let fwmark = 0;
  let scheduler = "";
  let persistent = false;
  let timeout = 0;
  let netmask = 0xffffffff;
  let pe = "";
  let onePacket = false;
  let schedFlagsArg = "";
  let dest: { family: Family; address: string; port?: number } | undefined;
  let forwarding: ForwardingMethod = "DirectRouting";
  let weight = 1;
  let upper = 0;
  let lower = 0;
  let tunnelType: TunnelType = "IPIP";
  let tunnelPort = 0;
  let tunFlags = 0;
  const given = new Set<string>();

  for (let i = 1; i < words.length; i++) {
    const word = words[i]!;
    const spec = OPTIONS[word];
    if (!spec) {
      errors.push(`unknown option ${JSON.stringify(word)}`);
      continue;
    }
    const [name, kind] = spec;
    let arg: string | undefined;
    if (kind === "arg") {
      arg = words[++i];
      if (arg === undefined && name === "b") {
        // ipvsadm -S prints a bare "-b " for flag bits its scheduler has no name for (sh / mh with flag 3).
        notes.push("-b without flags (ipvsadm -S wrote a flag sh/mh has no name for); the flag is lost");
        arg = "";
      } else if (arg === undefined) {
        errors.push(`option ${word} needs a value`);
        break;
      }
    } else if (kind === "optional") {
      const next = words[i + 1];
      if (next !== undefined && !next.startsWith("-")) {
        arg = next;
        i++;
      }
    }
    const optName = name === "g" || name === "i" || name === "m" ? "fwd" : name;
    if (given.has(optName) && optName !== "6") errors.push(`option ${word} given more than once`);
    given.add(optName);
    switch (name) {
      case "t":
      case "u":
      case "sctp": {
        protocol = name === "t" ? "TCP" : name === "u" ? "UDP" : "SCTP";
        const parsed = parseAddrPort(arg!, protocol, servicePort);
        if ("error" in parsed) {
          errors.push(`illegal virtual server address[:port]: ${parsed.error}`);
          break;
        }
        svcKind = "address";
        family = parsed.family;
        address = parsed.address;
        if (parsed.port !== undefined) port = parsed.port;
        if (family === "IPv6") netmask = 128;
        break;
      }
      case "f": {
        // strtol, > 0; ipvsadm -S prints marks >= 2^31 as negative numbers: read those back too.
        const n = toNumber(arg, -2147483648, 4294967295);
        if (n === undefined || n === 0) {
          errors.push(`invalid fwmark value ${JSON.stringify(arg)}`);
          break;
        }
        svcKind = "fwmark";
        family = "IPv4";
        protocol = "TCP";
        fwmark = n >>> 0;
        break;
      }
      case "6":
        if (svcKind === "fwmark") {
          family = "IPv6";
          netmask = 128;
        } else errors.push("-6 used before -f");
        break;
      case "s":
        scheduler = arg!;
        break;
      case "p": {
        persistent = true;
        if (arg === undefined) timeout = IPVSADM_DEFAULT_PERSISTENCE_SECONDS;
        else {
          const n = toNumber(arg, 1, IPVSADM_MAX_TIMEOUT_SECONDS);
          if (n === undefined) errors.push(`invalid timeout value ${JSON.stringify(arg)}`);
          else timeout = n;
        }
        break;
      }
      case "M":
        if (family !== "IPv6") {
          if (ipFamily(arg!) !== "IPv4")
            errors.push(`illegal virtual server persistent mask ${JSON.stringify(arg)}`);
          else netmask = ipv4MaskToNumber(arg!);
        } else {
          const n = toNumber(arg, 1, 128);
          if (n === undefined) errors.push(`illegal ipv6 netmask ${JSON.stringify(arg)}`);
          else netmask = n;
        }
        break;
      case "pe":
        pe = arg!;
        break;
      case "o":
        onePacket = true;
        break;
      case "b":
        schedFlagsArg = arg!;
        break;
      case "r": {
        const parsed = parseAddrPort(arg!, protocol, servicePort);
        if ("error" in parsed) errors.push(`illegal real server address[:port]: ${parsed.error}`);
        else dest = parsed;
        break;
      }
      case "g":
        forwarding = "DirectRouting";
        break;
      case "i":
        forwarding = "Tunnel";
        break;
      case "m":
        forwarding = "NAT";
        break;
      case "w": {
        const n = toNumber(arg, 0, 65535);
        if (n === undefined) errors.push(`illegal weight ${JSON.stringify(arg)}`);
        else weight = n;
        break;
      }
      case "x":
      case "y": {
        const n = toNumber(arg, 0, 2147483647);
        if (n === undefined)
          errors.push(`illegal ${name === "x" ? "u_threshold" : "l_threshold"} ${JSON.stringify(arg)}`);
        else if (name === "x") upper = n;
        else lower = n;
        break;
      }
      case "tun-type": {
        const t = TUNNEL_TYPES[arg!];
        if (!t) errors.push(`illegal tunnel type ${JSON.stringify(arg)}`);
        else tunnelType = t;
        break;
      }
      case "tun-port": {
        const n = toNumber(arg, 1, 65535);
        if (n === undefined) errors.push(`illegal tunnel port ${JSON.stringify(arg)}`);
        else tunnelPort = n;
        break;
      }
      case "tun-csum":
        tunFlags |= 1;
        break;
      case "tun-remcsum":
        tunFlags |= 2;
        break;
      default: // tun-nocsum (adds no bit), -n
        break;
    }
  }

  const out: ReadCommand = { command, errors, notes };
  if (command === "-C") return out;
  if (!svcKind) {
    if (!errors.some((e) => e.startsWith("illegal virtual") || e.startsWith("invalid fwmark"))) {
      errors.push("no service given (-t, -u, --sctp-service or -f)");
    }
    return out;
  }

  const isServiceCommand = command === "-A" || command === "-E" || command === "-D";
  for (const g of given) {
    if (isServiceCommand && DEST_ONLY.has(g))
      errors.push(`option ${optionLabel(g)} is not allowed with ${command}`);
    if (!isServiceCommand && SERVICE_ONLY.has(g))
      errors.push(`option ${optionLabel(g)} is not allowed with ${command}`);
  }

  const flags: ServiceFlags = { ...NO_FLAGS, persistent, onePacket };
  if (schedFlagsArg) {
    const sched = scheduler || IPVSADM_DEFAULT_SCHEDULER;
    for (const word of schedFlagsArg.split(",").filter((w) => w !== "")) {
      const m = /^(sh|mh)-(fallback|port)$/.exec(word);
      if (word === "flag-1") flags.schedFlag1 = true;
      else if (word === "flag-2") flags.schedFlag2 = true;
      else if (word === "flag-3") flags.schedFlag3 = true;
      else if (m) {
        if (m[1] !== sched)
          errors.push(`incompatible scheduler flag ${JSON.stringify(word)} for scheduler ${sched}`);
        if (m[2] === "fallback") flags.schedFlag1 = true;
        else flags.schedFlag2 = true;
      } else errors.push(`invalid scheduler flag ${JSON.stringify(word)}`);
    }
  }
  const key: ServiceKey =
    svcKind === "fwmark"
      ? { kind: "fwmark", family, fwmark }
      : { kind: "address", family, protocol, address, port };
  out.service = {
    key,
    config: {
      scheduler: scheduler || IPVSADM_DEFAULT_SCHEDULER,
      flags,
      timeout,
      netmask,
      persistenceEngine: pe,
    },
    given,
  };
  if (command === "-A" || command === "-E") {
    if (key.kind === "address" && key.port === 0 && !persistent) {
      errors.push("zero port specified for non-persistent service");
    }
    if (onePacket && key.kind === "address" && key.protocol !== "UDP") {
      errors.push("one-packet scheduling (-o) is only for UDP virtual services");
    }
  }

  if (isServiceCommand) return out;
  if (!dest) {
    if (!errors.some((e) => e.startsWith("illegal real server"))) errors.push("no real server given (-r)");
    return out;
  }
  let destPort = dest.port ?? (key.kind === "address" ? key.port : 0);
  const portGiven = dest.port !== undefined;
  if (
    forcePorts &&
    (command === "-a" || command === "-e") &&
    key.kind === "address" &&
    (forwarding === "DirectRouting" || forwarding === "Tunnel")
  ) {
    // ipvsadm: "The destination port must be equal to the service port" for -g / -i.
    destPort = key.port;
  }
  if (dest.family !== family && forwarding !== "Tunnel") {
    errors.push("different address family is allowed only for tunneling servers");
  }
  const tunOptions = ["tun-type", "tun-port", "tun-nocsum", "tun-csum", "tun-remcsum"].filter((o) =>
    given.has(o),
  );
  if (tunOptions.length > 0 && forwarding !== "Tunnel")
    errors.push("tunnel options conflict with forward method");
  let tunnelChecksum: TunnelChecksum = "None";
  if (forwarding === "Tunnel") {
    const allowed: Record<TunnelType, string[]> = {
      IPIP: [],
      GUE: ["tun-port", "tun-nocsum", "tun-csum", "tun-remcsum"],
      GRE: ["tun-nocsum", "tun-csum"],
    };
    for (const o of tunOptions) {
      if (o !== "tun-type" && !allowed[tunnelType].includes(o)) {
        errors.push(`illegal option --${o} with the ${TUNNEL_WORD[tunnelType]} tunnel type`);
      }
    }
    if (tunnelType === "GUE" && !given.has("tun-port")) errors.push("the gue tunnel type needs --tun-port");
    const csumOptions = tunOptions.filter((o) => o.endsWith("csum"));
    if (csumOptions.length > 1) errors.push(`--${csumOptions[1]} conflicts with --${csumOptions[0]}`);
    tunnelChecksum = tunFlags & 2 ? "RemoteChecksum" : tunFlags & 1 ? "Checksum" : "None";
  }
  out.dest = {
    key: { family: dest.family, address: dest.address, port: destPort },
    config: {
      forwarding,
      weight,
      upperThreshold: upper,
      lowerThreshold: lower,
      ...(forwarding === "Tunnel"
        ? { tunnelType, tunnelPort: tunnelType === "GUE" ? tunnelPort : 0, tunnelChecksum }
        : NO_TUNNEL),
    },
    portGiven,
    given,
  };
  if (portGiven && dest.port !== destPort) {
    notes.push(
      `ipvsadm uses the service port ${destPort} for ${forwarding === "Tunnel" ? "tunnel" : "direct routing"} real servers; port ${dest.port} ignored`,
    );
  }
  return out;
}

function optionLabel(name: string): string {
  if (name === "fwd") return "-g/-i/-m";
  return name.length === 1 ? `-${name}` : `--${name}`;
}

/**
 * Parses `ipvsadm -Sn` output (or `-S`, or an `ipvsadm -R` script with long options) into a table,
 * applying the lines in order as ipvsadm -R would to an empty table (-A, -E, -D, -a, -e, -d, -C).
 * Each line ipvsadm would reject, or this parser cannot read, gives a problem with its line number.
 * A rejected line changes nothing. Two lines apply and still give a problem: a DR / tunnel real
 * server with a port other than the service's (ipvsadm uses the service port), and the bare "-b "
 * that ipvsadm -S itself prints for sh / mh with flag 3 (read as no flags; ipvsadm -R rejects it).
 * Host names are not resolved (pure code): lines with them are problems. Port names are looked up with
 * `opts.servicePort` (the CLI reads /etc/services), else in a short built-in list.
 * A line ending in a backslash (outside a comment) continues on the next, as in a shell script of
 * ipvsadm commands; problems name the first line of such a command.
 */
export function parseIpvsadmSave(
  text: string,
  opts: { servicePort?: ServicePortLookup } = {},
): ParsedIpvsadmSave {
  const problems: IpvsadmTextProblem[] = [];
  let entries: IpvsTableEntry[] = [];
  const find = (key: ServiceKey) =>
    entries.find((e) => serviceKeyString(e.service.key) === serviceKeyString(key));
  const lines = text.split("\n");
  for (let index = 0; index < lines.length; index++) {
    const line = index + 1;
    let raw = lines[index]!;
    while (/\\\r?$/.test(raw) && !raw.includes("#")) {
      raw = raw.replace(/\\\r?$/, " ");
      if (index + 1 < lines.length) raw += lines[++index]!;
    }
    applyLine(line, raw);
  }
  return { table: entries, problems };

  function applyLine(line: number, raw: string): void {
    const words = tokenize(raw);
    if (words.length === 0) return;
    const cmd = readCommand(words, true, opts.servicePort);
    for (const message of [...cmd.errors, ...cmd.notes]) problems.push({ line, message });
    if (cmd.errors.length > 0) return;
    const problem = (message: string) => problems.push({ line, message });
    if (cmd.command === "-C") {
      entries = [];
      return;
    }
    const svc = cmd.service!;
    const entry = find(svc.key);
    const name = serviceKeyString(svc.key);
    switch (cmd.command) {
      case "-A":
        if (entry) problem(`service ${name} already exists`);
        else entries.push({ service: { key: svc.key, config: svc.config }, destinations: [] });
        return;
      case "-E":
        if (!entry) problem(`service ${name} does not exist`);
        else entry.service = { key: svc.key, config: svc.config };
        return;
      case "-D":
        if (!entry) problem(`service ${name} does not exist`);
        else entries = entries.filter((e) => e !== entry);
        return;
    }
    const dest = cmd.dest!;
    if (!entry) {
      problem(`service ${name} does not exist`);
      return;
    }
    const existing = entry.destinations.find((d) => sameDestinationKey(d.key, dest.key));
    const label = `${hostPortText(dest.key)} of ${name}`;
    switch (cmd.command) {
      case "-a":
        if (existing) problem(`real server ${label} already exists`);
        else entry.destinations.push({ key: dest.key, config: dest.config });
        return;
      case "-e":
        if (!existing) problem(`real server ${label} does not exist`);
        else existing.config = dest.config;
        return;
      case "-d":
        if (!existing) problem(`real server ${label} does not exist`);
        else entry.destinations = entry.destinations.filter((d) => d !== existing);
        return;
    }
  }
}

function hostPortText(key: DestinationKey): string {
  return key.family === "IPv6" ? `[${key.address}]:${key.port}` : `${key.address}:${key.port}`;
}
