/**
 * `explain --kubeconfig` on the real API server: the objects and the Node's labels come from the
 * cluster (paged lists, as the agent reads them), and the answer is the same as for the same objects
 * in files.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../test/cli/run-cli.ts";
import { useControlPlane } from "./use-control-plane.ts";

const cp = useControlPlane();

beforeAll(async () => {
  await cp.installCrds();
});

describe("explain --kubeconfig (real API server)", () => {
  it("reads the objects and the node's labels from the cluster and answers as for the same files", async () => {
    const ns = await cp.newNamespace("explain");
    const objects = `apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: web, namespace: ${ns}}
spec: {address: 192.0.2.81, port: 80, nodeSelector: {matchLabels: {ipvs.dev/edge: "true"}}, backends: {serviceRef: {name: web, port: http}}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: ${ns}}
spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-a, namespace: ${ns}, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints: [{addresses: [10.8.0.1], conditions: {ready: true}}, {addresses: [10.8.0.2], conditions: {ready: false}}]
`;
    const nodes = `apiVersion: v1
kind: Node
metadata: {name: explain-edge, labels: {ipvs.dev/edge: "true"}}
---
apiVersion: v1
kind: Node
metadata: {name: explain-plain}
`;
    await cp.kubectlOk(["apply", "--server-side", "-f", "-"], { input: `${objects}---\n${nodes}` });

    const fromCluster = (target: string, node: string) =>
      runCli(["explain", target, "--kubeconfig", cp.kubeconfig, "--node", node]);
    const edge = await fromCluster("10.8.0.1", "explain-edge");
    expect(edge.stderr).toBe("");
    expect(edge.code).toBe(0);
    expect(edge.stdout).toContain(`VirtualService ${ns}/web`);
    expect(edge.stdout).toContain("its nodeSelector selects node explain-edge");

    const notReady = await fromCluster("10.8.0.2", "explain-edge");
    expect(notReady.code).toBe(1);
    expect(notReady.stdout).toContain("not ready");

    const plain = await fromCluster("192.0.2.81", "explain-plain");
    expect(plain.code).toBe(1);
    expect(plain.stdout).toContain("its nodeSelector does not select node explain-plain");

    // The same objects in files (the namespace's and nothing else) give the same explanation.
    const dir = mkdtempSync(join(tmpdir(), "explain-cp-"));
    writeFileSync(join(dir, "objects.yaml"), objects);
    const fromFiles = await runCli([
      "explain",
      "10.8.0.1",
      "-f",
      dir,
      "--node",
      "explain-edge",
      "--node-labels",
      "ipvs.dev/edge=true",
    ]);
    expect(fromFiles.code).toBe(0);
    expect(fromFiles.stdout).toBe(edge.stdout);
  });

  it("fails with a clear message when the cluster cannot be listed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "explain-cp-"));
    const kubeconfig = join(dir, "kubeconfig");
    writeFileSync(
      kubeconfig,
      "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    );
    const { explainCommand } = await import("../../src/cli/explain-command.ts");
    const { captureOutput } = await import("../../test/cli/run-cli.ts");
    const run = captureOutput(() =>
      explainCommand(["192.0.2.81", "--kubeconfig", kubeconfig, "--node", "n"], {
        now: () => Date.now(),
        bootId: async () => "boot",
        clusterTimeoutMs: 2000,
      }),
    );
    await expect(run).rejects.toThrow(/could not be listed within 2 s \(https:\/\/127\.0\.0\.1:9\)/);
  });
});
