/** Slow start: the ramp's fractions and steps (pure), and the weights computeDesired gives for them. */
import { describe, expect, it } from "vitest";
import { HealthCheckSchema } from "../../src/api/v1alpha1/index.ts";
import type { TargetHealth } from "../../src/health/health-monitor.ts";
import { withSlowStart } from "../../src/health/slow-start.ts";
import { slowStartWeight } from "../../src/model/desired.ts";
import { type HealthState, healthKey } from "../../src/model/snapshot.ts";

const vs = { namespace: "t", name: "web" };

function status(
  port: number,
  slowStartSeconds: number,
  healthy: boolean,
  lastTransitionAt?: number,
): TargetHealth {
  const key = healthKey(vs, "10.0.0.1", port);
  return {
    key,
    target: {
      key,
      virtualService: vs,
      address: "10.0.0.1",
      port,
      healthCheck: HealthCheckSchema.parse({ type: "TCP", slowStartSeconds }),
      source: { kind: "RealServer", namespace: "t", name: `rs-${port}` },
    },
    healthy,
    consecutiveSuccesses: 0,
    consecutiveFailures: 0,
    ...(lastTransitionAt === undefined ? {} : { lastTransitionAt }),
  };
}

describe("withSlowStart", () => {
  const statuses = [
    status(1, 10, true, 1_000), // recovered at 1 s, ramps over 10 s
    status(2, 10, true), // healthy from the start: no ramp
    status(3, 0, true, 1_000), // no slow start
    status(4, 10, false, 1_000), // unhealthy
  ];
  const state: HealthState = new Map(statuses.map((s) => [s.key, s.healthy]));

  it("gives a recovered backend a tenth at once and one more tenth per tenth of the period", () => {
    const at = (now: number) => withSlowStart(state, statuses, now);
    expect(at(1_000).state.get(statuses[0]!.key)).toBe(0.1);
    expect(at(1_000).nextStepAt).toBe(2_000);
    expect(at(5_500).state.get(statuses[0]!.key)).toBe(0.5);
    expect(at(5_500).nextStepAt).toBe(6_000);
    expect(at(9_999).state.get(statuses[0]!.key)).toBe(0.9);
    for (const s of statuses.slice(1)) expect(at(5_500).state.get(s.key)).toBe(s.healthy);
  });

  it("ends after the period (and returns the state itself when nothing ramps)", () => {
    const done = withSlowStart(state, statuses, 11_000);
    expect(done.state).toBe(state);
    expect(done.nextStepAt).toBeUndefined();
  });
});

describe("slowStartWeight", () => {
  it("scales the declared weight, rounding up, never below 1, and leaves 0 alone", () => {
    expect([0.1, 0.5, 0.9, 1].map((f) => slowStartWeight(10, f))).toEqual([1, 5, 9, 10]);
    expect(slowStartWeight(100, 0.25)).toBe(25);
    expect(slowStartWeight(3, 0.1)).toBe(1);
    expect(slowStartWeight(0, 0.5)).toBe(0);
  });
});
