import { describe, expect, it } from "vitest";
import {
  aggregateRealServerStatus,
  aggregateVirtualServiceStatus,
  indexNodeReports,
  indexRealServerHealth,
} from "../../src/model/aggregate-status.ts";
import { problemKey, syncEvents } from "../../src/model/sync-events.ts";

const t = (s: number) => new Date(Date.UTC(2026, 11, 1, 12, 0, s));
const node = (
  name: string,
  entries: { name: string; programmed: boolean; drifted?: boolean; message?: string }[],
) => ({
  node: name,
  status: {
    services: 0,
    destinations: 0,
    virtualServices: entries.map((e) => ({ message: "", ...e })),
  } as never,
});

describe("aggregate status", () => {
  it("counts nodes and follows kstatus: Reconciling while some selected nodes lag, Ready when all programmed", () => {
    const views = indexNodeReports([
      node("a", [{ name: "demo/web", programmed: true }]),
      node("b", [{ name: "demo/web", programmed: false, message: "add service TCP ...: ENOENT" }]),
    ]);
    const ref = { namespace: "demo", name: "web", generation: 3 };
    const lagging = aggregateVirtualServiceStatus(
      ref,
      views.get("demo/web"),
      undefined,
      t(0),
      "192.0.2.1:80",
    );
    const byType = (s: typeof lagging) =>
      Object.fromEntries((s.conditions ?? []).map((c) => [c.type, c.status]));
    expect(lagging.nodes).toEqual({ selected: 2, programmed: 1, drifted: 0, summary: "1/2" });
    expect(byType(lagging)).toMatchObject({
      Ready: "False",
      Reconciling: "True",
      Stalled: "False",
      Accepted: "True",
    });
    expect(lagging.observedGeneration).toBe(3);
    const done = aggregateVirtualServiceStatus(
      ref,
      indexNodeReports([
        node("a", [{ name: "demo/web", programmed: true }]),
        node("b", [{ name: "demo/web", programmed: true }]),
      ]).get("demo/web"),
      lagging,
      t(10),
    );
    expect(byType(done)).toMatchObject({ Ready: "True", Reconciling: "False", Programmed: "True" });
    const readyOld = lagging.conditions!.find((c) => c.type === "Accepted")!.lastTransitionTime;
    expect(done.conditions!.find((c) => c.type === "Accepted")!.lastTransitionTime).toBe(readyOld);
    expect(done.conditions!.find((c) => c.type === "Ready")!.lastTransitionTime).toBe("2026-12-01T12:00:10Z");
  });

  it("is Stalled when a node refuses the object, and counts drifted nodes", () => {
    const views = indexNodeReports([
      node("a", [
        {
          name: "demo/bad",
          programmed: false,
          message: "Invalid: VirtualService demo/bad spec.port: too big",
        },
      ]),
      node("b", [{ name: "demo/web", programmed: true, drifted: true }]),
    ]);
    const bad = aggregateVirtualServiceStatus(
      { namespace: "demo", name: "bad", generation: 1 },
      views.get("demo/bad"),
      undefined,
      t(0),
    );
    expect(bad.conditions!.find((c) => c.type === "Stalled")).toMatchObject({
      status: "True",
      reason: "Invalid",
    });
    const web = aggregateVirtualServiceStatus(
      { namespace: "demo", name: "web", generation: 1 },
      views.get("demo/web"),
      undefined,
      t(0),
    );
    expect(web.nodes?.drifted).toBe(1);
    expect(web.conditions!.find((c) => c.type === "Drifted")?.status).toBe("True");
  });

  it("gives a RealServer its phase from its VirtualService and its own spec", () => {
    const view = indexNodeReports([node("a", [{ name: "demo/web", programmed: true }])]).get("demo/web");
    expect(
      aggregateRealServerStatus(
        { namespace: "demo", name: "a", generation: 2, enabled: true },
        view,
        undefined,
        t(0),
      ).phase,
    ).toBe("Active");
    expect(
      aggregateRealServerStatus(
        { namespace: "demo", name: "a", generation: 2, enabled: false },
        view,
        undefined,
        t(0),
      ).phase,
    ).toBe("Disabled");
    expect(
      aggregateRealServerStatus(
        { namespace: "demo", name: "a", generation: 2, enabled: true },
        undefined,
        undefined,
        t(0),
      ).phase,
    ).toBe("Pending");
  });
});

describe("aggregated health", () => {
  const probed = (name: string, backends: { realServer?: string; healthy: boolean; message?: string }[]) => ({
    node: name,
    status: {
      services: 0,
      destinations: 0,
      virtualServices: [
        {
          name: "demo/web",
          programmed: true,
          message: "",
          backends: {
            total: backends.length,
            healthy: backends.filter((b) => b.healthy).length,
            draining: 0,
          },
        },
      ],
      backends: backends.map((b, i) => ({
        virtualService: "demo/web",
        address: `198.51.100.${i + 1}`,
        port: 80,
        message: "",
        ...b,
      })),
    } as never,
  });
  const nodes = [
    probed("a", [
      { realServer: "demo/x", healthy: true },
      { realServer: "demo/y", healthy: false, message: "connect: ECONNREFUSED" },
    ]),
    probed("b", [
      { realServer: "demo/x", healthy: false, message: "timeout" },
      { realServer: "demo/y", healthy: false },
    ]),
    probed("c", [{ realServer: "demo/x", healthy: true }, { healthy: false }]),
  ];
  const rs = (name: string) => ({ namespace: "demo", name, generation: 1, enabled: true });

  it("counts per RealServer the nodes that see it healthy and unhealthy (endpoints are not objects)", () => {
    const health = indexRealServerHealth(nodes);
    expect([...health.keys()].sort()).toEqual(["demo/x", "demo/y"]);
    expect(health.get("demo/x")).toEqual({ healthyNodes: 2, unhealthyNodes: 1, lastError: "timeout" });
    expect(health.get("demo/y")).toEqual({
      healthyNodes: 0,
      unhealthyNodes: 2,
      lastError: "connect: ECONNREFUSED",
    });
  });

  it("a RealServer is Unhealthy only when every node that probes it says so; Healthy says how many", () => {
    const views = indexNodeReports(nodes);
    const health = indexRealServerHealth(nodes);
    const x = aggregateRealServerStatus(
      rs("x"),
      views.get("demo/web"),
      undefined,
      t(0),
      health.get("demo/x"),
    );
    const y = aggregateRealServerStatus(
      rs("y"),
      views.get("demo/web"),
      undefined,
      t(0),
      health.get("demo/y"),
    );
    const z = aggregateRealServerStatus(rs("z"), views.get("demo/web"), undefined, t(0), undefined);
    expect([x.phase, y.phase, z.phase]).toEqual(["Active", "Unhealthy", "Active"]);
    const healthy = (s: typeof x) => s.conditions?.find((c) => c.type === "Healthy");
    expect(healthy(x)).toMatchObject({
      status: "False",
      reason: "SomeNodesFailing",
      message: "unhealthy from 1/3 nodes: timeout",
    });
    expect(healthy(y)).toMatchObject({ status: "False", reason: "ChecksFailing" });
    expect(healthy(z)).toMatchObject({ status: "True", reason: "NotChecked" });
    expect(x.health).toEqual({ healthyNodes: 2, unhealthyNodes: 1, lastError: "timeout" });
  });

  it("a RealServer no node lists is Healthy Unknown (NotListed) while some node's list is cut, NotChecked otherwise", () => {
    const views = indexNodeReports(nodes);
    const cut = {
      ...nodes[2]!,
      status: {
        ...(nodes[2]!.status as object),
        backendCounts: { probed: 6000, unhealthy: 1, unlisted: 1000 },
      },
    };
    const health = indexRealServerHealth([nodes[0]!, nodes[1]!, cut as never]);
    expect(health.unlistedNodes).toBe(1);
    expect(indexRealServerHealth(nodes).unlistedNodes).toBe(0);
    const healthy = (s: ReturnType<typeof aggregateRealServerStatus>) =>
      s.conditions?.find((c) => c.type === "Healthy");
    const z = aggregateRealServerStatus(
      rs("z"),
      views.get("demo/web"),
      undefined,
      t(0),
      health.get("demo/z"),
      health.unlistedNodes,
    );
    expect(z.phase).toBe("Active");
    expect(healthy(z)).toMatchObject({ status: "Unknown", reason: "NotListed" });
    expect(healthy(z)?.message).toContain("1 nodes probe more real servers than their IPVSNode status lists");
    // A listed one keeps its result; without a cut list, an unlisted one is NotChecked.
    const x = aggregateRealServerStatus(
      rs("x"),
      views.get("demo/web"),
      undefined,
      t(0),
      health.get("demo/x"),
      health.unlistedNodes,
    );
    expect(healthy(x)).toMatchObject({ reason: "SomeNodesFailing" });
    const plain = aggregateRealServerStatus(rs("z"), views.get("demo/web"), undefined, t(0), undefined, 0);
    expect(healthy(plain)).toMatchObject({ status: "True", reason: "NotChecked" });
  });

  it("a VirtualService's BackendsHealthy is True only when every node sees every real server healthy", () => {
    const ref = { namespace: "demo", name: "web", generation: 1 };
    const cond = (views: ReturnType<typeof indexNodeReports>) =>
      aggregateVirtualServiceStatus(ref, views.get("demo/web"), undefined, t(0)).conditions?.find(
        (c) => c.type === "BackendsHealthy",
      );
    expect(cond(indexNodeReports(nodes))).toMatchObject({ status: "False", reason: "NoneHealthy" });
    const fine = [probed("a", [{ healthy: true }, { healthy: true }])];
    expect(cond(indexNodeReports(fine))).toMatchObject({ status: "True", reason: "AllHealthy" });
    expect(cond(indexNodeReports([node("a", [{ name: "demo/web", programmed: true }])]))).toMatchObject({
      status: "Unknown",
    });
  });
});

describe("sync events", () => {
  it("reports repaired drift and failures per VirtualService, and a problem only when it is new", () => {
    const owners = new Map([["TCP 192.0.2.1:80", "demo/web"]]);
    const problem = {
      kind: "Invalid" as const,
      object: { kind: "RealServer" as const, namespace: "demo", name: "rs" },
      field: "spec.port",
      message: "bad",
    };
    const events = syncEvents(
      {
        drift: [
          {
            kind: "Modified",
            service: "TCP 192.0.2.1:80",
            destination: "198.51.100.1:80",
            field: "weight",
            expected: "1",
            actual: "0",
            action: "Repaired",
          },
        ],
        failures: [{ virtualService: "demo/web", message: "add destination ...: EINVAL" }],
        problems: [problem],
        owners,
      },
      new Set(),
    );
    expect(events.map((e) => `${e.type} ${e.reason} ${e.regarding.kind}/${e.regarding.name}`)).toEqual([
      "Normal DriftRepaired VirtualService/web",
      "Warning ApplyFailed VirtualService/web",
      "Warning Invalid RealServer/rs",
    ]);
    expect(events[0]!.note).toBe(
      "1 differences repaired: Modified TCP 192.0.2.1:80 -> 198.51.100.1:80 weight 0 -> 1",
    );
    expect(
      syncEvents({ drift: [], failures: [], problems: [problem], owners }, new Set([problemKey(problem)])),
    ).toEqual([]);
  });
});

describe("backend counts", () => {
  it("a node counts its real servers per VirtualService: draining endpoints and removed ones, the sorry server not", async () => {
    const { backendCounts } = await import("../../src/model/node-status.ts");
    const { realServer, service, tcpKey } = await import("../support/desired-builders.ts");
    const draining = { ...realServer("198.51.100.3"), draining: true };
    const sorry = {
      ...realServer("198.51.100.9"),
      source: { kind: "SorryServer" as const, namespace: "demo", name: "web" },
    };
    const web = service(
      tcpKey("192.0.2.1"),
      [realServer("198.51.100.1"), realServer("198.51.100.2"), draining, sorry],
      {
        name: "web",
      },
    );
    const api = service(tcpKey("192.0.2.2"), [realServer("198.51.100.5")], { name: "api" });
    const counts = backendCounts(
      [web, api],
      [{ service: "TCP 192.0.2.1:80" }, { service: "TCP 192.0.2.99:80" }], // a removed real server of web; a removed service
      (vs, address) => vs.name === "api" && address === "198.51.100.5", // failing its health check
    );
    expect(Object.fromEntries(counts)).toEqual({
      "demo/web": { total: 4, healthy: 2, draining: 2 },
      "demo/api": { total: 1, healthy: 0, draining: 0 },
    });
  });

  it("the aggregate takes the largest total and draining and the smallest healthy over the nodes", () => {
    const views = indexNodeReports([
      node("a", [
        { name: "demo/web", programmed: true, backends: { total: 3, healthy: 3, draining: 0 } } as never,
      ]),
      node("b", [
        { name: "demo/web", programmed: true, backends: { total: 4, healthy: 2, draining: 1 } } as never,
      ]),
      node("c", [{ name: "demo/web", programmed: true }]), // an older agent: no counts
    ]);
    const status = aggregateVirtualServiceStatus(
      { namespace: "demo", name: "web", generation: 1 },
      views.get("demo/web"),
      undefined,
      t(0),
      "192.0.2.1:80",
    );
    expect(status.backends).toEqual({ total: 4, healthy: 2, draining: 1, summary: "2/4" });
    const none = aggregateVirtualServiceStatus(
      { namespace: "demo", name: "web", generation: 1 },
      indexNodeReports([node("c", [{ name: "demo/web", programmed: true }])]).get("demo/web"),
      undefined,
      t(0),
      "192.0.2.1:80",
    );
    expect(none.backends).toBeUndefined();
  });
});
