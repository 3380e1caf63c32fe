/**
 * `ipvs-operator agent`: the long-running node agent (a DaemonSet in a cluster, or standalone with
 * --from-dir). Runs until SIGTERM/SIGINT, which leave the kernel table as it is.
 */
import { Agent } from "../agent/agent.ts";
import { AGENT_SETTINGS, AgentConfigError, resolveAgentConfig } from "../agent/config.ts";
import { DirectorySource } from "../files/directory-source.ts";
import { HealthMonitor } from "../health/index.ts";
import { NetlinkIpvsKernel } from "../kernel/netlink-kernel.ts";
import { KubernetesEventRecorder } from "../kube/event-recorder.ts";
import { IpvsNodeStatusWriter } from "../kube/ipvs-node-writer.ts";
import { KubernetesSource, loadKubeConfig } from "../kube/kubernetes-source.ts";
import { StatusAggregator } from "../kube/status-aggregator.ts";
import { IpvsTuner } from "../node-edge/ipvs-tuning.ts";
import { NetlinkRtLink } from "../node-edge/netlink-rt-link.ts";
import { ExecNft } from "../node-edge/nftables.ts";
import { NodeEdge } from "../node-edge/node-edge-report.ts";
import { TUNNEL_KINDS } from "../node-edge/rt-link.ts";
import { SnatManager } from "../node-edge/snat.ts";
import { SysctlAsserter } from "../node-edge/sysctl-asserter.ts";
import { ProcSysctlStore } from "../node-edge/sysctl-store.ts";
import { VipBinder } from "../node-edge/vip-binder.ts";
import { createRootLogger } from "../observability/logger.ts";
import { readBootId } from "../reconcile/boot-id.ts";
import { CliError } from "./cli-error.ts";
import { parseOptions } from "./options.ts";

const HELP = `Usage: ipvs-operator agent [options]

Keeps this node's IPVS table in line with the VirtualService and RealServer resources (or a directory
of manifests), touching only what it owns, draining before it deletes, never flushing.
Every option can also be set by its environment variable; flags win.
${Object.values(AGENT_SETTINGS)
  .map((s) => `  --${s.flag.padEnd(22)} ${s.env}\n      ${s.help}`)
  .join("\n")}
`;

export async function agentCommand(args: string[]): Promise<number> {
  const multiple = new Set(["managed-cidr", "managed-fwmarks", "probe-exec-allow", "sysctl", "sync-daemon"]);
  const options = Object.fromEntries(
    Object.values(AGENT_SETTINGS).map((s) => [
      s.flag,
      { type: "string" as const, multiple: multiple.has(s.flag) },
    ]),
  );
  const { values } = parseOptions("agent", args, options);
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const flags = Object.fromEntries(
    Object.entries(AGENT_SETTINGS).flatMap(([name, s]) => {
      const v = (values as Record<string, string | string[] | undefined>)[s.flag];
      return v === undefined ? [] : [[name, v]];
    }),
  );
  let config: ReturnType<typeof resolveAgentConfig>;
  try {
    config = resolveAgentConfig(flags, process.env);
  } catch (error) {
    if (error instanceof AgentConfigError) throw new CliError(error.message);
    throw error;
  }
  const root = createRootLogger({ level: config.logLevel, destination: 1 });
  const logger = root.child({ node: config.nodeName });
  const kube = config.source.kind === "kubernetes" ? loadKubeConfig(config.source.kubeconfig) : undefined;
  const sourceLogger = logger.child({ component: "source" });
  const source =
    config.source.kind === "directory"
      ? new DirectorySource({
          path: config.source.path,
          nodeName: config.nodeName,
          logger: sourceLogger,
          addressPolicies: config.addressPolicy === "Enforce",
        })
      : new KubernetesSource({
          kubeConfig: kube!,
          nodeName: config.nodeName,
          logger: sourceLogger,
          addressPolicies: config.addressPolicy === "Enforce",
        });
  const probes = config.probes;
  // Transitions come back to the agent, which is made next (they only start after it started).
  const health = new HealthMonitor({
    maxInFlight: probes.maxInFlight,
    maxProbesPerSecond: probes.maxPerSecond,
    sourceAddress: probes.sourceAddress,
    exec: { enabled: probes.execAllow.length > 0, allowedCommands: probes.execAllow },
    onChange: (change) => agent.backendHealthChanged(change),
  });
  const kernel = new NetlinkIpvsKernel();
  const edge = config.nodeEdge;
  const rtLink = edge.vipInterface === "" && !edge.drRealServer ? undefined : new NetlinkRtLink();
  const nodeEdge = new NodeEdge({
    ...(rtLink && edge.vipInterface !== ""
      ? { vip: new VipBinder(rtLink, { interfaceName: edge.vipInterface }) }
      : {}),
    ...(rtLink && edge.drRealServer
      ? {
          loopback: new VipBinder(rtLink, { interfaceName: "lo", existingLink: true }),
          tunnels: TUNNEL_KINDS.map((tunnel) => new VipBinder(rtLink, { tunnel })),
        }
      : {}),
    snat: new SnatManager(new ExecNft()),
    sysctls: new SysctlAsserter(new ProcSysctlStore()),
    tuner: new IpvsTuner(kernel),
  });
  const agent: Agent = new Agent(config, {
    health,
    nodeEdge,
    kernel,
    source,
    bootId: await readBootId(),
    logger: logger.child({ component: "agent" }),
    ...(kube
      ? {
          events: new KubernetesEventRecorder({
            kubeConfig: kube,
            nodeName: config.nodeName,
            logger: logger.child({ component: "events" }),
          }),
          statusWriter: new IpvsNodeStatusWriter({
            kubeConfig: kube,
            nodeName: config.nodeName,
            logger: logger.child({ component: "status" }),
          }),
        }
      : {}),
  });
  const aggregator =
    kube && config.aggregateStatus
      ? new StatusAggregator({
          kubeConfig: kube,
          identity: config.nodeName,
          leaseNamespace: config.leaseNamespace,
          logger: logger.child({ component: "aggregator" }),
        })
      : undefined;
  const stopped = new Promise<string>((resolve) => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => resolve(signal));
  });
  aggregator?.start();
  await Promise.race([agent.start(), stopped]);
  const signal = await stopped;
  logger.info({ signal }, "Stopping; the IPVS table is left as it is");
  await aggregator?.stop();
  health.stop();
  await agent.stop();
  await rtLink?.close();
  return 0;
}
