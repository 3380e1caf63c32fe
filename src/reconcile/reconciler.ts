/**
 * The Reconciler: the one object that changes a node's IPVS table. `apply`, `flush --owned` and the
 * agent all sync through it. It holds the kernel handle, the cached ownership journal and the compiled
 * ownership scope, and runs one sync at a time (calls that arrive while one runs are coalesced: the
 * latest input runs next and every waiting caller gets its result).
 *
 * One sync, under the node lock (node-lock.ts, shared with every other writer on the node):
 * 1. read the journal if it changed on disk (a stat otherwise); entries of another boot own nothing;
 * 2. read the whole kernel table (entry by entry: undecodable entries come back as data), or, when the
 *    caller allows it (`maxKernelAgeMs`), use the table the last sync read with its applied operations
 *    folded in (known-table.ts): only while that read is younger than the limit, the last sync applied
 *    everything, no drain waits for connection counters and no other writer changed the journal;
 * 3. prune the journal to keys that are in the kernel (an out-of-band delete ends a claim);
 * 4. diff (pure) -> operations, drift, drains (from the known table: only the keys whose desired entry
 *    changed, see #plan); with keep-last-good (frozen services of invalid
 *    VirtualServices) and no removals at all when the input was read only in part; differences the
 *    desired table explains by changing since the previous sync are changes, not drift;
 * 5. journal every service about to be created (before touching the kernel), only if that changes it;
 * 6. apply service additions and updates, then the rest, in chunks (cancellation is checked between
 *    chunks): only a FAILED addService skips its service's destination operations; a failed
 *    updateService is reported and its destination operations still go ahead;
 *    after a transport failure nothing more is sent (results: applied / failed / unknown);
 * 7. journal the outcome (created, deleted, drains) if it changed, and say when to come back
 *    (`nextWakeAt`: the earliest drain deadline, or a poll while drains wait for connections).
 *
 * `syncChanges` is the short way for a few services whose inputs changed (the agent's EndpointSlice
 * changes): it costs what those services cost, not what the table does, and declines (changing
 * nothing) whenever the whole sync above would decide differently.
 *
 * Kernel, transport, journal and lock failures never throw: they come back in `errors`.
 */
import { operationObject } from "../kernel/error-hints.ts";
import { IpvsError, IpvsUnavailableError } from "../kernel/errors.ts";
import type { IpvsKernel, OperationResult } from "../kernel/ipvs-kernel.ts";
import type { DesiredEntry, DesiredTable } from "../model/desired-table.ts";
import { type DiffResult, type DriftItem, diff } from "../model/diff.ts";
import { type DrainEntry, drainKey } from "../model/drain.ts";
import { type FwmarkRange, type OwnershipRule, ownershipRule } from "../model/ownership.ts";
import type { Logger } from "../observability/logger.ts";
import { type Operation, operationServiceKey } from "../vocabulary/operations.ts";
import { sortByServiceKey } from "../vocabulary/order.ts";
import {
  destinationKeyString,
  type KernelSnapshot,
  type KernelTable,
  type ServiceKey,
  serviceKeyString,
} from "../vocabulary/table.ts";
import { foldApplied } from "./known-table.ts";
import { NO_LOCK, type NodeLock } from "./node-lock.ts";
import { emptyJournal, type Journal, type JournalStore, sameJournal } from "./ownership-journal.ts";

export interface ReconcilerOptions {
  kernel: IpvsKernel;
  journal: JournalStore;
  /** The node lock shared with other writers (default: none, for tests and single-writer use). */
  lock?: NodeLock;
  /** Managed CIDRs and fwmark ranges (validated by the caller); the journal part comes from `journal`. */
  scope: { managedCidrs: readonly string[]; managedFwmarks: readonly FwmarkRange[] };
  /** The kernel's boot id (boot-id.ts); journal entries of another boot own nothing. */
  bootId: string;
  /** Operations per kernel.apply() call: the granularity of cancellation (default 256). */
  chunkSize?: number;
  /** How soon to look again at drains that wait for their connections, in ms (default 5000). */
  drainPollMs?: number;
  logger?: Logger;
}

export interface SyncInput {
  desired: DesiredTable;
  /** The caller's clock, in ms; a step backwards is clamped to the last value seen. */
  now: number;
  signal?: AbortSignal;
  /** Plan only: read and compute, change neither the kernel nor the journal (takes no lock). */
  dryRun?: boolean;
  /** Drain timeout for owned destinations of services no longer desired (diff's default: 300 s). */
  defaultDrainTimeoutSeconds?: number;
  /** Set when the input was read only in part (the reason): nothing is deleted or drained. */
  partialInput?: string;
  /** VirtualServices ("namespace/name" -> why) that exist but are invalid: their services keep their last valid state. */
  invalidVirtualServices?: ReadonlyMap<string, string>;
  /** Drains recorded earlier are forgotten, so a drain timeout of 0 removes everything now (flush --no-drain). */
  forgetDrains?: boolean;
  /** VirtualServices ("namespace/name" -> why) with invalid real servers: none of their destinations is removed. */
  holdRemovalsFor?: ReadonlyMap<string, string>;
  /**
   * How old (in the caller's clock) the table a previous sync read may be to stand in for a dump (see
   * the header); default 0: every sync dumps the kernel. The agent passes its resync interval, so a
   * change costs its own operations only and out-of-band edits are still found within one resync.
   */
  maxKernelAgeMs?: number;
}

export interface ChangesInput {
  /** The new desired entries of the services whose inputs changed. */
  entries: DesiredTable;
  now: number;
  signal?: AbortSignal;
  /** As in SyncInput: how old the table a previous sync read may be to stand in for a dump. */
  maxKernelAgeMs: number;
}

/** See Reconciler.planned(). */
export interface PlannedTable {
  /** serviceKeyString -> the desired entry the last plan had for it. */
  desired: ReadonlyMap<string, DesiredEntry>;
  /** Whether a kernel service is this agent's (ownership.ts's rule over the current journal). */
  owns: OwnershipRule;
  /** Removed destinations waiting at weight 0 (journal drains). */
  drains: readonly DrainEntry[];
}

export type OutcomeResult = "applied" | "failed" | "skipped" | "planned" | "unknown";

export interface OperationOutcome {
  operation: Operation;
  /** "add service TCP 192.0.2.10:80", "update destination TCP 192.0.2.10:80 -> 198.51.100.5:8080 (weight 1)". */
  readonly description: string;
  result: OutcomeResult;
  /** For failed, skipped and unknown operations: why. */
  reason?: string;
}

/** Internal: a bug (the sync threw); the others are the world's doing. */
export type SyncErrorKind =
  | "Unavailable"
  | "KernelRead"
  | "Transport"
  | "Journal"
  | "Lock"
  | "Cancelled"
  | "Internal";

export interface SyncError {
  kind: SyncErrorKind;
  message: string;
  cause?: unknown;
}

export interface SyncResult {
  outcomes: OperationOutcome[];
  drift: DriftItem[];
  /** Destinations still draining (weight 0, waiting for connections or the drain timeout). */
  draining: number;
  /** Those drains (service and destination keys, since when, for how long). */
  drains: DrainEntry[];
  /** Operations that failed, were skipped or whose result is unknown. */
  failed: number;
  /** Every planned operation applied and no error. */
  ok: boolean;
  errors: SyncError[];
  /** The kernel table at the start of this sync (undefined when it could not be read). */
  snapshot: KernelSnapshot | undefined;
  /** Whether this sync dumped the kernel (false: the table a previous sync read, changes folded in). */
  dumped: boolean;
  /** When to sync again at the latest, in the caller's clock (drains); undefined: no need. */
  nextWakeAt: number | undefined;
  /** Things worth telling the user that are not errors (a journal of another boot, stale temp files). */
  notes: string[];
  /** Owned services and destinations in the kernel after this sync (for status). */
  owned: { services: number; destinations: number };
}

const DEFAULT_CHUNK = 256;

export class Reconciler {
  readonly #options: ReconcilerOptions;
  #journal: Journal | undefined;
  #fingerprint: string | undefined;
  /** The stored journal equals #journal (false after a journal of another boot was set aside). */
  #stored = false;
  #lastNow = Number.NEGATIVE_INFINITY;
  /**
   * What the last sync that changed the kernel planned from: per key its desired entry (differences it
   * explains are changes, not drift; unchanged entries need no diff), frozen and held reasons, drift.
   */
  #lastPlan: PlanMemory | undefined;
  /** The table of the last sync that applied everything, and when it was read from the kernel. */
  #known: { snapshot: KernelSnapshot; readAt: number } | undefined;
  /** Positions of the known table's keys (the table of #known; partial syncs keep its order). */
  #knownIndex: { table: KernelTable; index: Map<string, number> } | undefined;
  #journalSet: { journal: Journal; keys: ReadonlySet<string> } | undefined;
  /** Owned services and destinations after the last sync. */
  #owned = { services: 0, destinations: 0 };
  /** planned()'s ownership rule, compiled once per journal. */
  #plannedRule: { journal: Journal; owns: OwnershipRule } | undefined;
  #cleaned = false;
  #active: Promise<unknown> | undefined;
  #queued:
    | { input: SyncInput; promise: Promise<SyncResult>; settle: (r: Promise<SyncResult>) => void }
    | undefined;

  constructor(options: ReconcilerOptions) {
    this.#options = options;
  }

  /** One sync (see the header). Calls made while one runs are coalesced: the latest input wins. */
  sync(input: SyncInput): Promise<SyncResult> {
    if (!this.#active) return this.#start(input);
    if (this.#queued) {
      this.#queued.input = input;
      return this.#queued.promise;
    }
    let settle!: (r: Promise<SyncResult>) => void;
    const promise = new Promise<SyncResult>((resolve) => {
      settle = resolve;
    });
    this.#queued = { input, promise, settle };
    return promise;
  }

  /**
   * What the last sync planned from, for metrics read at scrape time (so the kernel key -> VirtualService
   * mapping is this plan's, never a second computation): its desired entries by serviceKeyString (partial
   * syncs update them in place), the ownership rule over the current journal, and the drains in progress.
   * Undefined before the first sync that wrote the journal. Read-only: callers must not change it.
   */
  planned(): PlannedTable | undefined {
    const plan = this.#lastPlan;
    const journal = this.#journal;
    if (!plan || !journal) return undefined;
    if (this.#plannedRule?.journal !== journal) {
      this.#plannedRule = {
        journal,
        owns: ownershipRule({ ...this.#options.scope, journal: journal.services }),
      };
    }
    return { desired: plan.desired, owns: this.#plannedRule.owns, drains: journal.drains };
  }

  /** The journal as last read or written (undefined before the first sync). */
  get journal(): Journal | undefined {
    return this.#journal === undefined ? undefined : structuredClone(this.#journal);
  }

  /**
   * Syncs only the services of `entries` (see the header), or returns undefined having changed nothing
   * when that cannot be exact: it needs no sync running, the table a previous sync read (younger than
   * maxKernelAgeMs) with everything applied, no other service's drain due, the journal unchanged on
   * disk, each entry at a key the last plan had for the same VirtualService (not frozen or held), and
   * a plan that adds or removes destinations only (no service added or deleted). A removal or drain
   * decides on connection counters: those services' destinations are read first (one small dump each).
   */
  syncChanges(input: ChangesInput): Promise<SyncResult | undefined> {
    if (this.#active || this.#queued) return Promise.resolve(undefined);
    return this.#track(this.#changes(input));
  }

  #start(input: SyncInput): Promise<SyncResult> {
    return this.#track(this.#run(input));
  }

  /** Makes `run` the active sync; once it ends the queued one (if any) starts. */
  #track<T>(run: Promise<T>): Promise<T> {
    const tracked = run.finally(() => {
      this.#active = undefined;
      const next = this.#queued;
      this.#queued = undefined;
      if (next) next.settle(this.#start(next.input));
    });
    this.#active = tracked;
    return tracked;
  }

  async #changes(input: ChangesInput): Promise<SyncResult | undefined> {
    const now = Math.max(input.now, this.#lastNow);
    const known = this.#known;
    const last = this.#lastPlan;
    const journal = this.#journal;
    if (
      !known ||
      !last ||
      !journal ||
      !this.#stored ||
      known.snapshot.undecodable.length > 0 ||
      now - known.readAt >= input.maxKernelAgeMs
    )
      return undefined;
    const keys = new Set<string>();
    for (const e of input.entries) {
      const k = serviceKeyString(e.service.key);
      const before = last.desired.get(k)?.service.source;
      if (
        before?.namespace !== e.service.source.namespace ||
        before.name !== e.service.source.name ||
        last.frozen.has(k) ||
        last.held.has(k) ||
        keys.has(k)
      )
        return undefined;
      keys.add(k);
    }
    // Another service's drain that is due now is whole-sync work (its wake-up may not have come yet).
    if (journal.drains.some((d) => !keys.has(d.service) && d.startedAt + d.timeoutSeconds * 1000 <= now))
      return undefined;
    if (input.signal?.aborted) return failedSync("Cancelled", "cancelled before it started", []);
    let release: () => Promise<void>;
    try {
      release = await (this.#options.lock ?? NO_LOCK).acquire(input.signal);
    } catch (error) {
      return failedSync("Lock", (error as Error).message, [], error);
    }
    try {
      // Another writer on this node (apply) journals before it changes the kernel.
      if (this.#known !== known || (await this.#options.journal.fingerprint()) !== this.#fingerprint)
        return undefined;
      const index = this.#indexOf(known.snapshot.table);
      const kernelEntries: KernelTable = [];
      for (const k of keys) {
        const i = index.get(k);
        if (i === undefined) return undefined;
        kernelEntries.push(known.snapshot.table[i]!);
      }
      const { kernel } = this.#options;
      const drainsHere = journal.drains
        .filter((d) => keys.has(d.service))
        .map((d) => (d.startedAt > now ? { ...d, startedAt: now } : d));
      const journaled = this.#journaledKeys(journal);
      const owned = { ...this.#options.scope, journal: [...keys].filter((k) => journaled.has(k)) };
      const plan = () =>
        diff(input.entries, kernelEntries, owned, drainsHere, now, { previous: last.desired });
      let result = plan();
      // A removal or drain decides on connection counters: read those services' destinations (one
      // small dump each) and plan again.
      const deciding = new Set([...drainsHere, ...result.drains].map((d) => d.service));
      for (const o of result.operations) if (removes(o)) deciding.add(key(o));
      if (deciding.size > 0) {
        for (const [i, e] of kernelEntries.entries()) {
          if (!deciding.has(serviceKeyString(e.service.key))) continue;
          try {
            kernelEntries[i] = {
              service: e.service,
              destinations: await kernel.listDestinations(e.service.key),
            };
          } catch {
            return undefined; // the whole sync reads the table and reports why
          }
        }
        result = plan();
      }
      if (result.operations.some((o) => o.op === "addService" || o.op === "deleteService")) return undefined;
      this.#lastNow = now;
      const errors: SyncError[] = [];
      const otherDrains = journal.drains.filter((d) => !keys.has(d.service));
      let storedHere = drainsHere;
      if (!sameDrains(storedHere, result.drains)) {
        storedHere = result.drains;
        try {
          await this.#saveJournal({ ...journal, drains: [...otherDrains, ...result.drains] });
        } catch (error) {
          return failedSync(
            "Journal",
            `the ownership journal cannot be written: ${(error as Error).message}`,
            [],
            error,
          );
        }
      }
      const outcomes = [
        ...(await this.#applyChunks(
          result.operations.filter((o) => o.op === "updateService"),
          input.signal,
          errors,
        )),
        ...(await this.#applyChunks(
          result.operations.filter((o) => o.op !== "updateService"),
          input.signal,
          errors,
        )),
      ];
      const drainsNow = quiesced(result.drains, outcomes);
      const drains = [...otherDrains, ...drainsNow];
      if (!sameDrains(storedHere, drainsNow)) {
        try {
          await this.#saveJournal({ ...this.#journal!, drains });
        } catch (error) {
          errors.push({
            kind: "Journal",
            message: `the ownership journal cannot be written: ${(error as Error).message}`,
            cause: error,
          });
        }
      }
      for (const e of input.entries) last.desired.set(serviceKeyString(e.service.key), e);
      last.drift = mergeDrift(last.drift, keys, result.drift);
      let table = known.snapshot.table;
      if (errors.length === 0 && outcomes.every((o) => o.result === "applied")) {
        table = table.slice();
        for (const entry of foldApplied({ table: kernelEntries, undecodable: [] }, result.operations).table)
          table[index.get(serviceKeyString(entry.service.key))!] = entry;
        this.#known = { snapshot: { table, undecodable: known.snapshot.undecodable }, readAt: known.readAt };
        this.#knownIndex = { table, index };
      } else {
        this.#known = undefined; // the next sync reads the kernel
      }
      let destinations = this.#owned.destinations;
      for (const o of outcomes) {
        if (o.result !== "applied") continue;
        if (o.operation.op === "addDestination") destinations++;
        else if (o.operation.op === "deleteDestination") destinations--;
      }
      this.#owned = { ...this.#owned, destinations };
      return report(
        outcomes,
        { ...result, drains, drift: orderedDrift(last.drift, last.desired, table) },
        errors,
        known.snapshot,
        false,
        nextWake(drains, now, this.#options.drainPollMs ?? 5000),
        [],
        this.#owned,
      );
    } finally {
      await release();
    }
  }

  /** The journal's services as a set, computed once per journal. */
  #journaledKeys(journal: Journal): ReadonlySet<string> {
    if (this.#journalSet?.journal !== journal)
      this.#journalSet = { journal, keys: new Set(journal.services) };
    return this.#journalSet.keys;
  }

  /** The positions of a known table's keys, computed once per table. */
  #indexOf(table: KernelTable): Map<string, number> {
    if (this.#knownIndex?.table !== table) {
      const index = new Map<string, number>();
      for (const [i, e] of table.entries()) index.set(serviceKeyString(e.service.key), i);
      this.#knownIndex = { table, index };
    }
    return this.#knownIndex.index;
  }

  async #run(input: SyncInput): Promise<SyncResult> {
    const now = Math.max(input.now, this.#lastNow);
    this.#lastNow = now;
    const notes: string[] = [];
    if (input.signal?.aborted) return failedSync("Cancelled", "cancelled before it started", notes);
    let release: (() => Promise<void>) | undefined;
    if (!input.dryRun) {
      try {
        release = await (this.#options.lock ?? NO_LOCK).acquire(input.signal);
      } catch (error) {
        return failedSync("Lock", (error as Error).message, notes, error);
      }
    }
    try {
      return await this.#locked(input, now, notes);
    } finally {
      await release?.();
    }
  }

  async #locked(input: SyncInput, now: number, notes: string[]): Promise<SyncResult> {
    const { kernel } = this.#options;
    let journal: Journal;
    const fingerprint = this.#fingerprint;
    try {
      journal = await this.#loadJournal(notes, !input.dryRun);
    } catch (error) {
      return failedSync(
        "Journal",
        `the ownership journal is not usable: ${(error as Error).message}`,
        notes,
        error,
      );
    }
    const known = this.#known;
    let reuse =
      known !== undefined &&
      now - known.readAt < (input.maxKernelAgeMs ?? 0) &&
      this.#fingerprint === fingerprint &&
      journal.drains.length === 0;
    let snapshot: KernelSnapshot | undefined = reuse ? known!.snapshot : undefined;
    let readAt = reuse ? known!.readAt : now;
    let planned = snapshot ? this.#plan(input, journal, snapshot, now, true) : undefined;
    // A removal decides on connection counters, which only a dump has: then read the kernel after all.
    if (planned && removesSomething(planned.result)) {
      reuse = false;
      snapshot = undefined;
      readAt = now;
    }
    if (!snapshot) {
      if (!input.dryRun) this.#known = undefined;
      try {
        snapshot = await kernel.readTable({ stats: false }); // a sync compares configuration, not counters
      } catch (error) {
        const kind = error instanceof IpvsUnavailableError ? "Unavailable" : "KernelRead";
        return failedSync(kind, `reading the IPVS table failed: ${(error as Error).message}`, notes, error);
      }
      planned = this.#plan(input, journal, snapshot, now, false);
    }
    const { result, pruned, drains, memory } = planned!;
    const owners = journal.owners;

    if (input.dryRun) {
      const outcomes = result.operations.map(
        (operation): OperationOutcome => new Outcome(operation, "planned"),
      );
      return report(outcomes, result, [], snapshot, !reuse, undefined, notes);
    }

    // The owner of every desired key, so keep-last-good can find a VirtualService's service later.
    const nextOwners: Record<string, string> = { ...owners };
    for (const e of input.desired) {
      nextOwners[serviceKeyString(e.service.key)] = `${e.service.source.namespace}/${e.service.source.name}`;
    }
    const serviceOps = result.operations.filter((o) => o.op === "addService" || o.op === "updateService");
    const otherOps = result.operations.filter((o) => o.op !== "addService" && o.op !== "updateService");
    const adding = serviceOps.flatMap((o) =>
      o.op === "addService" ? [serviceKeyString(o.service.key)] : [],
    );
    const before: Journal = {
      bootId: this.#options.bootId,
      services: [...new Set([...pruned, ...adding])],
      owners: nextOwners,
      drains,
    };
    const errors: SyncError[] = [];
    try {
      await this.#saveJournal(before);
    } catch (error) {
      return failedSync(
        "Journal",
        `the ownership journal cannot be written: ${(error as Error).message}`,
        notes,
        error,
      );
    }

    this.#lastPlan = memory;
    this.#known = undefined; // until this sync has applied everything
    const outcomes: OperationOutcome[] = [];
    const serviceOutcomes = await this.#applyChunks(serviceOps, input.signal, errors);
    outcomes.push(...serviceOutcomes);
    // Only a service that could not be created takes its destinations with it.
    const notCreated = new Map<string, string>();
    for (const o of serviceOutcomes) {
      if (o.operation.op === "addService" && (o.result === "failed" || o.result === "skipped"))
        notCreated.set(key(o.operation), o.reason ?? "");
    }
    const runnable = otherOps.filter((operation) => !notCreated.has(key(operation)));
    const ran = await this.#applyChunks(runnable, input.signal, errors);
    let next = 0;
    for (const operation of otherOps) {
      const reason = notCreated.get(key(operation));
      outcomes.push(
        reason === undefined
          ? ran[next++]!
          : new Outcome(operation, "skipped", `its service could not be created: ${reason}`),
      );
    }

    // A failed add leaves no claim: its key was absent from this sync's read, so it is not in
    // `pruned` either. One refused with EEXIST was made by another writer after the read (or missed by
    // a dump racing one: the two cannot be told apart) and is foreign from then on: left alone and
    // reported, the safe side (test/reconcile/reconciler-safety.test.ts).
    const created = new Set<string>();
    const gone = new Set<string>();
    for (const o of outcomes) {
      const k = key(o.operation);
      if (o.operation.op === "addService" && (o.result === "applied" || o.result === "unknown"))
        created.add(k);
      if (o.operation.op === "deleteService" && o.result === "applied") gone.add(k);
    }
    const nextDrains = quiesced(result.drains, outcomes);
    const after: Journal = {
      bootId: this.#options.bootId,
      services: [...new Set([...pruned, ...created])].filter((s) => !gone.has(s)),
      owners: nextOwners,
      drains: nextDrains,
    };
    try {
      await this.#saveJournal(after);
    } catch (error) {
      errors.push({
        kind: "Journal",
        message: `the ownership journal cannot be written: ${(error as Error).message}`,
        cause: error,
      });
    }
    if (errors.length === 0 && outcomes.every((o) => o.result === "applied")) {
      this.#known = { snapshot: foldApplied(snapshot, result.operations), readAt };
      // A caller that reuses known tables (the agent) will sync changes from this one: index it now,
      // not on the clock of the first change.
      if ((input.maxKernelAgeMs ?? 0) > 0) {
        this.#indexOf(this.#known.snapshot.table);
        this.#journaledKeys(this.#journal ?? after);
      }
    }
    this.#owned = this.#countOwned(snapshot, after.services, outcomes);
    return report(
      outcomes,
      { ...result, drains: nextDrains },
      errors,
      snapshot,
      !reuse,
      nextWake(nextDrains, now, this.#options.drainPollMs ?? 5000),
      notes,
      this.#owned,
    );
  }

  /**
   * Steps 3 and 4 of the header for one kernel table: prune the journal, then diff. With `known` (the
   * table is the last sync's, with its applied operations folded in, so every key that sync planned for
   * now holds what it wanted), only the keys whose desired entry (by identity: computeDesired keeps
   * unchanged entries), frozen or held reason changed are diffed; the drift of the others is the last
   * sync's. Anything unusual (undecodable entries, partial input, drains) diffs the whole table.
   */
  #plan(input: SyncInput, journal: Journal, snapshot: KernelSnapshot, now: number, known: boolean) {
    // Only keys in the kernel stay ours: an out-of-band delete (or a reboot) ends the claim.
    const inKernel = new Set(snapshot.table.map((e) => serviceKeyString(e.service.key)));
    for (const u of snapshot.undecodable) if (u.key) inKernel.add(serviceKeyString(u.key));
    const pruned = journal.services.filter((k) => inKernel.has(k));
    if (pruned.length < journal.services.length) {
      this.#options.logger?.info(
        { forgotten: journal.services.filter((k) => !inKernel.has(k)) },
        "journal entries no longer in the kernel own nothing now",
      );
    }
    const drains = (input.forgetDrains ? [] : journal.drains)
      .filter((d) => inKernel.has(d.service))
      .map((d) => (d.startedAt > now ? { ...d, startedAt: now } : d)); // a clock step back
    const owners = journal.owners;

    const frozen = new Map<string, string>();
    for (const [owner, why] of input.invalidVirtualServices ?? []) {
      for (const k of pruned) {
        if (owners[k] === owner) {
          frozen.set(k, `VirtualService ${owner} is invalid (${why}): its last valid state is kept`);
        }
      }
    }
    const heldServices = new Map<string, string>();
    for (const [owner, why] of input.holdRemovalsFor ?? []) {
      const keys = [
        ...pruned.filter((k) => owners[k] === owner),
        ...input.desired
          .filter((e) => `${e.service.source.namespace}/${e.service.source.name}` === owner)
          .map((e) => serviceKeyString(e.service.key)),
      ];
      for (const k of keys) heldServices.set(k, `not removed while ${why}`);
    }
    const desiredByKey = new Map<string, DesiredEntry>();
    for (const e of input.desired) desiredByKey.set(serviceKeyString(e.service.key), e);
    const last = this.#lastPlan;
    const changed =
      known &&
      last !== undefined &&
      snapshot.undecodable.length === 0 &&
      input.partialInput === undefined &&
      drains.length === 0
        ? changedKeys(last, desiredByKey, frozen, heldServices)
        : undefined;
    const result: DiffResult = diff(
      changed ? input.desired.filter((e) => changed.has(serviceKeyString(e.service.key))) : input.desired,
      changed ? snapshot.table.filter((e) => changed.has(serviceKeyString(e.service.key))) : snapshot.table,
      { ...this.#options.scope, journal: pruned },
      drains,
      now,
      {
        ...(input.defaultDrainTimeoutSeconds === undefined
          ? {}
          : { defaultDrainTimeoutSeconds: input.defaultDrainTimeoutSeconds }),
        undecodable: snapshot.undecodable,
        ...(last === undefined ? {} : { previous: last.desired }),
        frozen,
        removalsBlocked: {
          ...(input.partialInput === undefined
            ? {}
            : { all: `not removed: the input was read only in part (${input.partialInput})` }),
          services: heldServices,
        },
      },
    );
    const drift = changed ? mergeDrift(last!.drift, changed, result.drift) : groupDrift(result.drift);
    if (changed) result.drift = orderedDrift(drift, desiredByKey, snapshot.table);
    const memory: PlanMemory = { desired: desiredByKey, frozen, held: heldServices, drift };
    return { result, pruned, drains, memory };
  }

  /** Owned services and destinations after the sync: the snapshot, plus what was applied. */
  #countOwned(snapshot: KernelSnapshot, journal: string[], outcomes: OperationOutcome[]) {
    const owned = ownershipRule({ ...this.#options.scope, journal });
    const destinations = new Map<string, number>();
    for (const e of snapshot.table) {
      if (owned(e.service.key)) destinations.set(serviceKeyString(e.service.key), e.destinations.length);
    }
    for (const o of outcomes) {
      if (o.result !== "applied") continue;
      const k = key(o.operation);
      const op = o.operation.op;
      if (op === "addService") destinations.set(k, 0);
      else if (op === "deleteService") destinations.delete(k);
      else if (op === "addDestination") destinations.set(k, (destinations.get(k) ?? 0) + 1);
      else if (op === "deleteDestination") destinations.set(k, (destinations.get(k) ?? 1) - 1);
    }
    let total = 0;
    for (const n of destinations.values()) total += n;
    return { services: destinations.size, destinations: total };
  }

  async #loadJournal(notes: string[], write: boolean): Promise<Journal> {
    const store = this.#options.journal;
    if (write && !this.#cleaned) {
      const removed = await store.cleanTemporaryFiles();
      if (removed > 0) notes.push(`removed ${removed} temporary journal files left by an interrupted writer`);
      this.#cleaned = true;
    }
    const fingerprint = await store.fingerprint();
    if (this.#journal === undefined || fingerprint !== this.#fingerprint) {
      let journal = await store.load();
      if (journal.bootId !== this.#options.bootId) {
        if (journal.services.length + journal.drains.length > 0) {
          notes.push(
            journal.bootId === undefined
              ? `the journal has no boot id (written by an older version): its ${journal.services.length} services own nothing now; adopt them with a managed CIDR or fwmark range if they are ours`
              : `the journal was written in another boot (${journal.bootId}): its ${journal.services.length} services own nothing now (the kernel table was empty at boot)`,
          );
        }
      }
      // An empty journal (or no file) needs no rewrite; one of another boot is rewritten once.
      const entries = journal.services.length + journal.drains.length;
      this.#stored = journal.bootId === this.#options.bootId || entries === 0;
      if (journal.bootId !== this.#options.bootId) journal = emptyJournal(this.#options.bootId);
      this.#journal = journal;
      this.#fingerprint = fingerprint;
    }
    return this.#journal; // read-only: a sync builds new journals, it never edits this one
  }

  /** Writes the journal only when it changed. */
  async #saveJournal(journal: Journal): Promise<void> {
    if (this.#stored && this.#journal !== undefined && sameJournal(journal, this.#journal)) return;
    const store = this.#options.journal;
    await store.save(journal);
    this.#journal = journal;
    this.#stored = true;
    this.#fingerprint = await store.fingerprint();
  }

  /** Applies operations chunk by chunk; stops (the rest skipped) when cancelled or after a transport failure. */
  async #applyChunks(
    operations: Operation[],
    signal: AbortSignal | undefined,
    errors: SyncError[],
  ): Promise<OperationOutcome[]> {
    const size = Math.max(1, this.#options.chunkSize ?? DEFAULT_CHUNK);
    const outcomes: OperationOutcome[] = [];
    let stop: string | undefined = errors.some((e) => e.kind === "Transport" || e.kind === "Cancelled")
      ? "not sent: an earlier part of this sync stopped"
      : undefined;
    for (let start = 0; start < operations.length; start += size) {
      const chunk = operations.slice(start, start + size);
      if (stop === undefined && signal?.aborted) {
        stop = "not sent: the sync was cancelled";
        errors.push({
          kind: "Cancelled",
          message: "the sync was cancelled; the next one re-reads the kernel",
        });
      }
      if (stop !== undefined) {
        outcomes.push(...chunk.map((operation): OperationOutcome => new Outcome(operation, "skipped", stop)));
        continue;
      }
      let results: OperationResult[];
      try {
        results = await this.#options.kernel.apply(chunk);
      } catch (error) {
        // The kernel handle should report transport failures per request; be safe if one throws.
        const message = (error as Error).message;
        results = chunk.map(() => ({
          ok: false,
          unknown: true,
          error: error instanceof IpvsError ? error : new IpvsError("apply", "", "EIO", message),
        }));
      }
      const chunkOutcomes = chunk.map((operation, i) => toOutcome(operation, results[i]));
      outcomes.push(...chunkOutcomes);
      const lost = chunkOutcomes.find((o) => o.result === "unknown");
      if (lost) {
        stop = "not sent after a transport failure; the next sync re-reads the kernel";
        errors.push({ kind: "Transport", message: `the netlink exchange failed: ${lost.reason}` });
      }
    }
    return outcomes;
  }
}

interface PlanMemory {
  /** Updated in place by partial syncs (syncChanges). */
  desired: Map<string, DesiredEntry>;
  frozen: ReadonlyMap<string, string>;
  held: ReadonlyMap<string, string>;
  /** Drift items by service key (serviceKeyString). */
  drift: Map<string, DriftItem[]>;
}

/** Keys whose desired entry, frozen or held reason is not what the last plan had. */
function changedKeys(
  last: PlanMemory,
  desired: ReadonlyMap<string, DesiredEntry>,
  frozen: ReadonlyMap<string, string>,
  held: ReadonlyMap<string, string>,
): Set<string> {
  const changed = new Set<string>();
  for (const [k, e] of desired) if (last.desired.get(k) !== e) changed.add(k);
  for (const k of last.desired.keys()) if (!desired.has(k)) changed.add(k);
  for (const [now, before] of [
    [frozen, last.frozen],
    [held, last.held],
  ] as const) {
    for (const [k, why] of now) if (before.get(k) !== why) changed.add(k);
    for (const k of before.keys()) if (!now.has(k)) changed.add(k);
  }
  return changed;
}

function groupDrift(items: readonly DriftItem[]): Map<string, DriftItem[]> {
  const groups = new Map<string, DriftItem[]>();
  for (const item of items) {
    const group = groups.get(item.service);
    if (group) group.push(item);
    else groups.set(item.service, [item]);
  }
  return groups;
}

/**
 * The lasting drift of the keys not diffed now (what is ignored or only reported stays so; what was
 * repaired is done, since the last sync applied everything), and the new drift of those that were.
 */
function mergeDrift(
  last: ReadonlyMap<string, DriftItem[]>,
  changed: ReadonlySet<string>,
  fresh: readonly DriftItem[],
): Map<string, DriftItem[]> {
  const merged = new Map<string, DriftItem[]>();
  for (const [k, items] of last) {
    if (changed.has(k)) continue;
    const lasting = items.filter((d) => d.action !== "Repaired");
    if (lasting.length > 0) merged.set(k, lasting);
  }
  for (const [k, items] of groupDrift(fresh)) merged.set(k, items);
  return merged;
}

/** Drift items in the order a whole-table diff gives them (by service key, canonical order). */
function orderedDrift(
  groups: ReadonlyMap<string, DriftItem[]>,
  desired: ReadonlyMap<string, DesiredEntry>,
  table: KernelTable,
): DriftItem[] {
  if (groups.size === 0) return [];
  const keys = new Map<string, ServiceKey>();
  for (const k of groups.keys()) {
    const e = desired.get(k);
    if (e) keys.set(k, e.service.key);
  }
  if (keys.size < groups.size) {
    for (const e of table) {
      const k = serviceKeyString(e.service.key);
      if (groups.has(k) && !keys.has(k)) keys.set(k, e.service.key);
    }
  }
  const known = [...groups].filter(([k]) => keys.has(k));
  const other = [...groups].filter(([k]) => !keys.has(k)); // none expected; kept, never dropped
  return [...sortByServiceKey(known, ([k]) => keys.get(k)!), ...other].flatMap(([, items]) => items);
}

/** Whether a plan deletes or drains anything (decisions that need a dump's connection counters). */
function removesSomething(result: DiffResult): boolean {
  return result.drains.length > 0 || result.operations.some(removes);
}

/** A deletion, or the weight-0 update that starts a drain. */
function removes(o: Operation): boolean {
  return (
    o.op === "deleteService" ||
    o.op === "deleteDestination" ||
    (o.op === "updateDestination" && o.destination.config.weight === 0)
  );
}

/** The drains whose weight-0 update reached the kernel: a drain's clock runs only from then. */
function quiesced(drains: readonly DrainEntry[], outcomes: readonly OperationOutcome[]): DrainEntry[] {
  const notQuiesced = new Set<string>();
  for (const o of outcomes) {
    const op = o.operation;
    if (op.op === "updateDestination" && op.destination.config.weight === 0 && o.result !== "applied")
      notQuiesced.add(drainKey(serviceKeyString(op.service), destinationKeyString(op.destination.key)));
  }
  return drains.filter((d) => !notQuiesced.has(drainKey(d.service, d.destination)));
}

function sameDrains(a: readonly DrainEntry[], b: readonly DrainEntry[]): boolean {
  const text = (d: DrainEntry) => `${drainKey(d.service, d.destination)}|${d.startedAt}|${d.timeoutSeconds}`;
  const before = new Set(a.map(text));
  return a.length === b.length && b.every((d) => before.has(text(d)));
}

/**
 * A result to keep after it was reported: without its applied operations (a first sync of a large
 * table has hundreds of thousands; what failed, was skipped or is unknown stays).
 */
export function withoutApplied(result: SyncResult): SyncResult {
  return { ...result, outcomes: result.outcomes.filter((o) => o.result !== "applied") };
}

/** A sync that changed nothing because of one error. */
export function failedSync(
  kind: SyncErrorKind,
  message: string,
  notes: string[],
  cause?: unknown,
): SyncResult {
  return {
    outcomes: [],
    drift: [],
    draining: 0,
    drains: [],
    failed: 0,
    ok: false,
    errors: [{ kind, message, ...(cause === undefined ? {} : { cause }) }],
    snapshot: undefined,
    dumped: false,
    nextWakeAt: undefined,
    notes,
    owned: { services: 0, destinations: 0 },
  };
}

function report(
  outcomes: OperationOutcome[],
  result: DiffResult,
  errors: SyncError[],
  snapshot: KernelSnapshot,
  dumped: boolean,
  nextWakeAt: number | undefined,
  notes: string[],
  owned: { services: number; destinations: number } = { services: 0, destinations: 0 },
): SyncResult {
  const failed = outcomes.filter(
    (o) => o.result === "failed" || o.result === "skipped" || o.result === "unknown",
  ).length;
  return {
    outcomes,
    drift: result.drift,
    draining: result.drains.length,
    drains: result.drains,
    failed,
    ok: failed === 0 && errors.length === 0,
    errors,
    snapshot,
    dumped,
    nextWakeAt,
    notes,
    owned,
  };
}

/** The earliest drain deadline, or a poll while a drain waits for its connections to end. */
function nextWake(drains: readonly DrainEntry[], now: number, pollMs: number): number | undefined {
  if (drains.length === 0) return undefined;
  const deadline = Math.min(...drains.map((d) => d.startedAt + d.timeoutSeconds * 1000));
  return Math.max(now, Math.min(deadline, now + pollMs));
}

/**
 * An operation's outcome, its description made when read: a first sync of a large table has hundreds
 * of thousands of outcomes, and a description is a string per operation that few are ever read for.
 */
class Outcome implements OperationOutcome {
  readonly operation: Operation;
  readonly result: OutcomeResult;
  readonly reason?: string;
  constructor(operation: Operation, result: OutcomeResult, reason?: string) {
    this.operation = operation;
    this.result = result;
    if (reason !== undefined) this.reason = reason;
  }
  get description(): string {
    return describe(this.operation);
  }
}

function toOutcome(operation: Operation, result: OperationResult | undefined): OperationOutcome {
  if (!result) return new Outcome(operation, "failed", "no result from the kernel");
  if (result.ok) return new Outcome(operation, "applied");
  const reason = result.error instanceof IpvsError ? result.error.message : String(result.error);
  return new Outcome(operation, result.unknown ? "unknown" : "failed", reason);
}

function key(operation: Operation): string {
  return serviceKeyString(operationServiceKey(operation));
}

const VERBS: Record<Operation["op"], string> = {
  addService: "add service",
  updateService: "update service",
  deleteService: "delete service",
  addDestination: "add destination",
  updateDestination: "update destination",
  deleteDestination: "delete destination",
};

export function describe(operation: Operation): string {
  if (operation.op === "updateDestination" || operation.op === "addDestination") {
    return `${VERBS[operation.op]} ${operationObject(operation)} (weight ${operation.destination.config.weight})`;
  }
  return `${VERBS[operation.op]} ${operationObject(operation)}`;
}
