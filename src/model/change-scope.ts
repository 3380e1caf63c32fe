/**
 * The scope of an EndpointSlice change: which VirtualServices read the changed Services' slices, and the
 * small snapshot that computeDesired needs to compute just those (the VirtualServices, their
 * RealServers, their Services and the slices as they are now). Pure: the agent builds the index from
 * its last whole sync and asks for a sub-snapshot when only slices changed since.
 *
 * A sub-snapshot computes the same entries as the whole snapshot for these VirtualServices as long as
 * nothing but slices changed and none of the objects involved has a problem (a conflict between two
 * VirtualServices, for one, is only seen with both): `coveredBy` says when the agent may trust it.
 */

import { serviceKeyString } from "../vocabulary/table.ts";
import type { DesiredTable } from "./desired-table.ts";
import type { Problem } from "./problems.ts";
import type { Snapshot } from "./snapshot.ts";

interface RawObject {
  metadata?: { namespace?: string; name?: string };
  spec?: {
    backends?: { serviceRef?: { name?: unknown }; source?: unknown };
    virtualServiceRef?: { name?: unknown };
  };
}

export interface ChangeIndex {
  /** VirtualService objects by the Service ("namespace/name") whose EndpointSlices they read. */
  readonly byService: ReadonlyMap<string, readonly unknown[]>;
  /** RealServer objects by their VirtualService ("namespace/name"). */
  readonly realServers: ReadonlyMap<string, readonly unknown[]>;
  /** Service objects by "namespace/name". */
  readonly services: ReadonlyMap<string, Snapshot["services"][number]>;
  /** Service keys of the table by the VirtualService ("namespace/name") they are programmed for. */
  readonly keys: ReadonlyMap<string, readonly string[]>;
  /** "Kind namespace/name" of every object with a problem, and the namespaces of EndpointSlice problems. */
  readonly troubled: ReadonlySet<string>;
}

const refOf = (o: RawObject) => `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Indexes a whole sync's input and output (one pass over each). */
export function changeIndex(
  snapshot: Snapshot,
  table: DesiredTable,
  problems: readonly Problem[],
): ChangeIndex {
  const byService = new Map<string, unknown[]>();
  for (const vs of snapshot.virtualServices) {
    const o = vs as RawObject;
    const name = o?.spec?.backends?.serviceRef?.name;
    if (typeof name === "string") push(byService, `${o.metadata?.namespace ?? ""}/${name}`, vs);
  }
  const realServers = new Map<string, unknown[]>();
  for (const rs of snapshot.realServers) {
    const o = rs as RawObject;
    const name = o?.spec?.virtualServiceRef?.name;
    push(realServers, `${o?.metadata?.namespace ?? ""}/${typeof name === "string" ? name : ""}`, rs);
  }
  const services = new Map<string, Snapshot["services"][number]>();
  for (const s of snapshot.services) services.set(refOf(s as RawObject), s);
  const keys = new Map<string, string[]>();
  for (const e of table)
    push(keys, `${e.service.source.namespace}/${e.service.source.name}`, serviceKeyString(e.service.key));
  const troubled = new Set<string>();
  for (const p of problems) {
    troubled.add(`${p.object.kind} ${p.object.namespace}/${p.object.name}`);
    if (p.object.kind === "EndpointSlice") troubled.add(`EndpointSlice ${p.object.namespace}`);
  }
  return { byService, realServers, services, keys, troubled };
}

/**
 * The sub-snapshot for the Services whose slices changed, or undefined when it cannot stand in for
 * the whole one: a VirtualService that reads core/v1 Endpoints, or an object involved that had a
 * problem in the whole sync. No VirtualService reads the Services: an empty snapshot.
 */
export function subSnapshot(
  index: ChangeIndex,
  changedServices: Iterable<string>,
  slicesOf: (service: string) => Snapshot["endpointSlices"],
): Snapshot | undefined {
  const virtualServices: unknown[] = [];
  const realServers: unknown[] = [];
  const services: Snapshot["services"][number][] = [];
  const endpointSlices: Snapshot["endpointSlices"][number][] = [];
  for (const service of changedServices) {
    const readers = index.byService.get(service);
    if (!readers) continue;
    const namespace = service.slice(0, service.indexOf("/"));
    if (index.troubled.has(`Service ${service}`) || index.troubled.has(`EndpointSlice ${namespace}`))
      return undefined;
    for (const vs of readers) {
      const o = vs as RawObject;
      const ref = refOf(o);
      if (o.spec?.backends?.source === "Endpoints" || index.troubled.has(`VirtualService ${ref}`))
        return undefined;
      virtualServices.push(vs);
      for (const rs of index.realServers.get(ref) ?? []) {
        if (index.troubled.has(`RealServer ${refOf(rs as RawObject)}`)) return undefined;
        realServers.push(rs);
      }
    }
    const object = index.services.get(service);
    if (object) services.push(object);
    endpointSlices.push(...slicesOf(service));
  }
  return { virtualServices, realServers, services, endpointSlices, endpoints: [] };
}

/**
 * Whether a sub-snapshot's result is what the whole snapshot would give for its VirtualServices: no
 * problems, and each VirtualService programmed at exactly the keys it had (so no conflict, selector or
 * ownership question can come out differently).
 */
export function coveredBy(
  index: ChangeIndex,
  sub: Snapshot,
  table: DesiredTable,
  problems: readonly Problem[],
): boolean {
  if (problems.length > 0) return false;
  const now = new Map<string, string[]>();
  for (const e of table)
    push(now, `${e.service.source.namespace}/${e.service.source.name}`, serviceKeyString(e.service.key));
  for (const vs of sub.virtualServices) {
    const ref = refOf(vs as RawObject);
    const before = index.keys.get(ref) ?? [];
    const after = now.get(ref) ?? [];
    if (before.length !== after.length || before.some((k, i) => after[i] !== k)) return false;
  }
  return true;
}
