/**
 * diff(): the plan that takes the kernel from `actual` to `desired`, and the drift between them.
 *
 * Rules (see also ownership.ts and drain.ts):
 * - Entries are identified by their keys. A changed key is a different entry: the old one goes
 *   (after draining), the new one is added. Attribute changes are edited in place
 *   (updateService / updateDestination), never delete + add, so connections survive.
 * - Foreign kernel services (not owned, see isOwned: journal or managed CIDRs / fwmark ranges) are never
 *   touched; each is reported once as Foreign drift with action Ignored. This holds for a DESIRED key
 *   too: when the kernel already has a service with that key and the agent does not own it (say,
 *   keepalived or kube-proxy made it), no operation is planned for it at all (no scheduler edit, no
 *   destination added, none drained), whatever the driftPolicy; the Foreign item carries a message
 *   saying the desired key is held by a foreign entry. A desired key absent from the kernel is added:
 *   the caller journals it before applying (sync-once.ts), so the next call owns it.
 * - Drift is level-based: every difference found now is reported, with the action taken:
 *   Repaired (an operation was planned), Reported (the service is observe-only), Ignored (foreign).
 *   Missing = desired but absent; Unexpected = owned, present, not desired; Modified = present with
 *   a different field. A missing service is one Missing item (its destinations come with it).
 *   A destination that is already draining (recorded by an earlier call) and only waits for its
 *   connections is progress, not drift: it is counted in `draining`, not reported again.
 * - driftPolicy Report is observe-only: no operation at all for that service, not even its creation,
 *   and its extra destinations are not drained. This supports watching a table someone else
 *   manages (e.g. after `import`) before handing it over.
 * - Tunnel fields are compared only when the desired forwarding is Tunnel.
 * - Operations come in this order, each group in canonical key order (sort.ts): service adds and
 *   updates, destination adds, destination updates, drains (weight-0 updates), destination
 *   deletes, service deletes. Outputs do not depend on the order of any input.
 *
 * Pure: no I/O, no clock (`now`, in milliseconds, is an argument), never throws on well-typed input.
 */

import { numberToIpv4Mask } from "../vocabulary/addresses.ts";
import type { Operation } from "../vocabulary/operations.ts";
import { inStrictDestinationOrder, sortByServiceKey, sortDestinations } from "../vocabulary/order.ts";
import {
  type DestinationConfig,
  destinationKeyString,
  type IpvsDestination,
  type IpvsService,
  type KernelDestination,
  type KernelService,
  type KernelTable,
  type ServiceFlags,
  type ServiceKey,
  serviceKeyString,
  type UndecodableEntry,
} from "../vocabulary/table.ts";
import type { DesiredDestination, DesiredEntry, DesiredService, DesiredTable } from "./desired-table.ts";
import { DEFAULT_DRAIN_TIMEOUT_SECONDS, type DrainEntry, decideDrain, drainKey } from "./drain.ts";
import { type OwnershipScope, ownershipRule } from "./ownership.ts";

export type DriftKind = "Missing" | "Unexpected" | "Modified" | "Foreign";
export type DriftAction = "Repaired" | "Reported" | "Ignored";

export interface DriftItem {
  kind: DriftKind;
  /** serviceKeyString() */
  service: string;
  /** destinationKeyString(), when the item is about a destination. */
  destination?: string;
  /** Modified only: "scheduler", "flags", "persistence.timeout", "persistence.netmask", "persistence.engine",
   * "forwarding", "weight", "upperThreshold", "lowerThreshold", "tunnel.type", "tunnel.port", "tunnel.checksum". */
  field?: string;
  expected?: string;
  actual?: string;
  /** Why, when kind, field and values do not say it (a desired key held by a foreign entry). */
  message?: string;
  action: DriftAction;
}

export interface DiffResult {
  operations: Operation[];
  drift: DriftItem[];
  /** The drain state to keep for the next call (persist it to survive restarts). */
  drains: DrainEntry[];
  /** Destinations draining after this plan is applied (= drains.length). */
  draining: number;
}

export interface DiffOptions {
  /** Drain timeout for a destination of a service that is no longer desired and has no recorded drain. */
  defaultDrainTimeoutSeconds?: number;
  /**
   * Kernel entries the decoder could not read: each is reported as Foreign (Ignored) with its reason,
   * and a desired service whose key one of them holds is left alone like any foreign key.
   */
  undecodable?: readonly UndecodableEntry[];
  /**
   * Keep-last-good: owned services (serviceKeyString -> why) kept exactly as the kernel has them, because
   * the object they come from became invalid. Their differences are reported (action Reported), none is
   * repaired, nothing of them is drained or deleted.
   */
  frozen?: ReadonlyMap<string, string>;
  /**
   * No removals: nothing is deleted and no drain starts, for every service (`all`, the reason: the input
   * was read only in part) or for some (serviceKeyString -> reason: one of its real servers is invalid).
   * Additions and updates still go ahead; what would have been removed is reported (Reported), and drains
   * already recorded are kept, not finished.
   */
  removalsBlocked?: { all?: string; services?: ReadonlyMap<string, string> };
  /**
   * The desired table the previous sync applied, by serviceKeyString. A difference the kernel has only because the desired
   * table changed since then (a new weight, a removed real server, a new service) is a planned change,
   * not drift: its operations are planned as always, but no drift item is reported for it. Drift is
   * then what differs from what was last programmed (an `ipvsadm` edit, a failed operation). Without
   * it (a first sync, the CLI) every difference is drift.
   */
  previous?: ReadonlyMap<string, DesiredEntry>;
}

/**
 * `ownership`: the managed scope and the journal. Desired keys are NOT owned by being desired (see the
 * header): an existing kernel service with a desired key is changed only when the scope or the journal
 * owns it.
 */
export function diff(
  desired: DesiredTable,
  actual: KernelTable,
  ownership: OwnershipScope,
  drains: readonly DrainEntry[],
  now: number,
  options: DiffOptions = {},
): DiffResult {
  const defaultTimeout = options.defaultDrainTimeoutSeconds ?? DEFAULT_DRAIN_TIMEOUT_SECONDS;
  const owned = ownershipRule(ownership);
  const frozen = options.frozen ?? new Map<string, string>();
  const blocked = options.removalsBlocked ?? {};
  const undecodableKeys = new Map<string, UndecodableEntry>();
  for (const u of options.undecodable ?? []) if (u.key) undecodableKeys.set(serviceKeyString(u.key), u);
  const desiredByKey = oneEntryPerKey(desired);
  const actualByKey = new Map<string, KernelTableEntry>();
  for (let i = 0; i < actual.length; i++) {
    const entry = actual[i] as KernelTable[number];
    // Destinations stay in the kernel's order here; a service that needs more than the no-op
    // check sorts them (sortDestinations in diffService, removeService, keepRecordedDrains).
    actualByKey.set(serviceKeyString(entry.service.key), entry);
  }
  const recorded = new Map<string, DrainEntry>();
  for (const d of drains) recorded.set(drainKey(d.service, d.destination), d);

  const plan: Plan = {
    serviceChanges: [],
    destinationAdds: [],
    destinationUpdates: [],
    drainUpdates: [],
    destinationDeletes: [],
    serviceDeletes: [],
  };
  const drift: DriftItem[] = [];
  const nextDrains: DrainEntry[] = [];

  const keys = new Map<string, ServiceKey>();
  // forEach, not for-of over entries: no pair per service.
  desiredByKey.forEach((e, k) => {
    keys.set(k, e.service.key);
  });
  actualByKey.forEach((e, k) => {
    if (!keys.has(k)) keys.set(k, e.service.key);
  });
  const ordered = sortByServiceKey([...keys.entries()], (e) => e[1]);

  for (let i = 0; i < ordered.length; i++) {
    const k = (ordered[i] as [string, ServiceKey])[0];
    const want = desiredByKey.get(k);
    const have = actualByKey.get(k);
    const noRemovals = blocked.all ?? blocked.services?.get(k);
    const ctx: ServiceContext = { serviceText: k, plan, drift, recorded, nextDrains, now };
    if (noRemovals !== undefined) ctx.noRemovals = noRemovals;
    const opaque = undecodableKeys.get(k);
    if (opaque) {
      if (want) {
        const source = `${want.service.source.namespace}/${want.service.source.name}`;
        drift.push({
          kind: "Foreign",
          service: k,
          message: `desired by ${source}, but the key is held by a kernel entry this version cannot decode (${opaque.reason}); it is left alone`,
          action: "Ignored",
        });
      }
      continue; // the entry itself is reported below, once
    }
    if (have && frozen.has(k) && owned(have.service.key, k)) {
      const why = frozen.get(k)!;
      if (want) {
        diffService({ ...ctx, frozen: why }, want, have);
      } else {
        drift.push({ kind: "Unexpected", service: k, message: why, action: "Reported" });
        keepRecordedDrains(ctx, have);
      }
      continue;
    }
    if (want && !have) {
      const report = want.service.driftPolicy === "Report";
      drift.push({ kind: "Missing", service: k, action: report ? "Reported" : "Repaired" });
      if (!report) {
        plan.serviceChanges.push({ op: "addService", service: plainService(want.service) });
        const destinations = canonicalDestinations(want.destinations);
        for (let i = 0; i < destinations.length; i++) {
          plan.destinationAdds.push({
            op: "addDestination",
            service: want.service.key,
            destination: plainDestination(destinations[i] as DesiredDestination),
          });
        }
      }
    } else if (want && have) {
      if (!owned(have.service.key, k)) {
        const source = `${want.service.source.namespace}/${want.service.source.name}`;
        drift.push({
          kind: "Foreign",
          service: k,
          message: `desired by ${source}, but the key is held by a kernel service this agent does not own (not in its journal, outside the managed CIDRs / fwmark ranges); it is left alone`,
          action: "Ignored",
        });
        continue;
      }
      diffService(ctx, want, have);
    } else if (have) {
      if (!owned(have.service.key, k)) {
        drift.push({ kind: "Foreign", service: k, action: "Ignored" });
        continue;
      }
      if (ctx.noRemovals !== undefined) {
        drift.push({ kind: "Unexpected", service: k, message: ctx.noRemovals, action: "Reported" });
        keepRecordedDrains(ctx, have);
        continue;
      }
      removeService(ctx, have, defaultTimeout);
    }
  }
  for (const u of options.undecodable ?? []) {
    drift.push({
      kind: "Foreign",
      service: u.service,
      ...(u.destination === undefined ? {} : { destination: u.destination }),
      message: `cannot be decoded (${u.reason}); never modified or deleted`,
      action: "Ignored",
    });
  }

  return {
    operations: [
      ...plan.serviceChanges,
      ...plan.destinationAdds,
      ...plan.destinationUpdates,
      ...plan.drainUpdates,
      ...plan.destinationDeletes,
      ...plan.serviceDeletes,
    ],
    drift: options.previous ? withoutPlannedChanges(drift, options.previous, actualByKey, recorded) : drift,
    drains: nextDrains,
    draining: nextDrains.length,
  };
}

/**
 * Drift items that are not planned changes (see DiffOptions.previous): the kernel holds what the
 * previous desired table said, or a destination is being drained on purpose.
 */
function withoutPlannedChanges(
  drift: DriftItem[],
  before: ReadonlyMap<string, DesiredEntry>,
  actualByKey: ReadonlyMap<string, KernelTableEntry>,
  recorded: ReadonlyMap<string, DrainEntry>,
): DriftItem[] {
  if (!drift.some((d) => d.action === "Repaired")) return drift;
  const destinationOf = (entry: DesiredEntry | undefined, dk: string) =>
    entry?.destinations.find((d) => destinationKeyString(d.key) === dk);
  const planned = (item: DriftItem): boolean => {
    const was = before.get(item.service);
    const have = actualByKey.get(item.service);
    switch (item.kind) {
      case "Missing":
        // A service or destination the previous table did not have is being added, not restored.
        return item.destination === undefined ? !was : !destinationOf(was, item.destination);
      case "Unexpected":
        // Removed since the previous table, or being drained on purpose (a drain recorded earlier).
        if (item.destination === undefined) {
          return (
            was !== undefined ||
            (have?.destinations.some((d) =>
              recorded.has(drainKey(item.service, destinationKeyString(d.key))),
            ) ??
              false)
          );
        }
        return (
          destinationOf(was, item.destination) !== undefined ||
          recorded.has(drainKey(item.service, item.destination))
        );
      case "Modified": {
        if (!was || !have) return false;
        if (item.destination === undefined) {
          return !compareService(was.service, have.service).some((f) => f.field === item.field);
        }
        const wasDest = destinationOf(was, item.destination);
        const haveDest = have.destinations.find((d) => destinationKeyString(d.key) === item.destination);
        return (
          wasDest !== undefined &&
          haveDest !== undefined &&
          !compareDestination(wasDest, haveDest).some((f) => f.field === item.field)
        );
      }
      default:
        return false;
    }
  };
  return drift.filter((item) => item.action !== "Repaired" || !planned(item));
}

type KernelTableEntry = KernelTable[number];

interface Plan {
  serviceChanges: Operation[];
  destinationAdds: Operation[];
  destinationUpdates: Operation[];
  drainUpdates: Operation[];
  destinationDeletes: Operation[];
  serviceDeletes: Operation[];
}

interface ServiceContext {
  serviceText: string;
  plan: Plan;
  drift: DriftItem[];
  recorded: Map<string, DrainEntry>;
  nextDrains: DrainEntry[];
  now: number;
  /** Set when removals are blocked for this service: the reason. */
  noRemovals?: string;
  /** Set when the service is frozen (keep-last-good): the reason; nothing is changed. */
  frozen?: string;
}

/** Drains recorded earlier stay recorded (their clocks keep running) while removals are held back. */
function keepRecordedDrains(ctx: ServiceContext, have: KernelTableEntry): void {
  for (const d of sortDestinations(have.destinations)) {
    const rec = ctx.recorded.get(drainKey(ctx.serviceText, destinationKeyString(d.key)));
    if (rec) ctx.nextDrains.push(rec);
  }
}

/**
 * Destinations in canonical order, a destination listed twice kept once (its first occurrence in
 * that order). computeDesired's lists are that already: returned as they are.
 */
function canonicalDestinations(destinations: readonly DesiredDestination[]): readonly DesiredDestination[] {
  if (inStrictDestinationOrder(destinations)) return destinations;
  const seen = new Set<string>();
  return sortDestinations(destinations).filter((d) => {
    const dk = destinationKeyString(d.key);
    if (seen.has(dk)) return false;
    seen.add(dk);
    return true;
  });
}

/**
 * One entry per key, by serviceKeyString, in order of first appearance. computeDesired never emits
 * duplicates; if a caller does, the entry whose source sorts first (namespace/name) wins so that the
 * result does not depend on input order. Destinations are put in canonical order only where a service
 * needs it (canonicalDestinations).
 */
function oneEntryPerKey(desired: DesiredTable): Map<string, DesiredEntry> {
  const byKey = new Map<string, DesiredEntry>();
  for (let i = 0; i < desired.length; i++) {
    const entry = desired[i] as DesiredEntry;
    const k = serviceKeyString(entry.service.key);
    if (byKey.has(k)) return winnersBySource(desired);
    byKey.set(k, entry);
  }
  return byKey;
}

function winnersBySource(desired: DesiredTable): Map<string, DesiredEntry> {
  const winners = new Map<string, { entry: DesiredEntry; source: string }>();
  for (const entry of desired) {
    const k = serviceKeyString(entry.service.key);
    const source = `${entry.service.source.namespace}/${entry.service.source.name}`;
    const current = winners.get(k);
    if (!current || source < current.source) winners.set(k, { entry, source });
  }
  return new Map(Array.from(winners, ([k, { entry }]) => [k, entry]));
}

function diffService(ctx: ServiceContext, want: DesiredEntry, have: KernelTableEntry): void {
  const { serviceText: k, plan, drift } = ctx;
  const report = want.service.driftPolicy === "Report" || ctx.frozen !== undefined;
  const action: DriftAction = report ? "Reported" : "Repaired";
  const key = want.service.key;
  const message = ctx.frozen === undefined ? {} : { message: ctx.frozen };

  const serviceFields = compareService(want.service, have.service);
  for (const f of serviceFields) drift.push({ kind: "Modified", service: k, ...f, action, ...message });
  if (serviceFields.length > 0 && !report) {
    plan.serviceChanges.push({ op: "updateService", service: plainService(want.service) });
  }

  // The usual sync changes nothing here: the same keys, each with the same configuration. Checked
  // without sorting, a key string or a map; any difference takes the full way.
  if (sameDestinations(want.destinations, have.destinations)) return;

  const haveSorted = sortDestinations(have.destinations);
  const haveKeys = haveSorted.map((d) => destinationKeyString(d.key));
  const haveDests = new Map<string, KernelDestination>(haveSorted.map((d, i) => [haveKeys[i] as string, d]));
  const wantKeys = new Set<string>();
  for (const d of canonicalDestinations(want.destinations)) {
    const dk = destinationKeyString(d.key);
    wantKeys.add(dk);
    const current = haveDests.get(dk);
    if (!current) {
      drift.push({ kind: "Missing", service: k, destination: dk, action, ...message });
      if (!report) {
        plan.destinationAdds.push({ op: "addDestination", service: key, destination: plainDestination(d) });
      }
      continue;
    }
    const fields = compareDestination(d, current);
    for (const f of fields)
      drift.push({ kind: "Modified", service: k, destination: dk, ...f, action, ...message });
    if (fields.length > 0 && !report) {
      plan.destinationUpdates.push({
        op: "updateDestination",
        service: key,
        destination: plainDestination(d),
      });
    }
  }

  for (const [i, d] of haveSorted.entries()) {
    const dk = haveKeys[i] as string;
    if (wantKeys.has(dk)) continue;
    const held = ctx.frozen ?? ctx.noRemovals;
    if (report || held !== undefined) {
      drift.push({
        kind: "Unexpected",
        service: k,
        destination: dk,
        action: "Reported",
        ...(held === undefined ? {} : { message: held }),
      });
      const rec = ctx.recorded.get(drainKey(k, dk));
      if (held !== undefined && rec) ctx.nextDrains.push(rec);
      continue;
    }
    const outcome = removeDestination(ctx, key, d, want.service.drainTimeoutSeconds);
    if (outcome.deleted) {
      plan.destinationDeletes.push({ op: "deleteDestination", service: key, key: d.key });
    }
  }
}

/** An owned service that is no longer desired: drain its destinations, delete it once none is left. */
function removeService(ctx: ServiceContext, have: KernelTableEntry, defaultTimeout: number): void {
  const { serviceText: k, plan, drift } = ctx;
  const key = have.service.key;
  const driftBefore = drift.length;
  const deletes: Operation[] = [];
  let remaining = 0;
  for (const d of sortDestinations(have.destinations)) {
    const rec = ctx.recorded.get(drainKey(k, destinationKeyString(d.key)));
    const outcome = removeDestination(ctx, key, d, rec?.timeoutSeconds ?? defaultTimeout);
    if (outcome.deleted) deletes.push({ op: "deleteDestination", service: key, key: d.key });
    else remaining++;
  }
  if (remaining === 0) {
    // Deleting the service removes its destinations with it: no separate destination deletes,
    // and one drift item for the service instead of one per destination.
    plan.serviceDeletes.push({ op: "deleteService", key });
    drift.length = driftBefore;
    drift.push({ kind: "Unexpected", service: k, action: "Repaired" });
    return;
  }
  plan.destinationDeletes.push(...deletes);
  if (drift.length > driftBefore) {
    drift.splice(driftBefore, 0, { kind: "Unexpected", service: k, action: "Repaired" });
  }
}

/**
 * Applies the drain policy to one destination that must go. Pushes the weight-0 update and the
 * drift item; returns whether it should be deleted now (the caller plans the delete).
 */
function removeDestination(
  ctx: ServiceContext,
  service: ServiceKey,
  d: KernelDestination,
  timeoutSeconds: number,
): { deleted: boolean } {
  const dk = destinationKeyString(d.key);
  const recorded = ctx.recorded.get(drainKey(ctx.serviceText, dk));
  const decision = decideDrain({
    service: ctx.serviceText,
    destination: d,
    destinationKey: dk,
    udp: service.kind === "address" && service.protocol === "UDP",
    timeoutSeconds,
    recorded,
    now: ctx.now,
  });
  if (decision.action === "delete") {
    ctx.drift.push({ kind: "Unexpected", service: ctx.serviceText, destination: dk, action: "Repaired" });
    return { deleted: true };
  }
  ctx.nextDrains.push(decision.entry);
  if (decision.setWeightZero) {
    ctx.plan.drainUpdates.push({
      op: "updateDestination",
      service,
      destination: { key: d.key, config: { ...d.config, weight: 0 } },
    });
  }
  if (decision.setWeightZero || !recorded) {
    ctx.drift.push({ kind: "Unexpected", service: ctx.serviceText, destination: dk, action: "Repaired" });
  }
  return { deleted: false };
}

interface FieldDifference {
  field: string;
  expected: string;
  actual: string;
}

/** What compareService / compareDestination return when every value is the very same (the usual case). */
const NO_DIFFERENCES: readonly FieldDifference[] = Object.freeze([]);

function compareService(want: DesiredService, have: KernelService): readonly FieldDifference[] {
  const w = want.config;
  const h = have.config;
  const wf = w.flags;
  const hf = h.flags;
  if (
    w.scheduler === h.scheduler &&
    wf.persistent === hf.persistent &&
    wf.onePacket === hf.onePacket &&
    wf.schedFlag1 === hf.schedFlag1 &&
    wf.schedFlag2 === hf.schedFlag2 &&
    wf.schedFlag3 === hf.schedFlag3 &&
    w.timeout === h.timeout &&
    w.netmask === h.netmask &&
    w.persistenceEngine === h.persistenceEngine
  ) {
    return NO_DIFFERENCES;
  }
  const out: FieldDifference[] = [];
  const family = want.key.family;
  const push = (field: string, expected: string, actual: string) => {
    if (expected !== actual) out.push({ field, expected, actual });
  };
  push("scheduler", w.scheduler, h.scheduler);
  push("flags", flagsText(w.flags), flagsText(h.flags));
  push("persistence.timeout", String(w.timeout), String(h.timeout));
  push("persistence.netmask", netmaskText(w.netmask, family), netmaskText(h.netmask, family));
  push("persistence.engine", w.persistenceEngine || "none", h.persistenceEngine || "none");
  return out;
}

/** The destination configuration compareDestination compares, with nothing different. */
function sameDestinationConfig(w: DestinationConfig, h: DestinationConfig): boolean {
  return (
    w.forwarding === h.forwarding &&
    w.weight === h.weight &&
    w.upperThreshold === h.upperThreshold &&
    w.lowerThreshold === h.lowerThreshold &&
    (w.forwarding !== "Tunnel" ||
      (w.tunnelType === h.tunnelType &&
        w.tunnelPort === h.tunnelPort &&
        w.tunnelChecksum === h.tunnelChecksum))
  );
}

/**
 * The desired list and the kernel's hold the same keys, each with the same configuration, index by
 * index in the same order or in reverse (the kernel lists destinations newest first, so a list
 * added in order reads back reversed). A key is compared as its destinationKeyString would be
 * (family, address text, port). The kernel has no two destinations with one key, so a match also
 * means the desired list has none: the full comparison would find nothing.
 */
function sameDestinations(want: readonly DesiredDestination[], have: readonly KernelDestination[]): boolean {
  if (want.length !== have.length) return false;
  return matchesInOrder(want, have, false) || matchesInOrder(want, have, true);
}

function matchesInOrder(
  want: readonly DesiredDestination[],
  have: readonly KernelDestination[],
  reversed: boolean,
): boolean {
  const last = have.length - 1;
  for (let i = 0; i < want.length; i++) {
    const w = want[i] as DesiredDestination;
    const h = have[reversed ? last - i : i] as KernelDestination;
    if (w.key.port !== h.key.port || w.key.address !== h.key.address || w.key.family !== h.key.family)
      return false;
    if (!sameDestinationConfig(w.config, h.config)) return false;
  }
  return true;
}

function compareDestination(want: DesiredDestination, have: KernelDestination): readonly FieldDifference[] {
  const w = want.config;
  const h = have.config;
  if (sameDestinationConfig(w, h)) return NO_DIFFERENCES;
  const out: FieldDifference[] = [];
  const push = (field: string, expected: string | number, actual: string | number) => {
    if (expected !== actual) out.push({ field, expected: String(expected), actual: String(actual) });
  };
  push("forwarding", w.forwarding, h.forwarding);
  push("weight", w.weight, h.weight);
  push("upperThreshold", w.upperThreshold, h.upperThreshold);
  push("lowerThreshold", w.lowerThreshold, h.lowerThreshold);
  if (w.forwarding === "Tunnel") {
    push("tunnel.type", w.tunnelType, h.tunnelType);
    push("tunnel.port", w.tunnelPort, h.tunnelPort);
    push("tunnel.checksum", w.tunnelChecksum, h.tunnelChecksum);
  }
  return out;
}

const FLAG_NAMES: (keyof ServiceFlags)[] = [
  "persistent",
  "onePacket",
  "schedFlag1",
  "schedFlag2",
  "schedFlag3",
];

function flagsText(flags: ServiceFlags): string {
  const set = FLAG_NAMES.filter((f) => flags[f]);
  return set.length === 0 ? "none" : set.join(",");
}

function netmaskText(netmask: number, family: "IPv4" | "IPv6"): string {
  return family === "IPv4" ? numberToIpv4Mask(netmask) : String(netmask);
}

/** The kernel values only (no source, no policy), so plans carry nothing the kernel does not take. */
function plainService(s: IpvsService): IpvsService {
  return { key: s.key, config: s.config };
}

function plainDestination(d: IpvsDestination): IpvsDestination {
  return { key: d.key, config: d.config };
}
