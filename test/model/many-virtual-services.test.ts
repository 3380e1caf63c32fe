/**
 * A node that programs more VirtualServices than the old per-entry list held (1,000): every one of them
 * must be counted as programmed on that node, through buildNodeStatus -> indexNodeReports ->
 * aggregateVirtualServiceStatus, and the IPVSNode must stay within its byte bound.
 */
import { describe, expect, it } from "vitest";
import { IPVS_NODE_LIMITS, type IPVSNodeStatus } from "../../src/api/v1alpha1/ipvs-node.ts";
import { aggregateVirtualServiceStatus, indexNodeReports } from "../../src/model/aggregate-status.ts";
import { buildNodeStatus, type NodeSyncFacts } from "../../src/model/node-status.ts";

const t = new Date(Date.UTC(2026, 11, 1, 12, 0, 0));
const vsName = (i: number) => `bench/vs-${String(i).padStart(5, "0")}`;
const facts = (n: number, over: Partial<NodeSyncFacts> = {}): NodeSyncFacts => {
  const programmed = Array.from({ length: n }, (_, i) => vsName(i));
  return {
    ok: true,
    errors: [],
    applied: n,
    failed: 0,
    failures: [],
    drift: [],
    services: n,
    destinations: n * 10,
    programmed,
    problems: [],
    backends: new Map(programmed.map((name) => [name, { total: 10, healthy: 10, draining: 0 }])),
    durationMs: 100,
    ...over,
  };
};
const ready = (status: ReturnType<typeof aggregateVirtualServiceStatus>) =>
  status.conditions?.find((c) => c.type === "Ready");
const aggregate = (nodes: Parameters<typeof indexNodeReports>[0], i: number) => {
  const [namespace, name] = vsName(i).split("/") as [string, string];
  return aggregateVirtualServiceStatus(
    { namespace, name, generation: 1 },
    indexNodeReports(nodes).get(vsName(i)),
    undefined,
    t,
  );
};

describe("a node with more than 1,000 VirtualServices", () => {
  it("counts VirtualService #1,200 of 1,500 as programmed on it: Ready, 1/1", () => {
    const status = buildNodeStatus(undefined, facts(1500), t, 1);
    const vs = aggregate([{ node: "a", status }], 1200);
    expect(vs.nodes).toEqual({ selected: 1, programmed: 1, drifted: 0, summary: "1/1" });
    expect(vs.backends).toMatchObject({ total: 10, healthy: 10, draining: 0 });
    expect(ready(vs)).toMatchObject({ status: "True", reason: "Programmed" });
  });

  it("lists 10,000 VirtualServices x 10 real servers in ~120 KB, all Ready, and rebuilds identically", () => {
    const started = performance.now();
    const status = buildNodeStatus(undefined, facts(10_000), t, 1);
    const built = performance.now() - started;
    const size = JSON.stringify(status).length;
    expect(status.virtualServiceCounts).toEqual({ total: 10_000, programmed: 10_000, unlisted: 0 });
    expect(status.virtualServices).toBeUndefined();
    expect(status.programmedVirtualServices).toHaveLength(1);
    expect(size).toBeLessThan(150_000);
    const index = indexNodeReports([{ node: "a", status }]);
    for (const i of [0, 999, 1000, 1200, 5000, 9999]) {
      const [namespace, name] = vsName(i).split("/") as [string, string];
      const vs = aggregateVirtualServiceStatus(
        { namespace, name, generation: 1 },
        index.get(vsName(i)),
        undefined,
        t,
      );
      expect(vs.nodes?.summary).toBe("1/1");
      expect(ready(vs)?.status).toBe("True");
    }
    const again = buildNodeStatus(status, facts(10_000, { applied: 0 }), new Date(t.getTime() + 30_000), 1);
    expect(JSON.stringify(again)).toBe(JSON.stringify(status));
    console.log(`10,000 VirtualServices: status ${size} bytes, built in ${Math.round(built)} ms`);
  });

  it("lists what needs attention first and groups the rest by namespace and real server counts", () => {
    const n = 1500;
    const backends = new Map(facts(n).backends);
    backends.set(vsName(7), { total: 10, healthy: 9, draining: 1 });
    const status = buildNodeStatus(
      undefined,
      facts(n, {
        failed: 1,
        failures: [{ virtualService: vsName(1200), message: "addDestination failed: EINVAL" }],
        drift: [{ kind: "Modified", service: "TCP 192.0.2.9:80", field: "scheduler", action: "Reported" }],
        owners: new Map([["TCP 192.0.2.9:80", vsName(9)]]),
        backends,
      }),
      t,
    );
    expect(status.virtualServices?.map((e) => [e.name, e.programmed, e.drifted ?? false])).toEqual([
      [vsName(1200), false, false],
      [vsName(9), true, true],
    ]);
    expect(status.programmedVirtualServices?.map((g) => [g.backends, g.names.length])).toEqual([
      [{ total: 10, healthy: 10, draining: 0 }, n - 3],
      [{ total: 10, healthy: 9, draining: 1 }, 1],
    ]);
    expect(status.virtualServiceCounts).toEqual({ total: n, programmed: n - 1, unlisted: 0 });
    const nodes = [{ node: "a", status }];
    expect(ready(aggregate(nodes, 1200))).toMatchObject({ status: "False", reason: "Programming" });
    expect(aggregate(nodes, 9).nodes).toMatchObject({ drifted: 1, summary: "1/1" });
    expect(aggregate(nodes, 7).backends).toMatchObject({ healthy: 9, draining: 1, summary: "9/10" });
    expect(ready(aggregate(nodes, 1201))).toMatchObject({ status: "True" });
  });

  it("past the byte bound: leaves names out, says how many, and the aggregator claims no Ready it cannot see", () => {
    // 40,000 long names (~70 bytes each) cannot fit; 1,200 failures do not fit in 1,000 entries.
    const long = (i: number) =>
      `team-with-a-rather-long-namespace/${"x".repeat(30)}-${String(i).padStart(5, "0")}`;
    const programmed = Array.from({ length: 40_000 }, (_, i) => long(i));
    const failures = programmed
      .slice(0, 1200)
      .map((virtualService) => ({ virtualService, message: "EINVAL" }));
    const status = buildNodeStatus(undefined, { ...facts(0), programmed, failures, failed: 1200 }, t);
    const lists =
      JSON.stringify(status.virtualServices ?? []) + JSON.stringify(status.programmedVirtualServices ?? []);
    expect(lists.length).toBeLessThanOrEqual(IPVS_NODE_LIMITS.virtualServiceBytes);
    expect(lists.length).toBeGreaterThan(IPVS_NODE_LIMITS.virtualServiceBytes - 200);
    expect(status.virtualServices).toHaveLength(IPVS_NODE_LIMITS.virtualServices);
    const listed = (status.programmedVirtualServices ?? []).reduce((k, g) => k + g.names.length, 0);
    expect(status.virtualServiceCounts).toEqual({
      total: 40_000,
      programmed: 38_800,
      unlisted: 40_000 - 1000 - listed,
    });
    const index = indexNodeReports([{ node: "a", status }]);
    const agg = (name: string) => {
      const [namespace, n] = name.split("/") as [string, string];
      return aggregateVirtualServiceStatus(
        { namespace, name: n, generation: 1 },
        index.get(name),
        undefined,
        t,
      );
    };
    // Listed and programmed: Ready.
    const first = `${status.programmedVirtualServices![0]!.namespace}/${status.programmedVirtualServices![0]!.names[0]}`;
    expect(ready(agg(first))?.status).toBe("True");
    // A failure past the 1,000 entries and a programmed one past the bytes: neither is Ready.
    for (const name of [long(1100), long(39_999)]) {
      const vs = agg(name);
      expect(ready(vs)).toMatchObject({ status: "False", reason: "NodeReportIncomplete" });
      expect(vs.conditions?.find((c) => c.type === "Programmed")?.status).toBe("Unknown");
      expect(vs.nodes).toMatchObject({ selected: 0, programmed: 0, unlisted: 1, summary: "0/0 +1?" });
    }
  });

  it("with an incomplete node beside a complete one, counts what it sees and still claims no Ready", () => {
    const complete = buildNodeStatus(undefined, facts(3), t);
    const incomplete = { ...complete, virtualServiceCounts: { total: 5, programmed: 5, unlisted: 2 } };
    const both = [
      { node: "a", status: complete },
      { node: "b", status: incomplete },
    ];
    expect(aggregate(both, 1).nodes).toEqual({ selected: 2, programmed: 2, drifted: 0, summary: "2/2" });
    const onlyA = [
      { node: "a", status: complete },
      { node: "b", status: { ...incomplete, programmedVirtualServices: [] } },
    ];
    const vs = aggregate(onlyA, 1);
    expect(vs.nodes).toEqual({ selected: 1, programmed: 1, drifted: 0, unlisted: 1, summary: "1/1 +1?" });
    expect(ready(vs)?.reason).toBe("NodeReportIncomplete");
    // An agent from before the counts with a full list of 1,000 entries may have cut it.
    const old: IPVSNodeStatus = {
      services: 0,
      destinations: 0,
      virtualServices: Array.from({ length: 1000 }, (_, i) => ({
        name: `old/vs-${i}`,
        programmed: true,
        message: "",
      })),
    };
    expect(ready(aggregate([{ node: "c", status: old }], 1))?.reason).toBe("NodeReportIncomplete");
    expect(
      ready(
        aggregate([{ node: "c", status: { ...old, virtualServices: old.virtualServices!.slice(1) } }], 1),
      ),
    ).toMatchObject({
      status: "True",
      reason: "NoNodeSelected",
    });
  });
});
