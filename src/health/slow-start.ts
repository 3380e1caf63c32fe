/**
 * Slow start (healthCheck.slowStartSeconds): a real server that recovers gets its weight back in tenths
 * over the slow-start period instead of all at once, so the scheduler does not send it a flood of new
 * connections the moment it answers again (least-connection schedulers would otherwise pick it for
 * every new connection until it caught up). No IPVS peer does this; kube-proxy has no health checks.
 *
 * Pure: from the probers' statuses and the time, the HealthState to compute with (a fraction in
 * (0, 1) for a ramping backend) and when the next step is due (the agent syncs then).
 */
import type { HealthState, HealthValue } from "../model/snapshot.ts";
import type { TargetHealth } from "./health-monitor.ts";

/** Steps of the ramp: the weight changes at most this many times (one sync each). */
export const SLOW_START_STEPS = 10;

export interface SlowStartState {
  state: HealthState;
  /** When the next step of some ramp is due (ms); undefined when nothing ramps. */
  nextStepAt: number | undefined;
}

/**
 * `state` with the backends still in their slow start set to their fraction. A backend ramps when its
 * check has slowStartSeconds, it is healthy and it became healthy by a transition (not by its initial
 * state) less than slowStartSeconds ago. Returns `state` itself when nothing ramps.
 */
export function withSlowStart(
  state: HealthState,
  statuses: readonly TargetHealth[],
  now: number,
): SlowStartState {
  let ramped: Map<string, HealthValue> | undefined;
  let nextStepAt: number | undefined;
  for (const h of statuses) {
    const periodMs = h.target.healthCheck.slowStartSeconds * 1000;
    if (periodMs <= 0 || !h.healthy || h.lastTransitionAt === undefined) continue;
    const elapsed = Math.max(0, now - h.lastTransitionAt);
    if (elapsed >= periodMs) continue;
    const stepMs = periodMs / SLOW_START_STEPS;
    const step = Math.floor(elapsed / stepMs) + 1; // 1..STEPS: the first step gives a tenth at once
    if (step >= SLOW_START_STEPS) continue;
    ramped ??= new Map(state);
    ramped.set(h.key, step / SLOW_START_STEPS);
    const due = h.lastTransitionAt + step * stepMs;
    nextStepAt = nextStepAt === undefined ? due : Math.min(nextStepAt, due);
  }
  return { state: ramped ?? state, nextStepAt };
}
