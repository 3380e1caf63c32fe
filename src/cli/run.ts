/**
 * ipvs-operator: the one program (command dispatch; the entry point is main.ts). `plan`, `import`,
 * `apply`, `explain`, `flush` and `gen-crds` run from the shell; `agent` is the long-running node agent.
 */
import { agentCommand } from "./agent-command.ts";
import { applyCommand } from "./apply-command.ts";
import { CliError } from "./cli-error.ts";
import { explainCommand } from "./explain-command.ts";
import { flushCommand } from "./flush-command.ts";
import { genCrdsCommand } from "./gen-crds-command.ts";
import { importCommand } from "./import-command.ts";
import { planCommand } from "./plan-command.ts";

const USAGE = `Usage: ipvs-operator <command> [options]

Commands:
  plan -f PATH...      print the IPVS table a node should have (no kernel needed)
       [--node NAME] [--node-labels k=v,...] [--output ipvsadm|json|yaml]
  apply -f PATH...     reconcile this machine's IPVS table with the manifests, once
       [--node NAME] [--node-labels k=v,...] [--state-file PATH] [--managed-cidr CIDR]...
       [--managed-fwmarks FROM-TO]... [--dry-run] [--output text|json] [--log-level LEVEL]
  explain TARGET -f PATH...  say why a VIP, service key or real server is in the node's table or not
       [--node NAME] [--node-labels k=v,...] [--state-file PATH] [--managed-cidr CIDR]...
       [--managed-fwmarks FROM-TO]... [--health healthy|initial]
  agent                keep this node's IPVS table in line, until SIGTERM (in a cluster: informers;
       [--from-dir DIR]  standalone: a watched directory of manifests); see 'agent --help'
  import [FILE|-]      turn ipvsadm output (-Sn, -S, -R scripts, -Ln, -L), keepalived.conf or ldirectord.cf
                       (--from FORMAT) into VirtualService and RealServer YAML
       [--namespace NS] [--name-prefix PREFIX]
  flush --owned        delete the services this tool owns (never others), draining first
       [--state-file PATH] [--managed-cidr CIDR]... [--no-drain] [--dry-run]
  gen-crds             write the CustomResourceDefinitions generated from the API schemas
       [--out DIR]
  version, --version   print the version

PATH is a file or a directory of YAML/JSON manifests (multi-document, searched recursively).
Run 'ipvs-operator <command> --help' for details.
`;

type Command = (args: string[]) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  plan: planCommand,
  apply: applyCommand,
  agent: agentCommand,
  explain: (args) => explainCommand(args),
  import: importCommand,
  "gen-crds": genCrdsCommand,
  flush: flushCommand,
  version: async () => {
    const { default: pkg } = await import("../../package.json", { with: { type: "json" } });
    process.stdout.write(`ipvs-operator ${pkg.version}\n`);
    return 0;
  },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    (name === undefined ? process.stderr : process.stdout).write(USAGE);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name === "--version" ? "version" : name];
  if (!command) {
    process.stderr.write(`error: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  try {
    return await command(rest);
  } catch (error) {
    if (error instanceof CliError) {
      process.stderr.write(`error: ${error.message}\n`);
      return error.exitCode;
    }
    process.stderr.write(
      `error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 1;
  }
}
