/**
 * Health checks move real traffic on the real kernel: the agent (standalone, a manifest directory) with
 * its real probers programs a NAT VirtualService whose two real servers and sorry server are HTTP
 * servers in a network namespace behind a veth pair. Requests go through the VIP from this VM (IPVS NATs
 * locally generated connections). Stopping a real server's process takes it out of the traffic after
 * fallCount failed probes (quiesced: weight 0); with both stopped the sorry server answers; starting one
 * again brings it back after riseCount probes and the sorry server leaves (drained, then deleted).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type BackendNamespace,
  backendNamespace,
  httpGet,
  type InProcessAgent,
  ipvsadm,
  scratch,
  startDirectoryAgent,
  webManifest,
  writeManifest,
} from "./vm-helpers.ts";

const VIP = "192.0.2.72";
const A = "198.51.111.2";
const B = "198.51.111.3";
const SORRY = "198.51.111.9";

/** One HTTP request through the VIP on a new connection; the answer names the server. */
const request = () => httpGet(VIP);

/** Who answered `n` requests, counted. */
async function answers(n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const who = await request();
    counts[who] = (counts[who] ?? 0) + 1;
  }
  return counts;
}

/** The destinations of the VIP with their weights, from `ipvsadm -Sn`. */
function weights(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of ipvsadm(["-Sn"]).matchAll(new RegExp(`-a -t ${VIP}:80 -r (\\S+):8080 -m -w (\\d+)`, "g")))
    out[m[1]!] = Number(m[2]);
  return out;
}

async function until(what: string, check: () => boolean, limitMs = 30_000): Promise<number> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > limitMs)
      throw new Error(`gave up waiting for ${what}: ${JSON.stringify(weights())}`);
    await sleep(100);
  }
  return Date.now() - start;
}

/** The web service: HTTP checks every second, a sorry server, real servers A and B (B's weight given). */
const shopManifest = (o: { weightB: number; slowStartSeconds: number }) =>
  webManifest(
    VIP,
    [
      `healthCheck: {type: HTTP, path: /healthz, intervalSeconds: 1, timeoutSeconds: 1, riseCount: 2, fallCount: 2, initialState: Unhealthy, slowStartSeconds: ${o.slowStartSeconds}}`,
      `sorryServer: {address: ${SORRY}, port: 8080}`,
    ],
    [
      { address: A, weight: 1 },
      { address: B, weight: o.weightB },
    ],
  );

describe("health checks steer real traffic (real kernel, real probers)", () => {
  let director: InProcessAgent | undefined;
  let backends: BackendNamespace | undefined;
  let dir = "";

  const serve = (address: string) => backends!.serve(address);
  const stop = (address: string) => backends!.stop(address);

  beforeAll(async () => {
    ipvsadm(["-C"]);
    backends = await backendNamespace("veth-h", "198.51.111.1/24", [A, B, SORRY]);
    for (const address of [A, B, SORRY]) await serve(address);

    dir = scratch("health-traffic-");
    writeManifest(dir, "web.yaml", shopManifest({ weightB: 1, slowStartSeconds: 0 }));
    director = await startDirectoryAgent(dir, "vm", { resyncInterval: "10m" });
  });

  afterAll(async () => {
    await director?.stop();
    backends?.close();
    ipvsadm(["-C"]);
  });

  it("takes a dead real server out, answers from the sorry server while all are down, and brings them back", async () => {
    // initialState Unhealthy: the sorry server serves until two probes passed, then both real servers.
    const risen = await until("both real servers healthy", () => {
      const w = weights();
      return w[A] === 1 && w[B] === 1 && w[SORRY] === undefined;
    });
    expect(await answers(10)).toEqual({ [`answer from ${A}`]: 5, [`answer from ${B}`]: 5 });

    await stop(A);
    const fell = await until("A quiesced", () => weights()[A] === 0);
    expect(await answers(6)).toEqual({ [`answer from ${B}`]: 6 });

    await stop(B);
    await until("the sorry server with both down", () => weights()[B] === 0 && weights()[SORRY] === 1);
    expect(await answers(4)).toEqual({ [`answer from ${SORRY}`]: 4 });

    await serve(A);
    // The sorry server leaves like any real server: drained (weight 0) while its connections end.
    const back = await until("A back, the sorry server out", () => {
      const w = weights();
      return w[A] === 1 && (w[SORRY] ?? 0) === 0;
    });
    expect(await answers(4)).toEqual({ [`answer from ${A}`]: 4 });
    console.info(
      `health on a real kernel: both up ${risen} ms after start (rise 2 x 1 s), A out ${fell} ms after it died (fall 2 x 1 s), A back ${back} ms after it restarted`,
    );
  }, 120_000);

  it("ramps a recovered real server in over slowStartSeconds, step by step in the kernel", async () => {
    // The same service with a weight of 100 on B and a slow start of 6 s (rr ignores the weight's size).
    writeManifest(dir, "web.yaml", shopManifest({ weightB: 100, slowStartSeconds: 6 }));
    await serve(B); // the first test left it stopped
    await until("B at weight 100", () => weights()[B] === 100);
    await stop(B);
    await until("B quiesced", () => weights()[B] === 0);
    await serve(B);
    const seen: number[] = [];
    await until("B back at its full weight", () => {
      const w = weights()[B] ?? -1;
      if (seen.at(-1) !== w) seen.push(w);
      return w === 100;
    });
    console.info(`slow start on a real kernel: B's weights after recovery ${seen.join(" -> ")}`);
    const ramp = seen.filter((w) => w > 0 && w < 100);
    expect(ramp.length).toBeGreaterThan(0);
    expect(seen.filter((w) => w >= 0)).toEqual([...seen.filter((w) => w >= 0)].sort((x, y) => x - y));
  }, 120_000);
});
