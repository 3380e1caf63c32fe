/**
 * Problems: what the pure core found wrong with its inputs, returned as data (the core never throws).
 * Each names the object and, where it can, the field, so status conditions and events can point at it.
 */

export type ProblemKind =
  /** The object fails validation (schema, cross-field or cross-object rule, or a value the kernel rejects). */
  | "Invalid"
  /** Two VirtualServices want the same IPVS key; the younger one is not programmed. */
  | "Conflict"
  /** A referenced object does not exist (VirtualService of a RealServer, Service of backends.serviceRef). */
  | "NotFound"
  /** The referenced object exists but is not programmed (invalid or in conflict), so neither is this one. */
  | "Dependency"
  /** The same real server comes twice (two RealServers, or a RealServer and an endpoint); one wins. */
  | "Duplicate"
  /** Valid, but cannot be honoured as asked (e.g. DirectRouting endpoints on another port). */
  | "Unsupported"
  /** Valid, but the address policy (IPVSAddressPolicy) does not let its namespace use that address. */
  | "NotAllowed"
  /** A bug: processing the object threw. It is skipped, the others still go through. */
  | "Internal";

export type ProblemObjectKind = "VirtualService" | "RealServer" | "Service" | "EndpointSlice" | "Endpoints";

export interface ProblemObject {
  kind: ProblemObjectKind;
  namespace: string;
  name: string;
}

export interface Problem {
  kind: ProblemKind;
  object: ProblemObject;
  /** Path inside the object, "spec.port"; absent when the problem is about the whole object. */
  field?: string;
  message: string;
}

export function compareProblems(a: Problem, b: Problem): number {
  const x = problemSortKey(a);
  const y = problemSortKey(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function problemSortKey(p: Problem): string {
  return [p.object.kind, p.object.namespace, p.object.name, p.field ?? "", p.kind, p.message].join("\u0000");
}

/** Sorted, without exact duplicates. */
export function normalizeProblems(problems: readonly Problem[]): Problem[] {
  const seen = new Set<string>();
  return [...problems].sort(compareProblems).filter((p) => {
    const k = problemSortKey(p);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** "VirtualService edge/web spec.port: must be ..." for logs and events. */
export function formatProblem(p: Problem): string {
  const where = `${p.object.kind} ${p.object.namespace}/${p.object.name}${p.field ? ` ${p.field}` : ""}`;
  return `${where}: ${p.message}`;
}
