/**
 * Starts the test control plane (e2e/control-plane) and keeps it running until SIGTERM/SIGINT; writes
 * its connection info as JSON to the file given as the first argument once it is ready.
 */
import { writeFileSync } from "node:fs";
import { startControlPlane } from "../control-plane/control-plane.ts";

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
await new Promise<void>((resolve) => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => resolve());
});
await cp.stop();
