/**
 * Host benchmark of the pure engine, no kernel needed: computeDesired and diff for N virtual services x
 * 10 real servers, in two shapes, and the standalone front half (YAML manifests -> plan).
 *   npm run bench:engine            (= node bench/engine.ts)
 *   node bench/engine.ts [sizes]    sizes: comma-separated service counts (default 1000,10000,50000)
 * Environment: BENCH_ROUNDS=<n> (default 3) rounds per figure, the fastest is printed;
 * BENCH_ENGINE=0 / BENCH_YAML=0 skip the computeDesired + diff / the manifest part; BENCH_YAML_SERVICES=<n> (default 10000) services in it,
 * BENCH_YAML_FILES=<n> (default 10) files they are spread over.
 *
 * Shapes: "realservers" = each VirtualService has 10 RealServer objects; "endpoints" = each
 * VirtualService has backends.serviceRef to a Service with one EndpointSlice of 10 ready endpoints.
 * diff is timed against an empty kernel (the first apply: all adds) and against a kernel that already
 * holds the desired table (a no-op resync; the agent owns the keys by its journal, or by a managed CIDR).
 * Every size and shape runs in a fresh process. Printed ratios are the 50k figure over the 10k one (5 = linear). Issue 6 item 7's targets: ratio within
 * 5.5, 10k x 10 computeDesired + diff under 300 ms, manifest parsing of 10k x 10 under 2 s.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { loadManifests } from "../src/files/manifest-source.ts";
import { computeDesired } from "../src/model/desired.ts";
import type { DesiredTable } from "../src/model/desired-table.ts";
import { diff } from "../src/model/diff.ts";
import type { OwnershipScope } from "../src/model/ownership.ts";
import type { Snapshot } from "../src/model/snapshot.ts";
import { type KernelTable, serviceKeyString } from "../src/vocabulary/table.ts";
import { launcherNodeFlags } from "./launcher-flags.ts";

const sizes = (process.argv[2] ?? "1000,10000,50000").split(",").map(Number);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const yamlServices = Number(process.env.BENCH_YAML_SERVICES ?? 10000);
const yamlFiles = Number(process.env.BENCH_YAML_FILES ?? 10);
const REAL_SERVERS = 10;
const NODE = { name: "bench", labels: {} };
const NAMESPACES = 20;

type Shape = "realservers" | "endpoints";

/** 10.a.b.c for service i (distinct for i < 2^24), 172.16.0.0/12 for real servers. */
function vip(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}
function backend(i: number, j: number): string {
  const n = i * REAL_SERVERS + j;
  return `172.${16 + ((n >> 16) & 15)}.${(n >> 8) & 255}.${n & 255}`;
}
const meta = (i: number, name: string) => ({ name, namespace: `ns-${i % NAMESPACES}` });

function virtualService(i: number, shape: Shape): unknown {
  return {
    apiVersion: "ipvs.dev/v1alpha1",
    kind: "VirtualService",
    metadata: meta(i, `vs-${i}`),
    spec: {
      address: vip(i),
      port: 80,
      protocol: "TCP",
      scheduler: "wrr",
      forwarding: { method: "NAT" },
      ...(shape === "endpoints" ? { backends: { serviceRef: { name: `svc-${i}`, port: "http" } } } : {}),
    },
  };
}

function realServer(i: number, j: number): unknown {
  return {
    apiVersion: "ipvs.dev/v1alpha1",
    kind: "RealServer",
    metadata: meta(i, `vs-${i}-rs-${j}`),
    spec: { virtualServiceRef: { name: `vs-${i}` }, address: backend(i, j), port: 8080, weight: 1 + j },
  };
}

function service(i: number): Snapshot["services"][number] {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(i, `svc-${i}`),
    spec: { ports: [{ name: "http", port: 80, protocol: "TCP" }] },
  };
}

function endpointSlice(i: number): Snapshot["endpointSlices"][number] {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { ...meta(i, `svc-${i}-abcde`), labels: { "kubernetes.io/service-name": `svc-${i}` } },
    addressType: "IPv4",
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    endpoints: Array.from({ length: REAL_SERVERS }, (_, j) => ({
      addresses: [backend(i, j)],
      conditions: { ready: true, serving: true, terminating: false },
    })),
  };
}

/**
 * The snapshot, as an agent's informer caches hold it: parsed from the API server's JSON. (Built
 * directly, strings such as `vs-10000-rs-1` are concatenations V8 keeps unflattened from 13 characters
 * on; among the RealServer names only the larger sizes have them, and every read of them then pays
 * for the indirection.)
 */
function snapshotOf(n: number, shape: Shape): Snapshot {
  return JSON.parse(JSON.stringify(builtSnapshot(n, shape))) as Snapshot;
}

function builtSnapshot(n: number, shape: Shape): Snapshot {
  const indexes = Array.from({ length: n }, (_, i) => i);
  return {
    virtualServices: indexes.map((i) => virtualService(i, shape)),
    realServers:
      shape === "realservers"
        ? indexes.flatMap((i) => Array.from({ length: REAL_SERVERS }, (_, j) => realServer(i, j)))
        : [],
    services: shape === "endpoints" ? indexes.map(service) : [],
    endpointSlices: shape === "endpoints" ? indexes.map(endpointSlice) : [],
    endpoints: [],
  };
}

/** The kernel's view of a table that was applied: same keys and configs, no connections. */
function kernelTableOf(table: DesiredTable): KernelTable {
  return table.map((e) => ({
    service: { key: e.service.key, config: e.service.config },
    destinations: e.destinations.map((d) => ({
      key: d.key,
      config: d.config,
      activeConnections: 0,
      inactiveConnections: 0,
      persistentConnections: 0,
    })),
  }));
}

/** Fastest of `rounds` runs, in milliseconds, and the last result. */
function time<T>(run: () => T): { ms: number; value: T } {
  let best = Number.POSITIVE_INFINITY;
  let value: T | undefined;
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    value = run();
    best = Math.min(best, performance.now() - start);
  }
  return { ms: best, value: value as T };
}

interface Row {
  desired: number;
  /** computeDesired of a snapshot without uniqueNames (as from manifest files): duplicate names looked for. */
  searched: number;
  diffEmpty: number;
  diffJournal: number;
  diffCidr: number;
}

const EMPTY_SCOPE: OwnershipScope = { managedCidrs: [], managedFwmarks: [], journal: [] };
const CIDR_SCOPE: OwnershipScope = { managedCidrs: ["10.0.0.0/8"], managedFwmarks: [], journal: [] };

/**
 * Fastest of `rounds` runs of `run` on a fresh input each, made outside the timing and then settled by a
 * full garbage collection (as an agent's informer caches are long-lived objects in the old generation):
 * the timing pays for what `run` allocates, not for collecting what making the input left behind.
 */
function timeFresh<I, T>(make: () => I, run: (input: I) => T): { ms: number; value: T } {
  let best = Number.POSITIVE_INFINITY;
  let value: T | undefined;
  for (let r = 0; r < rounds; r++) {
    value = undefined;
    const input = make();
    collectGarbage();
    const start = performance.now();
    value = run(input);
    best = Math.min(best, performance.now() - start);
  }
  return { ms: best, value: value as T };
}

function measure(n: number, shape: Shape): Row {
  // Fresh objects each round: computeDesired remembers per object (what the agent's next sync reuses),
  // so timing the same snapshot again would measure the remembered path, not the first computation.
  // The agent's snapshots come from informer caches, one object per name (uniqueNames); manifest files
  // can name two objects alike, so computeDesired looks for them there (the "searched" column).
  // Measured first, its tables left behind: the diffs below run beside one table, as in the agent.
  const searched = timeFresh(
    () => snapshotOf(n, shape),
    (snapshot) => computeDesired(snapshot, NODE),
  ).ms;
  const desired = timeFresh(
    () => ({ ...snapshotOf(n, shape), uniqueNames: true }),
    (snapshot) => computeDesired(snapshot, NODE),
  );
  const { table, problems } = desired.value;
  const destinations = table.reduce((sum, e) => sum + e.destinations.length, 0);
  if (problems.length > 0 || table.length !== n || destinations !== n * REAL_SERVERS) {
    throw new Error(
      `bench workload is wrong: ${table.length} services, ${destinations} destinations, ${problems.length} problems`,
    );
  }
  const kernel = kernelTableOf(table);
  const journalScope = { ...EMPTY_SCOPE, journal: table.map((e) => serviceKeyString(e.service.key)) };
  const diffEmpty = time(() => diff(table, [], EMPTY_SCOPE, [], 0));
  const diffJournal = time(() => diff(table, kernel, journalScope, [], 0));
  const diffCidr = time(() => diff(table, kernel, CIDR_SCOPE, [], 0));
  for (const [name, r] of [
    ["journal", diffJournal],
    ["cidr", diffCidr],
  ] as const) {
    if (r.value.operations.length > 0 || r.value.drift.length > 0)
      throw new Error(`no-op diff (${name}) is not`);
  }
  return {
    desired: desired.ms,
    searched,
    diffEmpty: diffEmpty.ms,
    diffJournal: diffJournal.ms,
    diffCidr: diffCidr.ms,
  };
}

/**
 * Each size and shape is measured in a process of its own, so that one measurement's garbage (a 50k
 * snapshot is hundreds of MB) does not slow the next one down.
 */
function measureInChild(n: number, shape: Shape, nodeFlags: readonly string[]): Row {
  const run = spawnSync(process.execPath, [...nodeFlags, "--expose-gc", import.meta.filename], {
    encoding: "utf8",
    env: { ...process.env, BENCH_ONE: `${shape}:${n}` },
    maxBuffer: 1 << 20,
  });
  if (run.status !== 0) throw new Error(`measuring ${shape} ${n} failed:\n${run.stderr}`);
  return JSON.parse(run.stdout) as Row;
}

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("bench/engine.ts measures in a child process started with --expose-gc");
  gc();
}

const label = (n: number) => (n % 1000 === 0 ? `${n / 1000}k` : String(n));

function printEngine(): void {
  process.stdout.write(
    `computeDesired and diff, N virtual services x ${REAL_SERVERS} real servers; ms, fastest of ${rounds}\n`,
  );
  const columns: [string, (r: Row) => number][] = [
    ["desired", (r) => r.desired],
    ["diff(0)", (r) => r.diffEmpty],
    ["both", (r) => r.desired + r.diffEmpty],
    ["diff(=j)", (r) => r.diffJournal],
    ["diff(=c)", (r) => r.diffCidr],
    ["both(=j)", (r) => r.desired + r.diffJournal],
    ["searched", (r) => r.searched],
  ];
  const line = (shape: string, n: string, cells: string[]) =>
    process.stdout.write(`${shape.padEnd(13)}${n.padStart(7)}${cells.map((c) => c.padStart(9)).join("")}\n`);
  line(
    "shape",
    "N",
    columns.map(([name]) => name),
  );
  const agentFlags = launcherNodeFlags();
  const variants = [
    { name: "realservers", shape: "realservers", flags: [] },
    { name: "endpoints", shape: "endpoints", flags: [] },
    { name: "realservers*", shape: "realservers", flags: agentFlags },
  ] as const;
  for (const { name, shape, flags } of variants) {
    const rows = new Map<number, Row>();
    for (const n of sizes) {
      const r = measureInChild(n, shape, flags);
      rows.set(n, r);
      line(
        name,
        label(n),
        columns.map(([, f]) => f(r).toFixed(0)),
      );
    }
    const big = rows.get(50000);
    const small = rows.get(10000);
    if (big && small)
      line(
        name,
        "50k/10k",
        columns.map(([, f]) => (f(big) / f(small)).toFixed(2)),
      );
  }
  process.stdout.write(
    [
      "desired: computeDesired of a snapshot with uniqueNames (the agent's, from informer caches)",
      "diff(0): against an empty kernel; diff(=j) / diff(=c): against the same table, owned by the journal / by a managed CIDR",
      "searched: computeDesired of the same snapshot without uniqueNames (as from manifest files: duplicate names looked for)",
      `*: with the V8 flags the agent and the CLI run with (bin/ipvs-operator): ${agentFlags.join(" ")}; the others with Node's defaults`,
      "",
    ].join("\n"),
  );
}

// ---- manifests --------------------------------------------------------------------------------------

function virtualServiceYaml(i: number): string {
  return `apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata:
  name: vs-${i}
  namespace: ns-${i % NAMESPACES}
spec:
  address: ${vip(i)}
  port: 80
  protocol: TCP
  scheduler: wrr
  forwarding:
    method: NAT
`;
}

function realServerYaml(i: number, j: number): string {
  return `apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata:
  name: vs-${i}-rs-${j}
  namespace: ns-${i % NAMESPACES}
spec:
  virtualServiceRef:
    name: vs-${i}
  address: ${backend(i, j)}
  port: 8080
  weight: ${1 + j}
`;
}

async function writeManifests(dir: string): Promise<number> {
  let bytes = 0;
  const perFile = Math.ceil(yamlServices / yamlFiles);
  for (let f = 0; f < yamlFiles; f++) {
    const docs: string[] = [];
    for (let i = f * perFile; i < Math.min(yamlServices, (f + 1) * perFile); i++) {
      docs.push(virtualServiceYaml(i));
      for (let j = 0; j < REAL_SERVERS; j++) docs.push(realServerYaml(i, j));
    }
    const text = docs.join("---\n");
    bytes += Buffer.byteLength(text);
    await writeFile(join(dir, `part-${String(f).padStart(3, "0")}.yaml`), text);
  }
  return bytes;
}

/** Wall time (ms) and peak RSS (MB) of a command, from GNU time -v. */
function timeCommand(command: string[]): { ms: number; rssMb: number; status: number | null } {
  const run = spawnSync("/usr/bin/time", ["-v", ...command], { encoding: "utf8", maxBuffer: 1 << 30 });
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(run.stderr);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(run.stderr);
  if (!wall || !rss) throw new Error(`no figures from /usr/bin/time:\n${run.stderr.slice(-2000)}`);
  const [hours, minutes, seconds] = [Number(wall[1] ?? 0), Number(wall[2]), Number(wall[3])];
  return {
    ms: ((hours * 60 + minutes) * 60 + seconds) * 1000,
    rssMb: Number(rss[1]) / 1024,
    status: run.status,
  };
}

async function printManifests(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "ipvs-bench-manifests-"));
  try {
    const bytes = await writeManifests(dir);
    process.stdout.write(
      `\nmanifests: ${yamlServices} virtual services x ${REAL_SERVERS} real servers, ${(bytes / 1e6).toFixed(1)} MB of YAML in ${yamlFiles} files\n`,
    );
    const load = await timeAsync(() => loadManifests([dir]));
    const objects = load.value.objects;
    if (load.value.errors.length > 0 || objects.realServers.length !== yamlServices * REAL_SERVERS) {
      throw new Error(`manifests did not load: ${load.value.errors.slice(0, 3).join("; ")}`);
    }
    process.stdout.write(
      `loadManifests:             ${load.ms.toFixed(0).padStart(7)} ms (fastest of ${rounds})\n`,
    );
    const cli = resolve(import.meta.dirname, "../bin/ipvs-operator");
    const plan = timeCommand([cli, "plan", "-f", dir, "--node", "bench"]);
    if (plan.status !== 0) throw new Error(`plan -f exited with ${plan.status}`);
    process.stdout.write(
      `ipvs-operator plan -f DIR: ${plan.ms.toFixed(0).padStart(7)} ms, peak RSS ${plan.rssMb.toFixed(0)} MB (one run)\n`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function timeAsync<T>(run: () => Promise<T>): Promise<{ ms: number; value: T }> {
  let best = Number.POSITIVE_INFINITY;
  let value: T | undefined;
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    value = await run();
    best = Math.min(best, performance.now() - start);
  }
  return { ms: best, value: value as T };
}

const one = process.env.BENCH_ONE?.split(":");
if (one) {
  process.stdout.write(JSON.stringify(measure(Number(one[1]), one[0] as Shape)));
} else {
  if (process.env.BENCH_ENGINE !== "0") printEngine();
  if (process.env.BENCH_YAML !== "0") await printManifests();
}
