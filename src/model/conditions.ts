/**
 * metav1.Condition semantics, to the letter of apimachinery's meta.SetStatusCondition: a condition is
 * keyed by type; lastTransitionTime moves only when status changes; reason, message and
 * observedGeneration are updated in place. Pure: `now` is an argument.
 */
import type { Condition } from "../api/v1alpha1/index.ts";

export type ConditionStatus = "True" | "False" | "Unknown";

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration?: number;
}

/** Returns new conditions with `input` set (the input list is not changed). */
export function setCondition(
  conditions: readonly Condition[],
  input: ConditionInput,
  now: Date,
): Condition[] {
  const out = conditions.map((c) => ({ ...c }));
  const existing = out.find((c) => c.type === input.type);
  const stamp = now.toISOString().replace(/\.\d{3}Z$/, "Z");
  if (!existing) {
    out.push({
      type: input.type,
      status: input.status,
      ...(input.observedGeneration === undefined ? {} : { observedGeneration: input.observedGeneration }),
      lastTransitionTime: stamp,
      reason: input.reason,
      message: input.message,
    });
    return out;
  }
  if (existing.status !== input.status) {
    existing.status = input.status;
    existing.lastTransitionTime = stamp;
  }
  existing.reason = input.reason;
  existing.message = input.message;
  if (input.observedGeneration !== undefined) existing.observedGeneration = input.observedGeneration;
  return out;
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}
