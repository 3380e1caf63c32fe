/**
 * The test bed itself: the built binaries report the pinned version, the helper's namespaces work, and
 * kube-controller-manager's controllers do their part (EndpointSlices for a Service whose Pod the test
 * marks ready, garbage collection of owned objects, namespace deletion).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { useControlPlane } from "./use-control-plane.ts";

const cp = useControlPlane();
const pinned = readFileSync(new URL("./versions.env", import.meta.url), "utf8").match(
  /^K8S_VERSION=(\S+)$/m,
)?.[1];

/** Polls `fn` until it returns a value other than undefined. */
async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("control plane", () => {
  it("kubectl and kube-apiserver are the pinned release", async () => {
    expect(pinned).toMatch(/^v1\.\d+\.\d+$/);
    const v = JSON.parse(await cp.kubectlOk(["version", "-o", "json"])) as {
      clientVersion: { gitVersion: string; gitTreeState: string };
      serverVersion: { gitVersion: string; major: string; minor: string };
    };
    expect(v.clientVersion.gitVersion).toBe(pinned);
    expect(v.clientVersion.gitTreeState).toBe("clean");
    expect(v.serverVersion.gitVersion).toBe(pinned);
    expect(`v${v.serverVersion.major}.${v.serverVersion.minor}.`).toBe(pinned!.replace(/\d+$/, ""));
    expect(cp.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it("gives fresh namespaces", async () => {
    const [a, b] = await Promise.all([cp.newNamespace("x"), cp.newNamespace("x")]);
    expect(a).not.toBe(b);
    const r = await cp.api("GET", `/api/v1/namespaces/${a}`);
    expect(r.status).toBe(200);
  });

  it("runs kube-controller-manager", () => {
    expect(cp.controllerManager).toBe(true);
  });

  it("EndpointSlice controller: a Service gets the ready Pod's address", async () => {
    const ns = await cp.newNamespace("eps");
    const node = `node-${ns}`;
    await cp.kubectlOk(["apply", "-f", "-"], {
      input: JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [
          { apiVersion: "v1", kind: "Node", metadata: { name: node } },
          {
            apiVersion: "v1",
            kind: "Service",
            metadata: { name: "web", namespace: ns },
            spec: { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: 8080 }] },
          },
          {
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: "web-0", namespace: ns, labels: { app: "web" } },
            spec: {
              nodeName: node,
              containers: [{ name: "web", image: "web:1", ports: [{ containerPort: 8080 }] }],
            },
          },
        ],
      }),
    });
    // No kubelet runs: the test plays its part and reports the Pod running and ready.
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    await cp.kubectlOk([
      "patch",
      "pod",
      "web-0",
      "-n",
      ns,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({
        status: {
          phase: "Running",
          podIP: "10.244.0.5",
          podIPs: [{ ip: "10.244.0.5" }],
          conditions: [{ type: "Ready", status: "True", lastTransitionTime: now }],
        },
      }),
    ]);
    const endpoint = await eventually("an EndpointSlice with the Pod", async () => {
      const r = await cp.api("GET", `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`);
      const items = (
        r.body as { items: { endpoints?: { addresses: string[]; conditions: { ready?: boolean } }[] }[] }
      ).items;
      return items.flatMap((s) => s.endpoints ?? []).find((e) => e.addresses.includes("10.244.0.5"));
    });
    expect(endpoint.conditions.ready).toBe(true);
    await cp.kubectlOk(["delete", "node", node]);
  });

  it("garbage collector and namespace controller: deleting a namespace removes it and its objects", async () => {
    const ns = await cp.newNamespace("gc");
    await cp.kubectlOk(["create", "configmap", "owner", "-n", ns]);
    const owner = JSON.parse(await cp.kubectlOk(["get", "configmap", "owner", "-n", ns, "-o", "json"])) as {
      metadata: { uid: string };
    };
    await cp.kubectlOk(["apply", "-f", "-"], {
      input: JSON.stringify({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: {
          name: "owned",
          namespace: ns,
          ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata.uid }],
        },
      }),
    });
    await cp.kubectlOk(["delete", "configmap", "owner", "-n", ns, "--wait=true"]);
    await eventually("the owned ConfigMap collected", async () => {
      const r = await cp.api("GET", `/api/v1/namespaces/${ns}/configmaps/owned`);
      return r.status === 404 ? true : undefined;
    });
    await cp.kubectlOk(["delete", "namespace", ns, "--wait=false"]);
    await eventually("the namespace gone", async () => {
      const r = await cp.api("GET", `/api/v1/namespaces/${ns}`);
      return r.status === 404 ? true : undefined;
    });
  });
});
