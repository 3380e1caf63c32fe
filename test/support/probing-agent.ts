/** An agent on a manifest directory with real probers (HealthMonitor) and a fake kernel, for host tests. */
import { Agent, type AgentDependencies } from "../../src/agent/agent.ts";
import { resolveAgentConfig } from "../../src/agent/config.ts";
import { DirectorySource } from "../../src/files/directory-source.ts";
import { HealthMonitor } from "../../src/health/index.ts";
import type { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { createRootLogger } from "../../src/observability/logger.ts";

export interface ProbingAgent {
  agent: Agent;
  /** Stops the probers, then the agent (the kernel table stays). */
  stop(): Promise<void>;
}

/** Started; node "n1", resync every 30 s, no HTTP server, silent log; `deps` adds events, status... */
export async function startProbingAgent(
  dir: string,
  stateFile: string,
  kernel: FakeIpvsKernel,
  deps: Partial<AgentDependencies> = {},
): Promise<ProbingAgent> {
  const config = resolveAgentConfig(
    { fromDir: dir, stateFile, minSyncInterval: "0", resyncInterval: "30s", httpAddress: "" },
    { NODE_NAME: "n1" },
  );
  const health = new HealthMonitor({ onChange: (change) => agent.backendHealthChanged(change) });
  const agent: Agent = new Agent(config, {
    kernel,
    source: new DirectorySource({ path: dir, nodeName: "n1", debounceMs: 20, rereadMs: 0 }),
    bootId: "boot",
    logger: createRootLogger({ level: "silent" }),
    health,
    ...deps,
  });
  await agent.start();
  return {
    agent,
    stop: async () => {
      health.stop();
      await agent.stop();
    },
  };
}
