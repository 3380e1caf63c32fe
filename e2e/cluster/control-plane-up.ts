/**
 * Starts the test control plane (e2e/control-plane) and keeps it running until SIGTERM/SIGINT; writes
 * its connection info as JSON to the file given as the first argument once it is ready.
 *
 * The agent's way in is a fault proxy (e2e/control-plane/fault-proxy.ts) in front of kube-apiserver:
 * `agentServer` in the JSON. The guest's kubectl goes the same way (one forwarded port), but the proxy
 * spares it the counted faults (429, 410, 409): they are for the agent. While it runs, the folder of that file is also a request channel for
 * faults (the test-bed VM sees the folder, not the host's processes), a file `fault.request` holding:
 *   apiserver <ms> | etcd <ms>   stop that component, wait <ms>, start it again
 *   gone <n>                     the proxy answers the next n reads at a resourceVersion with 410 Gone
 *   throttle <n> <s>             the proxy answers the next n requests with 429, Retry-After: s
 *   conflict <n>                 the proxy answers the next n writes with 409 Conflict
 *   drop                         the proxy ends every watch in flight
 *   stats                        nothing; the answer carries the faults served so far
 * and then `fault.done` says `ok <seconds> <faults served so far>` or `error <message>`.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type ControlPlane, startControlPlane } from "../control-plane/control-plane.ts";
import { type FaultProxy, faultSummary, startFaultProxy } from "../control-plane/fault-proxy.ts";

const out = process.argv[2];
if (!out) throw new Error("usage: control-plane-up.ts INFO.json");
const cp = await startControlPlane({ controllerManager: false });
const proxy = await startFaultProxy(cp, dirname(out), {
  spare: (req) => (req.headers["user-agent"] ?? "").startsWith("kubectl/"),
});
writeFileSync(
  out,
  JSON.stringify({
    server: cp.server,
    agentServer: proxy.server,
    kubeconfig: cp.kubeconfig,
    caFile: cp.caFile,
    token: cp.token,
    binDir: cp.binDir,
  }),
);

const folder = dirname(out);
const request = join(folder, "fault.request");
const done = join(folder, "fault.done");

const numbersOf: Record<string, number> = {
  apiserver: 1,
  etcd: 1,
  gone: 1,
  throttle: 2,
  conflict: 1,
  drop: 0,
  stats: 0,
};

/** Runs one request, if there is one; the result is written whole (rename), never half. */
async function serveFault(plane: ControlPlane, faults: FaultProxy): Promise<void> {
  let text: string;
  try {
    text = readFileSync(request, "utf8").trim();
  } catch {
    return; // no request
  }
  rmSync(request, { force: true });
  const started = performance.now();
  let result: string;
  try {
    const [what, ...args] = text.split(/\s+/);
    const numbers = args.map(Number);
    if (numbers.some((n) => !Number.isInteger(n) || n < 0)) throw new Error(`bad number in "${text}"`);
    const wanted = numbersOf[what ?? ""];
    if (wanted !== undefined && numbers.length !== wanted) {
      throw new Error(`"${what}" takes ${wanted} number(s): "${text}"`);
    }
    const [count = 0, seconds = 1] = numbers;
    switch (what) {
      case "apiserver":
        await plane.restartApiServer(count);
        break;
      case "etcd":
        await plane.restartEtcd(count);
        break;
      case "gone":
        faults.gone(count);
        break;
      case "throttle":
        faults.throttle(count, seconds);
        break;
      case "conflict":
        faults.conflict(count);
        break;
      case "drop":
        faults.dropWatches();
        break;
      case "stats":
        break;
      default:
        throw new Error(`unknown request "${text}" (apiserver, etcd, gone, throttle, conflict, drop, stats)`);
    }
    result = `ok ${((performance.now() - started) / 1000).toFixed(1)} ${faultSummary(faults.stats)}`;
  } catch (error) {
    result = `error ${error instanceof Error ? error.message : String(error)}`;
  }
  process.stderr.write(`[control-plane-up] ${text}: ${result}\n`);
  writeFileSync(`${done}.tmp`, `${result}\n`);
  renameSync(`${done}.tmp`, done);
}

let stopping = false;
const poller = (async () => {
  while (!stopping) {
    await serveFault(cp, proxy);
    await new Promise((r) => setTimeout(r, 200));
  }
})();

await new Promise<void>((resolve) => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => resolve());
});
stopping = true;
await poller;
await proxy.close();
await cp.stop();
