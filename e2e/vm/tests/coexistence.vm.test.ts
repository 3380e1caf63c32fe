/**
 * Coexistence on one node (issue 11, item 5): keepalived (the host's Debian package, its checker
 * process only, no VRRP) with virtual_server blocks of its own, and a table shaped like kube-proxy's
 * IPVS mode (ClusterIP services made with ipvsadm), beside the agent (managed range 192.0.2.0/24) over
 * many resyncs. The agent programs its own service, reports every entry of the others as Foreign drift
 * (action Ignored) on every resync, and never changes them: their lines of `ipvsadm -Sn` are the same
 * after every resync, and an edit keepalived's neighbour makes by hand stays as made.
 */
import type { ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent, type AgentSyncReport } from "../../../src/agent/agent.ts";
import { resolveAgentConfig } from "../../../src/agent/config.ts";
import { DirectorySource } from "../../../src/files/directory-source.ts";
import { NetlinkIpvsKernel } from "../../../src/kernel/netlink-kernel.ts";
import { createRootLogger } from "../../../src/observability/logger.ts";
import { readBootId } from "../../../src/reconcile/boot-id.ts";
import { ipvsadm, scratch, startKeepalived, writeManifest } from "./vm-helpers.ts";

const KEEPALIVED_CONF = `! virtual servers only: no VRRP
virtual_server 203.0.113.10 80 {
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    real_server 198.51.100.210 8080 {
        weight 3
    }
    real_server 198.51.100.211 8080 {
        weight 1
    }
}
virtual_server fwmark 42 {
    lb_algo sh
    lb_kind DR
    real_server 198.51.100.212 {
        weight 2
    }
}
`;
/** kube-proxy's IPVS mode: ClusterIPs (its kube-ipvs0 addresses), rr, masquerading to pod IPs. */
const KUBE_PROXY = [
  ["-A", "-t", "10.96.0.1:443", "-s", "rr"],
  ["-a", "-t", "10.96.0.1:443", "-r", "172.18.0.2:6443", "-m", "-w", "1"],
  ["-A", "-u", "10.96.0.10:53", "-s", "rr"],
  ["-a", "-u", "10.96.0.10:53", "-r", "10.244.0.2:53", "-m", "-w", "1"],
  ["-a", "-u", "10.96.0.10:53", "-r", "10.244.0.3:53", "-m", "-w", "1"],
  ["-A", "-t", "10.96.0.10:53", "-s", "rr"],
  ["-a", "-t", "10.96.0.10:53", "-r", "10.244.0.2:53", "-m", "-w", "1"],
];
const FOREIGN_KEYS = [
  "TCP 203.0.113.10:80",
  "FWM 42 IPv4",
  "TCP 10.96.0.1:443",
  "UDP 10.96.0.10:53",
  "TCP 10.96.0.10:53",
];
const OURS = "192.0.2.61";

/** The lines of `ipvsadm -Sn` that are not the agent's, in order. */
const othersLines = () =>
  ipvsadm(["-Sn"])
    .split("\n")
    .filter((l) => l !== "" && !l.includes(OURS));

describe("coexistence with keepalived and a kube-proxy-shaped table (real kernel)", () => {
  let keepalived: ChildProcess | undefined;
  let agent: Agent | undefined;
  let log = () => "";
  const reports: AgentSyncReport[] = [];

  beforeAll(async () => {
    ipvsadm(["-C"]);
    const dir = scratch("coexistence-");
    const conf = join(dir, "keepalived.conf");
    writeFileSync(conf, KEEPALIVED_CONF);
    const started = startKeepalived(conf);
    keepalived = started.child;
    log = started.log;
    for (let i = 0; i < 240 && !ipvsadm(["-Sn"]).includes("-a -f 42 -r 198.51.100.212:0"); i++)
      await sleep(250);
    for (const args of KUBE_PROXY) ipvsadm(args);
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    if (keepalived && keepalived.exitCode === null) {
      keepalived.kill("SIGTERM");
      await new Promise((resolve) => keepalived?.once("exit", resolve));
    }
    ipvsadm(["-C"]);
  });

  it("programs its own service and, over ten resyncs, reports the others as Foreign and leaves them exactly as they are", async () => {
    const before = othersLines();
    expect(
      before.filter((l) => l.startsWith("-A")),
      log(),
    ).toHaveLength(5);
    const manifests = scratch("coexistence-manifests-");
    writeManifest(
      manifests,
      "ours.yaml",
      `apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: ours, namespace: lb}
spec: {address: ${OURS}, port: 80, scheduler: rr}
---
apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: ours-a, namespace: lb}
spec: {virtualServiceRef: {name: ours}, address: 198.51.100.61, port: 8080}
`,
    );
    const config = resolveAgentConfig(
      {
        fromDir: manifests,
        stateFile: join(scratch("coexistence-state-"), "journal.json"),
        managedCidrs: ["192.0.2.0/24"],
        minSyncInterval: "0",
        resyncInterval: "1s",
        httpAddress: "",
        vipInterface: "",
      },
      { NODE_NAME: "vm" },
    );
    const snapshots: string[][] = [];
    agent = new Agent(config, {
      kernel: new NetlinkIpvsKernel(),
      source: new DirectorySource({ path: manifests, nodeName: "vm", debounceMs: 20, rereadMs: 0 }),
      bootId: await readBootId(),
      logger: createRootLogger({ level: "silent" }),
      onSync: (report) => {
        reports.push(report);
        snapshots.push(othersLines());
      },
    });
    await agent.start();
    const dumped = () => reports.filter((r) => r.result.dumped);
    for (let i = 0; i < 600 && dumped().length < 10; i++) await sleep(100);
    expect(dumped().length).toBeGreaterThanOrEqual(10);
    expect(ipvsadm(["-Sn"])).toContain(`-a -t ${OURS}:80 -r 198.51.100.61:8080 -m -w 1`);
    for (const r of dumped()) {
      expect(r.result.ok, JSON.stringify(r.result.errors)).toBe(true);
      const foreign = r.result.drift.filter((d) => d.kind === "Foreign");
      expect(foreign.every((d) => d.action === "Ignored")).toBe(true);
      expect(new Set(foreign.map((d) => d.service))).toEqual(new Set(FOREIGN_KEYS));
      // No operation of any sync touched another's service.
      expect(r.result.outcomes.filter((o) => !JSON.stringify(o).includes(OURS))).toEqual([]);
    }
    for (const s of snapshots) expect(s).toEqual(before);

    // Someone edits kube-proxy's service by hand: the agent leaves the edit as it is.
    ipvsadm(["-e", "-t", "10.96.0.1:443", "-r", "172.18.0.2:6443", "-m", "-w", "5"]);
    const edited = othersLines();
    const seen = dumped().length;
    for (let i = 0; i < 300 && dumped().length < seen + 3; i++) await sleep(100);
    expect(othersLines()).toEqual(edited);
    expect(keepalived?.exitCode, log()).toBeNull();
    console.log(
      `[coexistence] ${dumped().length} resyncs with a dump, ${FOREIGN_KEYS.length} foreign services reported each time, 0 operations on them`,
    );
  }, 180_000);
});
