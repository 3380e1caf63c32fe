/**
 * The agent's own memory at scale, on the host, without a control plane: the scale workload of
 * bench/scale-workload.ts (N VirtualServices, each with a Service and an EndpointSlice of 10 endpoints)
 * as plain objects in an in-memory source (what the informer caches hold after stripping), and a kernel
 * that confirms every operation and keeps nothing (the real kernel's memory is not the agent's).
 * Prints the process's RSS and heap before the agent, after its first sync (peak RSS too) and, with
 * --expose-gc, the live heap after a full collection.
 *   node --expose-gc bench/agent-memory.ts          (BENCH_N=10000 by default)
 *   node --expose-gc --max-semi-space-size=2 bench/agent-memory.ts   (V8 flags change the picture)
 *   BENCH_HEAP=after.heapsnapshot    also writes a heap snapshot after the first sync and a full GC
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeHeapSnapshot } from "node:v8";
import { Agent } from "../src/agent/agent.ts";
import { resolveAgentConfig } from "../src/agent/config.ts";
import { FakeIpvsKernel } from "../src/kernel/fake-kernel.ts";
import type { OperationResult } from "../src/kernel/ipvs-kernel.ts";
import type { Snapshot } from "../src/model/snapshot.ts";
import { createRootLogger } from "../src/observability/logger.ts";
import type { SnapshotSource, SourceState } from "../src/sources/snapshot-source.ts";
import type { Operation } from "../src/vocabulary/operations.ts";
import { scaleVip } from "./scale-workload.ts";

const N = Number(process.env.BENCH_N ?? 10_000);
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const gc = (globalThis as { gc?: () => void }).gc;

/** A kernel that confirms every operation and keeps no table. */
class ForgetfulKernel extends FakeIpvsKernel {
  override async apply(operations: readonly Operation[]): Promise<OperationResult[]> {
    return operations.map(() => ({ ok: true }));
  }
}

// As the API sends them (JSON: a timestamp is a string), whatever client-node's types say.
const meta = (name: string, i: number): never =>
  ({
    name,
    namespace: "scale",
    uid: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
    resourceVersion: String(1000 + i),
    creationTimestamp: "2026-12-01T00:00:00Z",
  }) as never;

function workload(n: number): Snapshot {
  const virtualServices: unknown[] = [];
  const services: Snapshot["services"][number][] = [];
  const endpointSlices: Snapshot["endpointSlices"][number][] = [];
  for (let i = 0; i < n; i++) {
    virtualServices.push({
      apiVersion: "ipvs.dev/v1alpha1",
      kind: "VirtualService",
      metadata: { ...(meta(`vs-${i}`, i) as object), generation: 1 },
      spec: {
        address: scaleVip(i),
        port: 80,
        protocol: "TCP",
        scheduler: "wlc",
        backends: { serviceRef: { name: `svc-${i}`, port: "http" }, source: "EndpointSlice" },
        forwarding: { method: "NAT" },
        driftPolicy: "Repair",
      },
    });
    services.push({
      apiVersion: "v1",
      kind: "Service",
      metadata: meta(`svc-${i}`, i),
      spec: {
        clusterIP: "None",
        clusterIPs: ["None"],
        ports: [{ name: "http", port: 80, protocol: "TCP", targetPort: 8080 }],
      },
    });
    endpointSlices.push({
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        ...(meta(`svc-${i}-x`, i) as object),
        labels: { "kubernetes.io/service-name": `svc-${i}` },
      },
      addressType: "IPv4",
      ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      endpoints: Array.from({ length: 10 }, (_, e) => ({
        addresses: [`172.16.${e}.${(i % 250) + 1}`],
        conditions: { ready: true, serving: true, terminating: false },
      })),
    });
  }
  return { virtualServices, realServers: [], services, endpointSlices, endpoints: [] };
}

class MemorySource implements SnapshotSource {
  synced = false;
  readonly snapshot: Snapshot;
  constructor(snapshot: Snapshot) {
    this.snapshot = snapshot;
  }
  async start() {
    this.synced = true;
  }
  async stop() {}
  current(): SourceState {
    return { snapshot: this.snapshot, node: { name: "bench", labels: {} }, incomplete: [] };
  }
  onChange() {}
}

const before = process.memoryUsage();
const source = new MemorySource(workload(N));
gc?.();
const withObjects = process.memoryUsage();
let synced!: () => void;
const firstSync = new Promise<void>((resolve) => {
  synced = resolve;
});
const agent = new Agent(
  resolveAgentConfig(
    {
      stateFile: join(mkdtempSync(join(tmpdir(), "agent-memory-")), "journal.json"),
      minSyncInterval: "0",
      resyncInterval: "10m",
      httpAddress: "",
    },
    { NODE_NAME: "bench" },
  ),
  {
    kernel: new ForgetfulKernel(),
    source,
    bootId: "boot",
    logger: createRootLogger({ level: "silent" }),
    onSync: (report) => {
      if (report.result.owned.destinations !== N * 10 || report.problems.length > 0) {
        const problems = report.problems.slice(0, 2).map((p) => p.message);
        console.error(
          `the workload did not sync: ${report.result.owned.destinations} destinations, ${problems}`,
        );
        process.exit(1);
      }
      synced();
    },
  },
);
const t0 = performance.now();
await agent.start();
await firstSync;
while (agent.health().syncing) await new Promise((r) => setTimeout(r, 10)); // the sync's own frames end
const seconds = (performance.now() - t0) / 1000;
const after = process.memoryUsage();
const peak = process.resourceUsage().maxRSS * 1024;
gc?.();
const live = process.memoryUsage();
console.log(`agent memory, ${N} VirtualServices x 10 endpoints (in-memory source, kernel keeps nothing)`);
console.log(`before the objects:        RSS ${mib(before.rss)}, heap used ${mib(before.heapUsed)}`);
console.log(`with the objects (cached): RSS ${mib(withObjects.rss)}, heap used ${mib(withObjects.heapUsed)}`);
console.log(
  `after the first sync (${seconds.toFixed(1)} s): RSS ${mib(after.rss)}, heap used ${mib(after.heapUsed)}; peak RSS ${mib(peak)}`,
);
if (process.env.BENCH_HEAP) writeHeapSnapshot(process.env.BENCH_HEAP);
if (gc) console.log(`after a full GC:           RSS ${mib(live.rss)}, heap used ${mib(live.heapUsed)}`);
await agent.stop();
