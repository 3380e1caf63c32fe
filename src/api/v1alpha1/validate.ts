/**
 * Runtime validation of whole objects, as `kubectl apply` and the apiserver would see them: nulls under
 * known fields are pruned (see prune-nulls.ts), unknown fields in spec are errors (kubectl's default
 * strict field validation), then the zod parse (defaults applied), then the family-dependent defaults the
 * CRD cannot express (protocol TCP for address services, persistence netmask / prefixLength by family).
 */
import { z } from "zod";
import { apiIpFamily } from "./common.ts";
import { parseCommonRealServer, parseCommonVirtualService } from "./common-shape.ts";
import { type IPVSNode, IPVSNodeSchema } from "./ipvs-node.ts";
import { pruneNulls } from "./prune-nulls.ts";
import { type RealServer, RealServerSchema } from "./real-server.ts";

import {
  specFamily,
  VIRTUAL_SERVICE_TRANSITION_RULES,
  type VirtualService,
  VirtualServiceSchema,
  type VirtualServiceSpec,
} from "./virtual-service.ts";

export interface ValidationIssue {
  /** Dotted path from the object root, array indices in brackets: "spec.schedulerFlags[1]". */
  path: string;
  message: string;
}
export type ValidationResult<T> = { ok: true; value: T } | { ok: false; issues: ValidationIssue[] };

export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out === "" ? String(p) : `.${String(p)}`;
  }
  return out;
}

function toIssues(error: z.ZodError): ValidationIssue[] {
  return error.issues.flatMap((i) =>
    i.code === "unrecognized_keys"
      ? i.keys.map((k) => ({ path: formatPath([...i.path, k]), message: "unknown field" }))
      : [{ path: formatPath(i.path), message: i.message }],
  );
}

/**
 * Each schema's zod.compile() clone (made on first use): its generated parser takes a valid object in a
 * fraction of the runtime parser's time, and an object it does not accept goes to the runtime parser, so
 * results and issues are the runtime parser's own (test/api/compiled-validation.test.ts compares them).
 */
const compiled = new WeakMap<z.ZodType, z.ZodType>();

export function compiledOf<T>(schema: z.ZodType<T>): z.ZodType<T> {
  let c = compiled.get(schema);
  if (c === undefined) {
    c = z.compile(schema);
    compiled.set(schema, c);
  }
  return c as z.ZodType<T>;
}

function parse<T>(schema: z.ZodType<T>, obj: unknown) {
  return compiledOf(schema).safeParse(pruneNulls(obj, schema));
}

function run<T>(schema: z.ZodType<T>, obj: unknown, normalize?: (v: T) => T): ValidationResult<T> {
  const r = parse(schema, obj);
  if (!r.success) return { ok: false, issues: toIssues(r.error) };
  return { ok: true, value: normalize ? normalize(r.data) : r.data };
}

/** Fills the defaults that depend on the address family (idempotent). */
export function normalizeVirtualServiceSpec(spec: VirtualServiceSpec): VirtualServiceSpec {
  const out: VirtualServiceSpec = { ...spec };
  if (out.address !== undefined) {
    out.protocol ??= "TCP";
    out.family ??= apiIpFamily(out.address);
  }
  if (out.persistence) {
    const p = { ...out.persistence };
    if (specFamily(out) === "IPv6") p.prefixLength ??= 128;
    else p.netmask ??= "255.255.255.255";
    out.persistence = p;
  }
  return out;
}

const normalizeVirtualService = (v: VirtualService): VirtualService => ({
  ...v,
  spec: normalizeVirtualServiceSpec(v.spec),
});

/** A VirtualService of the common shape without zod (common-shape.ts: the same value), others with it. */
export function validateVirtualService(obj: unknown): ValidationResult<VirtualService> {
  const common = parseCommonVirtualService(pruneNulls(obj, VirtualServiceSchema));
  return common
    ? { ok: true, value: normalizeVirtualService(common) }
    : run(VirtualServiceSchema, obj, normalizeVirtualService);
}

/** A RealServer of the common shape without zod (common-shape.ts: the same value), others with it. */
export function validateRealServer(obj: unknown): ValidationResult<RealServer> {
  const common = parseCommonRealServer(pruneNulls(obj, RealServerSchema));
  return common ? { ok: true, value: common } : run(RealServerSchema, obj);
}

export function validateIPVSNode(obj: unknown): ValidationResult<IPVSNode> {
  return run(IPVSNodeSchema, obj);
}

/**
 * Validates an update: the new object on its own, then the key immutability rules against the old one.
 * Both objects are compared as given by the user (before the family-dependent normalization), like the
 * apiserver's CEL transition rules.
 */
export function validateVirtualServiceUpdate(
  oldObj: unknown,
  newObj: unknown,
): ValidationResult<VirtualService> {
  const next = validateVirtualService(newObj);
  if (!next.ok) return next;
  const oldParsed = parse(VirtualServiceSchema, oldObj);
  const newParsed = parse(VirtualServiceSchema, newObj);
  // An invalid old object cannot be compared; the new one stands on its own.
  if (!oldParsed.success || !newParsed.success) return next;
  const issues: ValidationIssue[] = [];
  for (const r of VIRTUAL_SERVICE_TRANSITION_RULES) {
    if (!r.check(newParsed.data.spec, oldParsed.data.spec)) {
      issues.push({ path: `spec${r.fieldPath ?? ""}`, message: r.message });
    }
  }
  return issues.length > 0 ? { ok: false, issues } : next;
}

/**
 * Cross-object rules the CRD cannot check, for the engine: a real server of a DirectRouting or Tunnel
 * service must use the service port (or omit it), and must have the service's family unless tunnelled.
 * Returns issues with paths relative to the RealServer ("spec.port").
 */
export function checkRealServerAgainstService(
  vsSpec: VirtualServiceSpec,
  rsSpec: RealServer["spec"],
): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const method = rsSpec.forwarding?.method ?? vsSpec.forwarding.method;
  if (method !== "NAT" && rsSpec.port !== undefined && vsSpec.port !== undefined && vsSpec.port !== 0) {
    if (rsSpec.port !== vsSpec.port) {
      issues.push({
        path: "spec.port",
        message: `with forwarding ${method} the port must equal the service port ${vsSpec.port} or be omitted`,
      });
    }
  }
  const family = specFamily(vsSpec);
  if (method !== "Tunnel" && family !== undefined && apiIpFamily(rsSpec.address) !== family) {
    issues.push({
      path: "spec.address",
      message: `address must be ${family} like the service (only Tunnel may mix)`,
    });
  }
  return issues;
}
