/**
 * The aggregated status when the VirtualServices exist before the agent starts (a fresh install on a
 * cluster that already has them, as in `npm run demo:cluster`): the aggregator's first pass may run
 * before any IPVSNode reports, and the counts must catch up once the node reports.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Agent } from "../../src/agent/agent.ts";
import { loadKubeConfig } from "../../src/kube/kubernetes-source.ts";
import { StatusAggregator } from "../../src/kube/status-aggregator.ts";
import { until } from "../../test/support/until.ts";
import { type FaultProxy, startFaultProxy } from "./fault-proxy.ts";
import { testAgent } from "./test-agent.ts";
import { useControlPlane } from "./use-control-plane.ts";

const cp = useControlPlane();

describe("aggregated status of VirtualServices that existed before the agent", () => {
  let agent: Agent | undefined;
  let aggregator: StatusAggregator | undefined;
  let proxy: FaultProxy | undefined;
  afterAll(async () => {
    await aggregator?.stop();
    await agent?.stop();
    await proxy?.close();
  });

  it("counts the node once it reports", async () => {
    await cp.installCrds();
    const ns = await cp.newNamespace("pre");
    const leaseNs = await cp.newNamespace("prelease");
    await cp.kubectlOk(["apply", "--server-side", "-f", "-"], {
      input: `apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: web, namespace: ${ns}}\nspec: {address: 192.0.2.71, port: 80}\n---\napiVersion: ipvs.dev/v1alpha1\nkind: RealServer\nmetadata: {name: web-a, namespace: ${ns}}\nspec: {virtualServiceRef: {name: web}, address: 198.51.100.71, port: 80}\n`,
    });
    const kubeConfig = loadKubeConfig(cp.kubeconfig);
    const node = "pre-node";
    ({ agent } = testAgent({ kubeConfig, node }));
    // As the agent command does: the aggregator with its default timings, started first. Its first
    // requests get 429 "storage is (re)initializing", as a fresh CRD's lists do (seen in the VM demo).
    proxy = await startFaultProxy(cp, mkdtempSync(join(tmpdir(), "pre-proxy-")));
    proxy.throttle(4, 1);
    aggregator = new StatusAggregator({
      kubeConfig: loadKubeConfig(proxy.kubeconfig),
      identity: node,
      leaseNamespace: leaseNs,
    });
    aggregator.start();
    await agent.start();
    const status = await until(
      "the node counted",
      async () => {
        const vs = JSON.parse(await cp.kubectlOk(["-n", ns, "get", "virtualservice", "web", "-o", "json"]));
        return vs.status?.nodes?.programmed === 1 ? vs.status : undefined;
      },
      60_000,
    ).catch(async (e) => {
      const vs = JSON.parse(await cp.kubectlOk(["-n", ns, "get", "virtualservice", "web", "-o", "json"]));
      const ipvsNode = await cp.kubectlOk(["get", "ipvsnode", node, "-o", "json"]);
      throw new Error(
        `${e}\nVS status: ${JSON.stringify(vs.status)}\nIPVSNode: ${ipvsNode.slice(0, 1500)}\nleader ${aggregator?.isLeader} passes ${aggregator?.passes}`,
      );
    });
    expect(status.nodes).toEqual({ selected: 1, programmed: 1, drifted: 0, summary: "1/1" });
  }, 90_000);
});
