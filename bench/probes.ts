/**
 * Host benchmark of the health probers and the HealthMonitor: how many probes per second one agent
 * sustains and what a probe costs in CPU, against a local TCP and HTTP server in another process (so
 * the agent's CPU figures are its own).
 *   node bench/probes.ts [targets]      targets: comma-separated counts (default 1000,5000)
 * Environment: BENCH_SECONDS=<s> (default 5) measured per run, after one interval of warm-up;
 * BENCH_INTERVAL_MS=<ms> (default 1000) probe interval, so each run asks for targets / interval probes/s;
 * BENCH_MAX_IN_FLIGHT=<n> (default 256).
 *
 * Each target is its own healthKey (its own VirtualService name) on the one server port: the cost per
 * probe is the same as with distinct backends, without needing thousands of addresses. Printed per run:
 * probes/s asked and achieved, failures, CPU per probe (user+system of the agent process), the share of
 * one core, how many probes waited for the in-flight bound, the mean probe duration and the agent's
 * event-loop utilization (near 100 %: the agent itself is the limit; low with probes delayed: the
 * in-flight bound or the machine is). These are host figures: loopback, a shared machine; a real
 * network adds latency (more probes in flight) but no CPU per probe.
 * The load statement's case (1,000 real servers, the default 10 s interval: 100 probes/s per node):
 *   BENCH_INTERVAL_MS=10000 node bench/probes.ts 1000
 */
import { spawn } from "node:child_process";
import { createServer as createHttpServer } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { HealthCheckSchema } from "../src/api/v1alpha1/index.ts";
import { HealthMonitor } from "../src/health/health-monitor.ts";
import { probePlanFor } from "../src/health/probe-spec.ts";
import { type HealthTarget, healthKey } from "../src/model/snapshot.ts";

if (process.argv[2] === "serve") {
  await serve();
} else {
  await main();
}

async function serve(): Promise<void> {
  const tcp = createTcpServer((socket) => socket.destroy());
  const http = createHttpServer((_req, res) => res.end("ok"));
  tcp.maxConnections = 100_000;
  await new Promise<void>((resolve) => tcp.listen({ port: 0, host: "127.0.0.1", backlog: 4096 }, resolve));
  await new Promise<void>((resolve) => http.listen({ port: 0, host: "127.0.0.1", backlog: 4096 }, resolve));
  const port = (s: typeof tcp | typeof http) => (s.address() as { port: number }).port;
  console.log(JSON.stringify({ tcp: port(tcp), http: port(http) }));
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === "cpu") console.log(JSON.stringify(process.cpuUsage()));
  }
  process.exit(0);
}

async function main(): Promise<void> {
  const counts = (process.argv[2] ?? "1000,5000").split(",").map(Number);
  const seconds = Number(process.env.BENCH_SECONDS ?? 5);
  const intervalMs = Number(process.env.BENCH_INTERVAL_MS ?? 1000);
  const maxInFlight = Number(process.env.BENCH_MAX_IN_FLIGHT ?? 256);

  const server = spawn(process.execPath, [fileURLToPath(import.meta.url), "serve"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: server.stdout! })[Symbol.asyncIterator]();
  const next = async () => JSON.parse((await lines.next()).value as string);
  const ports = (await next()) as { tcp: number; http: number };
  const serverCpu = async () => {
    server.stdin!.write("cpu\n");
    const u = (await next()) as NodeJS.CpuUsage;
    return u.user + u.system;
  };

  console.log(
    `host: ${process.version}, ${(await import("node:os")).cpus().length} cpus; interval ${intervalMs} ms, ` +
      `maxInFlight ${maxInFlight}, ${seconds} s measured per run`,
  );
  console.log(
    "kind  targets  asked/s  probes/s  failed  cpu/probe(us)  agent cpu(% core)  server cpu(% core)  delayed",
  );
  for (const kind of ["TCP", "HTTP"] as const) {
    for (const count of counts) {
      const targets: HealthTarget[] = Array.from({ length: count }, (_, i) => {
        const vs = { namespace: "bench", name: `vs-${i}` };
        const port = kind === "TCP" ? ports.tcp : ports.http;
        return {
          key: healthKey(vs, "127.0.0.1", port),
          virtualService: vs,
          address: "127.0.0.1",
          port,
          healthCheck: HealthCheckSchema.parse({ type: kind, timeoutSeconds: 1, intervalSeconds: 1 }),
          source: { kind: "RealServer", namespace: "bench", name: `rs-${i}` },
        };
      });
      let completed = 0;
      let failed = 0;
      let lastFailure = "";
      let durationSum = 0;
      const monitor = new HealthMonitor({
        maxInFlight,
        planFor: (t) => {
          const plan = probePlanFor(t)!;
          return { ...plan, intervalMs, timeoutMs: Math.min(1000, intervalMs) };
        },
        onResult: (_t, result) => {
          completed++;
          durationSum += result.durationMs;
          if (!result.healthy) {
            failed++;
            lastFailure = result.reason;
          }
        },
      });
      monitor.setTargets(targets);
      await sleep(intervalMs); // every target's first probe falls within the first interval
      const c0 = completed;
      const f0 = failed;
      const d0 = monitor.stats().delayedProbes;
      const ms0 = durationSum;
      const elu0 = performance.eventLoopUtilization();
      const cpu0 = process.cpuUsage();
      const s0 = await serverCpu();
      const t0 = performance.now();
      await sleep(seconds * 1000);
      const elapsed = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const elu = performance.eventLoopUtilization(elu0).utilization;
      const s1 = await serverCpu();
      const probes = completed - c0;
      const agentCpuUs = cpu.user + cpu.system;
      monitor.stop();
      console.log(
        [
          kind.padEnd(4),
          String(count).padStart(7),
          String(Math.round((count * 1000) / intervalMs)).padStart(8),
          String(Math.round(probes / elapsed)).padStart(9),
          String(failed - f0).padStart(7),
          (agentCpuUs / Math.max(1, probes)).toFixed(0).padStart(14),
          ((agentCpuUs / 1e6 / elapsed) * 100).toFixed(0).padStart(18),
          (((s1 - s0) / 1e6 / elapsed) * 100).toFixed(0).padStart(19),
          String(monitor.stats().delayedProbes - d0).padStart(8),
          ((durationSum - ms0) / Math.max(1, probes)).toFixed(1).padStart(9),
          (elu * 100).toFixed(0).padStart(7),
        ].join("  "),
      );
      if (failed > f0) console.log(`      last failure: ${lastFailure}`);
      await sleep(500);
    }
  }
  server.stdin!.end();
  server.kill();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
