/**
 * Aggregated status on the real API server: several agents (fake kernels, one process) write their
 * IPVSNodes; one of them, elected through a Lease, folds them into VirtualService and RealServer status
 * with kstatus-compatible conditions, so `kubectl wait --for=condition=Ready` works; the writes follow
 * changes, not resyncs; when the leader stops, another agent takes over.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent } from "../../src/agent/agent.ts";
import { resolveAgentConfig } from "../../src/agent/config.ts";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { IpvsNodeStatusWriter } from "../../src/kube/ipvs-node-writer.ts";
import { KubernetesSource, loadKubeConfig } from "../../src/kube/kubernetes-source.ts";
import { StatusAggregator } from "../../src/kube/status-aggregator.ts";
import { createRootLogger } from "../../src/observability/logger.ts";
import { until as waitFor } from "../../test/support/until.ts";
import { startFaultProxy } from "./fault-proxy.ts";
import { useControlPlane } from "./use-control-plane.ts";

const cp = useControlPlane();
const NODES = ["agg-a", "agg-b", "agg-c"];

const until = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined, limitMs = 40_000) =>
  waitFor(what, probe, limitMs);

interface Node {
  agent: Agent;
  writer: IpvsNodeStatusWriter;
  aggregator: StatusAggregator;
}

describe("aggregated status (real API server, three agents)", () => {
  let ns: string;
  let leaseNs: string;
  const nodes: Node[] = [];

  beforeAll(async () => {
    await cp.installCrds();
    ns = await cp.newNamespace("agg");
    leaseNs = await cp.newNamespace("lease");
    const kubeConfig = loadKubeConfig(cp.kubeconfig);
    const logger = createRootLogger({ level: "silent" });
    for (const node of NODES) {
      const kernel = new FakeIpvsKernel();
      kernel.close = async () => {};
      const state = join(mkdtempSync(join(tmpdir(), "agg-")), "journal.json");
      const config = resolveAgentConfig(
        { stateFile: state, minSyncInterval: "100ms", resyncInterval: "2s", httpAddress: "" },
        { NODE_NAME: node },
      );
      const writer = new IpvsNodeStatusWriter({ kubeConfig, nodeName: node });
      const agent = new Agent(config, {
        kernel,
        source: new KubernetesSource({ kubeConfig, nodeName: node, backoffMs: 200 }),
        bootId: "boot",
        logger,
        statusWriter: writer,
      });
      const aggregator = new StatusAggregator({
        kubeConfig,
        identity: node,
        leaseNamespace: leaseNs,
        minIntervalMs: 200,
        leaseDurationSeconds: 3,
        renewMs: 500,
      });
      nodes.push({ agent, writer, aggregator });
    }
    for (const n of nodes) {
      n.aggregator.start();
      await n.agent.start();
    }
  });

  afterAll(async () => {
    for (const n of nodes) {
      await n.aggregator.stop();
      await n.agent.stop();
    }
  });

  it("elects one aggregator and reports Ready with node counts; kubectl wait sees it", async () => {
    await cp.kubectlOk(["apply", "--server-side", "-f", "-"], {
      input: `apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: web, namespace: ${ns}}\nspec: {address: 192.0.2.70, port: 80}\n---\napiVersion: ipvs.dev/v1alpha1\nkind: RealServer\nmetadata: {name: web-a, namespace: ${ns}}\nspec: {virtualServiceRef: {name: web}, address: 198.51.100.70, port: 80}\n`,
    });
    await until("one leader", () =>
      nodes.filter((n) => n.aggregator.isLeader).length === 1 ? true : undefined,
    );
    // The aggregate counts the nodes that have reported the VirtualService in their IPVSNode: wait for
    // all three (one that has not reported yet is not counted, so Ready can come before it).
    await until("all three nodes counted", async () => {
      const vs = JSON.parse(await cp.kubectlOk(["-n", ns, "get", "virtualservice", "web", "-o", "json"]));
      return vs.status?.nodes?.selected === 3 && vs.status?.nodes?.programmed === 3 ? true : undefined;
    });
    await cp.kubectlOk(["-n", ns, "wait", "--for=condition=Ready", "virtualservice/web", "--timeout=60s"]);
    const vs = JSON.parse(await cp.kubectlOk(["-n", ns, "get", "virtualservice", "web", "-o", "json"]));
    expect(vs.status.observedGeneration).toBe(vs.metadata.generation);
    expect(vs.status.nodes).toEqual({ selected: 3, programmed: 3, drifted: 0, summary: "3/3" });
    expect(vs.status.backends).toEqual({ total: 1, healthy: 1, draining: 0, summary: "1/1" });
    const types = Object.fromEntries(
      vs.status.conditions.map((c: { type: string; status: string }) => [c.type, c.status]),
    );
    expect(types).toEqual({
      Accepted: "True",
      Programmed: "True",
      Drifted: "False",
      BackendsHealthy: "True",
      Ready: "True",
      Reconciling: "False",
      Stalled: "False",
    });
    for (const c of vs.status.conditions) expect(c.observedGeneration).toBe(vs.metadata.generation);
    // The RealServer's status may come with the next pass (its object can be listed after the
    // VirtualService's): wait for it rather than read it once.
    const rs = await until("the RealServer's status", async () => {
      const o = JSON.parse(await cp.kubectlOk(["-n", ns, "get", "realserver", "web-a", "-o", "json"]));
      return o.status?.phase === "Active" ? o : undefined;
    });
    expect(rs.status).toMatchObject({ phase: "Active", observedGeneration: rs.metadata.generation });
  });

  it("follows a change with new counts and generation, and writes nothing while the world is idle", async () => {
    // A nodeSelector that matches no node (the agents' Nodes have no labels): Programmed 0/0.
    await cp.kubectlOk([
      "-n",
      ns,
      "patch",
      "virtualservice",
      "web",
      "--type=merge",
      "-p",
      '{"spec":{"nodeSelector":{"matchLabels":{"edge":"true"}}}}',
    ]);
    const changed = await until("the new generation in status", async () => {
      const vs = JSON.parse(await cp.kubectlOk(["-n", ns, "get", "virtualservice", "web", "-o", "json"]));
      return vs.status.observedGeneration === vs.metadata.generation && vs.status.nodes.selected === 0
        ? vs
        : undefined;
    });
    expect(changed.status.nodes.summary).toBe("0/0");
    // Let every agent settle, then count writes over several resync periods.
    await new Promise((r) => setTimeout(r, 5000));
    const before = nodes.reduce((n, x) => n + x.writer.writes + x.aggregator.writes, 0);
    await new Promise((r) => setTimeout(r, 6000)); // three resyncs of every agent
    const after = nodes.reduce((n, x) => n + x.writer.writes + x.aggregator.writes, 0);
    expect(after - before).toBe(0);
  });

  it("hands aggregation over when the leader stops", async () => {
    const leader = nodes.find((n) => n.aggregator.isLeader)!;
    await leader.aggregator.stop();
    await until("a new leader", () =>
      nodes.some((n) => n !== leader && n.aggregator.isLeader) ? true : undefined,
    );
    await cp.kubectlOk([
      "-n",
      ns,
      "patch",
      "virtualservice",
      "web",
      "--type=json",
      "-p",
      '[{"op":"remove","path":"/spec/nodeSelector"}]',
    ]);
    await until("status from the new leader", async () => {
      const vs = JSON.parse(await cp.kubectlOk(["-n", ns, "get", "virtualservice", "web", "-o", "json"]));
      return vs.status.observedGeneration === vs.metadata.generation && vs.status.nodes.programmed === 3
        ? true
        : undefined;
    });
  });

  it("an aggregator stopped while it asks for the Lease never leads, and gives the Lease back", async () => {
    const leaseNs = await cp.newNamespace("lease-race");
    const proxy = await startFaultProxy(cp, mkdtempSync(join(tmpdir(), "lease-race-")));
    try {
      proxy.latency(800); // the Lease requests are in flight when stop() comes
      const late = new StatusAggregator({
        kubeConfig: loadKubeConfig(proxy.kubeconfig),
        identity: "late",
        leaseNamespace: leaseNs,
        minIntervalMs: 100,
        renewMs: 200,
      });
      late.start();
      await new Promise((r) => setTimeout(r, 300));
      await late.stop();
      await new Promise((r) => setTimeout(r, 3000));
      expect(late.isLeader).toBe(false);
      expect(late.passes).toBe(0);
      // What it took as the request came back is given back (two more slow requests).
      await until("the Lease given back", async () => {
        const lease = JSON.parse(
          await cp.kubectlOk([
            "-n",
            leaseNs,
            "get",
            "lease",
            "ipvs-operator-status-aggregator",
            "-o",
            "json",
          ]),
        ) as { spec: { holderIdentity?: string } };
        return (lease.spec.holderIdentity ?? "") === "" ? true : undefined;
      });
    } finally {
      await proxy.close();
    }
  });
});
