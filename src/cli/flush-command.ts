/**
 * `ipvs-operator flush --owned`: remove every IPVS service this tool owns (journal, --managed-cidr,
 * --managed-fwmarks) and nothing else. Foreign services stay. Destinations with connections drain
 * first (weight 0; run again to finish) unless --no-drain. There is deliberately no "flush all".
 */
import { statePath } from "../reconcile/state-file.ts";
import { defaultDependencies, runSync, type SyncCommandDependencies } from "./apply-command.ts";
import { CliError } from "./cli-error.ts";
import { parseOptions } from "./options.ts";

const HELP = `Usage: ipvs-operator flush --owned [--state-file PATH] [--managed-cidr CIDR]... [--managed-fwmarks A-B]...
                            [--no-drain] [--dry-run] [-o text|json]

Deletes the IPVS services this tool owns (recorded in the state file, or inside the managed ranges).
Services it does not own are never touched. Destinations that still have connections are drained
(weight 0) and deleted by a later run, unless --no-drain deletes them at once.
Exit status: 0 done (or draining); 1 operations failed; 4 IPVS unavailable.
`;

export async function flushCommand(
  args: string[],
  deps: SyncCommandDependencies = defaultDependencies,
): Promise<number> {
  const { values } = parseOptions("flush", args, {
    owned: { type: "boolean" },
    "state-file": { type: "string" },
    "managed-cidr": { type: "string", multiple: true },
    "managed-fwmarks": { type: "string", multiple: true },
    "no-drain": { type: "boolean" },
    "dry-run": { type: "boolean" },
    output: { type: "string", short: "o", default: "text" },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (!values.owned) {
    throw new CliError("flush: only --owned is supported: this tool never deletes entries it does not own");
  }
  return runSync(
    {
      desired: [],
      inputIssues: 0,
      nodeName: "",
      statePath: statePath(values["state-file"]),
      managedCidrs: values["managed-cidr"] ?? [],
      managedFwmarks: values["managed-fwmarks"] ?? [],
      dryRun: values["dry-run"] ?? false,
      output: values.output ?? "text",
      drainTimeoutSeconds: values["no-drain"] ? 0 : undefined,
      forgetDrains: values["no-drain"] ?? false,
    },
    deps,
  );
}
