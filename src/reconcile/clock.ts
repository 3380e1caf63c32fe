/**
 * Time for the runner, behind an interface so tests advance it deterministically
 * (test/support/fake-clock.ts) instead of sleeping.
 *
 * `now()` is wall-clock milliseconds because the Reconciler stores drain start times in the journal,
 * which outlives the process. Wall clocks can step, so the runner never waits for `now()` to reach a
 * deadline: it arms relative timers and treats a fired timer as "due" (see runner.ts).
 */

/** An armed timer; cancelling a fired or cancelled timer does nothing. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `callback` once, `ms` (>= 0) milliseconds from now. */
  setTimer(ms: number, callback: () => void): Timer;
}

/** The process clock: Date.now() and setTimeout. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, callback) {
    const handle = setTimeout(callback, Math.max(0, ms));
    return { cancel: () => clearTimeout(handle) };
  },
};
