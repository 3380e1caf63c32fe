/**
 * A Clock whose time moves only when a test says so. `advance(ms)` fires the timers that fall due, in
 * order of their deadline (then of arming), with `now()` equal to each deadline, and lets the promise
 * work each one starts settle before the next fires: a sync started by a timer finishes (and arms its
 * own timers) inside the same advance, as it would in real time with an instant kernel.
 */
import type { Clock, Timer } from "../../src/reconcile/clock.ts";

interface Pending {
  at: number;
  seq: number;
  callback: () => void;
}

export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Set<Pending>();

  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(ms: number, callback: () => void): Timer {
    const pending: Pending = { at: this.#now + Math.max(0, ms), seq: this.#seq++, callback };
    this.#timers.add(pending);
    return { cancel: () => this.#timers.delete(pending) };
  }

  /** Armed timers (fired and cancelled ones are gone). */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** The deadline of the earliest armed timer. */
  get nextTimerAt(): number | undefined {
    return this.#earliest()?.at;
  }

  /** Moves time forward by `ms`, firing every timer that falls due (including ones armed on the way). */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await settle();
    for (;;) {
      const next = this.#earliest();
      if (!next || next.at > target) break;
      this.#timers.delete(next);
      this.#now = Math.max(this.#now, next.at);
      next.callback();
      await settle();
    }
    this.#now = target;
    await settle();
  }

  /** Moves time to the earliest armed timer and fires it (and any due with it). */
  async advanceToNextTimer(): Promise<void> {
    const next = this.#earliest();
    if (next) await this.advance(next.at - this.#now);
  }

  /** Steps the wall clock (NTP, a VM resumed) without firing anything: `now()` jumps, timers keep their delays. */
  step(ms: number): void {
    this.#now += ms;
    for (const t of this.#timers) t.at += ms;
  }

  #earliest(): Pending | undefined {
    let best: Pending | undefined;
    for (const t of this.#timers) {
      if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  }
}

/** Lets pending promise chains run to completion: macrotask turns, not time. */
export async function settle(turns = 10): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
