/**
 * A RealServer of the common shape, parsed without zod: what the compiled parser would return for it,
 * built with a few plain objects (the generated parser allocates about four times the value it returns,
 * and an agent validates every RealServer of the cluster on its first sync).
 *
 * The common shape: apiVersion, kind, metadata (name, optional namespace, any other fields, as
 * ObjectMetaSchema keeps them) and a spec with virtualServiceRef, address and any of port, weight,
 * upperThreshold, lowerThreshold and enabled, all of them plain objects and values. Anything else (status,
 * forwarding, healthCheck, an unknown field, a value zod would reject or that is only in doubt) returns
 * undefined and is left to the zod parser, so verdicts and issues stay zod's own. The values it returns
 * are the same as zod's, keys in the same order (test/api/compiled-validation.test.ts compares them).
 */

import { ipv4Value } from "../../vocabulary/order.ts";
import { API_GROUP_VERSION, DNS_SUBDOMAIN, isApiIp, U32_MAX } from "./common.ts";
import type { RealServer } from "./real-server.ts";

const SPEC_KEYS = new Set([
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
  if (!isPlainObject(input)) return undefined;
  let keys = 0;
  for (const k in input) {
    if (k !== "apiVersion" && k !== "kind" && k !== "metadata" && k !== "spec") return undefined;
    keys++;
  }
  if (keys !== 4) return undefined;
  if (input.apiVersion !== API_GROUP_VERSION || input.kind !== "RealServer") return undefined;

  const meta = input.metadata;
  if (!isPlainObject(meta)) return undefined;
  const name = meta.name;
  if (typeof name !== "string" || name.length < 1 || name.length > 253) return undefined;
  const metadata: Record<string, unknown> = { name };
  if ("namespace" in meta) {
    const namespace = meta.namespace;
    if (typeof namespace !== "string" || namespace.length < 1 || namespace.length > 63) return undefined;
    metadata.namespace = namespace;
  }
  for (const k in meta) {
    if (k === "__proto__" || k === "name" || k === "namespace") continue;
    metadata[k] = meta[k];
  }

  const spec = input.spec;
  if (!isPlainObject(spec)) return undefined;
  for (const k in spec) if (!SPEC_KEYS.has(k)) return undefined;
  const ref = spec.virtualServiceRef;
  if (!isPlainObject(ref)) return undefined;
  for (const k in ref) if (k !== "name") return undefined;
  const vsName = ref.name;
  if (typeof vsName !== "string" || vsName.length < 1 || vsName.length > 253 || !DNS_SUBDOMAIN.test(vsName))
    return undefined;
  const address = spec.address;
  // A dotted quad as ipv4Value reads it is one net.isIPv4 accepts, so isApiIp would say yes.
  if (
    typeof address !== "string" ||
    address.length > 45 ||
    (ipv4Value(address) === undefined && !isApiIp(address))
  )
    return undefined;
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
        virtualServiceRef: { name: vsName },
        address,
        port: port as number,
        weight,
        upperThreshold,
        lowerThreshold,
        enabled,
      }
    : { virtualServiceRef: { name: vsName }, address, weight, upperThreshold, lowerThreshold, enabled };
  return {
    apiVersion: API_GROUP_VERSION,
    kind: "RealServer",
    metadata: metadata as RealServer["metadata"],
    spec: out,
  };
}

/** A plain object (Object.prototype, so `in` and for-in see own keys only, as for JSON). */
function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && Object.getPrototypeOf(x) === Object.prototype;
}

function isInt(x: unknown, min: number, max: number): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= min && x <= max;
}
