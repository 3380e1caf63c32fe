/**
 * The agent through a fault-injecting proxy to the real API server: dropped watches, 429 storms with
 * Retry-After, 500s, a slow server and a 60 s outage. Throughout, the kernel table (fake kernel) never
 * loses an entry it should keep; after each fault the agent converges on its own to changes made
 * meanwhile, and its IPVSNode status catches up.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../src/agent/agent.ts";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { readKernelTable } from "../../src/kernel/read-kernel-table.ts";
import type { IpvsNodeStatusWriter } from "../../src/kube/ipvs-node-writer.ts";
import { loadKubeConfig } from "../../src/kube/kubernetes-source.ts";
import { renderIpvsadmSave } from "../../src/model/ipvsadm-render.ts";
import { until as waitFor } from "../../test/support/until.ts";
import { type FaultProxy, startFaultProxy } from "./fault-proxy.ts";
import { testAgent } from "./test-agent.ts";
import { useControlPlane } from "./use-control-plane.ts";

const cp = useControlPlane();

const until = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined, limitMs = 60_000) =>
  waitFor(what, probe, limitMs);

const rs = (ns: string, name: string, address: string) =>
  `apiVersion: ipvs.dev/v1alpha1\nkind: RealServer\nmetadata: {name: ${name}, namespace: ${ns}}\nspec: {virtualServiceRef: {name: web}, address: ${address}, port: 8080}\n`;

describe("the agent through faults between it and the API server", () => {
  let ns: string;
  let proxy: FaultProxy;
  let agent: Agent;
  let writer: IpvsNodeStatusWriter;
  const kernel = new FakeIpvsKernel();
  kernel.close = async () => {};
  const table = async () =>
    renderIpvsadmSave(await readKernelTable(kernel))
      .split("\n")
      .filter((l) => l.includes("192.0.2.80:"))
      .join("\n");
  /** Direct kubectl (not through the proxy): the world keeps changing while the agent is cut off. */
  const apply = (yaml: string) =>
    cp.kubectlOk(["apply", "--server-side", "--field-manager=test", "-f", "-"], { input: yaml });

  beforeAll(async () => {
    await cp.installCrds();
    ns = await cp.newNamespace("faults");
    await apply(
      `apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: web, namespace: ${ns}}\nspec: {address: 192.0.2.80, port: 80}\n---\n${rs(ns, "a", "198.51.100.80")}`,
    );
    const dir = mkdtempSync(join(tmpdir(), "faults-"));
    proxy = await startFaultProxy(cp, dir);
    ({ agent, writer } = testAgent({
      kubeConfig: loadKubeConfig(proxy.kubeconfig),
      node: "node-faults",
      kernel,
      stateFile: join(dir, "journal.json"),
      maxBackoffMs: 2000,
    }));
    await agent.start();
    await until("the first table", async () =>
      (await table()).includes("198.51.100.80") ? true : undefined,
    );
  });

  afterAll(async () => {
    await agent?.stop();
    await proxy?.close();
  });

  it("recovers from dropped watches", async () => {
    for (let i = 0; i < 5; i++) {
      proxy.dropWatches();
      await new Promise((r) => setTimeout(r, 200));
    }
    await apply(rs(ns, "b", "198.51.100.81"));
    proxy.dropWatches();
    await until("b after dropped watches", async () =>
      (await table()).includes("198.51.100.81") ? true : undefined,
    );
  });

  it("rides out a 429 storm with Retry-After and a run of 500s", async () => {
    proxy.throttle(40, 1);
    proxy.dropWatches();
    await apply(rs(ns, "c", "198.51.100.82"));
    await until("c after the 429 storm", async () =>
      (await table()).includes("198.51.100.82") ? true : undefined,
    );
    expect(proxy.stats.throttled).toBeGreaterThan(0);
    proxy.fail(40);
    proxy.dropWatches();
    await apply(rs(ns, "d", "198.51.100.83"));
    await until("d after the 500s", async () =>
      (await table()).includes("198.51.100.83") ? true : undefined,
    );
    expect(proxy.stats.failed).toBeGreaterThan(0);
  });

  it("works against a slow server", async () => {
    proxy.latency(400);
    await apply(rs(ns, "e", "198.51.100.84"));
    await until("e with 400 ms latency", async () =>
      (await table()).includes("198.51.100.84") ? true : undefined,
    );
    proxy.latency(0);
  });

  it("keeps the table as it is during a 60 s outage, then converges to what changed meanwhile", async () => {
    const before = await table();
    proxy.down();
    await cp.kubectlOk(["-n", ns, "delete", "realserver", "a"]);
    await apply(rs(ns, "f", "198.51.100.85"));
    const end = Date.now() + 60_000;
    while (Date.now() < end) {
      expect(await table()).toBe(before); // nothing removed, nothing half-applied
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(proxy.stats.reset).toBeGreaterThan(0);
    proxy.up();
    await until("convergence after the outage", async () => {
      const t = await table();
      return t.includes("198.51.100.85") && !t.includes("198.51.100.80") ? t : undefined;
    });
    const writes = writer.writes;
    await until("the status written again", () => (writer.writes > writes ? true : undefined), 30_000).catch(
      () => undefined,
    );
    const node = await cp.api("GET", "/apis/ipvs.dev/v1alpha1/ipvsnodes/node-faults");
    const ready = (
      node.body as { status?: { conditions?: { type: string; status: string }[] } }
    ).status?.conditions?.find((c) => c.type === "Ready");
    expect(ready?.status).toBe("True");
  }, 180_000);
});
