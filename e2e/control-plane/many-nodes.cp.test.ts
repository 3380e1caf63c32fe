import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../src/agent/agent.ts";
import type { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { readKernelTable } from "../../src/kernel/read-kernel-table.ts";
import { loadKubeConfig } from "../../src/kube/kubernetes-source.ts";
import { renderIpvsadmSave } from "../../src/model/ipvsadm-render.ts";
import { until as waitFor } from "../../test/support/until.ts";
import { testAgent } from "./test-agent.ts";
import { useControlPlane } from "./use-control-plane.ts";

const cp = useControlPlane();
const NODES = Array.from({ length: 20 }, (_, i) => ({ name: `many-${i}`, zone: i % 2 === 0 ? "a" : "b" }));
const until = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined) =>
  waitFor(what, probe, 60_000);

describe("20 simulated nodes against the real API server", () => {
  let ns: string;
  const kernels: FakeIpvsKernel[] = [];
  const agents: Agent[] = [];
  const apply = (yaml: string) =>
    cp.kubectlOk(["apply", "--server-side", "--field-manager=test", "-f", "-"], { input: yaml });
  const vs = (name: string, address: string, extra = "") =>
    `apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: ${name}, namespace: ${ns}}\nspec: {address: ${address}, port: 80${extra}}\n---\n`;
  const rs = (name: string, target: string, address: string, weight = 1) =>
    `apiVersion: ipvs.dev/v1alpha1\nkind: RealServer\nmetadata: {name: ${name}, namespace: ${ns}}\nspec: {virtualServiceRef: {name: ${target}}, address: ${address}, port: 8080, weight: ${weight}}\n---\n`;
  /** The `ipvsadm -Sn` lines of a node's table about the 192.0.2.3x test services. */
  const table = async (i: number) =>
    renderIpvsadmSave(await readKernelTable(kernels[i]!))
      .split("\n")
      .filter((l) => l.includes("192.0.2.3"))
      .join("\n");
  /** Waits until every node's table is what `expected(zone)` says. */
  const converged = (what: string, expected: (zone: string) => string) =>
    until(what, async () => {
      for (const [i, node] of NODES.entries()) if ((await table(i)) !== expected(node.zone)) return undefined;
      return true;
    });

  beforeAll(async () => {
    await cp.installCrds();
    ns = await cp.newNamespace("many");
    await apply(
      NODES.map(
        (n) => `apiVersion: v1\nkind: Node\nmetadata: {name: ${n.name}, labels: {zone: "${n.zone}"}}\n---\n`,
      ).join(""),
    );
    const kubeConfig = loadKubeConfig(cp.kubeconfig);
    for (const node of NODES) {
      const { agent, kernel } = testAgent({ kubeConfig, node: node.name, resyncInterval: "3s" });
      kernels.push(kernel);
      agents.push(agent);
    }
    await Promise.all(agents.map((a) => a.start()));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await cp.kubectlOk(["delete", "node", ...NODES.map((n) => n.name), "--ignore-not-found"]);
  });

  it("create, scale, change and delete converge on every node; nodeSelector picks exactly its half", async () => {
    await apply(
      vs("all", "192.0.2.30") +
        rs("all-1", "all", "198.51.100.31") +
        vs("zone-a", "192.0.2.31", ", nodeSelector: {matchLabels: {zone: a}}") +
        rs("a-1", "zone-a", "198.51.100.41"),
    );
    const all = "-A -t 192.0.2.30:80 -s wlc\n-a -t 192.0.2.30:80 -r 198.51.100.31:8080 -m -w 1";
    const zoneA = "-A -t 192.0.2.31:80 -s wlc\n-a -t 192.0.2.31:80 -r 198.51.100.41:8080 -m -w 1";
    await converged("create", (zone) => (zone === "a" ? `${all}\n${zoneA}` : all));

    await apply(rs("all-2", "all", "198.51.100.32") + rs("all-3", "all", "198.51.100.33"));
    const scaled = `${all}\n-a -t 192.0.2.30:80 -r 198.51.100.32:8080 -m -w 1\n-a -t 192.0.2.30:80 -r 198.51.100.33:8080 -m -w 1`;
    await converged("scale", (zone) => (zone === "a" ? `${scaled}\n${zoneA}` : scaled));

    await apply(rs("all-1", "all", "198.51.100.31", 5));
    const changed = scaled.replace("198.51.100.31:8080 -m -w 1", "198.51.100.31:8080 -m -w 5");
    await converged("change", (zone) => (zone === "a" ? `${changed}\n${zoneA}` : changed));

    // Deleting a VirtualService drains its real servers (no connections here: removed at once).
    await cp.kubectlOk(["-n", ns, "delete", "virtualservice", "zone-a"]);
    await converged("delete", () => changed);

    const nodes = await cp.api("GET", "/apis/ipvs.dev/v1alpha1/ipvsnodes");
    const names = (nodes.body as { items: { metadata: { name: string } }[] }).items.map(
      (n) => n.metadata.name,
    );
    for (const node of NODES) expect(names).toContain(node.name);
  }, 240_000);
});
