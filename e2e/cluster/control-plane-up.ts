/**
 * Starts the test control plane (e2e/control-plane) and keeps it running until SIGTERM/SIGINT; writes
 * its connection info as JSON to the file given as the first argument once it is ready.
 *
 * While it runs, the folder of that file is also a request channel for faults (the test-bed VM sees
 * the folder, not the host's processes): a file `fault.request` holding `apiserver <ms>` or
 * `etcd <ms>` stops that component, waits <ms> and starts it again, then `fault.done` says
 * `ok <seconds>` or `error <message>`.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type ControlPlane, startControlPlane } from "../control-plane/control-plane.ts";

const out = process.argv[2];
if (!out) throw new Error("usage: control-plane-up.ts INFO.json");
const cp = await startControlPlane({ controllerManager: false });
writeFileSync(
  out,
  JSON.stringify({
    server: cp.server,
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
async function serveFault(plane: ControlPlane): Promise<void> {
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
    const [component, ms] = text.split(/\s+/);
    const downMs = Number(ms);
    if (!Number.isInteger(downMs) || downMs < 0) throw new Error(`bad down time in "${text}"`);
    if (component === "apiserver") await plane.restartApiServer(downMs);
    else if (component === "etcd") await plane.restartEtcd(downMs);
    else throw new Error(`unknown component in "${text}" (apiserver or etcd)`);
    result = `ok ${((performance.now() - started) / 1000).toFixed(1)}`;
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
    await serveFault(cp);
    await new Promise((r) => setTimeout(r, 200));
  }
})();

await new Promise<void>((resolve) => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => resolve());
});
stopping = true;
await poller;
await cp.stop();
