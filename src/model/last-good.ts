/**
 * Keep-last-good: which programmed state must stay as it is because its object became invalid.
 *
 * - A VirtualService that exists but is invalid (or could not be processed): its kernel service keeps
 *   its last valid state — no update, no drain, no delete — until the object is fixed or deleted.
 *   (Deleting the object is the way to remove the service; fixing it resumes normal reconciling.)
 * - A RealServer that exists but is invalid: the VirtualService it names keeps all its destinations
 *   (none is drained or deleted); additions and updates of its other real servers still go ahead.
 * The reconciler maps these VirtualService names to kernel keys through the journal's owners.
 *
 * Pure: problems and raw RealServer objects in, two maps ("namespace/name" -> why) out.
 */
import type { Problem } from "./problems.ts";

export interface LastGoodHolds {
  invalidVirtualServices: Map<string, string>;
  holdRemovalsFor: Map<string, string>;
}

/** Kinds of problem that mean "the object is there but cannot be used now". */
const UNUSABLE = new Set<Problem["kind"]>(["Invalid", "Internal"]);

export function lastGoodHolds(problems: readonly Problem[], realServers: readonly unknown[]): LastGoodHolds {
  const invalidVirtualServices = new Map<string, string>();
  const holdRemovalsFor = new Map<string, string>();
  const refs = new Map<string, string>();
  for (const raw of realServers) {
    const rs = raw as {
      metadata?: { namespace?: unknown; name?: unknown };
      spec?: { virtualServiceRef?: { name?: unknown } };
    };
    const namespace = rs?.metadata?.namespace;
    const name = rs?.metadata?.name;
    const target = rs?.spec?.virtualServiceRef?.name;
    if (typeof namespace === "string" && typeof name === "string" && typeof target === "string") {
      refs.set(`${namespace}/${name}`, `${namespace}/${target}`);
    }
  }
  for (const p of problems) {
    if (!UNUSABLE.has(p.kind)) continue;
    const self = `${p.object.namespace}/${p.object.name}`;
    const why = `${p.field ? `${p.field}: ` : ""}${p.message}`;
    if (p.object.kind === "VirtualService" && !invalidVirtualServices.has(self)) {
      invalidVirtualServices.set(self, why);
    } else if (p.object.kind === "RealServer") {
      const target = refs.get(self);
      if (target && !holdRemovalsFor.has(target))
        holdRemovalsFor.set(target, `RealServer ${self} is invalid (${why})`);
    }
  }
  return { invalidVirtualServices, holdRemovalsFor };
}
