/**
 * Which Kubernetes Events a sync deserves (pure): drift that was repaired, operations the kernel
 * refused, and objects that became invalid or conflicting. Problems are reported when they appear,
 * not on every resync: the caller passes the problems it already reported.
 */
import type { DriftItem } from "./diff.ts";
import { formatProblem, type Problem } from "./problems.ts";

export interface EventIntent {
  regarding: { kind: "VirtualService" | "RealServer"; namespace: string; name: string };
  type: "Normal" | "Warning";
  reason: string;
  action: string;
  note: string;
}

export interface SyncEventInput {
  drift: readonly DriftItem[];
  failures: readonly { virtualService?: string; message: string }[];
  problems: readonly Problem[];
  /** serviceKeyString -> namespace/name of the VirtualService. */
  owners: ReadonlyMap<string, string>;
}

export function problemKey(p: Problem): string {
  return `${p.kind}|${p.object.kind}|${p.object.namespace}/${p.object.name}|${p.field ?? ""}|${p.message}`;
}

export function syncEvents(input: SyncEventInput, alreadyReported: ReadonlySet<string>): EventIntent[] {
  const out: EventIntent[] = [];
  const ref = (namespacedName: string, kind: "VirtualService" | "RealServer" = "VirtualService") => {
    const slash = namespacedName.indexOf("/");
    return { kind, namespace: namespacedName.slice(0, slash), name: namespacedName.slice(slash + 1) };
  };
  const repaired = new Map<string, DriftItem[]>();
  for (const d of input.drift) {
    if (d.action !== "Repaired") continue;
    // A whole service Missing is a creation (a new VirtualService), not drift worth an Event.
    if (d.kind === "Missing" && d.destination === undefined) continue;
    const owner = input.owners.get(d.service);
    if (owner) repaired.set(owner, [...(repaired.get(owner) ?? []), d]);
  }
  for (const [owner, items] of repaired) {
    const first = items.slice(0, 3).map(describeDrift).join("; ");
    out.push({
      regarding: ref(owner),
      type: "Normal",
      reason: "DriftRepaired",
      action: "Sync",
      note: `${items.length} differences repaired: ${first}${items.length > 3 ? "; ..." : ""}`.slice(0, 1024),
    });
  }
  const failed = new Map<string, string[]>();
  for (const f of input.failures)
    if (f.virtualService) failed.set(f.virtualService, [...(failed.get(f.virtualService) ?? []), f.message]);
  for (const [owner, messages] of failed) {
    out.push({
      regarding: ref(owner),
      type: "Warning",
      reason: "ApplyFailed",
      action: "Sync",
      note: `${messages.length} kernel operations failed: ${messages.slice(0, 2).join("; ")}`.slice(0, 1024),
    });
  }
  for (const p of input.problems) {
    if (alreadyReported.has(problemKey(p))) continue;
    if (p.object.kind !== "VirtualService" && p.object.kind !== "RealServer") continue;
    out.push({
      regarding: { kind: p.object.kind, namespace: p.object.namespace, name: p.object.name },
      type: "Warning",
      reason: p.kind === "Conflict" ? "Conflict" : p.kind === "Invalid" ? "Invalid" : p.kind,
      action: "Validate",
      note: formatProblem(p).slice(0, 1024),
    });
  }
  return out;
}

function describeDrift(d: DriftItem): string {
  const where = d.destination ? `${d.service} -> ${d.destination}` : d.service;
  return `${d.kind} ${where}${d.field ? ` ${d.field} ${d.actual} -> ${d.expected}` : ""}`;
}
