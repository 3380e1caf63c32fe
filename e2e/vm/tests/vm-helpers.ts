/** Helpers shared by the real-kernel tests (they run inside the test-bed VM only). */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Agent } from "../../../src/agent/agent.ts";
import { resolveAgentConfig } from "../../../src/agent/config.ts";
import { DirectorySource } from "../../../src/files/directory-source.ts";
import { HealthMonitor } from "../../../src/health/index.ts";
import type { IpvsKernel } from "../../../src/kernel/ipvs-kernel.ts";
import { NetlinkIpvsKernel } from "../../../src/kernel/netlink-kernel.ts";
import type { NodeEdge } from "../../../src/node-edge/node-edge-report.ts";
import { createRootLogger } from "../../../src/observability/logger.ts";
import { readBootId } from "../../../src/reconcile/boot-id.ts";
import { sortTable } from "../../../src/vocabulary/order.ts";
import type { IpvsTable, KernelTable } from "../../../src/vocabulary/table.ts";

/** Runs ipvsadm with the given arguments (and stdin), returning stdout; throws with stderr on failure. */
export function ipvsadm(args: string[], input?: string): string {
  return execFileSync("ipvsadm", args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

/** A kernel table without counters and statistics, in canonical order, for whole-table comparison. */
export function plainTable(table: KernelTable | IpvsTable): IpvsTable {
  return sortTable(
    table.map((entry) => ({
      service: { key: entry.service.key, config: entry.service.config },
      destinations: entry.destinations.map((d) => ({ key: d.key, config: d.config })),
    })),
  );
}

/** A fresh folder under /tmp (tmpfs in the VM). */
export function scratch(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeManifest(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** The agent in the test's process: a manifest directory, the real kernel, real probers. */
export interface InProcessAgent {
  agent: Agent;
  health: HealthMonitor;
  /** Stops the probers, then the agent (the kernel table stays as it is). */
  stop(): Promise<void>;
}

/**
 * Starts an agent over `dir` (directory mode) on the real kernel with real health probers; `flags`
 * are agent flags on top of a journal in its own scratch folder, no sync floor and no HTTP server.
 * `options.kernel` replaces the agent's NetlinkIpvsKernel (a test that wraps it).
 */
export async function startDirectoryAgent(
  dir: string,
  node: string,
  flags: Record<string, string | string[]>,
  nodeEdge?: NodeEdge,
  options: { kernel?: IpvsKernel } = {},
): Promise<InProcessAgent> {
  const config = resolveAgentConfig(
    {
      fromDir: dir,
      stateFile: join(scratch(`${node}-state-`), "journal.json"),
      minSyncInterval: "0",
      httpAddress: "",
      ...flags,
    },
    { NODE_NAME: node },
  );
  const health = new HealthMonitor({ onChange: (change) => agent.backendHealthChanged(change) });
  const agent: Agent = new Agent(config, {
    kernel: options.kernel ?? new NetlinkIpvsKernel(),
    source: new DirectorySource({ path: dir, nodeName: node, debounceMs: 20, rereadMs: 0 }),
    bootId: await readBootId(),
    logger: createRootLogger({ level: "silent" }),
    health,
    ...(nodeEdge ? { nodeEdge } : {}),
  });
  await agent.start();
  return {
    agent,
    health,
    stop: async () => {
      health.stop();
      await agent.stop();
    },
  };
}

/**
 * keepalived (the host's Debian package) in the foreground with its checker process only (no VRRP),
 * from `conf`, its pid files next to it; `log()` is what it printed so far.
 */
export function startKeepalived(conf: string): { child: ChildProcess; log: () => string } {
  const dir = dirname(conf);
  const child = spawn(
    "keepalived",
    [
      "--dont-fork",
      "--log-console",
      "--check",
      "--use-file",
      conf,
      "--pid",
      join(dir, "keepalived.pid"),
      "--checkers_pid",
      join(dir, "checkers.pid"),
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  child.stdout?.on("data", (d) => {
    log += String(d);
  });
  child.stderr?.on("data", (d) => {
    log += String(d);
  });
  return { child, log: () => log };
}

/** Real servers in a network namespace behind a veth pair; HTTP servers started and killed one by one. */
export interface BackendNamespace {
  /** Starts an HTTP server on ADDRESS:8080 in the namespace that answers "answer from ADDRESS". */
  serve(address: string): Promise<void>;
  /** SIGKILLs the server of ADDRESS and waits for it to be gone. */
  stop(address: string): Promise<void>;
  /** Kills every server and the namespace, removes the veth pair. */
  close(): void;
}

/**
 * A network namespace (unshare: /run is read-only in the VM, so no `ip netns`) held by a sleeping
 * process, joined to the VM by the veth pair `${link}-lb` (with `gateway`, as A.B.C.D/24) and `${link}-rs`
 * (with `addresses`); the namespace routes everything back through the gateway.
 */
export async function backendNamespace(
  link: string,
  gateway: string,
  addresses: string[],
): Promise<BackendNamespace> {
  const sh = (command: string, ...args: string[]) =>
    execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const holder = spawn("unshare", ["--net", "sleep", "3600"], { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 200));
  const netns = `--net=/proc/${holder.pid}/ns/net`;
  const inNs = (...args: string[]) => sh("nsenter", netns, ...args);
  sh("ip", "link", "add", `${link}-lb`, "type", "veth", "peer", "name", `${link}-rs`);
  sh("ip", "link", "set", `${link}-rs`, "netns", String(holder.pid));
  sh("ip", "addr", "add", gateway, "dev", `${link}-lb`);
  sh("ip", "link", "set", `${link}-lb`, "up");
  for (const address of addresses) inNs("ip", "addr", "add", `${address}/24`, "dev", `${link}-rs`);
  inNs("ip", "link", "set", `${link}-rs`, "up");
  inNs("ip", "link", "set", "lo", "up");
  inNs("ip", "route", "add", "default", "via", gateway.split("/")[0]!);
  const servers = new Map<string, ChildProcess>();
  return {
    async serve(address) {
      const child = spawn(
        "nsenter",
        [
          netns,
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
    },
    async stop(address) {
      const child = servers.get(address)!;
      servers.delete(address);
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
    },
    close() {
      for (const child of servers.values()) child.kill("SIGKILL");
      holder.kill("SIGKILL");
      try {
        sh("ip", "link", "del", `${link}-lb`); // takes its peer with it
      } catch {}
    },
  };
}

/** One HTTP GET of / on a new connection (3 s timeout); the body, or "error: ..." when it failed. */
export function httpGet(host: string, port = 80): Promise<string> {
  return new Promise((resolve) => {
    const req = get({ host, port, path: "/", agent: false, timeout: 3_000 }, (res) => {
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

/**
 * VirtualService `web` in namespace `shop` (address, port 80, NAT, rr, then `extra` spec lines) and a
 * RealServer rs-I on port 8080 for each real server.
 */
export function webManifest(
  address: string,
  extra: string[],
  realServers: { address: string; weight?: number }[],
): string {
  return [
    `apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  address: ${address}
  port: 80
  scheduler: rr
  forwarding: {method: NAT}${extra.map((line) => `\n  ${line}`).join("")}`,
    ...realServers.map(
      (rs, i) => `apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: rs-${i}, namespace: shop}
spec: {virtualServiceRef: {name: web}, address: ${rs.address}, port: 8080${rs.weight === undefined ? "" : `, weight: ${rs.weight}`}}`,
    ),
  ].join("\n---\n");
}
