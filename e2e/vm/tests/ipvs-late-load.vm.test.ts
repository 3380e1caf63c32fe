/**
 * The IPVS module loaded only after the agent started. The kernel loads ip_vs by itself when a
 * program asks generic netlink for the IPVS family (request_module through /proc/sys/kernel/modprobe),
 * so on a node that has the module the agent's first request loads it. The test makes a node without
 * it: every ip_vs module unloaded and the kernel's module loader pointed at /bin/false. The agent
 * starts, reports that IPVS is not available and is not ready, keeps running and retrying; once the
 * loader works again (the module "installed"), its next retry loads ip_vs and programs the table.
 * It unloads every ip_vs module, so it needs a table and sync daemons nobody else uses.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IpvsUnavailableError } from "../../../src/kernel/errors.ts";
import { NetlinkIpvsKernel } from "../../../src/kernel/netlink-kernel.ts";
import { type InProcessAgent, ipvsadm, scratch, startDirectoryAgent, writeManifest } from "./vm-helpers.ts";

const VIP = "192.0.2.76";
/** The program the kernel runs to load a module it needs (usually /sbin/modprobe). */
const MODPROBE = "/proc/sys/kernel/modprobe";
const loaded = () =>
  readFileSync("/proc/modules", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter((m) => m === "ip_vs" || m.startsWith("ip_vs_"));

describe("the IPVS module loaded after the agent started (real kernel)", () => {
  let director: InProcessAgent | undefined;
  const loader = readFileSync(MODPROBE, "utf8").trim();

  beforeAll(() => {
    for (const state of ["master", "backup"]) {
      try {
        ipvsadm(["--stop-daemon", state]);
      } catch {}
    }
    ipvsadm(["-C"]);
    // Schedulers and helpers first, then ip_vs itself (modprobe -r resolves the order).
    const modules = loaded();
    try {
      execFileSync("modprobe", ["-r", ...modules.filter((m) => m !== "ip_vs"), "ip_vs"], { stdio: "pipe" });
    } catch (error) {
      throw new Error(
        `could not unload the IPVS modules (${modules.join(", ")}): ${(error as { stderr?: Buffer }).stderr}`,
      );
    }
    expect(loaded()).toEqual([]);
    writeFileSync(MODPROBE, "/bin/false\n");
  });

  afterAll(async () => {
    writeFileSync(MODPROBE, `${loader}\n`);
    await director?.stop();
    execFileSync("modprobe", ["ip_vs"]);
    ipvsadm(["-C"]);
  });

  it("waits, not ready and still running, then programs the table once ip_vs can be loaded", async () => {
    const probe = new NetlinkIpvsKernel();
    const unavailable = await probe.readTable().then(
      () => undefined,
      (e: unknown) => e,
    );
    await probe.close();
    expect(unavailable).toBeInstanceOf(IpvsUnavailableError);

    const dir = scratch("late-load-");
    writeManifest(
      dir,
      "web.yaml",
      `apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: web, namespace: late}
spec: {address: ${VIP}, port: 80, scheduler: wlc}
---
apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: a, namespace: late}
spec: {virtualServiceRef: {name: web}, address: 198.51.100.76, port: 8080, weight: 2}
`,
    );
    director = await startDirectoryAgent(dir, "vm", { resyncInterval: "10m" });
    await sleep(6_000);
    const waiting = director.agent.health();
    expect(waiting.ready).toBe(false);
    expect(waiting.stopped).toBe(false);
    expect(loaded()).toEqual([]);

    // The module arrives: the kernel can load it again. Nobody runs modprobe; the agent's retry makes
    // the kernel load ip_vs (and ip_vs_wlc for the scheduler).
    writeFileSync(MODPROBE, `${loader}\n`);
    const loadedAt = Date.now();
    while (!director.agent.health().ready) {
      if (Date.now() - loadedAt > 120_000)
        throw new Error("the agent never became ready once ip_vs could load");
      await sleep(200);
    }
    expect(loaded()).toEqual(expect.arrayContaining(["ip_vs", "ip_vs_wlc"]));
    const convergedMs = Date.now() - loadedAt;
    const table = ipvsadm(["-Sn"]);
    expect(table).toContain(`-A -t ${VIP}:80 -s wlc`);
    expect(table).toContain(`-a -t ${VIP}:80 -r 198.51.100.76:8080 -m -w 2`);
    console.info(
      `ip_vs loaded late: not ready for the 6 s without it (no crash); the kernel loaded it at the agent's retry, table programmed ${convergedMs} ms after it could (the retry backoff decides)`,
    );
  }, 240_000);
});
