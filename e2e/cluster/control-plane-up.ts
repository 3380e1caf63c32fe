/**
 * Starts the test control plane (e2e/control-plane) and keeps it running until SIGTERM/SIGINT; writes
 * its connection info as JSON to the file given as the first argument once it is ready.
 *
 * The agent's way in is a fault proxy (e2e/control-plane/fault-proxy.ts) in front of kube-apiserver:
 * `agentServer` in the JSON. While it runs, the folder of that file is also a request channel for
 * faults (the test-bed VM sees the folder, not the host's processes), a file `fault.request` holding:
 *   apiserver <ms> | etcd <ms>   stop that component, wait <ms>, start it again
 *   gone <n>                     the proxy answers the next n reads at a resourceVersion with 410 Gone
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
const proxy = await startFaultProxy(cp, dirname(out));
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
    const [what, arg] = text.split(/\s+/);
    const count = Number(arg);
    const counted = what === "apiserver" || what === "etcd" || what === "gone";
    if (counted && (!Number.isInteger(count) || count < 0)) throw new Error(`bad number in "${text}"`);
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
      case "drop":
        faults.dropWatches();
        break;
      case "stats":
        break;
      default:
        throw new Error(`unknown request "${text}" (apiserver, etcd, gone, drop, stats)`);
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
