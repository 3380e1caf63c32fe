/** Small builders of desired tables for reconciler tests. */
import type { DesiredDestination, DesiredEntry } from "../../src/model/desired-table.ts";
import { NO_FLAGS, NO_TUNNEL, type ServiceKey } from "../../src/vocabulary/table.ts";

export const tcpKey = (address: string, port = 80): ServiceKey => ({
  kind: "address",
  family: "IPv4",
  protocol: "TCP",
  address,
  port,
});

export function realServer(address: string, weight = 1): DesiredDestination {
  return {
    key: { family: "IPv4", address, port: 8080 },
    config: { forwarding: "NAT", weight, upperThreshold: 0, lowerThreshold: 0, ...NO_TUNNEL },
    source: { kind: "RealServer", namespace: "demo", name: address },
  };
}

/** A desired service keyed `key`, programmed for VirtualService demo/<name>. */
export function service(
  key: ServiceKey,
  destinations: DesiredDestination[],
  options: {
    scheduler?: string;
    name?: string;
    driftPolicy?: "Repair" | "Report";
    persistent?: boolean;
  } = {},
): DesiredEntry {
  const persistent = options.persistent ?? (key.kind === "address" && key.port === 0);
  return {
    service: {
      key,
      config: {
        scheduler: options.scheduler ?? "rr",
        flags: { ...NO_FLAGS, persistent },
        timeout: persistent ? 300 : 0,
        netmask: key.family === "IPv4" ? 0xffffffff : 128,
        persistenceEngine: "",
      },
      source: { namespace: "demo", name: options.name ?? "vs" },
      driftPolicy: options.driftPolicy ?? "Repair",
      drainTimeoutSeconds: 300,
    },
    destinations,
  };
}
