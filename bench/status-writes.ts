/**
 * Status writes follow changes, not resyncs (issue "The agent", item 6): N simulated agents (fake
 * kernels, one process) against a real control plane, with M VirtualServices. Prints the API writes
 * (IPVSNode status by the agents, VirtualService/RealServer status by the elected aggregator) per
 * minute while idle, and the writes caused by one change.
 *   node bench/status-writes.ts        (BENCH_AGENTS=50, BENCH_VS=20, BENCH_RESYNC=5s, BENCH_IDLE_S=60)
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startControlPlane } from "../e2e/control-plane/control-plane.ts";
import { Agent } from "../src/agent/agent.ts";
import { resolveAgentConfig } from "../src/agent/config.ts";
import { FakeIpvsKernel } from "../src/kernel/fake-kernel.ts";
import { IpvsNodeStatusWriter } from "../src/kube/ipvs-node-writer.ts";
import { KubernetesSource, loadKubeConfig } from "../src/kube/kubernetes-source.ts";
import { StatusAggregator } from "../src/kube/status-aggregator.ts";
import { createRootLogger } from "../src/observability/logger.ts";

const AGENTS = Number(process.env.BENCH_AGENTS ?? 50);
const VS = Number(process.env.BENCH_VS ?? 20);
const RESYNC = process.env.BENCH_RESYNC ?? "5s";
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 60);
const cp = await startControlPlane({ controllerManager: false });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
try {
  await cp.installCrds();
  const ns = await cp.newNamespace("writes");
  const leaseNs = await cp.newNamespace("lease");
  let yaml = "";
  for (let i = 0; i < VS; i++) {
    yaml += `apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: vs-${i}, namespace: ${ns}}\nspec: {address: 192.0.2.${i + 1}, port: 80}\n---\n`;
    yaml += `apiVersion: ipvs.dev/v1alpha1\nkind: RealServer\nmetadata: {name: rs-${i}, namespace: ${ns}}\nspec: {virtualServiceRef: {name: vs-${i}}, address: 198.51.100.${i + 1}, port: 80}\n---\n`;
  }
  await cp.kubectlOk(["apply", "--server-side", "-f", "-"], { input: yaml });
  const kubeConfig = loadKubeConfig(cp.kubeconfig);
  const logger = createRootLogger({ level: "silent" });
  const agents: { agent: Agent; writer: IpvsNodeStatusWriter; aggregator: StatusAggregator }[] = [];
  for (let n = 0; n < AGENTS; n++) {
    const node = `node-${n}`;
    const kernel = new FakeIpvsKernel();
    const config = resolveAgentConfig(
      {
        stateFile: join(mkdtempSync(join(tmpdir(), "writes-")), "journal.json"),
        resyncInterval: RESYNC,
        httpAddress: "",
      },
      { NODE_NAME: node },
    );
    const writer = new IpvsNodeStatusWriter({ kubeConfig, nodeName: node });
    const agent = new Agent(config, {
      kernel,
      source: new KubernetesSource({ kubeConfig, nodeName: node }),
      bootId: "b",
      logger,
      statusWriter: writer,
    });
    const aggregator = new StatusAggregator({ kubeConfig, identity: node, leaseNamespace: leaseNs });
    agents.push({ agent, writer, aggregator });
  }
  const t0 = performance.now();
  await Promise.all(
    agents.map(async (a) => {
      a.aggregator.start();
      await a.agent.start();
    }),
  );
  const writes = () => agents.reduce((n, a) => n + a.writer.writes + a.aggregator.writes, 0);
  // Settle: every agent programmed and reported, the aggregator caught up.
  let last = -1;
  while (writes() !== last) {
    last = writes();
    await sleep(10_000);
  }
  const settled = (performance.now() - t0) / 1000;
  const syncs0 = agents.reduce((n, a) => n + a.agent.health().syncs, 0);
  const idle0 = writes();
  await sleep(IDLE_S * 1000);
  const idleWrites = writes() - idle0;
  const idleSyncs = agents.reduce((n, a) => n + a.agent.health().syncs, 0) - syncs0;
  const before = writes();
  await cp.kubectlOk([
    "-n",
    ns,
    "patch",
    "realserver",
    "rs-0",
    "--type=merge",
    "-p",
    '{"spec":{"weight":5}}',
  ]);
  await sleep(15_000);
  const changeWrites = writes() - before;
  console.log(
    `${AGENTS} agents, ${VS} VirtualServices, resync ${RESYNC}: settled after ${settled.toFixed(0)} s with ${idle0} writes`,
  );
  console.log(
    `idle ${IDLE_S} s: ${idleSyncs} syncs, ${idleWrites} API writes (${((idleWrites * 60) / IDLE_S).toFixed(1)} per minute)`,
  );
  console.log(`one RealServer weight change: ${changeWrites} API writes in the 15 s after it`);
  for (const a of agents) {
    await a.aggregator.stop();
    await a.agent.stop();
  }
} finally {
  await cp.stop();
}
