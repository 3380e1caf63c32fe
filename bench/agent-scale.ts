/**
 * Agent scale on the host against a real control plane (issue "The agent", item 10, host part):
 * N VirtualServices, each backed by a Service and one EndpointSlice of 10 endpoints. Prints
 * - the time from agent start to the first sync that programmed all N services (list + compute + apply
 *   into the fake kernel, which costs what the pure code costs; the VM part is still to do),
 * - the agent process's RSS after that sync (the bench's own objects are small),
 * - the time from one EndpointSlice change (one API PUT) to the kernel, the kernel operations and the
 *   table dumps it took.
 *   node bench/agent-scale.ts            (N=10000; BENCH_N=1000 for a quick run)
 *   BENCH_PROFILE=change.cpuprofile      also writes a CPU profile of the change window
 *   node --expose-gc bench/agent-scale.ts also prints the live heap after a full collection
 *   BENCH_HEAP=after-start.heapsnapshot  also writes a heap snapshot after the first sync
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeHeapSnapshot } from "node:v8";
import { startControlPlane } from "../e2e/control-plane/control-plane.ts";
import { Agent } from "../src/agent/agent.ts";
import { resolveAgentConfig } from "../src/agent/config.ts";
import { FakeIpvsKernel } from "../src/kernel/fake-kernel.ts";
import { KubernetesSource, loadKubeConfig } from "../src/kube/kubernetes-source.ts";
import { createRootLogger } from "../src/observability/logger.ts";
import { createScaleWorkload } from "./scale-workload.ts";

const N = Number(process.env.BENCH_N ?? 10_000);
const cp = await startControlPlane({ controllerManager: false });
try {
  await cp.installCrds();
  const ns = await cp.newNamespace("scale");
  const created = await createScaleWorkload(cp, ns, N);
  console.log(`created ${created.objects} objects in ${created.seconds.toFixed(1)} s`);

  const kernel = new FakeIpvsKernel();
  let operations = 0;
  let dumps = 0;
  const readTable = kernel.readTable.bind(kernel);
  kernel.readTable = () => {
    dumps++;
    return readTable();
  };
  const apply = kernel.apply.bind(kernel);
  kernel.apply = async (ops) => {
    operations += ops.length;
    return apply(ops);
  };
  const kubeConfig = loadKubeConfig(cp.kubeconfig);
  const config = resolveAgentConfig(
    {
      stateFile: join(mkdtempSync(join(tmpdir(), "scale-")), "journal.json"),
      minSyncInterval: "0",
      resyncInterval: "10m",
      httpAddress: "",
    },
    { NODE_NAME: "scale-node" },
  );
  const rssBefore = process.memoryUsage().rss;
  const scopes: string[] = [];
  const agent = new Agent(config, {
    kernel,
    source: new KubernetesSource({ kubeConfig, nodeName: "scale-node" }),
    bootId: "boot",
    logger: createRootLogger({ level: "silent" }),
    onSync: (report) => {
      scopes.push(report.scope);
    },
  });
  const start = performance.now();
  await agent.start();
  while (kernel.serviceCount < N || agent.health().syncing) await new Promise((r) => setTimeout(r, 20));
  const firstSync = performance.now() - start;
  const rss = process.memoryUsage().rss;
  // With --expose-gc: the live heap after a full collection (what the agent keeps, not GC slack).
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    const m = process.memoryUsage();
    console.log(
      `after a full GC: heap used ${(m.heapUsed / 2 ** 20).toFixed(0)} MiB, RSS ${(m.rss / 2 ** 20).toFixed(0)} MiB`,
    );
  }
  if (process.env.BENCH_HEAP) writeHeapSnapshot(process.env.BENCH_HEAP);
  console.log(
    `agent start to ${N} services x 10 programmed: ${(firstSync / 1000).toFixed(2)} s (${operations} kernel operations); ` +
      `RSS ${(rss / 2 ** 20).toFixed(0)} MiB (${((rss - rssBefore) / 2 ** 20).toFixed(0)} MiB more than before the agent)`,
  );
  // Each change goes in by one API request (a kubectl process would add its own start-up to the
  // figure): an endpoint added to one Service's slice, then removed again, for three Services. The
  // first change after a whole sync also builds the indexes the short way uses.
  const profiler = process.env.BENCH_PROFILE ? new Session() : undefined;
  if (profiler) {
    profiler.connect();
    await profiler.post("Profiler.enable");
    await profiler.post("Profiler.start");
  }
  const timings: number[] = [];
  for (const [i, added] of [7, 8, 9].flatMap((i) => [[i, true] as const, [i, false] as const])) {
    const slicePath = `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/svc-${i}-x`;
    const slice = (await cp.api("GET", slicePath)).body as { endpoints: { addresses: string[] }[] };
    const address = `172.17.0.${i}`;
    if (added) slice.endpoints.push({ addresses: [address], conditions: { ready: true } } as never);
    else slice.endpoints = slice.endpoints.filter((e) => e.addresses[0] !== address);
    operations = 0;
    dumps = 0;
    const changeAt = performance.now();
    const put = await cp.api("PUT", slicePath, slice);
    if (put.status !== 200) throw new Error(`PUT failed: HTTP ${put.status}`);
    const key = {
      kind: "address" as const,
      family: "IPv4" as const,
      protocol: "TCP" as const,
      address: `10.0.${i}.1`,
      port: 80,
    };
    for (;;) {
      const dests = await kernel.listDestinations(key);
      if (dests.some((d) => d.key.address === address) === added) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    const ms = performance.now() - changeAt;
    timings.push(ms);
    console.log(
      `EndpointSlice change (${added ? "endpoint added" : "endpoint removed"}, svc-${i}) to the kernel: ${ms.toFixed(0)} ms from the API request, ${operations} kernel operations, ${dumps} table dumps`,
    );
  }
  if (profiler) {
    const { profile } = await profiler.post("Profiler.stop");
    writeFileSync(process.env.BENCH_PROFILE!, JSON.stringify(profile));
  }
  const sorted = [...timings].sort((a, b) => a - b);
  await new Promise((r) => setTimeout(r, 500)); // the last sync's report
  const short = scopes.filter((scope) => scope === "changes").length;
  console.log(`syncs after the first: ${scopes.length - 1 - short} whole, ${short} the short way`);
  console.log(
    `one EndpointSlice change to the kernel: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} ms of ${timings.length}`,
  );
  await agent.stop();
} finally {
  await cp.stop();
}
