/**
 * The agent's /metrics against the real kernel: the agent (standalone, a manifest directory) programs a
 * VirtualService whose two real servers answer from a network namespace behind a veth pair; real TCP
 * exchanges go through the VIP from this VM (IPVS NATs locally generated connections, as kube-proxy's
 * IPVS mode does for node-local clients). Once the traffic has stopped, the per-service and per-real-server
 * counters served at /metrics EQUAL `ipvsadm -Ln --stats --exact`, the connection counts and weights
 * `ipvsadm -Ln`; the rates (2-second estimates that decay at rest) lie between two scrapes taken around
 * `ipvsadm -Ln --rate --exact`. A foreign service gets no series.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { connect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent } from "../../../src/agent/agent.ts";
import { resolveAgentConfig } from "../../../src/agent/config.ts";
import { DirectorySource } from "../../../src/files/directory-source.ts";
import { NetlinkIpvsKernel } from "../../../src/kernel/netlink-kernel.ts";
import { createRootLogger } from "../../../src/observability/logger.ts";
import { readBootId } from "../../../src/reconcile/boot-id.ts";
import { ipvsadm, scratch, webManifest, writeManifest } from "./vm-helpers.ts";

const VIP = "192.0.2.70";
const REAL_SERVERS = ["198.51.110.2", "198.51.110.3"];
const METRICS = "127.0.0.1:19796";
const FOREIGN = "203.0.113.70:80";

function sh(command: string, ...args: string[]): string {
  return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** One request/answer through the VIP: sends `payload`, reads the answer until the server closes. */
function exchange(payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: VIP, port: 80 });
    let answer = "";
    socket.setTimeout(5_000, () => socket.destroy(new Error("no answer through the VIP within 5 s")));
    socket.on("connect", () => socket.end(payload));
    socket.on("data", (chunk) => {
      answer += chunk.toString();
    });
    socket.on("close", () => resolve(answer));
    socket.on("error", reject);
  });
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: string;
}

function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const pair of (m[2] ?? "").matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: m[1]!, labels, value: m[3]! });
  }
  return samples;
}

/** The value of the one sample of `name` whose labels include `labels`. */
function sampleValue(samples: Sample[], name: string, labels: Record<string, string>): string {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  expect(found, `${name} ${JSON.stringify(labels)}`).toHaveLength(1);
  return found[0]!.value;
}

async function scrape(): Promise<Sample[]> {
  const response = await fetch(`http://${METRICS}/metrics`);
  expect(response.status).toBe(200);
  return parseExposition(await response.text());
}

/** `ipvsadm -Ln <flags>` as rows: the service line and its destinations, by "VIP:port" / "RS:port". */
function ipvsadmRows(flags: string[]): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of ipvsadm(["-Ln", ...flags]).split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] === "TCP" && fields[1]) rows.set(fields[1], fields.slice(2));
    else if (fields[0] === "->" && fields[1] && /^\d/.test(fields[1])) rows.set(fields[1], fields.slice(2));
  }
  return rows;
}

describe("agent /metrics on a real kernel", () => {
  let agent: Agent | undefined;
  let server: ChildProcess | undefined;

  beforeAll(async () => {
    ipvsadm(["-C"]);
    ipvsadm(["-A", "-t", FOREIGN, "-s", "rr"]); // someone else's: never exported
    // The real servers: a network namespace (unshare: /run is read-only in the VM, so no `ip netns`)
    // behind a veth pair, answering on 8080 at both addresses.
    server = spawn(
      "unshare",
      [
        "--net",
        process.execPath,
        "-e",
        `require("node:net").createServer((s) => { let n = 0; s.on("data", (d) => { n += d.length; }); s.on("end", () => s.end("answer from " + s.localAddress + " to " + n + " bytes")); }).listen(8080, "0.0.0.0", () => console.log("listening"));`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve, reject) => {
      server!.stdout!.once("data", () => resolve());
      server!.once("exit", (code) => reject(new Error(`the real server exited (${code})`)));
    });
    const inNs = (...args: string[]) => sh("nsenter", `--net=/proc/${server!.pid}/ns/net`, ...args);
    sh("ip", "link", "add", "veth-lb", "type", "veth", "peer", "name", "veth-rs");
    sh("ip", "link", "set", "veth-rs", "netns", String(server.pid));
    sh("ip", "addr", "add", "198.51.110.1/24", "dev", "veth-lb");
    sh("ip", "link", "set", "veth-lb", "up");
    for (const address of REAL_SERVERS) inNs("ip", "addr", "add", `${address}/24`, "dev", "veth-rs");
    inNs("ip", "link", "set", "veth-rs", "up");
    inNs("ip", "link", "set", "lo", "up");
    inNs("ip", "route", "add", "default", "via", "198.51.110.1");

    const dir = scratch("metrics-");
    writeManifest(
      dir,
      "web.yaml",
      webManifest(
        VIP,
        [],
        REAL_SERVERS.map((address) => ({ address })),
      ),
    );
    const state = join(scratch("metrics-state-"), "journal.json");
    const config = resolveAgentConfig(
      { fromDir: dir, stateFile: state, minSyncInterval: "0", resyncInterval: "10m", httpAddress: METRICS },
      { NODE_NAME: "vm" },
    );
    agent = new Agent(config, {
      kernel: new NetlinkIpvsKernel(),
      source: new DirectorySource({ path: dir, nodeName: "vm", debounceMs: 20, rereadMs: 0 }),
      bootId: await readBootId(),
      logger: createRootLogger({ level: "silent" }),
    });
    await agent.start();
    for (let i = 0; i < 200 && !agent.health().ready; i++) await sleep(100);
    expect(agent.health().ready).toBe(true);
  });

  afterAll(async () => {
    await agent?.stop();
    server?.kill();
    try {
      sh("ip", "link", "del", "veth-lb"); // takes its peer with it
    } catch {}
    ipvsadm(["-C"]);
  });

  it("serves counters equal to ipvsadm --stats --exact once the traffic stopped, and rates that match --rate", async () => {
    expect(ipvsadm(["-Sn"])).toContain(`-a -t ${VIP}:80 -r ${REAL_SERVERS[0]}:8080 -m -w 1`);
    const answers: string[] = [];
    for (let i = 0; i < 12; i++) answers.push(await exchange(`request ${i} `.padEnd(100 + i * 37, "x")));
    // rr over the two real servers, every exchange answered through the VIP.
    expect(
      answers.filter((a) => a.startsWith(`answer from ${REAL_SERVERS[0]} `)),
      answers.join("; "),
    ).toHaveLength(6);
    expect(answers.filter((a) => a.startsWith(`answer from ${REAL_SERVERS[1]}`))).toHaveLength(6);
    // The kernel folds its per-CPU counters into the statistics every 2 s (the rate estimator).
    await sleep(2_500);

    const samples = await scrape();
    const stats = ipvsadmRows(["--stats", "--exact"]);
    const conns = ipvsadmRows([]);
    const service = { namespace: "shop", virtualservice: "web", protocol: "TCP", vip: VIP, port: "80" };
    // Prot LocalAddress:Port Conns InPkts OutPkts InBytes OutBytes
    const [sConns, sInPkts, sOutPkts, sInBytes, sOutBytes] = stats.get(`${VIP}:80`)!;
    console.info(
      `ipvsadm --stats --exact ${VIP}:80: ${stats.get(`${VIP}:80`)!.join(" ")} (compared with /metrics)`,
    );
    expect(sConns).toBe("12");
    expect(Number(sOutPkts)).toBeGreaterThan(0); // the answers came back through IPVS
    expect(sampleValue(samples, "ipvs_operator_service_connections_total", service)).toBe(sConns);
    expect(sampleValue(samples, "ipvs_operator_service_packets_total", { ...service, direction: "in" })).toBe(
      sInPkts,
    );
    expect(
      sampleValue(samples, "ipvs_operator_service_packets_total", { ...service, direction: "out" }),
    ).toBe(sOutPkts);
    expect(sampleValue(samples, "ipvs_operator_service_bytes_total", { ...service, direction: "in" })).toBe(
      sInBytes,
    );
    expect(sampleValue(samples, "ipvs_operator_service_bytes_total", { ...service, direction: "out" })).toBe(
      sOutBytes,
    );

    for (const [i, address] of REAL_SERVERS.entries()) {
      const rs = `${address}:8080`;
      const labels = {
        ...service,
        real_server: rs,
        source_kind: "RealServer",
        source_namespace: "shop",
        source_name: `rs-${i}`,
      };
      const [conns_, inPkts, outPkts, inBytes, outBytes] = stats.get(rs)!;
      expect(conns_).toBe("6");
      expect(sampleValue(samples, "ipvs_operator_destination_connections_total", labels)).toBe(conns_);
      expect(
        sampleValue(samples, "ipvs_operator_destination_packets_total", { ...labels, direction: "in" }),
      ).toBe(inPkts);
      expect(
        sampleValue(samples, "ipvs_operator_destination_packets_total", { ...labels, direction: "out" }),
      ).toBe(outPkts);
      expect(
        sampleValue(samples, "ipvs_operator_destination_bytes_total", { ...labels, direction: "in" }),
      ).toBe(inBytes);
      expect(
        sampleValue(samples, "ipvs_operator_destination_bytes_total", { ...labels, direction: "out" }),
      ).toBe(outBytes);
      // -> RemoteAddress:Port Forward Weight ActiveConn InActConn
      const [, weight, active, inactive] = conns.get(rs)!;
      expect(sampleValue(samples, "ipvs_operator_destination_weight", labels)).toBe(weight);
      expect(sampleValue(samples, "ipvs_operator_destination_active_connections", labels)).toBe(active);
      expect(sampleValue(samples, "ipvs_operator_destination_inactive_connections", labels)).toBe(inactive);
    }
    expect(
      sampleValue(samples, "ipvs_operator_backends", {
        namespace: "shop",
        virtualservice: "web",
        state: "ready",
      }),
    ).toBe("2");
    expect(samples.some((s) => s.labels.vip === "203.0.113.70")).toBe(false);
    expect(sampleValue(samples, "ipvs_operator_scrape_errors_total", {})).toBe("0");

    // Rates: 2-second estimates, decaying at rest; ipvsadm's lie between two scrapes around it.
    const before = await scrape();
    // Prot LocalAddress:Port CPS InPPS OutPPS InBPS OutBPS
    const rates = ipvsadmRows(["--rate", "--exact"]).get(`${VIP}:80`)!;
    const after = await scrape();
    const between = (name: string, labels: Record<string, string>, value: string) => {
      const [a, b] = [Number(sampleValue(before, name, labels)), Number(sampleValue(after, name, labels))];
      expect(Number(value), `${name} ${JSON.stringify(labels)}`).toBeGreaterThanOrEqual(Math.min(a, b));
      expect(Number(value), `${name} ${JSON.stringify(labels)}`).toBeLessThanOrEqual(Math.max(a, b));
    };
    expect(Number(rates[0])).toBeGreaterThan(0); // the estimator saw the 12 connections
    between("ipvs_operator_service_connections_per_second", service, rates[0]!);
    between("ipvs_operator_service_packets_per_second", { ...service, direction: "in" }, rates[1]!);
    between("ipvs_operator_service_packets_per_second", { ...service, direction: "out" }, rates[2]!);
    between("ipvs_operator_service_bytes_per_second", { ...service, direction: "in" }, rates[3]!);
    between("ipvs_operator_service_bytes_per_second", { ...service, direction: "out" }, rates[4]!);
  });
});
