/**
 * Drain policy: how an owned destination that must go leaves the kernel without cutting traffic.
 *
 * - It is first set to weight 0 (no new connections; skipped when it already is 0) and recorded.
 * - It is deleted once its active + inactive connections reach 0, or once the drain timeout has
 *   passed since the drain started.
 * - UDP services and a drain timeout of 0 delete at once. For UDP this is deliberate and ignores
 *   spec.drain.timeoutSeconds: UDP has no connection end to wait for (the kernel's UDP "connections"
 *   are only idle timers, so a drain would always run to its timeout while new datagrams of a flow
 *   keep going to the weight-0 destination). kube-proxy's IPVS mode deletes UDP real servers at once
 *   too, and docs/api.md says so under spec.drain.
 *   A fwmark service has no protocol in its key, so it drains like TCP.
 * - A destination with no connections at all is deleted at once (nothing to drain).
 * - Restarts keep drains: the caller persists the entries, and an owned destination found at
 *   weight 0 with connections that is not desired and not recorded counts as draining from `now`
 *   (so a restart at worst restarts the timeout, never cuts connections short).
 *
 * Pure: `now` (milliseconds) is an argument.
 */
import type { KernelDestination } from "../vocabulary/table.ts";

export interface DrainEntry {
  /** serviceKeyString() of the service. */
  service: string;
  /** destinationKeyString() of the destination. */
  destination: string;
  /** When the drain started, in milliseconds (the caller's clock). */
  startedAt: number;
  timeoutSeconds: number;
}

/** Used for a service that is no longer desired (its drain timeout is unknown) and was never recorded. */
export const DEFAULT_DRAIN_TIMEOUT_SECONDS = 300;

export function drainKey(service: string, destination: string): string {
  return `${service}|${destination}`;
}

export type DrainDecision =
  | { action: "delete"; reason: "Immediate" | "NoConnections" | "TimedOut" }
  | { action: "drain"; entry: DrainEntry; setWeightZero: boolean };

export interface DrainInput {
  service: string;
  destination: KernelDestination;
  destinationKey: string;
  /** True for UDP services: delete at once, whatever timeoutSeconds says (see the header). */
  udp: boolean;
  timeoutSeconds: number;
  /** The entry recorded by an earlier sync, if any. */
  recorded: DrainEntry | undefined;
  now: number;
}

export function decideDrain(input: DrainInput): DrainDecision {
  const { destination, timeoutSeconds, recorded, now } = input;
  if (input.udp || timeoutSeconds <= 0) return { action: "delete", reason: "Immediate" };
  if (destination.activeConnections + destination.inactiveConnections <= 0) {
    return { action: "delete", reason: "NoConnections" };
  }
  const startedAt = recorded?.startedAt ?? now;
  if (now - startedAt >= timeoutSeconds * 1000) return { action: "delete", reason: "TimedOut" };
  return {
    action: "drain",
    entry: { service: input.service, destination: input.destinationKey, startedAt, timeoutSeconds },
    setWeightZero: destination.config.weight !== 0,
  };
}
