/**
 * The guest half of bench/cluster-scale.ts: runs inside the test-bed VM against the host's API server
 * (which holds the scale workload) and the VM's real IPVS kernel. Prints, as ratios measured in this
 * same VM:
 * - agent start (list + first sync into an empty kernel) against `ipvsadm -R` of the same table,
 * - the agent's peak RSS,
 * - EndpointSlice changes (one API PUT each: endpoints added and removed) to the kernel against one
 *   `ipvsadm -a` / `-d` process.
 *   node bench/cluster-scale-guest.ts WORKDIR N      (WORKDIR holds kubeconfig and ca.crt)
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { DiscoveryV1Api } from "@kubernetes/client-node";
import { Agent } from "../src/agent/agent.ts";
import { resolveAgentConfig } from "../src/agent/config.ts";
import { NetlinkIpvsKernel } from "../src/kernel/netlink-kernel.ts";
import { KubernetesSource, loadKubeConfig } from "../src/kube/kubernetes-source.ts";
import { createRootLogger } from "../src/observability/logger.ts";
import { scaleVip } from "./scale-workload.ts";

const [dir, nText, ns] = process.argv.slice(2);
if (!dir || !nText || !ns) throw new Error("usage: cluster-scale-guest.ts WORKDIR N NAMESPACE");
const N = Number(nText);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ipvsadm = (args: string[], input?: string) => {
  const t0 = performance.now();
  const r = spawnSync("ipvsadm", args, { encoding: "utf8", input, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`ipvsadm ${args.join(" ")}: ${r.stderr}`);
  return { ms: performance.now() - t0, out: r.stdout };
};

const kernel = new NetlinkIpvsKernel();
await kernel.flush(); // the VM is ours alone
let operations = 0;
let dumps = 0;
/** Operations the kernel confirmed, and when (performance.now()). */
let applied: { at: number; ops: Parameters<typeof kernel.apply>[0] }[] = [];
const apply = kernel.apply.bind(kernel);
kernel.apply = async (ops) => {
  operations += ops.length;
  const results = await apply(ops);
  applied.push({ at: performance.now(), ops });
  return results;
};
const readTable = kernel.readTable.bind(kernel);
kernel.readTable = () => {
  dumps++;
  return readTable();
};
const kubeConfig = loadKubeConfig(`${dir}/kubeconfig`);
const config = resolveAgentConfig(
  {
    stateFile: "/tmp/scale-journal.json",
    minSyncInterval: "0",
    resyncInterval: "10m",
    httpAddress: "",
  },
  { NODE_NAME: "scale-vm" },
);
const source = new KubernetesSource({ kubeConfig, nodeName: "scale-vm" });
const agent = new Agent(config, {
  kernel,
  source,
  bootId: readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim(),
  logger: createRootLogger({ level: "warn" }),
});
const rssBefore = process.memoryUsage().rss;
// Where the peak is: sampled every 100 ms while the caches list, then during the first sync.
const peaks = { listing: { rss: 0, heap: 0 }, syncing: { rss: 0, heap: 0 } };
const sampler = setInterval(() => {
  const m = process.memoryUsage();
  const peak = source.synced ? peaks.syncing : peaks.listing;
  peak.rss = Math.max(peak.rss, m.rss);
  peak.heap = Math.max(peak.heap, m.heapUsed);
}, 100);
const started = performance.now();
await agent.start();
for (;;) {
  const services = (await kernel.listServices()).length;
  if (services >= N && !agent.health().syncing && agent.health().syncs > 0) break;
  await sleep(250);
}
const startSeconds = (performance.now() - started) / 1000;
const peakRss = process.resourceUsage().maxRSS * 1024;
clearInterval(sampler);
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
console.log(
  `sampled peaks: while listing RSS ${mib(peaks.listing.rss)}, heap used ${mib(peaks.listing.heap)}; ` +
    `during the first sync RSS ${mib(peaks.syncing.rss)}, heap used ${mib(peaks.syncing.heap)}`,
);
const table = await kernel.readTable();
const destinations = table.table.reduce((n, e) => n + e.destinations.length, 0);
console.log(
  `agent start to ${table.table.length} services, ${destinations} destinations: ${startSeconds.toFixed(1)} s, ` +
    `${operations} kernel operations; peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB (${(rssBefore / 2 ** 20).toFixed(0)} MiB before the agent started)`,
);

// EndpointSlice changes, each through one API request, to the kernel: an endpoint added to one
// Service's slice and removed again, for three Services (the first change after a whole sync may
// find the short way's indexes still building).
const discovery = kubeConfig.makeApiClient(DiscoveryV1Api);
// BENCH_PROFILE=1 (passed with VM_PASS_ENV=BENCH_PROFILE): a CPU profile of the changes, summarized.
const profiler = process.env.BENCH_PROFILE ? new Session() : undefined;
if (profiler) {
  profiler.connect();
  await profiler.post("Profiler.enable");
  await profiler.post("Profiler.start");
}
// When the agent's watch delivered each Service's slice change (this listener runs after the agent's).
const seen = new Map<string, number>();
source.onChange((change) => {
  if (change?.kind === "EndpointSlices" && !seen.has(change.service))
    seen.set(change.service, performance.now());
});
const changes: number[] = [];
for (const [i, added] of [7, 8, 9].flatMap((i) => [[i, true] as const, [i, false] as const])) {
  operations = 0;
  dumps = 0;
  const address = `172.17.0.${i}`;
  const slice = await discovery.readNamespacedEndpointSlice({ name: `svc-${i}-x`, namespace: ns });
  slice.endpoints = added
    ? [...(slice.endpoints ?? []), { addresses: [address], conditions: { ready: true } }]
    : (slice.endpoints ?? []).filter((e) => e.addresses[0] !== address);
  seen.clear();
  applied = [];
  const changeAt = performance.now();
  await discovery.replaceNamespacedEndpointSlice({ name: `svc-${i}-x`, namespace: ns, body: slice });
  const answeredAt = performance.now(); // the API server has stored it (the PUT's own TLS and round trip excluded)
  const touches = (op: (typeof applied)[number]["ops"][number]) =>
    op.op !== "addService" &&
    op.op !== "updateService" &&
    op.op !== "deleteService" &&
    ("destination" in op ? op.destination.key.address : op.key.address) === address;
  let appliedAt: number | undefined;
  while (appliedAt === undefined) {
    appliedAt = applied.find((a) => a.ops.some(touches))?.at;
    await sleep(5); // a JavaScript check, not a netlink dump: nothing competes with the agent
  }
  const seenAt = seen.get(`${ns}/svc-${i}`) ?? answeredAt;
  changes.push(appliedAt - seenAt);
  console.log(
    `EndpointSlice change (endpoint ${added ? "added" : "removed"}, svc-${i}): ${(appliedAt - seenAt).toFixed(0)} ms from the watch event to the kernel, ` +
      `${(appliedAt - answeredAt).toFixed(0)} ms after the PUT's answer, ${(appliedAt - changeAt).toFixed(0)} ms after sending it; ` +
      `${operations} kernel operations, ${dumps} table dumps`,
  );
}
if (profiler) {
  const { profile } = await profiler.post("Profiler.stop");
  writeFileSync("/tmp/changes.cpuprofile", JSON.stringify(profile));
  const summary = spawnSync(
    process.execPath,
    ["bench/cpu-profile-summary.ts", "/tmp/changes.cpuprofile", "40"],
    {
      encoding: "utf8",
    },
  );
  console.log(summary.stdout);
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const changeMs = median(changes);
await agent.stop();

// The same work done by ipvsadm in this VM.
const saved = ipvsadm(["-Sn"]).out;
writeFileSync("/tmp/scale.ipvsadm", saved);
ipvsadm(["-C"]);
const restore = ipvsadm(["-R"], saved);
const singles: number[] = [];
for (let i = 0; i < 6; i++) {
  const address = `172.17.1.${i + 1}`;
  singles.push(ipvsadm(["-a", "-t", `${scaleVip(7)}:80`, "-r", `${address}:8080`, "-m"]).ms);
  singles.push(ipvsadm(["-d", "-t", `${scaleVip(7)}:80`, "-r", `${address}:8080`]).ms);
}
const single = median(singles);
console.log(
  `ipvsadm -R of the same table: ${(restore.ms / 1000).toFixed(1)} s; one ipvsadm -a or -d: ${single.toFixed(0)} ms (median of ${singles.length})`,
);
console.log(
  `ratios: agent start / ipvsadm -R = ${(startSeconds / (restore.ms / 1000)).toFixed(2)}; ` +
    `one change (median of ${changes.length}) / one ipvsadm -a or -d = ${(changeMs / single).toFixed(2)} (target < 1); peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB (target < 300)`,
);
ipvsadm(["-C"]); // agent.stop() closed the kernel handle
