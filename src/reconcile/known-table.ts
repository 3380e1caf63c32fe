/**
 * The kernel table as the reconciler believes it to be between two full reads: the last dump with
 * every operation the kernel confirmed folded in. Only applied operations are folded; the caller reads
 * the kernel again after anything else (a failure, an unknown result, a drain that needs counters).
 */
import type { Operation } from "../vocabulary/operations.ts";
import {
  destinationKeyString,
  type KernelDestination,
  type KernelSnapshot,
  type KernelTable,
  serviceKeyString,
} from "../vocabulary/table.ts";

type Entry = KernelTable[number];

/** A new snapshot; entries not touched by `applied` are shared with `snapshot` (treat both as read-only). */
export function foldApplied(snapshot: KernelSnapshot, applied: readonly Operation[]): KernelSnapshot {
  if (applied.length === 0) return snapshot;
  const byKey = new Map<string, Entry>();
  for (const entry of snapshot.table) byKey.set(serviceKeyString(entry.service.key), entry);
  const copied = new Set<string>();
  /** The entry at `k`, copied once before its first change. */
  const writable = (k: string): Entry | undefined => {
    const entry = byKey.get(k);
    if (!entry || copied.has(k)) return entry;
    const copy: Entry = { service: entry.service, destinations: [...entry.destinations] };
    byKey.set(k, copy);
    copied.add(k);
    return copy;
  };
  for (const op of applied) {
    switch (op.op) {
      case "addService": {
        const k = serviceKeyString(op.service.key);
        byKey.set(k, { service: { key: op.service.key, config: op.service.config }, destinations: [] });
        copied.add(k);
        break;
      }
      case "updateService": {
        const entry = writable(serviceKeyString(op.service.key));
        if (entry) entry.service = { ...entry.service, config: op.service.config };
        break;
      }
      case "deleteService":
        byKey.delete(serviceKeyString(op.key));
        break;
      case "addDestination": {
        const entry = writable(serviceKeyString(op.service));
        entry?.destinations.unshift(newDestination(op.destination.key, op.destination.config)); // newest first
        break;
      }
      case "updateDestination": {
        const entry = writable(serviceKeyString(op.service));
        if (!entry) break;
        const dk = destinationKeyString(op.destination.key);
        const i = entry.destinations.findIndex((d) => destinationKeyString(d.key) === dk);
        if (i >= 0) entry.destinations[i] = { ...entry.destinations[i]!, config: op.destination.config };
        break;
      }
      case "deleteDestination": {
        const entry = writable(serviceKeyString(op.service));
        if (!entry) break;
        const dk = destinationKeyString(op.key);
        entry.destinations = entry.destinations.filter((d) => destinationKeyString(d.key) !== dk);
        break;
      }
    }
  }
  return { table: [...byKey.values()], undecodable: snapshot.undecodable };
}

function newDestination(
  key: KernelDestination["key"],
  config: KernelDestination["config"],
): KernelDestination {
  return { key, config, activeConnections: 0, inactiveConnections: 0, persistentConnections: 0 };
}
