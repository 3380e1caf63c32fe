/**
 * Health drives the table, end to end on the host: the agent (directory mode, fake kernel) with the real
 * HealthMonitor probing real TCP servers on loopback. A real server whose server stops is quiesced
 * (onFailure Quiesce) or removed (Remove); while none is healthy the sorry server is programmed, and it
 * goes when one recovers; with slowStartSeconds a recovered one gets its weight back in tenths; each
 * transition is an Event and the IPVSNode status lists the probed real servers, unhealthy first.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { IPVSNodeStatus } from "../../src/api/v1alpha1/ipvs-node.ts";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { readKernelTable } from "../../src/kernel/read-kernel-table.ts";
import { renderIpvsadmSave } from "../../src/model/ipvsadm-render.ts";
import type { EventIntent } from "../../src/model/sync-events.ts";
import { startProbingAgent } from "../support/probing-agent.ts";
import { until } from "../support/until.ts";

/** A TCP server on a loopback address that can be stopped and started again on the same port. */
async function tcpServer(
  host: string,
): Promise<{ port: number; stop(): Promise<void>; start(): Promise<void> }> {
  let server: Server | undefined;
  let port = 0;
  const start = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((socket) => socket.end());
      s.once("error", reject);
      s.listen(port, host, () => {
        port = (s.address() as { port: number }).port;
        server = s;
        resolve();
      });
    });
  await start();
  return {
    port,
    start,
    stop: () => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
  };
}

describe("active health checks drive the table (agent + real probes, fake kernel)", () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  it("quiesces, removes, adds the sorry server while none is healthy, and restores on recovery", async () => {
    const a = await tcpServer("127.0.0.2");
    const b = await tcpServer("127.0.0.3");
    const c = await tcpServer("127.0.0.4");
    const r = await tcpServer("127.0.0.5");
    stops.push(a.stop, b.stop, c.stop, r.stop);
    const check = (onFailure: string) =>
      `{type: TCP, intervalSeconds: 1, timeoutSeconds: 1, riseCount: 1, fallCount: 1, initialState: Healthy, onFailure: ${onFailure}}`;
    const dir = mkdtempSync(join(tmpdir(), "agent-health-"));
    writeFileSync(
      join(dir, "lb.yaml"),
      `apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: quiet, namespace: t}
spec: {address: 192.0.2.50, port: 80, healthCheck: ${check("Quiesce")}, sorryServer: {address: 127.0.0.9, port: 8080}}
---
apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: a, namespace: t}
spec: {virtualServiceRef: {name: quiet}, address: 127.0.0.2, port: ${a.port}, weight: 3}
---
apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: b, namespace: t}
spec: {virtualServiceRef: {name: quiet}, address: 127.0.0.3, port: ${b.port}}
---
apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: gone, namespace: t}
spec: {address: 192.0.2.51, port: 80, healthCheck: ${check("Remove")}, drain: {timeoutSeconds: 0}}
---
apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: c, namespace: t}
spec: {virtualServiceRef: {name: gone}, address: 127.0.0.4, port: ${c.port}}
---
apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: ramp, namespace: t}
spec: {address: 192.0.2.52, port: 80, healthCheck: {type: TCP, intervalSeconds: 1, timeoutSeconds: 1, riseCount: 1, fallCount: 1, initialState: Healthy, slowStartSeconds: 3}}
---
apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: r, namespace: t}
spec: {virtualServiceRef: {name: ramp}, address: 127.0.0.5, port: ${r.port}, weight: 10}
`,
    );
    const kernel = new FakeIpvsKernel();
    kernel.close = async () => {};
    const events: EventIntent[] = [];
    let status: IPVSNodeStatus | undefined;
    const { stop } = await startProbingAgent(
      dir,
      join(mkdtempSync(join(tmpdir(), "agent-health-state-")), "journal.json"),
      kernel,
      {
        events: { record: async (e) => void events.push(...e) },
        statusWriter: {
          previous: async () => undefined,
          write: async (s) => {
            status = s;
            return true;
          },
        },
      },
    );
    stops.push(stop);
    const table = () => readKernelTable(kernel).then(renderIpvsadmSave);
    const lines = async (vip: string) =>
      (await table())
        .split("\n")
        .filter((l) => l.startsWith("-a") && l.includes(vip))
        .join("\n");
    const expectEventOnA = (type: string, reason: string) =>
      expect(events).toContainEqual(
        expect.objectContaining({
          regarding: { kind: "RealServer", namespace: "t", name: "a" },
          type,
          reason,
        }),
      );
    const becomes = (what: string, vip: string, want: string) =>
      until(what, async () => ((await lines(vip)) === want ? true : undefined), 15_000, 50);

    /** The quiet service's lines with a and b at these weights, and the sorry server when asked. */
    const quiet = (what: string, weightA: number, weightB: number, sorry = false) =>
      becomes(
        what,
        "192.0.2.50:80",
        [
          `-a -t 192.0.2.50:80 -r 127.0.0.2:${a.port} -m -w ${weightA}`,
          `-a -t 192.0.2.50:80 -r 127.0.0.3:${b.port} -m -w ${weightB}`,
          ...(sorry ? ["-a -t 192.0.2.50:80 -r 127.0.0.9:8080 -m -w 1"] : []),
        ].join("\n"),
      );
    await quiet("both real servers at their weights", 3, 1);
    await becomes("c", "192.0.2.51:80", `-a -t 192.0.2.51:80 -r 127.0.0.4:${c.port} -m -w 1`);

    await a.stop();
    await quiet("a quiesced (weight 0, kept)", 0, 1);
    expectEventOnA("Warning", "BackendUnhealthy");

    await b.stop();
    await quiet("the sorry server while none is healthy", 0, 0, true);

    await a.start();
    await quiet("a back at its weight, the sorry server gone", 3, 0);
    expectEventOnA("Normal", "BackendHealthy");

    await c.stop();
    await becomes("c removed (onFailure Remove)", "192.0.2.51:80", "");

    // Slow start: a recovered real server gets its weight back in tenths over 3 s, not at once.
    const rLine = (w: number) => `-a -t 192.0.2.52:80 -r 127.0.0.5:${r.port} -m -w ${w}`;
    await becomes("r at its weight (healthy from the start: no ramp)", "192.0.2.52:80", rLine(10));
    await r.stop();
    await becomes("r quiesced", "192.0.2.52:80", rLine(0));
    await r.start();
    const seen: number[] = [];
    await until(
      "r ramped back to 10",
      async () => {
        const w = Number(/-w (\d+)$/.exec(await lines("192.0.2.52:80"))?.[1]);
        if (seen.at(-1) !== w) seen.push(w);
        return w === 10 ? true : undefined;
      },
      15_000,
      20,
    );
    const ramp = seen.slice(seen.indexOf(0) + 1, -1);
    expect(ramp.length, `weights seen: ${seen.join(" ")}`).toBeGreaterThanOrEqual(4);
    expect(ramp.every((w, i) => w > 0 && w < 10 && (i === 0 || w > ramp[i - 1]!))).toBe(true);

    // The node's status lists the probed real servers, unhealthy first, with the probe's reason.
    await until("the status", () => (status?.backends?.[1]?.healthy === false ? true : undefined), 10_000);
    const backends = status!.backends!;
    expect(backends.map((x) => [x.realServer, x.healthy])).toEqual([
      ["t/c", false],
      ["t/b", false],
      ["t/a", true],
      ["t/r", true],
    ]);
    expect(backends[0]!.message).toMatch(/ECONNREFUSED/);
    expect(backends[2]!.message).toBe("");
  }, 60_000);
});
