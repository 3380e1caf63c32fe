/**
 * An agent for the control-plane tests: the real Agent, sources and status writer against a real API
 * server, a fake kernel (the table is kept; close() does nothing, so the test can read it after stop),
 * short intervals (min sync 100 ms, resync 2 s unless given), silent logs, a fresh journal.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { Agent, type AgentSyncReport } from "../../src/agent/agent.ts";
import { resolveAgentConfig } from "../../src/agent/config.ts";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { readKernelTable } from "../../src/kernel/read-kernel-table.ts";
import { KubernetesEventRecorder } from "../../src/kube/event-recorder.ts";
import { IpvsNodeStatusWriter } from "../../src/kube/ipvs-node-writer.ts";
import { KubernetesSource } from "../../src/kube/kubernetes-source.ts";
import { renderIpvsadmSave } from "../../src/model/ipvsadm-render.ts";
import { createRootLogger, type Logger } from "../../src/observability/logger.ts";

export interface TestAgent {
  agent: Agent;
  kernel: FakeIpvsKernel;
  writer: IpvsNodeStatusWriter;
  /** Every sync's report, in order. */
  reports: AgentSyncReport[];
  /** The fake kernel's table as `ipvsadm -Sn` text. */
  table(): Promise<string>;
}

export function testAgent(options: {
  kubeConfig: KubeConfig;
  node: string;
  kernel?: FakeIpvsKernel;
  stateFile?: string;
  resyncInterval?: string;
  /** Record Events too (events.k8s.io/v1). */
  events?: boolean;
  maxBackoffMs?: number;
  /** --address-policy Enforce: watch IPVSAddressPolicy objects and refuse what they do not allow. */
  addressPolicy?: boolean;
  /** The agent's log (default: silent). */
  logger?: Logger;
}): TestAgent {
  const { kubeConfig, node } = options;
  const kernel = options.kernel ?? new FakeIpvsKernel();
  kernel.close = async () => {};
  const config = resolveAgentConfig(
    {
      stateFile: options.stateFile ?? join(mkdtempSync(join(tmpdir(), "agent-")), "journal.json"),
      minSyncInterval: "100ms",
      resyncInterval: options.resyncInterval ?? "2s",
      httpAddress: "",
      ...(options.addressPolicy ? { addressPolicy: "Enforce" } : {}),
    },
    { NODE_NAME: node },
  );
  const writer = new IpvsNodeStatusWriter({ kubeConfig, nodeName: node });
  const reports: AgentSyncReport[] = [];
  const agent = new Agent(config, {
    kernel,
    source: new KubernetesSource({
      kubeConfig,
      nodeName: node,
      backoffMs: 200,
      ...(options.addressPolicy ? { addressPolicies: true } : {}),
      ...(options.maxBackoffMs === undefined ? {} : { maxBackoffMs: options.maxBackoffMs }),
    }),
    bootId: "boot",
    logger: options.logger ?? createRootLogger({ level: "silent" }),
    statusWriter: writer,
    onSync: (report) => {
      reports.push(report);
    },
    ...(options.events ? { events: new KubernetesEventRecorder({ kubeConfig, nodeName: node }) } : {}),
  });
  return { agent, kernel, writer, reports, table: () => readKernelTable(kernel).then(renderIpvsadmSave) };
}
