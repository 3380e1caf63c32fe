/** Builders for computeDesired tests (not a test file itself). */
import type { V1EndpointSlice, V1Endpoints, V1Service } from "@kubernetes/client-node";
import type { DesiredResult } from "../../src/model/desired.ts";
import type { Snapshot } from "../../src/model/snapshot.ts";
import { destinationKeyString, serviceKeyString } from "../../src/vocabulary/table.ts";

export const NS = "edge";
export const NODE = { name: "worker-1", labels: { "kubernetes.io/hostname": "worker-1", zone: "a" } };

export function vs(name: string, spec: Record<string, unknown>, meta: Record<string, unknown> = {}): unknown {
  return {
    apiVersion: "ipvs.dev/v1alpha1",
    kind: "VirtualService",
    metadata: { name, namespace: NS, ...meta },
    spec,
  };
}

export function rs(name: string, spec: Record<string, unknown>, meta: Record<string, unknown> = {}): unknown {
  return {
    apiVersion: "ipvs.dev/v1alpha1",
    kind: "RealServer",
    metadata: { name, namespace: NS, ...meta },
    spec: { virtualServiceRef: { name: "web" }, ...spec },
  };
}

export function service(
  name: string,
  ports: { name?: string; port: number; protocol?: string }[],
): V1Service {
  return { apiVersion: "v1", kind: "Service", metadata: { name, namespace: NS }, spec: { ports } };
}

export interface Ep {
  address: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}

export function slice(
  name: string,
  serviceName: string,
  endpoints: Ep[],
  ports: { name?: string; port?: number; protocol?: string }[],
  addressType = "IPv4",
  namespace = NS,
): V1EndpointSlice {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name, namespace, labels: { "kubernetes.io/service-name": serviceName } },
    addressType,
    ports,
    endpoints: endpoints.map((e) => ({
      addresses: [e.address],
      conditions: {
        ...(e.ready === undefined ? {} : { ready: e.ready }),
        ...(e.serving === undefined ? {} : { serving: e.serving }),
        ...(e.terminating === undefined ? {} : { terminating: e.terminating }),
      },
    })),
  };
}

export function coreEndpoints(
  name: string,
  ready: string[],
  notReady: string[],
  ports: { name?: string; port: number }[],
): V1Endpoints {
  return {
    apiVersion: "v1",
    kind: "Endpoints",
    metadata: { name, namespace: NS },
    subsets: [
      { addresses: ready.map((ip) => ({ ip })), notReadyAddresses: notReady.map((ip) => ({ ip })), ports },
    ],
  };
}

export function snapshot(parts: Partial<Snapshot>): Snapshot {
  return { virtualServices: [], realServers: [], endpointSlices: [], endpoints: [], services: [], ...parts };
}

/** "198.51.100.5:8080 w=1 NAT" (+ " draining", + " <source kind>/<name>") per destination, by service. */
export function summary(result: DesiredResult): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const e of result.table) {
    out[serviceKeyString(e.service.key)] = e.destinations.map(
      (d) =>
        `${destinationKeyString(d.key)} w=${d.config.weight} ${d.config.forwarding}${d.draining ? " draining" : ""}`,
    );
  }
  return out;
}

/** "Kind ObjectKind ns/name field" per problem. */
export function problemSummary(result: DesiredResult): string[] {
  return result.problems.map((p) =>
    [p.kind, p.object.kind, `${p.object.namespace}/${p.object.name}`, p.field].filter(Boolean).join(" "),
  );
}
