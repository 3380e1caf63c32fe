/**
 * `ipvs-operator explain TARGET -f PATH...` (or from the cluster, `--kubeconfig`): why a VIP, a service
 * key or a real server address is in, or not in, a node's desired table (the reasoning is
 * src/model/explain.ts; this file reads the inputs as plan does, or lists them from the API server as
 * the agent does, plus the ownership journal and scope as apply takes them).
 * Exit status: 0 the target is in the table; 1 it is not; 2 usage errors.
 */
import { explain, formatExplanation, parseTarget } from "../model/explain.ts";
import { type FwmarkRange, ownershipScopeProblems, parseFwmarkRange } from "../model/ownership.ts";
import { readBootId } from "../reconcile/boot-id.ts";
import { FileJournalStore, type Journal } from "../reconcile/ownership-journal.ts";
import { CliError } from "./cli-error.ts";
import { type DesiredFromFiles, desiredFromFiles, parseHealthAssumption } from "./desired-from-files.ts";
import { nodeName, parseLabels, parseOptions } from "./options.ts";

const HELP = `Usage: ipvs-operator explain TARGET (-f PATH... | --kubeconfig PATH | --cluster)
                             [--node NAME] [--node-labels k=v,...]
                             [--state-file PATH] [--managed-cidr CIDR]... [--managed-fwmarks A-B]...
                             [--health healthy|initial]

Says which objects and rules put TARGET into this node's table, or keep it out. TARGET is
  a VIP or real server address     192.0.2.10, 2001:db8::10, 198.51.100.5:8080, [2001:db8::5]:8080
  a service key                    "TCP 192.0.2.10:80" or tcp/192.0.2.10:80, udp/..., sctp/...
  a firewall-mark service          "FWM 7", "FWM 7 IPv6" or fwmark/7
  -f, --filename PATH      manifests (repeatable): files or directories, as for plan
  --kubeconfig PATH        read the objects and the node's labels from the cluster instead, as the
                           agent does (lists every VirtualService, RealServer, Service, EndpointSlice)
  --cluster                the same with the default config ($KUBECONFIG, in-cluster, ~/.kube/config)
  --node NAME              node to explain for (default: $NODE_NAME, else the host name)
  --node-labels k=v,...    node labels for nodeSelector (also taken from a Node object in the manifests)
  --state-file PATH        ownership journal to consult for ownership and drains (not read when omitted)
  --managed-cidr CIDR      services with an address inside are owned (repeatable), as for apply
  --managed-fwmarks A-B    fwmark services in this range are owned (repeatable), as for apply
  --health healthy|initial backends with a healthCheck count as healthy (default) or as their initialState
Exit status: 0 TARGET is in the table; 1 it is not; 2 usage errors.
`;

/** The clock and the boot id (tests pass their own). */
export interface ExplainDependencies {
  now: () => number;
  bootId: () => Promise<string>;
  /** How long listing the cluster may take (default 30 s). */
  clusterTimeoutMs?: number;
}

const defaults: ExplainDependencies = { now: () => Date.now(), bootId: () => readBootId() };

export async function explainCommand(args: string[], deps: ExplainDependencies = defaults): Promise<number> {
  const { values, positionals } = parseOptions(
    "explain",
    args,
    {
      filename: { type: "string", short: "f", multiple: true },
      kubeconfig: { type: "string" },
      cluster: { type: "boolean" },
      node: { type: "string" },
      "node-labels": { type: "string", multiple: true },
      health: { type: "string", default: "healthy" },
      // The ownership inputs of apply.
      "state-file": { type: "string" },
      "managed-cidr": { type: "string", multiple: true },
      "managed-fwmarks": { type: "string", multiple: true },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new CliError(
      `explain: give one TARGET (an address, a service key or FWM N), not ${positionals.length}`,
    );
  }
  const target = parseTarget(positionals[0] ?? "");
  if (typeof target === "string") throw new CliError(`explain: ${target}`);
  const managedCidrs = values["managed-cidr"] ?? [];
  const managedFwmarks = (values["managed-fwmarks"] ?? []).map(parseFwmarks);
  const scopeProblems = ownershipScopeProblems({ managedCidrs, managedFwmarks, journal: [] });
  if (scopeProblems.length > 0) throw new CliError(`explain: ${scopeProblems.join("; ")}`);
  const health = parseHealthAssumption(values.health);
  const fromCluster = values.kubeconfig !== undefined || values.cluster === true;
  if (fromCluster && values.filename !== undefined)
    throw new CliError("explain: give manifests (-f) or a cluster (--kubeconfig, --cluster), not both");
  const input = fromCluster
    ? await objectsFromCluster(
        values.kubeconfig,
        nodeName(values.node),
        parseLabels(values["node-labels"]),
        deps.clusterTimeoutMs ?? 30_000,
      )
    : await desiredFromFiles(
        values.filename ?? [],
        nodeName(values.node),
        parseLabels(values["node-labels"]),
        health,
      );
  for (const error of input.errors) process.stderr.write(`error: ${error}\n`);
  let journal: Journal | undefined;
  let currentBootId: string | undefined;
  const statePath = values["state-file"];
  if (statePath !== undefined) {
    try {
      journal = await new FileJournalStore(statePath).load();
    } catch (error) {
      throw new CliError(`explain: cannot read the state file ${statePath}: ${(error as Error).message}`);
    }
    currentBootId = await deps.bootId().catch(() => undefined);
  }
  const explanation = explain(target, {
    snapshot: input.snapshot,
    node: input.node,
    health,
    managedCidrs,
    managedFwmarks,
    journal,
    currentBootId,
    now: deps.now(),
  });
  process.stdout.write(formatExplanation(explanation));
  return explanation.inTable ? 0 : 1;
}

function parseFwmarks(text: string): FwmarkRange {
  const range = parseFwmarkRange(text);
  if (!range) throw new CliError(`explain: --managed-fwmarks "${text}" is not a number or a FROM-TO range`);
  return range;
}

/**
 * The objects and this node's labels from the API server, through the agent's own source (paged lists
 * of the same kinds); labels given with --node-labels are added to the Node's.
 */
async function objectsFromCluster(
  kubeconfig: string | undefined,
  name: string,
  flagLabels: Record<string, string>,
  timeoutMs: number,
): Promise<Pick<DesiredFromFiles, "snapshot" | "node" | "errors">> {
  const { KubernetesSource, loadKubeConfig } = await import("../kube/kubernetes-source.ts");
  let kubeConfig: ReturnType<typeof loadKubeConfig>;
  try {
    kubeConfig = loadKubeConfig(kubeconfig);
  } catch (error) {
    throw new CliError(`explain: cannot load the kubeconfig: ${(error as Error).message}`);
  }
  const source = new KubernetesSource({ kubeConfig, nodeName: name, maxBackoffMs: 2000 });
  let timer: NodeJS.Timeout | undefined;
  try {
    const listed = await Promise.race([
      source.start().then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    if (!listed)
      throw new CliError(
        `explain: the cluster's objects could not be listed within ${Math.round(timeoutMs / 1000)} s (${kubeConfig.getCurrentCluster()?.server ?? "no server"})`,
      );
    const state = source.current();
    return {
      snapshot: state.snapshot,
      node: { name, labels: { ...state.node.labels, ...flagLabels } },
      errors: state.incomplete,
    };
  } finally {
    clearTimeout(timer);
    await source.stop();
  }
}
