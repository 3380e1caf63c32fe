/**
 * Real connections through the real kernel: connection counters and 64-bit statistics decode to what
 * ipvsadm reports, zero() clears the statistics, and `apply` drains a removed real server that still
 * has connections (weight 0) before deleting it once its drain timeout has passed.
 * The connections come from this VM itself (IPVS schedules locally generated packets); the real
 * servers never answer, so each connection stays in SYN_RECV, an active connection, for a minute.
 */
import { execFileSync } from "node:child_process";
import { createConnection } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NetlinkIpvsKernel } from "../../../src/kernel/netlink-kernel.ts";
import { readKernelTable } from "../../../src/kernel/read-kernel-table.ts";
import type { ServiceKey } from "../../../src/vocabulary/table.ts";
import { runCli } from "../../../test/cli/run-cli.ts";
import { ipvsadm, scratch, writeManifest } from "./vm-helpers.ts";

const VIP = "192.0.2.60";
const KEY: ServiceKey = { kind: "address", family: "IPv4", protocol: "TCP", address: VIP, port: 80 };

/** Opens `count` TCP connections to the VIP; each stays half-open in IPVS's table. */
async function connect(count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const socket = createConnection({ host: VIP, port: 80 });
    socket.on("error", () => {});
    await sleep(150);
    socket.destroy();
  }
}

function manifest(realServers: string[]): string {
  return [
    `apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: drained, namespace: t}
spec: {address: ${VIP}, port: 80, scheduler: rr, forwarding: {method: NAT}, drain: {timeoutSeconds: 3}}`,
    ...realServers.map(
      (address) => `apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: rs-${address.replaceAll(".", "-")}, namespace: t}
spec: {virtualServiceRef: {name: drained}, address: ${address}, port: 80}`,
    ),
  ].join("\n---\n");
}

describe("traffic through the real kernel", () => {
  let kernel: NetlinkIpvsKernel;
  let dir: string;
  beforeAll(() => {
    ipvsadm(["-C"]);
    // Real-server addresses route out of dummy0, so NATed packets leave (and are never answered).
    execFileSync("ip", ["route", "replace", "198.51.100.0/24", "dev", "dummy0"]);
    kernel = new NetlinkIpvsKernel();
    dir = scratch("traffic-");
  });
  afterAll(async () => {
    await kernel.close();
    ipvsadm(["-C"]);
  });

  it("counts connections and packets as ipvsadm does, and zero() clears the statistics", async () => {
    ipvsadm(["-A", "-t", `${VIP}:80`, "-s", "rr"]);
    try {
      await countsAndZero();
    } finally {
      ipvsadm(["-D", "-t", `${VIP}:80`]);
    }
  });

  async function countsAndZero(): Promise<void> {
    ipvsadm(["-a", "-t", `${VIP}:80`, "-r", "198.51.100.61:80", "-m"]);
    await connect(3);
    // The kernel folds its per-CPU counters into the statistics every 2 s (the rate estimator).
    await sleep(2_500);
    const [entry] = await readKernelTable(kernel);
    expect(entry?.destinations[0]?.activeConnections).toBe(3);
    expect(entry?.service.stats?.connections).toBe(3n);
    const stats = ipvsadm(["-Ln", "--stats", "--exact"]).split("\n");
    const serviceLine = stats
      .find((l) => l.startsWith(`TCP  ${VIP}:80`))!
      .trim()
      .split(/\s+/);
    // Prot Address Conns InPkts OutPkts InBytes OutBytes
    expect(entry?.service.stats?.inPackets).toBe(BigInt(serviceLine[3]!));
    expect(entry?.service.stats?.inBytes).toBe(BigInt(serviceLine[5]!));
    expect(entry!.service.stats!.inPackets).toBeGreaterThanOrEqual(3n);

    await kernel.zero(KEY);
    const [zeroed] = await readKernelTable(kernel);
    expect(zeroed?.service.stats?.connections).toBe(0n);
    expect(zeroed?.service.stats?.inPackets).toBe(0n);
    expect(zeroed?.destinations[0]?.activeConnections).toBe(3); // zero() leaves connections alone
  }

  it("apply drains a removed real server with connections, then deletes it after the drain timeout", async () => {
    const state = `${dir}/journal.json`;
    const apply = (file: string) => runCli(["apply", "-f", file, "--node", "vm", "--state-file", state]);
    const both = writeManifest(dir, "both.yaml", manifest(["198.51.100.62", "198.51.100.63"]));
    expect((await apply(both)).code).toBe(0);
    await connect(4); // rr: two each
    const one = writeManifest(dir, "one.yaml", manifest(["198.51.100.62"]));

    const draining = await apply(one);
    expect(draining.code).toBe(0);
    expect(draining.stdout).toContain(
      "applied: update destination TCP 192.0.2.60:80 -> 198.51.100.63:80 (weight 0)",
    );
    expect(draining.stdout).toContain("1 destinations draining");
    expect(ipvsadm(["-Sn"])).toContain("-a -t 192.0.2.60:80 -r 198.51.100.63:80 -m -w 0");

    const waiting = await apply(one); // connections still there, timeout not reached: nothing to do
    expect(waiting.stdout).toMatch(/^0 operations applied.*1 destinations draining/m);
    expect(ipvsadm(["-Sn"])).toContain("198.51.100.63:80");

    await sleep(3_500);
    const done = await apply(one);
    expect(done.code).toBe(0);
    expect(done.stdout).toContain("applied: delete destination TCP 192.0.2.60:80 -> 198.51.100.63:80");
    expect(ipvsadm(["-Sn"])).toBe(
      "-A -t 192.0.2.60:80 -s rr\n-a -t 192.0.2.60:80 -r 198.51.100.62:80 -m -w 1\n",
    );
  });
});
