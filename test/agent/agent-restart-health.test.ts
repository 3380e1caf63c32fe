/**
 * An agent restart does not quiesce working backends: the new agent takes a backend the kernel still
 * serves at a weight above 0 as healthy until its own probes say otherwise, so with initialState
 * Unhealthy and a sorry server the traffic stays where it was. A backend the kernel does not have yet
 * starts in its initialState as always.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { readKernelTable } from "../../src/kernel/read-kernel-table.ts";
import { renderIpvsadmSave } from "../../src/model/ipvsadm-render.ts";
import { startProbingAgent } from "../support/probing-agent.ts";
import { until } from "../support/until.ts";

const VS = `apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: web, namespace: t}
spec:
  address: 192.0.2.60
  port: 80
  healthCheck: {type: TCP, intervalSeconds: INTERVAL, timeoutSeconds: 1, riseCount: 2, fallCount: 2, initialState: Unhealthy}
  sorryServer: {address: 127.0.0.9, port: 8080}
`;
const rs = (name: string, address: string, port: number) => `---
apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: ${name}, namespace: t}
spec: {virtualServiceRef: {name: web}, address: ${address}, port: ${port}, weight: 3}
`;

describe("agent restart with health checks (fake kernel, real probes)", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it("keeps the backends the kernel serves, not quiesced, while the new agent's probes start", async () => {
    const server: Server = createServer((s) => s.end());
    await new Promise<void>((r) => server.listen(0, "127.0.0.2", () => r()));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as { port: number }).port;
    const dir = mkdtempSync(join(tmpdir(), "restart-health-"));
    const stateFile = join(mkdtempSync(join(tmpdir(), "restart-health-state-")), "journal.json");
    const kernel = new FakeIpvsKernel();
    kernel.close = async () => {};
    const table = async () => renderIpvsadmSave(await readKernelTable(kernel));
    const weights: string[] = [];

    const start = async () => (await startProbingAgent(dir, stateFile, kernel)).stop;

    // The first agent: probes every second, the real server rises, the sorry server leaves.
    writeFileSync(join(dir, "web.yaml"), VS.replace("INTERVAL", "1") + rs("a", "127.0.0.2", port));
    const stopFirst = await start();
    await until("a healthy at weight 3, no sorry server", async () => {
      const t = await table();
      return t.includes(`-r 127.0.0.2:${port} -m -w 3`) && !t.includes("127.0.0.9") ? true : undefined;
    });
    await stopFirst();

    // The second agent probes every 60 s (its first probe may be a minute away) and meets a new real
    // server b that the kernel does not have: a stays at weight 3, b starts Unhealthy (quiesced).
    writeFileSync(
      join(dir, "web.yaml"),
      VS.replace("INTERVAL", "60") + rs("a", "127.0.0.2", port) + rs("b", "127.0.0.3", port),
    );
    const update = kernel.updateDestination.bind(kernel);
    kernel.updateDestination = async (service, destination) => {
      weights.push(`${destination.key.address} -> ${destination.config.weight}`);
      return update(service, destination);
    };
    cleanups.push(await start());
    await until("b added", async () => ((await table()).includes("127.0.0.3") ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));
    const t = await table();
    expect(t).toContain(`-a -t 192.0.2.60:80 -r 127.0.0.2:${port} -m -w 3`);
    expect(t).toContain(`-a -t 192.0.2.60:80 -r 127.0.0.3:${port} -m -w 0`);
    expect(t).not.toContain("127.0.0.9");
    expect(weights).toEqual([]);
  }, 30_000);
});
