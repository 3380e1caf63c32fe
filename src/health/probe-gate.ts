/**
 * The node-wide bound on probes: at most `maxInFlight` running at once (a counting semaphore with a FIFO
 * queue) and, optionally, at most `maxStartsPerSecond` started per second (starts spaced 1/rate apart).
 * A probe that cannot start at once waits in the queue and is counted in `delayed`, so an operator sees
 * the bound biting (the effective interval is then longer than the configured one).
 */
import type { Clock, Timer } from "../reconcile/clock.ts";

export interface GateTicket {
  /** Leaves the queue; does nothing once the probe has started. */
  cancel(): void;
}

interface Waiting {
  start: (release: () => void) => void;
}

export class ProbeGate {
  readonly #clock: Clock;
  readonly #maxInFlight: number;
  readonly #spacingMs: number;
  readonly #queue = new Set<Waiting>();
  #inFlight = 0;
  #delayed = 0;
  #nextStartAt = Number.NEGATIVE_INFINITY;
  #wake: Timer | undefined;

  constructor(options: { clock: Clock; maxInFlight: number; maxStartsPerSecond?: number }) {
    if (!(options.maxInFlight >= 1))
      throw new RangeError(`maxInFlight must be at least 1, got ${options.maxInFlight}`);
    const rate = options.maxStartsPerSecond ?? 0;
    if (!(rate >= 0)) throw new RangeError(`maxStartsPerSecond must be 0 (unbounded) or more, got ${rate}`);
    this.#clock = options.clock;
    this.#maxInFlight = Math.floor(options.maxInFlight);
    this.#spacingMs = rate > 0 ? 1000 / rate : 0;
  }

  /** Probes running now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Probes waiting for a slot or for the rate bound. */
  get queued(): number {
    return this.#queue.size;
  }

  /** Probes that could not start when they were due, since the gate was made. */
  get delayed(): number {
    return this.#delayed;
  }

  /** Calls `start` (now or later) with a `release` to call once when the probe has finished. */
  enter(start: (release: () => void) => void): GateTicket {
    const waiting: Waiting = { start };
    if (this.#queue.size === 0 && this.#canStartNow()) {
      this.#launch(waiting);
      return { cancel: () => {} };
    }
    this.#delayed++;
    this.#queue.add(waiting);
    this.#pump();
    return { cancel: () => this.#queue.delete(waiting) };
  }

  /** Forgets every queued probe and the pending wake-up (running ones release as they finish). */
  clear(): void {
    this.#queue.clear();
    this.#wake?.cancel();
    this.#wake = undefined;
  }

  #canStartNow(): boolean {
    if (this.#inFlight >= this.#maxInFlight) return false;
    if (this.#spacingMs === 0) return true;
    const now = this.#clock.now();
    // A wall clock stepped backwards must not stall probing: never wait longer than one spacing.
    if (this.#nextStartAt - now > this.#spacingMs) this.#nextStartAt = now;
    return now >= this.#nextStartAt;
  }

  #launch(waiting: Waiting): void {
    this.#inFlight++;
    if (this.#spacingMs > 0)
      this.#nextStartAt = Math.max(this.#clock.now(), this.#nextStartAt) + this.#spacingMs;
    let released = false;
    waiting.start(() => {
      if (released) return;
      released = true;
      this.#inFlight--;
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#queue.size > 0 && this.#canStartNow()) {
      const next = this.#queue.values().next().value as Waiting;
      this.#queue.delete(next);
      this.#launch(next);
    }
    if (this.#queue.size > 0 && this.#inFlight < this.#maxInFlight && this.#wake === undefined) {
      this.#wake = this.#clock.setTimer(this.#nextStartAt - this.#clock.now(), () => {
        this.#wake = undefined;
        this.#pump();
      });
    }
  }
}
