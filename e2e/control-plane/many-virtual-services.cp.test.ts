/**
 * One node with more VirtualServices than the old per-entry IPVSNode list held (1,000): the agent (fake
 * kernel) programs 1,200 of them, its IPVSNode lists them all within its byte bound, and the aggregator
 * makes every one Ready with NODES 1/1 through the real API server; one refused beyond the first 1,000
 * is not Ready (docs/decisions/0012).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../src/agent/agent.ts";
import type { IPVSNodeStatus } from "../../src/api/v1alpha1/ipvs-node.ts";
import { loadKubeConfig } from "../../src/kube/kubernetes-source.ts";
import { StatusAggregator } from "../../src/kube/status-aggregator.ts";
import { until } from "../../test/support/until.ts";
import { testAgent } from "./test-agent.ts";
import { useControlPlane } from "./use-control-plane.ts";

const cp = useControlPlane();
const COUNT = 1200;
const NODE = "many-vs";
const name = (i: number) => `vs-${String(i).padStart(4, "0")}`;
const address = (i: number) => `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`;

interface VsObject {
  metadata: { name: string };
  status?: {
    nodes?: { summary?: string };
    conditions?: { type: string; status: string; reason: string }[];
  };
}

describe(`one node with ${COUNT} VirtualServices (real API server)`, () => {
  let ns: string;
  let agent: Agent | undefined;
  let writer: { writes: number } | undefined;
  let reports: { startedAt: number; endedAt: number }[] = [];
  let syncsBefore = 0;
  let aggregator: StatusAggregator | undefined;
  const list = async () =>
    (
      (await cp.api("GET", `/apis/ipvs.dev/v1alpha1/namespaces/${ns}/virtualservices`)).body as {
        items: VsObject[];
      }
    ).items;
  const ready = (o: VsObject) => o.status?.conditions?.find((c) => c.type === "Ready");
  const create = (i: number, vsName = name(i)) =>
    cp.api("POST", `/apis/ipvs.dev/v1alpha1/namespaces/${ns}/virtualservices`, {
      apiVersion: "ipvs.dev/v1alpha1",
      kind: "VirtualService",
      metadata: { name: vsName, namespace: ns },
      spec: { address: address(i), port: 80 },
    });

  beforeAll(async () => {
    await cp.installCrds();
    ns = await cp.newNamespace("manyvs");
    const leaseNs = await cp.newNamespace("manyvs-lease");
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < COUNT) {
          const r = await create(next++);
          if (r.status !== 201) throw new Error(`create: HTTP ${r.status} ${JSON.stringify(r.body)}`);
        }
      }),
    );
    const kubeConfig = loadKubeConfig(cp.kubeconfig);
    ({ agent, writer, reports } = testAgent({ kubeConfig, node: NODE, resyncInterval: "5s" }));
    aggregator = new StatusAggregator({
      kubeConfig,
      identity: NODE,
      leaseNamespace: leaseNs,
      minIntervalMs: 200,
      leaseDurationSeconds: 3,
      renewMs: 500,
    });
    await agent.start();
    // The aggregator once the node has reported: its first pass writes every status once (each write
    // is a status-only change, which agents ignore).
    await until(
      "the IPVSNode",
      async () => {
        const node = (await cp.api("GET", `/apis/ipvs.dev/v1alpha1/ipvsnodes/${NODE}`)).body as {
          status?: IPVSNodeStatus;
        };
        return (node.status?.virtualServiceCounts?.programmed ?? 0) >= COUNT ? true : undefined;
      },
      30_000,
      250,
    );
    syncsBefore = reports.length;
    aggregator.start();
  }, 90_000);

  afterAll(async () => {
    await aggregator?.stop();
    await agent?.stop();
    await cp.kubectl(["delete", "namespace", ns, "--wait=false"]);
    await cp.kubectl(["delete", "ipvsnode", NODE, "--ignore-not-found"]);
  });

  it("lists them all in the IPVSNode and makes every one Ready, 1/1", async () => {
    const started = Date.now();
    const items = await until(
      `all ${COUNT} Ready`,
      async () => {
        const all = await list();
        return all.length === COUNT &&
          all.every((o) => ready(o)?.status === "True" && o.status?.nodes?.summary === "1/1")
          ? all
          : undefined;
      },
      90_000,
      2000,
    ).catch(async (e) => {
      const all = await list();
      const late = all.filter((o) => ready(o)?.status !== "True" || o.status?.nodes?.summary !== "1/1");
      const node = (await cp.api("GET", `/apis/ipvs.dev/v1alpha1/ipvsnodes/${NODE}`)).body as {
        status?: IPVSNodeStatus;
      };
      const listed = (node.status?.programmedVirtualServices ?? []).flatMap((g) =>
        g.names.map((n) => `${g.namespace}/${n}`),
      );
      throw new Error(
        `${e}\n${late.length} not Ready, e.g. ${late
          .slice(0, 3)
          .map(
            (o) =>
              `${o.metadata.name} ${o.status?.nodes?.summary} listed ${listed.includes(`${ns}/${o.metadata.name}`)}`,
          )
          .join(
            ", ",
          )}; IPVSNode ${JSON.stringify(node.status?.virtualServiceCounts)} lastSync ${JSON.stringify(node.status?.lastSync)}; writes ${writer?.writes}; syncs ${reports.length} taking ${reports.reduce((t, r) => t + r.endedAt - r.startedAt, 0)} ms; aggregator leader ${aggregator?.isLeader} passes ${aggregator?.passes} writes ${aggregator?.writes}`,
      );
    });
    expect(items.find((o) => o.metadata.name === name(1100))?.status?.conditions).toContainEqual(
      expect.objectContaining({ type: "Ready", status: "True", reason: "Programmed" }),
    );
    const node = (await cp.api("GET", `/apis/ipvs.dev/v1alpha1/ipvsnodes/${NODE}`)).body as {
      status: IPVSNodeStatus;
    };
    const counts = node.status.virtualServiceCounts!;
    // Other files' VirtualServices (other namespaces) are programmed here too.
    expect(counts.total).toBeGreaterThanOrEqual(COUNT);
    expect(counts.unlisted).toBe(0);
    const mine = node.status.programmedVirtualServices?.filter((g) => g.namespace === ns) ?? [];
    expect(mine.flatMap((g) => g.names)).toHaveLength(COUNT);
    const size = JSON.stringify(node).length;
    console.log(
      `${COUNT} VirtualServices Ready in ${Date.now() - started} ms; IPVSNode ${size} bytes (${counts.total} VirtualServices), aggregator ${aggregator?.writes} writes, agent ${reports.length - syncsBefore} syncs meanwhile`,
    );
    expect(size).toBeLessThan(100_000);
    // The aggregator's status writes are not changes to the agent: only its resyncs (every 5 s) ran,
    // not one sync per VirtualService written.
    expect(reports.length - syncsBefore).toBeLessThan(30);
  }, 100_000);

  it("does not make Ready one that the node refuses, beyond the first 1,000", async () => {
    // The same address as vs-1100: the younger object loses the key (Conflict) and is not programmed.
    const r = await create(1100, "vs-1100-twin");
    expect(r.status).toBe(201);
    const twin = await until(
      "the twin refused",
      async () => {
        const o = (
          await cp.api("GET", `/apis/ipvs.dev/v1alpha1/namespaces/${ns}/virtualservices/vs-1100-twin`)
        ).body as VsObject;
        return o.status?.conditions?.find((c) => c.type === "Stalled")?.status === "True" ? o : undefined;
      },
      30_000,
      250,
    );
    expect(ready(twin)).toMatchObject({ status: "False", reason: "Invalid" });
    expect(twin.status?.nodes?.summary).toBe("0/1");
    const original = (
      await cp.api("GET", `/apis/ipvs.dev/v1alpha1/namespaces/${ns}/virtualservices/${name(1100)}`)
    ).body as VsObject;
    expect(ready(original)?.status).toBe("True");
    const node = (await cp.api("GET", `/apis/ipvs.dev/v1alpha1/ipvsnodes/${NODE}`)).body as {
      status: IPVSNodeStatus;
    };
    expect(node.status.virtualServices?.find((e) => e.name === `${ns}/vs-1100-twin`)).toMatchObject({
      programmed: false,
      message: expect.stringMatching(/^Conflict:/),
    });
  }, 45_000);
});
