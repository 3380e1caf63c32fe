/**
 * The SyncRunner: when the node's IPVS table is synced. One node-wide, level-based sync at a time.
 *
 * - `requestSync(reason, scope)` only marks the world dirty; the reason is logged, never branched on. Any
 *   number of requests before a sync starts make one sync (a sync starts on a zero-delay timer, so a
 *   burst of informer events handled in one turn of the event loop is one sync); requests during a
 *   sync make exactly one more after it. The sync reads the whole desired state itself (the injected function), so nothing
 *   is queued per event.
 * - A request says how much may have changed: "all" (the default; every periodic resync, retry and
 *   wake-up is one) or "changes" (the caller knows what changed and may sync just that, see the agent).
 *   A sync is given "changes" only when every request it covers said so.
 * - Two sync starts are at least `minIntervalMs` apart (default 1 s).
 * - A periodic resync (default every 30 s after a sync started) finds out-of-band changes: IPVS has no
 *   change notifications.
 * - A failed sync (`ok` false or errors) is retried after an exponential backoff with jitter (default
 *   1 s doubling to 60 s), reset by a success; while failing, the retry takes the resync's place. Requests are not held back by the backoff, only by the
 *   minimum interval: a new input (a backend turned unhealthy) may be what fixes the failure, and a
 *   failing unrelated service must not delay it by a minute.
 * - A sync whose result asks to come back (`nextWakeAt`: drains) gets a wake-up then, when that is
 *   earlier than the resync.
 * - Nothing runs before `start()` and the gate (the sources have synced). `stop()` cancels the sync in
 *   progress through its AbortSignal, disarms every timer and, once it resolves, nothing touches the
 *   kernel again: SIGTERM leaves the table as it is.
 *
 * Time comes from a Clock (clock.ts). Every wait is a relative timer and a fired timer means "due",
 * so a wall-clock step neither stalls the runner nor fires it early.
 *
 * Health follows kube-proxy's rule: unhealthy when a sync request (an event, a resync, a retry) older
 * than `healthTimeoutMs` has not been applied by a successful sync started after it.
 */
import type { Logger } from "../observability/logger.ts";
import { type Clock, systemClock, type Timer } from "./clock.ts";
import { failedSync, type SyncResult, withoutApplied } from "./reconciler.ts";

/** How much a sync must look at: everything, or only what the caller recorded as changed. */
export type SyncScope = "all" | "changes";

/** One sync: the agent wraps `reconciler.sync({ desired: source.snapshot(), now, signal, ... })`. */
export type SyncFunction = (signal: AbortSignal, now: number, scope: SyncScope) => Promise<SyncResult>;

/** Opens when the sources have synced: a promise, or a predicate checked whenever a sync is requested. */
export type SyncGate = Promise<unknown> | (() => boolean);

export interface BackoffOptions {
  /** First retry delay in ms (default 1000). */
  initialMs?: number;
  /** Largest retry delay in ms (default 60000). */
  maxMs?: number;
  /** Up to this fraction is taken off each delay at random, so nodes do not retry in step (default 0.1). */
  jitter?: number;
}

export interface SyncRunnerOptions {
  sync: SyncFunction;
  clock?: Clock;
  /** No sync before this opens (default: open). With a predicate, call requestSync() once it turns true. */
  gate?: SyncGate;
  /** Least time between the starts of two syncs, in ms (default 1000). */
  minIntervalMs?: number;
  /** Time from the start of one sync to a periodic resync, in ms (default 30000). */
  resyncIntervalMs?: number;
  backoff?: BackoffOptions;
  /** A request unapplied for longer than this makes the runner unhealthy, in ms (default 2x resync). */
  healthTimeoutMs?: number;
  /** Random numbers in [0, 1) for the jitter (default Math.random). */
  random?: () => number;
  /** Called after each sync that ran to its end (not after one cancelled by stop()). */
  onSyncEnd?: (result: SyncResult, info: SyncInfo) => void;
  logger?: Logger;
}

export interface SyncInfo {
  startedAt: number;
  endedAt: number;
  /** Why it ran (distinct reasons of the requests it covers, at most MAX_REASONS). */
  reasons: string[];
  /** Failures in a row, this one included (0 after a success). */
  consecutiveFailures: number;
  /** When it failed: the delay before the retry, in ms. */
  retryInMs?: number;
  /** When it succeeded: when the oldest request it applied was made (network programming latency). */
  oldestRequestAt?: number;
}

/** What /healthz and /readyz need, as of the clock's now. */
export interface RunnerHealth {
  /** A sync succeeded since the gate opened (and the runner is not stopped). */
  ready: boolean;
  /** No sync request older than the health timeout stayed unapplied. */
  healthy: boolean;
  gateOpen: boolean;
  syncing: boolean;
  stopped: boolean;
  /** The oldest request that no successful sync has applied yet. */
  oldestUnappliedRequestAt: number | undefined;
  lastSyncStartedAt: number | undefined;
  lastSyncEndedAt: number | undefined;
  lastSuccessAt: number | undefined;
  /**
   * The result of the last sync that ran to its end (a thrown error comes back as a failed result),
   * without its applied operations (withoutApplied).
   */
  lastResult: SyncResult | undefined;
  consecutiveFailures: number;
  /** Syncs started since start(). */
  syncs: number;
}

const MAX_REASONS = 8;

export class SyncRunner {
  readonly #sync: SyncFunction;
  readonly #clock: Clock;
  readonly #gate: SyncGate | undefined;
  readonly #minInterval: number;
  readonly #resyncInterval: number;
  readonly #backoffInitial: number;
  readonly #backoffMax: number;
  readonly #jitter: number;
  readonly #healthTimeout: number;
  readonly #random: () => number;
  readonly #onSyncEnd: SyncRunnerOptions["onSyncEnd"];
  readonly #log: Logger | undefined;

  #started = false;
  #stopped = false;
  #gateOpen = false;
  #dirty = false;
  /** Whether a request since the last start said "all". */
  #all = false;
  readonly #reasons = new Set<string>();
  #running: Promise<void> | undefined;
  #abort: AbortController | undefined;
  /** Armed from a sync's start for the minimum interval; no sync starts while it is. */
  #cooldown: Timer | undefined;
  /** A zero-delay timer before a start, so requests made in the same turn of the event loop make one sync. */
  #kick: Timer | undefined;
  #resync: Timer | undefined;
  #retry: Timer | undefined;
  #wake: Timer | undefined;

  #oldestUnapplied: number | undefined;
  /** The oldest request made after the last sync started (what a success of that sync leaves unapplied). */
  #oldestSinceStart: number | undefined;
  #lastStartedAt: number | undefined;
  #lastEndedAt: number | undefined;
  #lastSuccessAt: number | undefined;
  #lastResult: SyncResult | undefined;
  #failures = 0;
  #succeeded = false;
  #syncs = 0;

  constructor(options: SyncRunnerOptions) {
    this.#sync = options.sync;
    this.#clock = options.clock ?? systemClock;
    this.#gate = options.gate;
    this.#minInterval = nonNegative(options.minIntervalMs ?? 1000, "minIntervalMs");
    this.#resyncInterval = positive(options.resyncIntervalMs ?? 30_000, "resyncIntervalMs");
    this.#backoffInitial = positive(options.backoff?.initialMs ?? 1000, "backoff.initialMs");
    this.#backoffMax = Math.max(
      this.#backoffInitial,
      positive(options.backoff?.maxMs ?? 60_000, "backoff.maxMs"),
    );
    this.#jitter = Math.min(1, nonNegative(options.backoff?.jitter ?? 0.1, "backoff.jitter"));
    this.#healthTimeout = positive(options.healthTimeoutMs ?? 2 * this.#resyncInterval, "healthTimeoutMs");
    this.#random = options.random ?? Math.random;
    this.#onSyncEnd = options.onSyncEnd;
    this.#log = options.logger;
  }

  /** Starts syncing once the gate opens (at once when there is none). Idempotent. */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.#log?.info(
      { minIntervalMs: this.#minInterval, resyncIntervalMs: this.#resyncInterval },
      "Starting sync runner",
    );
    const gate = this.#gate;
    if (gate === undefined) {
      this.#openGate();
    } else if (typeof gate === "function") {
      if (gate()) this.#openGate();
      else this.#log?.info("Waiting for sources to sync before the first sync");
    } else {
      this.#log?.info("Waiting for sources to sync before the first sync");
      gate.then(
        () => this.#openGate(),
        (error: unknown) =>
          this.#log?.error({ err: error }, "Sources failed to sync; the IPVS table is left as it is"),
      );
    }
  }

  /** Marks the world dirty: a sync runs as soon as the minimum interval allows. */
  requestSync(reason: string, scope: SyncScope = "all"): void {
    if (this.#stopped) return;
    this.#dirty = true;
    if (scope === "all") this.#all = true;
    if (this.#reasons.size < MAX_REASONS) this.#reasons.add(reason);
    if (this.#gateOpen) {
      const now = this.#clock.now();
      this.#oldestUnapplied ??= now;
      this.#oldestSinceStart ??= now;
    }
    this.#maybeStart();
  }

  /**
   * Cancels the sync in progress (its AbortSignal), disarms every timer and resolves once that sync has
   * returned: after that nothing touches the kernel. The table is left as it is. Idempotent.
   */
  async stop(): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      for (const timer of [this.#kick, this.#cooldown, this.#resync, this.#retry, this.#wake])
        timer?.cancel();
      this.#kick = this.#cooldown = this.#resync = this.#retry = this.#wake = undefined;
      this.#abort?.abort(new Error("the sync runner is stopping"));
      this.#log?.info(
        { syncing: this.#running !== undefined },
        "Stopping sync runner; the IPVS table is left as it is",
      );
    }
    await this.#running;
  }

  health(): RunnerHealth {
    const now = this.#clock.now();
    const pending = this.#oldestUnapplied;
    return {
      ready: this.#succeeded && !this.#stopped,
      healthy: pending === undefined || now - pending <= this.#healthTimeout,
      gateOpen: this.#gateOpen,
      syncing: this.#running !== undefined,
      stopped: this.#stopped,
      oldestUnappliedRequestAt: pending,
      lastSyncStartedAt: this.#lastStartedAt,
      lastSyncEndedAt: this.#lastEndedAt,
      lastSuccessAt: this.#lastSuccessAt,
      lastResult: this.#lastResult,
      consecutiveFailures: this.#failures,
      syncs: this.#syncs,
    };
  }

  #openGate(): void {
    if (this.#gateOpen || this.#stopped) return;
    this.#gateOpen = true;
    this.#log?.info("Sources synced; starting the first sync");
    // Time spent waiting for the sources is not a request left unapplied.
    this.requestSync("sources synced");
  }

  #maybeStart(): void {
    if (this.#stopped || !this.#started || !this.#dirty) return;
    if (this.#running !== undefined || this.#cooldown !== undefined || this.#kick !== undefined) return;
    if (!this.#gateOpen) {
      if (typeof this.#gate === "function" && this.#gate()) this.#openGate();
      return;
    }
    this.#kick = this.#clock.setTimer(0, () => {
      this.#kick = undefined;
      if (!this.#stopped && this.#dirty && this.#running === undefined) this.#startSync();
    });
  }

  #startSync(): void {
    const startedAt = this.#clock.now();
    const reasons = [...this.#reasons];
    const scope: SyncScope = this.#all ? "all" : "changes";
    this.#dirty = false;
    this.#all = false;
    this.#reasons.clear();
    this.#oldestSinceStart = undefined;
    this.#lastStartedAt = startedAt;
    this.#syncs++;
    // This sync covers a pending retry, resync and wake-up; its end arms them again as needed.
    for (const timer of [this.#retry, this.#resync, this.#wake]) timer?.cancel();
    this.#retry = this.#wake = undefined;
    this.#cooldown = this.#clock.setTimer(this.#minInterval, () => {
      this.#cooldown = undefined;
      this.#maybeStart();
    });
    this.#resync = this.#clock.setTimer(this.#resyncInterval, () => {
      this.#resync = undefined;
      this.requestSync("periodic resync");
    });
    const abort = new AbortController();
    this.#abort = abort;
    this.#log?.debug({ reasons }, "Syncing IPVS table");
    this.#running = this.#run(abort.signal, startedAt, reasons, scope).finally(() => {
      this.#running = undefined;
      this.#abort = undefined;
      this.#maybeStart();
    });
  }

  async #run(signal: AbortSignal, startedAt: number, reasons: string[], scope: SyncScope): Promise<void> {
    let result: SyncResult;
    try {
      result = await this.#sync(signal, startedAt, scope);
    } catch (error) {
      // The Reconciler reports failures as data; a throw is a bug in the wrapper, still retried.
      this.#log?.error({ err: error }, "Sync function threw");
      result = thrownResult(error);
    }
    if (this.#stopped) return; // cancelled by stop(): arm nothing, report nothing
    const endedAt = this.#clock.now();
    this.#lastEndedAt = endedAt;
    this.#lastResult = withoutApplied(result);
    const failed = !result.ok || result.errors.length > 0;
    const info: SyncInfo = { startedAt, endedAt, reasons, consecutiveFailures: 0 };
    if (failed) {
      this.#failures++;
      const retryInMs = this.#backoff(this.#failures);
      info.consecutiveFailures = this.#failures;
      info.retryInMs = retryInMs;
      // The retry replaces the resync while failing, so the backoff may grow past the resync interval.
      this.#resync?.cancel();
      this.#resync = undefined;
      this.#retry = this.#clock.setTimer(retryInMs, () => {
        this.#retry = undefined;
        this.requestSync("retry after a failed sync");
      });
      this.#log?.warn(
        {
          reasons,
          errors: result.errors.map((e) => `${e.kind}: ${e.message}`),
          failedOperations: result.failed,
          consecutiveFailures: this.#failures,
          retryInMs,
        },
        "Sync failed; retrying with backoff",
      );
    } else {
      if (this.#failures > 0) {
        this.#log?.info({ afterFailures: this.#failures }, "Sync succeeded after failures");
      }
      this.#failures = 0;
      this.#lastSuccessAt = endedAt;
      const oldest = this.#oldestUnapplied;
      if (oldest !== undefined && oldest <= startedAt) info.oldestRequestAt = oldest;
      this.#oldestUnapplied = this.#oldestSinceStart;
      if (!this.#succeeded) this.#log?.info("First sync succeeded; ready");
      this.#succeeded = true;
      const changed = result.outcomes.length > 0;
      const fields = {
        reasons,
        elapsedMs: endedAt - startedAt,
        operations: result.outcomes.length,
        drift: result.drift.length,
        draining: result.draining,
      };
      if (changed) this.#log?.info(fields, "Synced IPVS table");
      else this.#log?.debug(fields, "Synced IPVS table");
    }
    this.#armWake(result.nextWakeAt, endedAt, info.retryInMs ?? startedAt + this.#resyncInterval - endedAt);
    try {
      this.#onSyncEnd?.(result, info);
    } catch (error) {
      this.#log?.error({ err: error }, "Sync listener threw");
    }
  }

  /** A wake-up at `nextWakeAt` (drains), unless the resync or retry (in `untilNextMs`) comes first anyway. */
  #armWake(nextWakeAt: number | undefined, endedAt: number, untilNextMs: number): void {
    if (nextWakeAt === undefined) return;
    const delay = Math.max(0, nextWakeAt - endedAt);
    if (delay >= untilNextMs) return;
    this.#wake = this.#clock.setTimer(delay, () => {
      this.#wake = undefined;
      this.requestSync("drain deadline");
    });
  }

  #backoff(failures: number): number {
    const exponential = this.#backoffInitial * 2 ** Math.min(failures - 1, 52);
    const capped = Math.min(this.#backoffMax, exponential);
    return Math.round(capped * (1 - this.#jitter * this.#random()));
  }
}

function thrownResult(error: unknown): SyncResult {
  return failedSync(
    "Internal",
    `the sync threw: ${error instanceof Error ? error.message : String(error)}`,
    [],
    error,
  );
}

function positive(value: number, name: string): number {
  if (!(value > 0) || !Number.isFinite(value)) throw new RangeError(`${name} must be > 0, got ${value}`);
  return value;
}

function nonNegative(value: number, name: string): number {
  if (!(value >= 0) || !Number.isFinite(value)) throw new RangeError(`${name} must be >= 0, got ${value}`);
  return value;
}
