/**
 * Turns an IPVS table (for example one parsed from `ipvsadm -Sn`, or read from a kernel) into
 * ipvs.dev/v1alpha1 VirtualService and RealServer objects, so an existing setup can be taken over.
 *
 * Nothing is dropped silently: whatever the API cannot express (Local / Bypass forwarding, flag-1..3,
 * a non-contiguous persistence mask, a weight above 65535, ...) becomes a problem naming the service
 * or real server, and that object (or real server) is left out rather than imported wrongly.
 * Every object is then checked with the API's own validation (validateVirtualService,
 * validateRealServer, checkRealServerAgainstService), so nothing is written that `plan` would reject: an
 * object that fails (an unknown scheduler name, an IPv4-mapped address, ...) is a problem and left out,
 * and so are the real servers of a service that is left out.
 *
 * Names are DNS-1123 labels derived from the key, so importing the same table twice gives the same
 * objects: `tcp-192-0-2-10-80`, `udp-2001-db8--10-53`, `fwm-7`, `fwm-7-ipv6`; a real server is the
 * service name plus its address and port: `tcp-192-0-2-10-80-198-51-100-5-8080`. Names longer than
 * 63 characters are cut and get a hash suffix (`-` + 8 hex digits of the SHA-256 of the full name).
 */

import { createHash } from "node:crypto";
import { stringify } from "yaml";
import {
  checkRealServerAgainstService,
  type ValidationIssue,
  validateRealServer,
  validateVirtualService,
} from "../api/v1alpha1/index.ts";
import { isContiguousIpv4Mask, numberToIpv4Mask } from "../vocabulary/addresses.ts";
import { compareDestinationKey, compareServiceKey } from "../vocabulary/order.ts";
import type { DestinationConfig, IpvsDestination, IpvsService, IpvsTable } from "../vocabulary/table.ts";
import { destinationKeyString, serviceKeyString } from "../vocabulary/table.ts";

export const IMPORT_API_VERSION = "ipvs.dev/v1alpha1";
/** API limits the import must respect (see src/api/v1alpha1). */
const MAX_WEIGHT = 65535;
const MAX_TIMEOUT_SECONDS = 2147483;
const MAX_NAME = 63;

export interface ImportOptions {
  /** metadata.namespace of every object; absent = no namespace (kubectl applies the current one). */
  namespace?: string;
  /** Prepended to every name, joined with "-" ("edge" -> "edge-tcp-192-0-2-10-80"). */
  namePrefix?: string;
}

export interface ImportProblem {
  /** "TCP 192.0.2.10:80" or "TCP 192.0.2.10:80 -> 198.51.100.5:8080". */
  subject: string;
  message: string;
}

export interface ImportedResources {
  /** VirtualService objects, each followed by its RealServer objects; services in canonical order. */
  objects: Record<string, unknown>[];
  problems: ImportProblem[];
}

interface ForwardingSpec {
  method: "NAT" | "DirectRouting" | "Tunnel";
  tunnel?: { type: "IPIP" | "GUE" | "GRE"; port?: number; checksum?: "Checksum" | "RemoteChecksum" };
}

/** The VirtualService and RealServer objects that describe `table` (see the module doc). */
export function importResources(table: IpvsTable, opts: ImportOptions = {}): ImportedResources {
  const objects: Record<string, unknown>[] = [];
  const problems: ImportProblem[] = [];
  const used = new Set<string>();
  const entries = [...table].sort((a, b) => compareServiceKey(a.service.key, b.service.key));
  for (const entry of entries) {
    const subject = serviceKeyString(entry.service.key);
    const spec = virtualServiceSpec(entry.service, (message) => problems.push({ subject, message }));
    if (!spec) {
      reportLeftOutDestinations(subject, entry.destinations, problems);
      continue;
    }
    const vsName = uniqueName(withPrefix(opts.namePrefix, serviceBaseName(entry.service)), used);
    const firstDestProblem = problems.length;

    // Each real server as the API writes it; what the API cannot express is a problem.
    const key = entry.service.key;
    const servicePort = key.kind === "address" ? key.port : 0;
    const dests: { dest: IpvsDestination; forwarding: ForwardingSpec; port: number | undefined }[] = [];
    const sorted = [...entry.destinations].sort((a, b) => compareDestinationKey(a.key, b.key));
    for (const dest of sorted) {
      const destSubject = `${subject} -> ${destinationKeyString(dest.key)}`;
      const problem = (message: string) => problems.push({ subject: destSubject, message });
      const c = dest.config;
      const forwarding = forwardingSpec(c);
      if (typeof forwarding === "string") {
        problem(forwarding);
        continue;
      }
      if (c.weight > MAX_WEIGHT) {
        problem(`weight ${c.weight} is above the API's limit ${MAX_WEIGHT}; real server not imported`);
        continue;
      }
      if (c.lowerThreshold > c.upperThreshold) {
        problem(
          `lowerThreshold ${c.lowerThreshold} exceeds upperThreshold ${c.upperThreshold}, which the kernel (ERANGE) and the API reject; real server not imported`,
        );
        continue;
      }
      let port: number | undefined;
      if (dest.key.port !== servicePort) {
        if (forwarding.method !== "NAT" && key.kind === "address" && servicePort !== 0) {
          // The kernel accepts this (ipvsadm would not create it); DR and tunnels never change ports.
          problem(
            `port ${dest.key.port} differs from the service port ${servicePort}; ${forwarding.method} does not change ports, so the RealServer uses the service port`,
          );
        } else if (dest.key.port === 0) {
          problem(
            "port 0 can only be written as the service's port, which differs; real server not imported",
          );
          continue;
        } else port = dest.key.port;
      }
      dests.push({ dest, forwarding, port });
    }
    const serviceForwarding = mostCommonForwarding(dests.map((d) => d.forwarding));
    if (serviceForwarding) spec.forwarding = serviceForwarding;
    const vsObject = resource("VirtualService", vsName, opts.namespace, spec);
    const vsResult = validateVirtualService(vsObject);
    if (!vsResult.ok) {
      // The service's problems first, then those of its real servers.
      problems.splice(
        firstDestProblem,
        0,
        ...vsResult.issues.map((i) => ({ subject, message: `${issueText(i)}; service not imported` })),
      );
      used.delete(vsName);
      reportLeftOutDestinations(
        subject,
        dests.map((d) => d.dest),
        problems,
      );
      continue;
    }
    objects.push(vsObject);

    for (const { dest, forwarding, port } of dests) {
      const c = dest.config;
      const destSubject = `${subject} -> ${destinationKeyString(dest.key)}`;
      const rsSpec: Record<string, unknown> = {
        virtualServiceRef: { name: vsName },
        address: dest.key.address,
      };
      if (port !== undefined) rsSpec.port = port;
      rsSpec.weight = c.weight;
      if (c.upperThreshold !== 0) rsSpec.upperThreshold = c.upperThreshold;
      if (c.lowerThreshold !== 0) rsSpec.lowerThreshold = c.lowerThreshold;
      if (!serviceForwarding || !sameForwarding(forwarding, serviceForwarding))
        rsSpec.forwarding = forwarding;
      const rsName = uniqueName(
        withPrefix(opts.namePrefix, `${serviceBaseName(entry.service)}-${destBaseName(dest)}`),
        used,
      );
      const rsObject = resource("RealServer", rsName, opts.namespace, rsSpec);
      const rsResult = validateRealServer(rsObject);
      const issues = rsResult.ok
        ? checkRealServerAgainstService(vsResult.value.spec, rsResult.value.spec)
        : rsResult.issues;
      if (issues.length > 0) {
        for (const i of issues)
          problems.push({ subject: destSubject, message: `${issueText(i)}; real server not imported` });
        used.delete(rsName);
        continue;
      }
      objects.push(rsObject);
    }
  }
  return { objects, problems };
}

/** The real servers of a service that is not imported (those without a problem of their own). */
function reportLeftOutDestinations(
  subject: string,
  destinations: readonly IpvsDestination[],
  problems: ImportProblem[],
): void {
  const sorted = [...destinations].sort((a, b) => compareDestinationKey(a.key, b.key));
  for (const dest of sorted) {
    problems.push({
      subject: `${subject} -> ${destinationKeyString(dest.key)}`,
      message: "its service is not imported, so neither is this real server",
    });
  }
}

function issueText(issue: ValidationIssue): string {
  return issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`;
}

/** Multi-document YAML (`---` between documents), as kubectl apply -f reads it. */
export function renderResourcesYaml(objects: readonly unknown[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join("---\n");
}

function resource(kind: string, name: string, namespace: string | undefined, spec: Record<string, unknown>) {
  return {
    apiVersion: IMPORT_API_VERSION,
    kind,
    metadata: namespace === undefined ? { name } : { name, namespace },
    spec,
  };
}

function virtualServiceSpec(
  service: IpvsService,
  problem: (m: string) => void,
): Record<string, unknown> | undefined {
  const { key, config } = service;
  const spec: Record<string, unknown> =
    key.kind === "fwmark"
      ? { firewallMark: key.fwmark, family: key.family }
      : { address: key.address, port: key.port, protocol: key.protocol };
  spec.scheduler = config.scheduler;
  let ok = true;
  const f = config.flags;
  const flags: string[] = [];
  if (config.scheduler === "sh" || config.scheduler === "mh") {
    if (f.schedFlag1) flags.push(`${config.scheduler}-fallback`);
    if (f.schedFlag2) flags.push(`${config.scheduler}-port`);
    if (f.schedFlag3) {
      problem(
        `scheduler flag 3 has no meaning for ${config.scheduler} and no API field; service not imported`,
      );
      ok = false;
    }
  } else if (f.schedFlag1 || f.schedFlag2 || f.schedFlag3) {
    problem(
      `scheduler flags (flag-1..3) for scheduler ${config.scheduler} have no API field; service not imported`,
    );
    ok = false;
  }
  if (flags.length > 0) spec.schedulerFlags = flags;
  if (f.persistent) {
    const persistence: Record<string, unknown> = {};
    if (config.timeout < 1 || config.timeout > MAX_TIMEOUT_SECONDS) {
      problem(
        `persistence timeout ${config.timeout} s is outside the API's 1..${MAX_TIMEOUT_SECONDS}; service not imported`,
      );
      ok = false;
    }
    persistence.timeoutSeconds = config.timeout;
    if (key.family === "IPv4" && config.netmask >>> 0 !== 0xffffffff) {
      if (!isContiguousIpv4Mask(config.netmask >>> 0)) {
        problem(
          `persistence mask ${numberToIpv4Mask(config.netmask)} is not contiguous; service not imported`,
        );
        ok = false;
      }
      persistence.netmask = numberToIpv4Mask(config.netmask);
    }
    if (key.family === "IPv6" && config.netmask !== 128) persistence.prefixLength = config.netmask;
    if (config.persistenceEngine) persistence.engine = config.persistenceEngine;
    spec.persistence = persistence;
  } else if (key.kind === "address" && key.port === 0) {
    problem("port 0 without persistence cannot be written in the API; service not imported");
    ok = false;
  }
  if (config.persistenceEngine && config.persistenceEngine !== "sip") {
    problem(
      `persistence engine ${JSON.stringify(config.persistenceEngine)} is not one the API knows (sip); service not imported`,
    );
    ok = false;
  } else if (config.persistenceEngine && !f.persistent) {
    problem("a persistence engine without persistence has no API field; service not imported");
    ok = false;
  }
  if (f.onePacket) {
    if (key.kind === "address" && key.protocol !== "UDP") {
      problem("one-packet scheduling on a non-UDP service has no API form; service not imported");
      ok = false;
    }
    spec.onePacket = true;
  }
  return ok ? spec : undefined;
}

/** The API form of a destination's forwarding, or the reason there is none. */
function forwardingSpec(c: DestinationConfig): ForwardingSpec | string {
  switch (c.forwarding) {
    case "NAT":
    case "DirectRouting":
      return { method: c.forwarding };
    case "Tunnel": {
      const tunnel: NonNullable<ForwardingSpec["tunnel"]> = { type: c.tunnelType };
      if (c.tunnelType === "GUE") tunnel.port = c.tunnelPort;
      if (c.tunnelChecksum !== "None") tunnel.checksum = c.tunnelChecksum;
      if (c.tunnelType === "GUE" && (c.tunnelPort < 1 || c.tunnelPort > 65535)) {
        return `GUE tunnel port ${c.tunnelPort} is outside 1..65535; real server not imported`;
      }
      return c.tunnelType === "IPIP" && c.tunnelChecksum === "None"
        ? { method: "Tunnel" }
        : { method: "Tunnel", tunnel };
    }
    default:
      return `forwarding method ${c.forwarding} has no API field (only NAT, DirectRouting, Tunnel); real server not imported`;
  }
}

function forwardingText(f: ForwardingSpec): string {
  return JSON.stringify([
    f.method,
    f.tunnel?.type ?? "IPIP",
    f.tunnel?.port ?? 0,
    f.tunnel?.checksum ?? "None",
  ]);
}

function sameForwarding(a: ForwardingSpec, b: ForwardingSpec): boolean {
  return forwardingText(a) === forwardingText(b);
}

const METHOD_RANK = { NAT: 0, DirectRouting: 1, Tunnel: 2 } as const;

/** The forwarding most real servers use; ties go to NAT, then DirectRouting, then Tunnel, then the text. */
function mostCommonForwarding(all: ForwardingSpec[]): ForwardingSpec | undefined {
  const counts = new Map<string, { spec: ForwardingSpec; n: number }>();
  for (const f of all) {
    const k = forwardingText(f);
    const c = counts.get(k);
    if (c) c.n++;
    else counts.set(k, { spec: f, n: 1 });
  }
  const ranked = [...counts.entries()].sort(
    ([ka, a], [kb, b]) =>
      b.n - a.n ||
      METHOD_RANK[a.spec.method] - METHOD_RANK[b.spec.method] ||
      (ka < kb ? -1 : ka > kb ? 1 : 0),
  );
  return ranked[0]?.[1].spec;
}

// ---------------------------------------------------------------------------------------------
// Names

function addressPart(address: string): string {
  return address.toLowerCase().replace(/[.:]/g, "-");
}

function serviceBaseName(service: IpvsService): string {
  const key = service.key;
  if (key.kind === "fwmark") return key.family === "IPv6" ? `fwm-${key.fwmark}-ipv6` : `fwm-${key.fwmark}`;
  return `${key.protocol.toLowerCase()}-${addressPart(key.address)}-${key.port}`;
}

function destBaseName(dest: IpvsDestination): string {
  return `${addressPart(dest.key.address)}-${dest.key.port}`;
}

function withPrefix(prefix: string | undefined, name: string): string {
  if (!prefix) return name;
  const p = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .replace(/^-+|-+$/g, "");
  return p ? `${p}-${name}` : name;
}

function hash8(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 8);
}

/** A DNS-1123 label (<= 63 chars) for `full`, distinct from every name in `used`. */
function uniqueName(full: string, used: Set<string>): string {
  let name =
    full.length <= MAX_NAME ? full : `${full.slice(0, MAX_NAME - 9).replace(/-+$/, "")}-${hash8(full)}`;
  // Two keys can only meet here through truncation or look-alike text; disambiguate deterministically.
  for (let i = 1; used.has(name); i++) {
    name = `${full.slice(0, MAX_NAME - 9).replace(/-+$/, "")}-${hash8(`${full}#${i}`)}`;
  }
  used.add(name);
  return name;
}
