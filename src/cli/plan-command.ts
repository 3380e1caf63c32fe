/**
 * `ipvs-operator plan -f PATH...`: the node's desired table, without touching any kernel.
 * --output ipvsadm (default) prints exactly what `ipvsadm -Sn` shows once the table is applied to an
 * empty kernel, so it can be diffed against a live machine.
 * Exit status: 0, or 3 when some objects were invalid or in conflict (the rest is still printed).
 */
import { stringify } from "yaml";
import type { DesiredTable } from "../model/desired-table.ts";
import { renderIpvsadmSave } from "../model/ipvsadm-render.ts";
import { formatProblem } from "../model/problems.ts";
import { CliError } from "./cli-error.ts";
import { desiredFromFiles, parseHealthAssumption, reportInputIssues } from "./desired-from-files.ts";
import { nodeName, parseLabels, parseOptions } from "./options.ts";

const HELP = `Usage: ipvs-operator plan -f PATH... [--node NAME] [--node-labels k=v,...] [--output ipvsadm|json|yaml]
                          [--health healthy|initial]

Prints the IPVS table the node should have. PATH: files or directories of manifests.
  -f, --filename PATH   manifests (repeatable)
  --node NAME           node to plan for (default: $NODE_NAME, else the host name)
  --node-labels k=v,..  node labels for nodeSelector (also taken from a Node object in the manifests)
  -o, --output FORMAT   ipvsadm (as 'ipvsadm -Sn' prints it), json or yaml
  --health healthy|initial  backends with a healthCheck count as healthy (default; no probes run here)
                        or as their check's initialState (what the agent programs before the first probe)
Exit status: 0; 3 when some objects are invalid or in conflict (reported on stderr, the rest planned).
`;

export async function planCommand(args: string[]): Promise<number> {
  const { values } = parseOptions("plan", args, {
    filename: { type: "string", short: "f", multiple: true },
    node: { type: "string" },
    "node-labels": { type: "string", multiple: true },
    output: { type: "string", short: "o", default: "ipvsadm" },
    health: { type: "string", default: "healthy" },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const output = values.output ?? "ipvsadm";
  if (!["ipvsadm", "json", "yaml"].includes(output)) {
    throw new CliError(`plan: --output must be ipvsadm, json or yaml, not "${output}"`);
  }
  const result = await desiredFromFiles(
    values.filename ?? [],
    nodeName(values.node),
    parseLabels(values["node-labels"]),
    parseHealthAssumption(values.health),
  );
  const issues = reportInputIssues(result);
  if (output === "ipvsadm") {
    process.stdout.write(renderIpvsadmSave(result.table));
  } else {
    const document = {
      node: result.node,
      services: tableDocument(result.table),
      problems: result.problems.map(formatProblem),
    };
    process.stdout.write(output === "json" ? `${JSON.stringify(document, null, 2)}\n` : stringify(document));
  }
  return issues > 0 ? 3 : 0;
}

/** The desired table as plain data for JSON/YAML output. */
export function tableDocument(table: DesiredTable) {
  return table.map((entry) => ({ ...entry.service, destinations: entry.destinations }));
}
