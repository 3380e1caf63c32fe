/**
 * A pure simulator of the kernel's IPVS table: applies operations with the kernel's semantics and
 * errors, returning a new table. Used by property tests of diff() and by dry runs (`plan`).
 *
 * Semantics modelled (net/netfilter/ipvs/ip_vs_ctl.c):
 * - addService: EEXIST when the key exists; a new service has no destinations.
 * - updateService / deleteService: ESRCH when the service does not exist; deleting a service
 *   deletes its destinations.
 * - addDestination: ESRCH without the service; EEXIST when the destination exists; EINVAL when the
 *   destination family differs from the service family and the forwarding is not Tunnel;
 *   ERANGE for a negative weight or a lower threshold above the upper threshold.
 * - updateDestination: as addDestination, but ENOENT when the destination does not exist; connection
 *   counters are kept.
 * - deleteDestination: ESRCH without the service; ENOENT without the destination.
 * A failed operation changes nothing and does not stop the ones after it (like IpvsKernel.apply).
 */
import type { Operation } from "./plan.ts";
import {
  destinationKeyString,
  type IpvsDestination,
  type KernelDestination,
  type KernelTable,
  type ServiceKey,
  serviceKeyString,
} from "./table.ts";

export type SimulatedResult =
  | { ok: true }
  | { ok: false; errno: "EEXIST" | "ESRCH" | "ENOENT" | "EINVAL" | "ERANGE" };

export function applyOperationsWithResults(
  table: KernelTable,
  ops: readonly Operation[],
): { table: KernelTable; results: SimulatedResult[] } {
  // Copy what we mutate: the input table is never changed.
  const services = new Map<string, KernelTable[number]>();
  for (const e of table) {
    services.set(serviceKeyString(e.service.key), {
      service: e.service,
      destinations: e.destinations.map((d) => ({ ...d })),
    });
  }
  const results = ops.map((op) => applyOne(services, op));
  return { table: [...services.values()], results };
}

export function applyOperations(table: KernelTable, ops: readonly Operation[]): KernelTable {
  return applyOperationsWithResults(table, ops).table;
}

function applyOne(services: Map<string, KernelTable[number]>, op: Operation): SimulatedResult {
  const fail = (errno: "EEXIST" | "ESRCH" | "ENOENT" | "EINVAL" | "ERANGE"): SimulatedResult => ({
    ok: false,
    errno,
  });
  switch (op.op) {
    case "addService": {
      const k = serviceKeyString(op.service.key);
      if (services.has(k)) return fail("EEXIST");
      services.set(k, { service: { key: op.service.key, config: op.service.config }, destinations: [] });
      return { ok: true };
    }
    case "updateService": {
      const k = serviceKeyString(op.service.key);
      const entry = services.get(k);
      if (!entry) return fail("ESRCH");
      services.set(k, { ...entry, service: { ...entry.service, config: op.service.config } });
      return { ok: true };
    }
    case "deleteService": {
      const k = serviceKeyString(op.key);
      if (!services.delete(k)) return fail("ESRCH");
      return { ok: true };
    }
    case "addDestination":
    case "updateDestination": {
      const entry = services.get(serviceKeyString(op.service));
      if (!entry) return fail("ESRCH");
      const invalid = checkDestination(op.service, op.destination);
      if (invalid) return fail(invalid);
      const dk = destinationKeyString(op.destination.key);
      const index = entry.destinations.findIndex((d) => destinationKeyString(d.key) === dk);
      if (op.op === "addDestination") {
        if (index >= 0) return fail("EEXIST");
        entry.destinations.push({
          key: op.destination.key,
          config: op.destination.config,
          activeConnections: 0,
          inactiveConnections: 0,
          persistentConnections: 0,
        });
        return { ok: true };
      }
      if (index < 0) return fail("ENOENT");
      const current = entry.destinations[index]!;
      entry.destinations[index] = { ...current, config: op.destination.config } satisfies KernelDestination;
      return { ok: true };
    }
    case "deleteDestination": {
      const entry = services.get(serviceKeyString(op.service));
      if (!entry) return fail("ESRCH");
      const dk = destinationKeyString(op.key);
      const index = entry.destinations.findIndex((d) => destinationKeyString(d.key) === dk);
      if (index < 0) return fail("ENOENT");
      entry.destinations.splice(index, 1);
      return { ok: true };
    }
  }
}

function checkDestination(service: ServiceKey, d: IpvsDestination): "EINVAL" | "ERANGE" | undefined {
  if (d.key.family !== service.family && d.config.forwarding !== "Tunnel") return "EINVAL";
  if (d.config.weight < 0) return "ERANGE";
  if (d.config.lowerThreshold > d.config.upperThreshold) return "ERANGE";
  return undefined;
}
