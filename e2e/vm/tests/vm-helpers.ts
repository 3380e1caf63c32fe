/** Helpers shared by the real-kernel tests (they run inside the test-bed VM only). */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Agent } from "../../../src/agent/agent.ts";
import { resolveAgentConfig } from "../../../src/agent/config.ts";
import { DirectorySource } from "../../../src/files/directory-source.ts";
import { HealthMonitor } from "../../../src/health/index.ts";
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
 */
export async function startDirectoryAgent(
  dir: string,
  node: string,
  flags: Record<string, string | string[]>,
  nodeEdge?: NodeEdge,
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
    kernel: new NetlinkIpvsKernel(),
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
