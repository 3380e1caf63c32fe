/**
 * Health checks move real traffic on the real kernel: the agent (standalone, a manifest directory) with
 * its real probers programs a NAT VirtualService whose two real servers and sorry server are HTTP
 * servers in a network namespace behind a veth pair. Requests go through the VIP from this VM (IPVS NATs
 * locally generated connections). Stopping a real server's process takes it out of the traffic after
 * fallCount failed probes (quiesced: weight 0); with both stopped the sorry server answers; starting one
 * again brings it back after riseCount probes and the sorry server leaves (drained, then deleted).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { get } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type InProcessAgent, ipvsadm, scratch, startDirectoryAgent, writeManifest } from "./vm-helpers.ts";

const VIP = "192.0.2.72";
const A = "198.51.111.2";
const B = "198.51.111.3";
const SORRY = "198.51.111.9";

function sh(command: string, ...args: string[]): string {
  return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** One HTTP request through the VIP on a new connection; the answer names the server. */
function request(): Promise<string> {
  return new Promise((resolve) => {
    const req = get({ host: VIP, port: 80, path: "/", agent: false, timeout: 3_000 }, (res) => {
      let body = "";
      res.on("data", (d) => {
        body += d;
      });
      res.on("end", () => resolve(body));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e) => resolve(`error: ${e.message}`));
  });
}

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
function webManifest(o: { weightB: number; slowStartSeconds: number }): string {
  return [
    `apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  address: ${VIP}
  port: 80
  scheduler: rr
  forwarding: {method: NAT}
  healthCheck: {type: HTTP, path: /healthz, intervalSeconds: 1, timeoutSeconds: 1, riseCount: 2, fallCount: 2, initialState: Unhealthy, slowStartSeconds: ${o.slowStartSeconds}}
  sorryServer: {address: ${SORRY}, port: 8080}`,
    ...[
      [A, 1],
      [B, o.weightB],
    ].map(
      ([address, weight], i) => `apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: rs-${i}, namespace: shop}
spec: {virtualServiceRef: {name: web}, address: ${address}, port: 8080, weight: ${weight}}`,
    ),
  ].join("\n---\n");
}

describe("health checks steer real traffic (real kernel, real probers)", () => {
  let director: InProcessAgent | undefined;
  let holder: ChildProcess | undefined;
  let dir = "";
  const servers = new Map<string, ChildProcess>();

  /** An HTTP server answering "answer from ADDRESS" on ADDRESS:8080 inside the namespace. */
  async function serve(address: string): Promise<void> {
    const child = spawn(
      "nsenter",
      [
        `--net=/proc/${holder!.pid}/ns/net`,
        process.execPath,
        "-e",
        `require("node:http").createServer((q, s) => s.end("answer from ${address}")).listen(8080, "${address}", () => console.log("up"));`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once("data", () => resolve());
      child.once("exit", (code) => reject(new Error(`the server at ${address} exited (${code})`)));
    });
    servers.set(address, child);
  }

  async function stop(address: string): Promise<void> {
    const child = servers.get(address)!;
    servers.delete(address);
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
  }

  beforeAll(async () => {
    ipvsadm(["-C"]);
    // The namespace (unshare: /run is read-only in the VM, so no `ip netns`), held by a sleeping process.
    holder = spawn("unshare", ["--net", "sleep", "3600"], { stdio: "ignore" });
    await sleep(200);
    const inNs = (...args: string[]) => sh("nsenter", `--net=/proc/${holder!.pid}/ns/net`, ...args);
    sh("ip", "link", "add", "veth-hlb", "type", "veth", "peer", "name", "veth-hrs");
    sh("ip", "link", "set", "veth-hrs", "netns", String(holder.pid));
    sh("ip", "addr", "add", "198.51.111.1/24", "dev", "veth-hlb");
    sh("ip", "link", "set", "veth-hlb", "up");
    for (const address of [A, B, SORRY]) inNs("ip", "addr", "add", `${address}/24`, "dev", "veth-hrs");
    inNs("ip", "link", "set", "veth-hrs", "up");
    inNs("ip", "link", "set", "lo", "up");
    inNs("ip", "route", "add", "default", "via", "198.51.111.1");
    for (const address of [A, B, SORRY]) await serve(address);

    dir = scratch("health-traffic-");
    writeManifest(dir, "web.yaml", webManifest({ weightB: 1, slowStartSeconds: 0 }));
    director = await startDirectoryAgent(dir, "vm", { resyncInterval: "10m" });
  });

  afterAll(async () => {
    await director?.stop();
    for (const child of servers.values()) child.kill("SIGKILL");
    holder?.kill("SIGKILL");
    try {
      sh("ip", "link", "del", "veth-hlb");
    } catch {}
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
    writeManifest(dir, "web.yaml", webManifest({ weightB: 100, slowStartSeconds: 6 }));
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
