/**
 * Host benchmark of one /metrics scrape with the per-VirtualService and per-real-server IPVS counters
 * (src/observability/ipvs-stats.ts), against the fake kernel: N VirtualServices x 10 real servers,
 * programmed by the Reconciler (so the labels come from its last plan, as in the agent), every counter
 * set to a 10-12 digit value (the size of a busy node's counters).
 *   node bench/metrics-scrape.ts [sizes]     sizes: comma-separated service counts (default 1000,10000)
 * Environment: BENCH_ROUNDS=<n> (default 3) scrapes per size; the median is printed.
 * BENCH_MAX_DESTINATIONS=<n>: the agent's bound on destination series (default DEFAULT_MAX_DESTINATIONS;
 * 1000000 shows 10k x 10 with every destination series).
 *
 * Each size runs in a fresh process (node --expose-gc). Printed per size: series and exposition bytes,
 * the scrape's time (read of the fake table + labelling + the text), the part of it that is the table
 * read, the heap right after the scrape (before any gc: at least what the scrape allocated, its text
 * included), and the process's peak RSS (the setup's peak included).
 * The fake kernel's read is a copy of its maps. BENCH_KERNEL=netlink programs and scrapes the real kernel
 * instead (in the test-bed VM: e2e/vm/run-in-vm.sh -- env BENCH_KERNEL=netlink node bench/metrics-scrape.ts;
 * it FLUSHES the IPVS table, never run it on a host with real services), with the kernel's own counters
 * (zero: no traffic), and prints `ipvsadm -Ln --stats --exact` of the same table as a baseline.
 */
import { spawnSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import { FakeIpvsKernel } from "../src/kernel/fake-kernel.ts";
import type { IpvsKernel } from "../src/kernel/ipvs-kernel.ts";
import { NetlinkIpvsKernel } from "../src/kernel/netlink-kernel.ts";
import type { DesiredTable } from "../src/model/desired-table.ts";
import { AgentMetrics } from "../src/observability/metrics.ts";
import { MemoryJournalStore } from "../src/reconcile/ownership-journal.ts";
import { Reconciler } from "../src/reconcile/reconciler.ts";
import { type IpvsStats, NO_FLAGS, NO_TUNNEL } from "../src/vocabulary/table.ts";

const REAL_SERVERS = 10;
const NAMESPACES = 20;

function vip(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}
function backend(i: number, j: number): string {
  const n = i * REAL_SERVERS + j;
  return `172.${16 + ((n >> 16) & 15)}.${(n >> 8) & 255}.${n & 255}`;
}

function desiredTable(n: number): DesiredTable {
  const service = {
    scheduler: "wrr",
    flags: NO_FLAGS,
    timeout: 0,
    netmask: 0xffffffff,
    persistenceEngine: "",
  };
  const config = {
    forwarding: "NAT" as const,
    weight: 1,
    upperThreshold: 0,
    lowerThreshold: 0,
    ...NO_TUNNEL,
  };
  return Array.from({ length: n }, (_, i) => {
    const namespace = `ns-${i % NAMESPACES}`;
    return {
      service: {
        key: {
          kind: "address" as const,
          family: "IPv4" as const,
          protocol: "TCP" as const,
          address: vip(i),
          port: 80,
        },
        config: service,
        source: { namespace, name: `vs-${i}` },
        driftPolicy: "Repair" as const,
        drainTimeoutSeconds: 300,
      },
      destinations: Array.from({ length: REAL_SERVERS }, (_, j) => ({
        key: { family: "IPv4" as const, address: backend(i, j), port: 8080 },
        config,
        source: { kind: "RealServer" as const, namespace, name: `vs-${i}-rs-${j}` },
      })),
    };
  });
}

function busyStats(seed: number): IpvsStats {
  const big = (k: number) => BigInt(1_000_000_000 + ((seed * 7919 + k * 104729) % 900_000_000_000));
  return {
    connections: big(1),
    inPackets: big(2),
    outPackets: big(3),
    inBytes: big(4) * 1000n,
    outBytes: big(5) * 1000n,
    cps: 120n,
    inPps: 4_000n,
    outPps: 3_500n,
    inBps: 2_000_000n,
    outBps: 9_000_000n,
  };
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function child(n: number, rounds: number): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  const real = process.env.BENCH_KERNEL === "netlink";
  const kernel: IpvsKernel = real ? new NetlinkIpvsKernel() : new FakeIpvsKernel();
  if (real) await kernel.flush();
  const reconciler = new Reconciler({
    kernel,
    journal: new MemoryJournalStore(),
    scope: { managedCidrs: [], managedFwmarks: [] },
    bootId: "bench",
  });
  const result = await reconciler.sync({ desired: desiredTable(n), now: 0 });
  if (!result.ok) throw new Error(`the sync failed: ${JSON.stringify(result.errors)}`);
  let readMs = 0;
  const metrics = new AgentMetrics({
    processMetrics: false,
    ...(process.env.BENCH_MAX_DESTINATIONS
      ? { maxDestinations: Number(process.env.BENCH_MAX_DESTINATIONS) }
      : {}),
    ipvs: {
      planned: () => reconciler.planned(),
      readTable: async () => {
        const started = performance.now();
        const snapshot = await kernel.readTable();
        if (real) {
          readMs = performance.now() - started;
          return snapshot; // the kernel's own counters (0 without traffic: a shorter text)
        }
        let seed = 0;
        for (const e of snapshot.table) {
          e.service.stats = busyStats(seed++);
          for (const d of e.destinations) {
            d.stats = busyStats(seed++);
            d.activeConnections = seed % 50;
            d.inactiveConnections = seed % 300;
          }
        }
        readMs = performance.now() - started;
        return snapshot;
      },
    },
  });
  const times: number[] = [];
  const reads: number[] = [];
  const allocated: number[] = [];
  let text = "";
  for (let r = 0; r < rounds; r++) {
    text = "";
    gc();
    const before = process.memoryUsage().heapUsed;
    const started = performance.now();
    text = (await metrics.expose()).text;
    times.push(performance.now() - started);
    reads.push(readMs);
    allocated.push(process.memoryUsage().heapUsed - before); // no gc yet: what the scrape allocated, at least
  }
  let baseline = "";
  if (real) {
    const listings: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const started = performance.now();
      spawnSync("ipvsadm", ["-Ln", "--stats", "--exact"], { stdio: ["ignore", "ignore", "inherit"] });
      listings.push(performance.now() - started);
    }
    baseline = ` ipvsadm -Ln --stats --exact of the same table: ${median(listings).toFixed(0)} ms;`;
    await kernel.flush();
    await kernel.close();
  }
  const series = text.split("\n").filter((l) => l !== "" && !l.startsWith("#")).length;
  console.log(
    [
      `${String(n).padStart(6)} services: ${series} series, ${mib(Buffer.byteLength(text))} MiB text;`,
      `scrape ${median(times).toFixed(0)} ms (table read ${median(reads).toFixed(0)} ms);${baseline}`,
      `heap +${mib(median(allocated))} MiB right after the scrape;`,
      `peak RSS of the process ${mib(process.resourceUsage().maxRSS * 1024)} MiB`,
    ].join(" "),
  );
}

if (process.argv[2] === "--child") {
  await child(Number(process.argv[3]), Number(process.env.BENCH_ROUNDS ?? 3));
} else {
  const sizes = (process.argv[2] ?? "1000,10000").split(",").map(Number);
  const kernel = process.env.BENCH_KERNEL === "netlink" ? "real kernel (netlink)" : "fake kernel";
  console.log(`metrics scrape, ${kernel}, N VirtualServices x ${REAL_SERVERS} real servers`);
  for (const n of sizes) {
    const run = spawnSync(
      process.execPath,
      ["--expose-gc", new URL(import.meta.url).pathname, "--child", String(n)],
      { stdio: ["ignore", "inherit", "inherit"], env: process.env },
    );
    if (run.status !== 0) process.exit(run.status ?? 1);
  }
}
