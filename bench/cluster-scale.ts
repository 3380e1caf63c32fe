/**
 * Agent scale on the real kernel (issue "The agent", item 10): the real API server on the host holds N
 * VirtualServices backed by N EndpointSlices of 10 endpoints (bench/scale-workload.ts); the agent runs
 * inside the test-bed VM (qemu user network, restrict=on, one forward to the host's loopback, as in
 * `npm run demo:cluster`) and bench/cluster-scale-guest.ts prints its figures against ipvsadm run in the
 * same VM.
 * The guest half runs as the agent ships: bundled the way `npm run build` bundles the CLI (decision
 * 0008), with the V8 flags of bin/ipvs-operator; BENCH_SOURCES=1 runs the TypeScript sources instead.
 *   npm run bench:cluster            (N=10000; BENCH_N=1000 for a quick run; VM_MEMORY_MB default 3072)
 */

import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { startControlPlane } from "../e2e/control-plane/control-plane.ts";
import { bundle } from "../scripts/build.ts";
import { launcherNodeFlags } from "./launcher-flags.ts";
import { createScaleWorkload } from "./scale-workload.ts";

const N = Number(process.env.BENCH_N ?? 10_000);

const project = resolve(import.meta.dirname, "..");
const cp = await startControlPlane({ controllerManager: false });
// The guest sees the project folder (9p), not the host's /tmp.
mkdirSync(join(project, ".cache/vm"), { recursive: true });
const work = mkdtempSync(join(project, ".cache/vm/scale."));
let status = 1;
try {
  await cp.installCrds();
  const ns = await cp.newNamespace("scale");
  const created = await createScaleWorkload(cp, ns, N);
  console.log(`created ${created.objects} objects in ${created.seconds.toFixed(1)} s (host)`);

  copyFileSync(cp.caFile, join(work, "ca.crt"));
  writeFileSync(
    join(work, "kubeconfig"),
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: host",
      `  cluster: {server: "https://10.0.2.100:443", certificate-authority: "${join(work, "ca.crt")}", tls-server-name: kubernetes}`,
      "users:",
      "- name: admin",
      `  user: {token: "${cp.token}"}`,
      "contexts:",
      "- name: host",
      "  context: {cluster: host, user: admin}",
      "current-context: host",
      "",
    ].join("\n"),
  );
  const port = new URL(cp.server).port;
  const guest = process.env.BENCH_SOURCES
    ? "bench/cluster-scale-guest.ts"
    : join(work, "cluster-scale-guest.mjs");
  if (!process.env.BENCH_SOURCES) await bundle("bench/cluster-scale-guest.ts", guest);
  status = await new Promise<number>((done) => {
    const child = spawn(
      join(project, "e2e/vm/run-in-vm.sh"),
      [
        "--timeout",
        "1800",
        "--",
        "node",
        // The V8 flags bin/ipvs-operator runs the agent with (docs/decisions/0007-agent-v8-flags.md).
        ...(process.env.BENCH_NODE_FLAGS?.split(" ").filter(Boolean) ?? launcherNodeFlags()),
        guest,
        work,
        String(N),
        ns,
      ],
      {
        cwd: project,
        stdio: "inherit",
        env: { ...process.env, VM_API_PORT: port, VM_MEMORY_MB: process.env.VM_MEMORY_MB ?? "3072" },
      },
    );
    child.on("exit", (code) => done(code ?? 1));
  });
} finally {
  rmSync(work, { recursive: true, force: true });
  await cp.stop();
}
process.exit(status);
