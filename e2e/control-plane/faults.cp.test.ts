/**
 * The agent through a fault-injecting proxy to the real API server: dropped watches, 429 storms with
 * Retry-After, 500s, a slow server, storms of 410 Gone (relists), storms of 409 Conflict on every write
 * (the agent's IPVSNode, the status aggregator's Lease and statuses) and a 60 s outage. Throughout, the
 * kernel table (fake kernel) never loses an entry it should keep; after each fault the agent converges
 * on its own to changes made meanwhile, and the statuses catch up. Each test prints the faults it
 * injected (`faults: ...`).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Agent } from "../../src/agent/agent.ts";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { readKernelTable } from "../../src/kernel/read-kernel-table.ts";
import type { IpvsNodeStatusWriter } from "../../src/kube/ipvs-node-writer.ts";
import { loadKubeConfig } from "../../src/kube/kubernetes-source.ts";
import { StatusAggregator } from "../../src/kube/status-aggregator.ts";
import { renderIpvsadmSave } from "../../src/model/ipvsadm-render.ts";
import { until as waitFor } from "../../test/support/until.ts";
import { type FaultProxy, type FaultStats, faultSummary, startFaultProxy } from "./fault-proxy.ts";
import { testAgent } from "./test-agent.ts";
import { useControlPlane } from "./use-control-plane.ts";

const cp = useControlPlane();

/** How long the API server is gone in the outage test (OUTAGE_SECONDS; the soak runs take minutes). */
const OUTAGE_MS = Number(process.env.OUTAGE_SECONDS ?? 60) * 1000;

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

  let statsBefore: FaultStats;
  beforeEach(() => {
    statsBefore = { ...proxy.stats };
  });
  afterEach((ctx) => {
    console.log(`faults: ${faultSummary(proxy.stats, statsBefore)} (${ctx.task.name})`);
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

  it("relists through a storm of 410 Gone and never drops an entry that stays", async () => {
    const before = await table();
    const b = "198.51.100.81";
    const keep = before.split("\n").filter((l) => !l.includes(`${b}:`));
    expect(keep.length).toBeGreaterThan(4); // the service and c, d, e at least
    // Every 200 ms: no line that should stay is missing (a relist must not look like "all deleted").
    let lost: string | undefined;
    let checks = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const t = (await table()).split("\n");
        lost ??= keep.find((l) => !t.includes(l));
        checks++;
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const started = performance.now();
    let servedAt = 0;
    try {
      proxy.gone(20);
      proxy.dropWatches();
      // Meanwhile, straight to the API server: one added, one deleted.
      await apply(rs(ns, "g", "198.51.100.86"));
      await cp.kubectlOk(["-n", ns, "delete", "realserver", "b"]);
      // The client backs off between watches (1 s doubling to 30 s): generous, though 5-30 s is usual.
      await until(
        "20 answers of 410 Gone",
        () => (proxy.stats.gone - statsBefore.gone >= 20 ? true : undefined),
        80_000,
      );
      servedAt = performance.now();
      await until("g in and b out after the 410 storm", async () => {
        const t = await table();
        return t.includes("198.51.100.86") && !t.includes(`${b}:`) ? t : undefined;
      });
    } finally {
      watching = false;
      await watcher;
    }
    expect(lost).toBeUndefined();
    expect(checks).toBeGreaterThan(5);
    process.stdout.write(
      `20 x 410 served in ${((servedAt - started) / 1000).toFixed(1)} s, converged in ${((performance.now() - started) / 1000).toFixed(1)} s; ${checks} table checks, none lost an entry\n`,
    );
    expect(proxy.stats.goneEvents - statsBefore.goneEvents).toBeGreaterThan(0); // as watch ERROR events too
    expect(proxy.log.some((r) => r.status === 410)).toBe(false); // every 410 came from the proxy
  }, 150_000);

  it("retries writes through a storm of 409 Conflict until the statuses are right", async () => {
    const leaseNs = await cp.newNamespace("faults-lease");
    const aggregator = new StatusAggregator({
      kubeConfig: loadKubeConfig(proxy.kubeconfig),
      identity: "node-faults",
      leaseNamespace: leaseNs,
      minIntervalMs: 200,
      leaseDurationSeconds: 5,
      renewMs: 1000,
    });
    const object = async (kind: string, name: string) =>
      JSON.parse(await cp.kubectlOk(["-n", ns, "get", kind, name, "-o", "json"])) as {
        status?: { phase?: string; conditions?: { type: string; status: string }[] };
      };
    const ipvsNodeDestinations = async () =>
      (
        (await cp.api("GET", "/apis/ipvs.dev/v1alpha1/ipvsnodes/node-faults")).body as {
          status?: { destinations?: number };
        }
      ).status?.destinations;
    aggregator.start();
    try {
      await until("the aggregated status of g", async () =>
        (await object("realserver", "g")).status?.phase === "Active" ? true : undefined,
      );
      const destinations = await ipvsNodeDestinations();
      expect(destinations).toBeGreaterThan(0);

      // Every write conflicts: the agent's IPVSNode status, the Lease, the aggregated statuses.
      const started = performance.now();
      proxy.conflict(30);
      await apply(rs(ns, "h", "198.51.100.87"));
      await until("30 answers of 409 Conflict", () =>
        proxy.stats.conflicts - statsBefore.conflicts >= 30 ? true : undefined,
      );
      await until("h programmed, its status and the IPVSNode's count written", async () => {
        const t = await table();
        const h = await object("realserver", "h");
        const programmed = h.status?.conditions?.find((c) => c.type === "Programmed")?.status;
        return t.includes("198.51.100.87:8080") &&
          h.status?.phase === "Active" &&
          programmed === "True" &&
          (await ipvsNodeDestinations()) === (destinations ?? 0) + 1
          ? true
          : undefined;
      });

      const first = (performance.now() - started) / 1000;
      // Only the RealServer status writes conflict: nothing else changes after the aggregator's first
      // failed writes, so only its own retries can bring h's status to Disabled.
      proxy.conflict(6, /\/realservers\/[^/]+\/status$/);
      await apply(
        `apiVersion: ipvs.dev/v1alpha1\nkind: RealServer\nmetadata: {name: h, namespace: ${ns}}\nspec: {virtualServiceRef: {name: web}, address: 198.51.100.87, port: 8080, enabled: false}\n`,
      );
      await until("h drained in the table", async () =>
        (await table()).split("\n").some((l) => l.includes("198.51.100.87:8080") && l.endsWith("-w 0"))
          ? true
          : undefined,
      );
      await until("h's status Disabled after the conflicts", async () =>
        (await object("realserver", "h")).status?.phase === "Disabled" ? true : undefined,
      );
      expect(proxy.stats.conflicts - statsBefore.conflicts).toBe(36);
      process.stdout.write(
        `30 x 409 on every write: right in ${first.toFixed(1)} s; 6 x 409 on RealServer status: right in ${((performance.now() - started) / 1000 - first).toFixed(1)} s\n`,
      );
      expect(proxy.log.some((r) => r.status === 409)).toBe(false); // every 409 came from the proxy
    } finally {
      proxy.conflict(0);
      await aggregator.stop();
    }
  }, 150_000);

  it(
    `keeps the table as it is during a ${OUTAGE_MS / 1000} s outage, then converges to what changed meanwhile`,
    async () => {
      const before = await table();
      proxy.down();
      await cp.kubectlOk(["-n", ns, "delete", "realserver", "a"]);
      await apply(rs(ns, "f", "198.51.100.85"));
      const end = Date.now() + OUTAGE_MS;
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
      await until(
        "the status written again",
        () => (writer.writes > writes ? true : undefined),
        30_000,
      ).catch(() => undefined);
      const node = await cp.api("GET", "/apis/ipvs.dev/v1alpha1/ipvsnodes/node-faults");
      const ready = (
        node.body as { status?: { conditions?: { type: string; status: string }[] } }
      ).status?.conditions?.find((c) => c.type === "Ready");
      expect(ready?.status).toBe("True");
    },
    OUTAGE_MS + 120_000,
  );
});
