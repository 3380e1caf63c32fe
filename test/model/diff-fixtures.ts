/** Builders for tables used by the diff tests (not a test file itself). */
import type { DesiredDestination, DesiredEntry, DesiredService } from "../../src/model/desired-table.ts";
import {
  type DestinationConfig,
  type Family,
  type KernelDestination,
  type KernelService,
  NO_FLAGS,
  NO_TUNNEL,
  type ServiceConfig,
  type ServiceKey,
} from "../../src/vocabulary/table.ts";

export function tcp(address: string, port: number): ServiceKey {
  return { kind: "address", family: address.includes(":") ? "IPv6" : "IPv4", protocol: "TCP", address, port };
}

export function udp(address: string, port: number): ServiceKey {
  return { ...(tcp(address, port) as Extract<ServiceKey, { kind: "address" }>), protocol: "UDP" };
}

export function fwmark(mark: number, family: Family = "IPv4"): ServiceKey {
  return { kind: "fwmark", family, fwmark: mark };
}

export function serviceConfig(
  overrides: Partial<ServiceConfig> = {},
  family: Family = "IPv4",
): ServiceConfig {
  return {
    scheduler: "wlc",
    flags: { ...NO_FLAGS },
    timeout: 0,
    netmask: family === "IPv4" ? 0xffffffff : 128,
    persistenceEngine: "",
    ...overrides,
  };
}

export function destinationConfig(overrides: Partial<DestinationConfig> = {}): DestinationConfig {
  return { forwarding: "NAT", weight: 1, upperThreshold: 0, lowerThreshold: 0, ...NO_TUNNEL, ...overrides };
}

export function want(
  key: ServiceKey,
  destinations: DesiredDestination[],
  overrides: Partial<Omit<DesiredService, "key">> = {},
): DesiredEntry {
  return {
    service: {
      key,
      config: serviceConfig({}, key.family),
      source: { namespace: "edge", name: "web" },
      driftPolicy: "Repair",
      drainTimeoutSeconds: 300,
      ...overrides,
    },
    destinations,
  };
}

export function wantDest(
  address: string,
  port: number,
  config: Partial<DestinationConfig> = {},
): DesiredDestination {
  return {
    key: { family: address.includes(":") ? "IPv6" : "IPv4", address, port },
    config: destinationConfig(config),
    source: { kind: "RealServer", namespace: "edge", name: `rs-${address}-${port}` },
  };
}

export function have(
  key: ServiceKey,
  destinations: KernelDestination[],
  config: Partial<ServiceConfig> = {},
): { service: KernelService; destinations: KernelDestination[] } {
  return { service: { key, config: serviceConfig(config, key.family) }, destinations };
}

export function haveDest(
  address: string,
  port: number,
  config: Partial<DestinationConfig> = {},
  connections: { active?: number; inactive?: number } = {},
): KernelDestination {
  return {
    key: { family: address.includes(":") ? "IPv6" : "IPv4", address, port },
    config: destinationConfig(config),
    activeConnections: connections.active ?? 0,
    inactiveConnections: connections.inactive ?? 0,
    persistentConnections: 0,
  };
}

export const NO_SCOPE = { managedCidrs: [], managedFwmarks: [], journal: [] } as const;
