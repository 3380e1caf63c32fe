/**
 * Programs N services x M destinations and reads them back, printing times and ratios:
 * - NetlinkIpvsKernel.apply() (the first of the process, JIT-cold as in a CLI run, and the fastest
 *   warm one; BENCH_UNBATCHED=1 adds batchSize 1) against `ipvsadm -R` run just before it;
 * - reading the table as a sync does (readTable({ stats: false })) against `ipvsadm -Sn` on the same table;
 * - a no-op resync (that read + diff against the same desired table: what a periodic agent
 *   sync costs when nothing changed);
 * - the bench process's peak RSS.
 * Needs a kernel with IPVS and CAP_NET_ADMIN; run it in the test-bed VM:
 *   npm run bench        (= e2e/vm/run-in-vm.sh -- node bench/kernel-apply.ts)
 *   e2e/vm/run-in-vm.sh -- node bench/kernel-apply.ts [services] [destinations]
 * Environment: BENCH_APPLY=0 skips the apply() runs (the table is loaded with ipvsadm -R only);
 * BENCH_ROUNDS=<n> (default 3) rounds, each measurement next to its baseline (the fastest of each is
 * printed); BENCH_READ_CONCURRENCY=<n> sets NetlinkIpvsKernel's readConcurrency;
 * BENCH_KERNEL_MODULE=<path> benchmarks another module exporting NetlinkIpvsKernel (to compare
 * two versions in one boot).
 * It flushes the IPVS table between runs: never run it on a host with real services.
 */
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import type { IpvsKernel } from "../src/kernel/ipvs-kernel.ts";
import type { NetlinkIpvsKernelOptions } from "../src/kernel/netlink-kernel.ts";
import type { DesiredTable } from "../src/model/desired-table.ts";
import { diff } from "../src/model/diff.ts";
import type { Operation } from "../src/vocabulary/operations.ts";
import type { KernelTable, ServiceKey } from "../src/vocabulary/table.ts";
import { NO_FLAGS, NO_TUNNEL } from "../src/vocabulary/table.ts";

const services = Number(process.argv[2] ?? 1000);
const dests = Number(process.argv[3] ?? 4);
const runApply = process.env.BENCH_APPLY !== "0";
const modulePath = process.env.BENCH_KERNEL_MODULE;
const { NetlinkIpvsKernel } = (await import(
  modulePath ? pathToFileURL(resolve(modulePath)).href : "../src/kernel/netlink-kernel.ts"
)) as { NetlinkIpvsKernel: new (options?: NetlinkIpvsKernelOptions) => IpvsKernel };

let peakRss = 0;
function sampleRss(): void {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}

function serviceKey(i: number): ServiceKey {
  return {
    kind: "address",
    family: "IPv4",
    protocol: "TCP",
    address: `10.${(i >> 8) & 0xff}.${i & 0xff}.1`,
    port: 80 + (i >> 16),
  };
}

function desiredTable(): DesiredTable {
  const source = { namespace: "bench", name: "bench" };
  const table: DesiredTable = [];
  for (let i = 0; i < services; i++) {
    table.push({
      service: {
        key: serviceKey(i),
        config: {
          scheduler: "wlc",
          flags: { ...NO_FLAGS },
          timeout: 0,
          netmask: 0xffffffff,
          persistenceEngine: "",
        },
        source,
        driftPolicy: "Repair",
        drainTimeoutSeconds: 0,
      },
      destinations: Array.from({ length: dests }, (_, j) => ({
        key: { family: "IPv4" as const, address: `198.51.${100 + (j >> 8)}.${(j & 0xff) + 1}`, port: 8080 },
        config: { forwarding: "NAT" as const, weight: 1, upperThreshold: 0, lowerThreshold: 0, ...NO_TUNNEL },
        source: { ...source, kind: "RealServer" as const },
      })),
    });
  }
  return table;
}

function plan(table: DesiredTable): Operation[] {
  const ops: Operation[] = [];
  for (const { service, destinations } of table) {
    ops.push({ op: "addService", service: { key: service.key, config: service.config } });
    for (const d of destinations) {
      ops.push({ op: "addDestination", service: service.key, destination: { key: d.key, config: d.config } });
    }
  }
  return ops;
}

function ipvsadmText(ops: Operation[]): string {
  return ops
    .map((op) => {
      if (op.op === "addService" && op.service.key.kind === "address") {
        return `-A -t ${op.service.key.address}:${op.service.key.port} -s wlc`;
      }
      if (op.op === "addDestination" && op.service.kind === "address") {
        const d = op.destination.key;
        return `-a -t ${op.service.address}:${op.service.port} -r ${d.address}:${d.port} -m -w 1`;
      }
      throw new Error(`bench: unexpected operation ${op.op}`);
    })
    .join("\n");
}

async function withKernel<T>(fn: (kernel: IpvsKernel) => Promise<T>, options: NetlinkIpvsKernelOptions = {}) {
  const kernel = new NetlinkIpvsKernel({
    timeoutMs: 60_000,
    ...options,
  });
  try {
    await kernel.getInfo(); // resolve the family outside the timed part
    return await fn(kernel);
  } finally {
    await kernel.close();
  }
}

async function flush(): Promise<void> {
  await withKernel((k) => k.flush());
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  const ms = performance.now() - t0;
  sampleRss();
  return { ms, value };
}

function checkComplete(what: string, table: KernelTable): void {
  if (table.some((e) => e.destinations.length !== dests))
    throw new Error(`${what}: a service has the wrong destinations`);
  const n = table.reduce((sum, e) => sum + e.destinations.length, 0);
  if (table.length !== services || n !== services * dests) {
    throw new Error(
      `${what}: read ${table.length} services / ${n} destinations, expected ${services} / ${services * dests}`,
    );
  }
}

const desired = desiredTable();
const ops = plan(desired);
const restoreText = ipvsadmText(ops);
const applyRows: [string, number, number][] = [];
const readRows: [string, number, number][] = [];
// Each measurement is repeated BENCH_ROUNDS times (default 3), interleaved with its ipvsadm baseline,
// and compared with the baseline of the same round: the VM's speed varies several-fold with the
// host's load, and interleaving keeps both sides of a ratio under the same load.
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const readConcurrency = process.env.BENCH_READ_CONCURRENCY
  ? Number(process.env.BENCH_READ_CONCURRENCY)
  : undefined;

function restore(): number {
  const t0 = performance.now();
  const r = spawnSync("ipvsadm", ["-R"], { input: restoreText, encoding: "utf8" });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`ipvsadm -R failed: ${r.stderr}`);
  sampleRss();
  return ms;
}

function save(): number {
  const t0 = performance.now();
  const r = spawnSync("ipvsadm", ["-Sn"], { encoding: "utf8", maxBuffer: 1 << 30 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`ipvsadm -Sn failed: ${r.stderr}`);
  const lines = r.stdout.split("\n").filter((l) => l.trim() !== "").length;
  if (lines !== services * (dests + 1)) {
    throw new Error(`ipvsadm -Sn printed ${lines} lines, expected ${services * (dests + 1)}`);
  }
  return ms;
}

/** Fastest of each column, and the ratio of the fastest measured to the fastest baseline. */
function best(name: string, pairs: [number, number][], rows: [string, number, number][]): void {
  rows.push([name, Math.min(...pairs.map((p) => p[0])), Math.min(...pairs.map((p) => p[1]))]);
}

if (runApply) {
  const batchSizes = process.env.BENCH_UNBATCHED === "1" ? [1, 256] : [256];
  const pairs = new Map<number, [number, number][]>(batchSizes.map((b) => [b, []]));
  let cold: [number, number] | undefined;
  for (let round = 0; round < rounds; round++) {
    for (const batchSize of batchSizes) {
      await flush();
      const baseline = restore();
      await flush();
      const { ms, value } = await timed(() => withKernel((k) => k.apply(ops), { batchSize }));
      const failed = value.filter((r) => !r.ok).length;
      if (failed) throw new Error(`batchSize ${batchSize}: ${failed} operations failed`);
      if (!cold)
        cold = [ms, baseline]; // the first apply() of the process: JIT-cold, as a CLI run is
      else pairs.get(batchSize)!.push([ms, baseline]);
    }
  }
  applyRows.push(["apply (cold: first in process)", cold![0], cold![1]]);
  for (const [batchSize, p] of pairs) if (p.length) best(`apply batchSize=${batchSize} (warm)`, p, applyRows);
}

await flush();
restore();
save(); // the first run also reads the ipvsadm binary and libraries (over 9p in the VM)
const options: NetlinkIpvsKernelOptions = readConcurrency ? { readConcurrency } : {};
/** What a sync reads: the table without the packet and byte counters (ipvsadm -Sn prints none either). */
const readForSync = async (k: IpvsKernel) => (await k.readTable({ stats: false })).table;
/** The diff part of each no-op resync (ms), to print beside the whole. */
const diffTimes: number[] = [];
const noOpResync = (k: IpvsKernel) =>
  readForSync(k).then((actual) => {
    const t0 = performance.now();
    const result = diff(
      desired,
      actual,
      { managedCidrs: ["10.0.0.0/8"], managedFwmarks: [], journal: [] },
      [],
      Date.now(),
    );
    diffTimes.push(performance.now() - t0);
    return result;
  });
checkComplete("warm-up read", (await timed(() => withKernel(readForSync, options))).value);
// A running agent resyncs with JIT-compiled code. Under the VM's emulation the first reads and diffs
// of a process run in the interpreter and the baseline compiler: the first ten reads of 1000 x 4
// took 5.1, 2.6, 3.2, 2.1, 1.8, 2.1, 1.4, 1.1, 0.9 and 1.0 s, the diffs 555 ms down to 40-50 ms.
// Measure the steady state a running agent is in; the cold CLI case is the cold apply above.
for (let i = 0; i < 10; i++) await withKernel(noOpResync, options);
diffTimes.length = 0;
const readPairs: [number, number][] = [];
const resyncPairs: [number, number][] = [];
// Each measurement right after its own ipvsadm -Sn baseline, so that both sides run in the same
// conditions (a process just ran: the emulator's translation cache holds the other one's code).
for (let round = 0; round < rounds; round++) {
  const readBaseline = save();
  const read = await timed(() => withKernel(readForSync, options));
  checkComplete("readTable", read.value);
  const resyncBaseline = save();
  const resync = await timed(() => withKernel(noOpResync, options));
  if (resync.value.operations.length !== 0) {
    throw new Error(`no-op resync planned ${resync.value.operations.length} operations`);
  }
  readPairs.push([read.ms, readBaseline]);
  resyncPairs.push([resync.ms, resyncBaseline]);
}
best(
  `readTable, no counters${readConcurrency ? ` readConcurrency=${readConcurrency}` : ""}`,
  readPairs,
  readRows,
);
best("no-op resync (read + diff, warm)", resyncPairs, readRows);
await flush();

const out = (s: string) => process.stdout.write(`${s}\n`);
out(
  `${services} services x ${dests} destinations = ${ops.length} operations, ${rounds} rounds (${modulePath ?? "src/kernel/netlink-kernel.ts"})`,
);
const row = (name: string, ms: number, per: string, base: number, baseName: string) =>
  out(
    `${name.padEnd(32)} ${ms.toFixed(0).padStart(7)} ms  ${per}  x${(ms / base).toFixed(2)} of ${baseName} (${base.toFixed(0)} ms)`,
  );
for (const [name, ms, base] of applyRows) {
  row(name, ms, `${((ms / ops.length) * 1000).toFixed(0).padStart(5)} us/op     `, base, "ipvsadm -R");
}
for (const [name, ms, base] of readRows) {
  row(name, ms, `${((ms / services) * 1000).toFixed(0).padStart(5)} us/service`, base, "ipvsadm -Sn");
}
if (diffTimes.length > 0) {
  const sorted = [...diffTimes].sort((a, b) => a - b);
  out(
    `  of which diff: fastest ${sorted[0]!.toFixed(0)} ms, median ${sorted[sorted.length >> 1]!.toFixed(0)} ms`,
  );
}
out(
  `peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB sampled after each step (getrusage maxrss ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB)`,
);
