/** change-scope.ts: which VirtualServices an EndpointSlice change touches, and when their sub-snapshot stands in. */
import { describe, expect, it } from "vitest";
import { changeIndex, coveredBy, subSnapshot } from "../../src/model/change-scope.ts";
import { computeDesired } from "../../src/model/desired.ts";
import type { Snapshot } from "../../src/model/snapshot.ts";

const NODE = { name: "n1", labels: {} };
const vs = (name: string, address: string, service: string, source?: string) => ({
  apiVersion: "ipvs.dev/v1alpha1",
  kind: "VirtualService",
  metadata: { namespace: "t", name },
  spec: {
    address,
    port: 80,
    backends: { serviceRef: { name: service, port: "http" }, ...(source ? { source } : {}) },
  },
});
const svc = (name: string) => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { namespace: "t", name },
  spec: { ports: [{ name: "http", port: 80, protocol: "TCP" }] },
});
const slice = (service: string, addresses: string[]) => ({
  apiVersion: "discovery.k8s.io/v1",
  kind: "EndpointSlice",
  metadata: { namespace: "t", name: `${service}-a`, labels: { "kubernetes.io/service-name": service } },
  addressType: "IPv4",
  ports: [{ name: "http", port: 8080, protocol: "TCP" }],
  endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
});
const realServer = (name: string, virtualService: string, address: string) => ({
  apiVersion: "ipvs.dev/v1alpha1",
  kind: "RealServer",
  metadata: { namespace: "t", name },
  spec: { virtualServiceRef: { name: virtualService }, address, port: 8080 },
});

function world(extra: Partial<Snapshot> = {}): Snapshot {
  return {
    virtualServices: [vs("web", "192.0.2.1", "web"), vs("api", "192.0.2.2", "api")],
    realServers: [realServer("web-extra", "web", "10.0.0.9")],
    services: [svc("web"), svc("api")],
    endpointSlices: [slice("web", ["10.0.0.1"]), slice("api", ["10.0.1.1"])],
    endpoints: [],
    ...extra,
  };
}

function indexed(snapshot: Snapshot) {
  const { table, problems } = computeDesired(snapshot, NODE);
  return changeIndex(snapshot, table, problems);
}

describe("subSnapshot and coveredBy", () => {
  it("takes the readers of the changed Service, their RealServers and Service, and the slices as they are now", () => {
    const before = world();
    const index = indexed(before);
    const now = [slice("web", ["10.0.0.1", "10.0.0.2"])];
    const sub = subSnapshot(index, ["t/web"], () => now)!;
    expect(sub.virtualServices.map((o) => (o as { metadata: { name: string } }).metadata.name)).toEqual([
      "web",
    ]);
    expect(sub.realServers).toHaveLength(1);
    expect(sub.services).toHaveLength(1);
    const { table, problems } = computeDesired(sub, NODE);
    expect(coveredBy(index, sub, table, problems)).toBe(true);
    // What the whole snapshot gives for web, the sub-snapshot gives too.
    const whole = computeDesired(
      { ...before, endpointSlices: [now[0]!, before.endpointSlices[1]!] },
      NODE,
    ).table;
    expect(table).toEqual(whole.filter((e) => e.service.source.name === "web"));
  });

  it("is empty for a Service no VirtualService reads", () => {
    expect(subSnapshot(indexed(world()), ["t/other"], () => [])).toEqual({
      virtualServices: [],
      realServers: [],
      services: [],
      endpointSlices: [],
      endpoints: [],
    });
  });

  it("declines a reader of core/v1 Endpoints, and any object that had a problem", () => {
    const endpoints = world({ virtualServices: [vs("web", "192.0.2.1", "web", "Endpoints")] });
    expect(subSnapshot(indexed(endpoints), ["t/web"], () => [])).toBeUndefined();
    const badRealServer = world({ realServers: [realServer("web-extra", "web", "10.0.0")] });
    expect(subSnapshot(indexed(badRealServer), ["t/web"], () => [])).toBeUndefined();
    const conflict = world({
      virtualServices: [vs("web", "192.0.2.1", "web"), vs("api", "192.0.2.1", "api")],
    });
    expect(subSnapshot(indexed(conflict), ["t/web"], () => [])).toBeUndefined();
  });

  it("is not covered when the result has a problem or other keys than before", () => {
    const index = indexed(world());
    const bad = subSnapshot(index, ["t/web"], () => [slice("web", ["10.0.0.300"])])!;
    const badResult = computeDesired(bad, NODE);
    expect(badResult.problems.length).toBeGreaterThan(0);
    expect(coveredBy(index, bad, badResult.table, badResult.problems)).toBe(false);
    const sub = subSnapshot(index, ["t/web"], () => [slice("web", ["10.0.0.1"])])!;
    expect(coveredBy(index, sub, [], [])).toBe(false); // web had a key and now has none
  });
});
