/**
 * RealServers and VirtualServices of the common shape, parsed without zod: what the compiled parser
 * would return for them, built with a few plain objects (the generated parser allocates several times
 * the value it returns, and an agent validates every object of the cluster on its first sync).
 *
 * The common shape: apiVersion, kind, metadata (name, optional namespace, any other fields, as
 * ObjectMetaSchema keeps them) and a spec of the fields listed below, all plain objects and values.
 * Anything else (status, an unknown or a less common field, a value zod would reject or that is only in
 * doubt) gives undefined and is left to the zod parser, so verdicts and issues stay zod's own. The values
 * returned are zod's, keys in the same order (test/api/compiled-validation.test.ts compares them). Parts
 * of the input that zod would return unchanged (metadata in order, virtualServiceRef) are returned
 * themselves, not copied: the inputs are objects nobody modifies (informer caches, parsed manifests).
 */

import { ipv4Value } from "../../vocabulary/order.ts";
import { IPVS_SCHEDULERS } from "../../vocabulary/table.ts";
import { API_GROUP_VERSION, apiIpFamily, DNS_LABEL, DNS_SUBDOMAIN, isApiIp, U32_MAX } from "./common.ts";
import type { RealServer } from "./real-server.ts";
import type { VirtualService } from "./virtual-service.ts";

const RS_SPEC_KEYS = new Set([
  "virtualServiceRef",
  "address",
  "port",
  "weight",
  "upperThreshold",
  "lowerThreshold",
  "enabled",
]);

/** The parsed RealServer, or undefined when zod must decide. */
export function parseCommonRealServer(input: unknown): RealServer | undefined {
  const envelope = commonEnvelope(input, "RealServer", RS_SPEC_KEYS);
  if (envelope === undefined) return undefined;
  const { metadata, spec } = envelope;
  const ref = spec.virtualServiceRef;
  if (!isPlainObject(ref)) return undefined;
  for (const k in ref) if (k !== "name") return undefined;
  const vsName = ref.name;
  if (typeof vsName !== "string" || vsName.length < 1 || vsName.length > 253 || !DNS_SUBDOMAIN.test(vsName))
    return undefined;
  const address = spec.address;
  if (!isAddress(address)) return undefined;
  const hasPort = "port" in spec;
  const port = spec.port;
  if (hasPort && !isInt(port, 1, 65535)) return undefined;
  const weight = "weight" in spec ? spec.weight : 1;
  if (!isInt(weight, 0, 65535)) return undefined;
  const upperThreshold = "upperThreshold" in spec ? spec.upperThreshold : 0;
  if (!isInt(upperThreshold, 0, U32_MAX)) return undefined;
  const lowerThreshold = "lowerThreshold" in spec ? spec.lowerThreshold : 0;
  if (!isInt(lowerThreshold, 0, U32_MAX)) return undefined;
  // The spec's rule (real-server.ts): zod reports the issue.
  if (lowerThreshold > upperThreshold) return undefined;
  const enabled = "enabled" in spec ? spec.enabled : true;
  if (typeof enabled !== "boolean") return undefined;

  const out: RealServer["spec"] = hasPort
    ? {
        virtualServiceRef: ref as { name: string },
        address,
        port: port as number,
        weight,
        upperThreshold,
        lowerThreshold,
        enabled,
      }
    : {
        virtualServiceRef: ref as { name: string },
        address,
        weight,
        upperThreshold,
        lowerThreshold,
        enabled,
      };
  return { apiVersion: API_GROUP_VERSION, kind: "RealServer", metadata, spec: out };
}

const VS_SPEC_KEYS = new Set([
  "address",
  "port",
  "protocol",
  "family",
  "scheduler",
  "onePacket",
  "forwarding",
  "backends",
  "bindAddress",
  "drain",
  "driftPolicy",
]);
const PROTOCOLS = new Set(["TCP", "UDP", "SCTP"]);
const FAMILIES = new Set(["IPv4", "IPv6"]);
const SCHEDULERS: ReadonlySet<unknown> = new Set(IPVS_SCHEDULERS);
const METHODS = new Set(["NAT", "DirectRouting", "Tunnel"]);
const SOURCES = new Set(["EndpointSlice", "Endpoints"]);
const DRIFT_POLICIES = new Set(["Repair", "Report"]);

type Spec = VirtualService["spec"];

/**
 * The parsed VirtualService (before validate.ts fills the family-dependent defaults), or undefined when
 * zod must decide. Its spec: address and port, any of protocol, family, scheduler, onePacket, forwarding
 * (method only), backends, bindAddress, drain and driftPolicy.
 */
export function parseCommonVirtualService(input: unknown): VirtualService | undefined {
  const envelope = commonEnvelope(input, "VirtualService", VS_SPEC_KEYS);
  if (envelope === undefined) return undefined;
  const { metadata, spec } = envelope;
  const address = spec.address;
  if (!isAddress(address)) return undefined;
  const port = spec.port;
  // Port 0 (all ports) needs persistence, which is not of the common shape.
  if (!isInt(port, 1, 65535)) return undefined;
  const hasProtocol = "protocol" in spec;
  const protocol = spec.protocol;
  if (hasProtocol && !PROTOCOLS.has(protocol as string)) return undefined;
  const hasFamily = "family" in spec;
  const family = spec.family;
  if (hasFamily && (!FAMILIES.has(family as string) || family !== apiIpFamily(address))) return undefined;
  const scheduler = "scheduler" in spec ? spec.scheduler : "wlc";
  if (!SCHEDULERS.has(scheduler)) return undefined;
  const onePacket = "onePacket" in spec ? spec.onePacket : false;
  if (typeof onePacket !== "boolean" || (onePacket && protocol !== "UDP")) return undefined;
  let method: unknown = "NAT";
  if ("forwarding" in spec) {
    const f = spec.forwarding;
    if (!isPlainObject(f)) return undefined;
    for (const k in f) if (k !== "method") return undefined;
    if ("method" in f) method = f.method;
  }
  if (!METHODS.has(method as string)) return undefined;
  const hasBackends = "backends" in spec;
  const backends = hasBackends ? commonBackends(spec.backends) : undefined;
  if (hasBackends && backends === undefined) return undefined;
  const bindAddress = "bindAddress" in spec ? spec.bindAddress : true;
  if (typeof bindAddress !== "boolean") return undefined;
  let timeoutSeconds: unknown = 300;
  if ("drain" in spec) {
    const d = spec.drain;
    if (!isPlainObject(d)) return undefined;
    for (const k in d) if (k !== "timeoutSeconds") return undefined;
    if ("timeoutSeconds" in d) timeoutSeconds = d.timeoutSeconds;
  }
  if (!isInt(timeoutSeconds, 0, 86400)) return undefined;
  const driftPolicy = "driftPolicy" in spec ? spec.driftPolicy : "Repair";
  if (!DRIFT_POLICIES.has(driftPolicy as string)) return undefined;

  // Keys in the schema's order, the optional ones only when given.
  const out: Record<string, unknown> = { address, port };
  if (hasProtocol) out.protocol = protocol;
  if (hasFamily) out.family = family;
  out.scheduler = scheduler;
  out.onePacket = onePacket;
  out.forwarding = { method };
  if (hasBackends) out.backends = backends;
  out.bindAddress = bindAddress;
  out.drain = { timeoutSeconds };
  out.driftPolicy = driftPolicy;
  return { apiVersion: API_GROUP_VERSION, kind: "VirtualService", metadata, spec: out as Spec };
}

function commonBackends(b: unknown): Spec["backends"] {
  if (!isPlainObject(b)) return undefined;
  for (const k in b) if (k !== "serviceRef" && k !== "weight" && k !== "source") return undefined;
  const ref = b.serviceRef;
  if (!isPlainObject(ref)) return undefined;
  for (const k in ref) if (k !== "name" && k !== "port") return undefined;
  const name = ref.name;
  if (typeof name !== "string" || name.length < 1 || name.length > 63 || !DNS_LABEL.test(name))
    return undefined;
  const hasPort = "port" in ref;
  const port = ref.port;
  if (hasPort && !isInt(port, 1, 65535)) {
    if (typeof port !== "string" || port.length < 1 || port.length > 15 || !DNS_LABEL.test(port))
      return undefined;
  }
  const weight = "weight" in b ? b.weight : 1;
  if (!isInt(weight, 0, 65535)) return undefined;
  const source = "source" in b ? b.source : "EndpointSlice";
  if (!SOURCES.has(source as string)) return undefined;
  return {
    serviceRef: hasPort ? { name, port: port as number | string } : { name },
    weight,
    source: source as "EndpointSlice" | "Endpoints",
  };
}

/**
 * An object with exactly apiVersion, kind (`kind`), metadata and a spec of `specKeys`: its metadata as
 * ObjectMetaSchema returns it, and its spec; undefined when zod must decide.
 */
function commonEnvelope(
  input: unknown,
  kind: string,
  specKeys: ReadonlySet<string>,
): { metadata: ObjectMeta; spec: Record<string, unknown> } | undefined {
  if (!isPlainObject(input)) return undefined;
  let keys = 0;
  for (const k in input) {
    if (k !== "apiVersion" && k !== "kind" && k !== "metadata" && k !== "spec") return undefined;
    keys++;
  }
  if (keys !== 4 || input.apiVersion !== API_GROUP_VERSION || input.kind !== kind) return undefined;
  const meta = input.metadata;
  if (!isPlainObject(meta)) return undefined;
  const name = meta.name;
  if (typeof name !== "string" || name.length < 1 || name.length > 253) return undefined;
  const hasNamespace = "namespace" in meta;
  const namespace = meta.namespace;
  if (hasNamespace && (typeof namespace !== "string" || namespace.length < 1 || namespace.length > 63))
    return undefined;
  const spec = input.spec;
  if (!isPlainObject(spec)) return undefined;
  for (const k in spec) if (!specKeys.has(k)) return undefined;
  const metadata = inMetadataOrder(meta, hasNamespace) ? meta : copyMetadata(meta, hasNamespace);
  return { metadata: metadata as ObjectMeta, spec };
}

type ObjectMeta = { name: string; namespace?: string };

/**
 * True when ObjectMetaSchema would return `meta` as it is: name first, then namespace (when there is
 * one), no own "__proto__" key. Such a metadata object is returned itself (never modified: see
 * rememberedPerObject), as objects from the API server and from YAML nearly always are.
 */
function inMetadataOrder(meta: Record<string, unknown>, hasNamespace: boolean): boolean {
  let i = 0;
  for (const k in meta) {
    if (k === "__proto__") return false;
    if (i === 0 && k !== "name") return false;
    if (i === 1 && hasNamespace && k !== "namespace") return false;
    i++;
  }
  return true;
}

/** `meta` with name and namespace first, without an own "__proto__" key: what ObjectMetaSchema returns. */
function copyMetadata(meta: Record<string, unknown>, hasNamespace: boolean): Record<string, unknown> {
  // One literal for both fields (no property added to a one-field object, which costs a backing store).
  const metadata: Record<string, unknown> = hasNamespace
    ? { name: meta.name, namespace: meta.namespace }
    : { name: meta.name };
  for (const k in meta) {
    if (k === "__proto__" || k === "name" || k === "namespace") continue;
    metadata[k] = meta[k];
  }
  return metadata;
}

/** An address as ipAddress() accepts it. A dotted quad as ipv4Value reads it is one net.isIPv4 accepts. */
function isAddress(x: unknown): x is string {
  return typeof x === "string" && x.length <= 45 && (ipv4Value(x) !== undefined || isApiIp(x));
}

/** A plain object (Object.prototype, so `in` and for-in see own keys only, as for JSON). */
function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && Object.getPrototypeOf(x) === Object.prototype;
}

function isInt(x: unknown, min: number, max: number): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= min && x <= max;
}
