/**
 * The agent across restarts of its own control plane (not the suite's shared one): kube-apiserver
 * stopped for 15 s and started again, then etcd stopped for 15 s and started again under a running
 * kube-apiserver. The kernel table stays as it is while they are down; afterwards changes reach it and
 * the one IPVSNode is Ready again. Each test prints the faults it injected (`faults: ...`).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../src/agent/agent.ts";
import { loadKubeConfig } from "../../src/kube/kubernetes-source.ts";
import { until } from "../../test/support/until.ts";
import { type ControlPlane, startControlPlane } from "./control-plane.ts";
import { testAgent } from "./test-agent.ts";

const NODE = "node-restart";
const rs = (ns: string, name: string, address: string) =>
  `apiVersion: ipvs.dev/v1alpha1\nkind: RealServer\nmetadata: {name: ${name}, namespace: ${ns}}\nspec: {virtualServiceRef: {name: web}, address: ${address}, port: 8080}\n`;

interface NodeStatus {
  metadata: { uid: string };
  status?: { lastSync?: { time?: string }; conditions?: { type: string; status: string }[] };
}

describe("the agent across a real kube-apiserver restart and an etcd restart", () => {
  let cp: ControlPlane;
  let ns: string;
  let agent: Agent;
  let table: () => Promise<string>;
  const apply = (yaml: string) =>
    cp.kubectlOk(["apply", "--server-side", "--field-manager=test", "-f", "-"], { input: yaml });
  const ipvsNode = async () => {
    const r = await cp.api("GET", `/apis/ipvs.dev/v1alpha1/ipvsnodes/${NODE}`);
    return r.status === 200 ? (r.body as NodeStatus) : undefined;
  };

  beforeAll(async () => {
    cp = await startControlPlane({ controllerManager: false });
    await cp.installCrds();
    ns = await cp.newNamespace("restart");
    await apply(
      `apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: web, namespace: ${ns}}\nspec: {address: 192.0.2.90, port: 80}\n---\n${rs(ns, "a", "198.51.100.90")}`,
    );
    ({ agent, table } = testAgent({
      kubeConfig: loadKubeConfig(cp.kubeconfig),
      node: NODE,
      maxBackoffMs: 2000,
    }));
    await agent.start();
    await until("the first table", async () =>
      (await table()).includes("198.51.100.90") ? true : undefined,
    );
    await until("the IPVSNode", async () => ((await ipvsNode())?.status?.lastSync ? true : undefined));
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await cp?.stop();
  });

  it("keeps the table while the server is down, then follows changes; one IPVSNode, Ready again", async () => {
    const before = await table();
    const node = await ipvsNode();
    let checks = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        expect(await table()).toBe(before);
        checks++;
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const started = performance.now();
    await cp.restartApiServer(15_000);
    const downSeconds = (performance.now() - started) / 1000;
    watching = false;
    await watcher;
    expect(checks).toBeGreaterThan(40); // the table was looked at all through the restart
    process.stdout.write(
      `kube-apiserver down and back in ${downSeconds.toFixed(1)} s; ${checks} table checks\n`,
    );
    console.log("faults: kube-apiserver restart x1 (15 s down)");

    await apply(rs(ns, "b", "198.51.100.91"));
    await cp.kubectlOk(["-n", ns, "delete", "realserver", "a"]);
    await until("the changes after the restart", async () => {
      const t = await table();
      return t.includes("198.51.100.91") && !t.includes("198.51.100.90") ? t : undefined;
    });
    const after = await until("a new sync in the IPVSNode", async () => {
      const n = await ipvsNode();
      const ready = n?.status?.conditions?.find((c) => c.type === "Ready")?.status;
      return n?.status?.lastSync?.time !== node?.status?.lastSync?.time && ready === "True" ? n : undefined;
    });
    expect(after.metadata.uid).toBe(node?.metadata.uid); // the same object, not lost and re-created
    const list = await cp.api("GET", "/apis/ipvs.dev/v1alpha1/ipvsnodes");
    const names = (list.body as { items: { metadata: { name: string } }[] }).items.map(
      (i) => i.metadata.name,
    );
    expect(names.filter((n) => n === NODE)).toHaveLength(1);
  }, 180_000);

  it("keeps the table while etcd is down, then follows changes; the IPVSNode Ready again", async () => {
    const before = await table();
    const node = await ipvsNode();
    // Every second while etcd is down: the table is exactly as it was.
    let changed: string | undefined;
    let checks = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const t = await table();
        if (t !== before) changed ??= t;
        checks++;
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
    const started = performance.now();
    try {
      await cp.restartEtcd(15_000);
    } finally {
      watching = false;
      await watcher;
    }
    const downSeconds = (performance.now() - started) / 1000;
    expect(changed).toBeUndefined();
    expect(checks).toBeGreaterThanOrEqual(14); // looked at all through the outage
    process.stdout.write(
      `etcd down and back, kube-apiserver ready again, in ${downSeconds.toFixed(1)} s; ${checks} table checks\n`,
    );
    console.log("faults: etcd restart x1 (15 s down)");

    await apply(rs(ns, "c", "198.51.100.92"));
    await until(
      "the change after the etcd restart",
      async () => ((await table()).includes("198.51.100.92") ? true : undefined),
      60_000,
    );
    const after = await until(
      "a new sync in the IPVSNode, Ready",
      async () => {
        const n = await ipvsNode();
        const ready = n?.status?.conditions?.find((c) => c.type === "Ready")?.status;
        return n?.status?.lastSync?.time !== node?.status?.lastSync?.time && ready === "True" ? n : undefined;
      },
      60_000,
    );
    expect(after.metadata.uid).toBe(node?.metadata.uid);
  }, 180_000);
});
