/**
 * Shared option handling of the CLI commands (node:util parseArgs; no framework needed).
 */
import { hostname } from "node:os";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { CliError } from "./cli-error.ts";

export function parseOptions<T extends NonNullable<ParseArgsConfig["options"]>>(
  command: string,
  args: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({
      args,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals,
      strict: true,
    });
  } catch (error) {
    throw new CliError(`${command}: ${(error as Error).message}`);
  }
}

/** "a=b,c=d" -> {a: "b", c: "d"}; repeated flags are merged. */
export function parseLabels(values: readonly string[] | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const value of values ?? []) {
    for (const pair of value.split(",")) {
      if (pair.trim() === "") continue;
      const eq = pair.indexOf("=");
      if (eq <= 0) throw new CliError(`--node-labels: "${pair}" is not key=value`);
      labels[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
    }
  }
  return labels;
}

/** The node this run plans for: --node, else NODE_NAME, else the host name. */
export function nodeName(flag: string | undefined): string {
  return flag ?? process.env.NODE_NAME ?? hostname();
}

/**
 * The node's labels: those of a Node object of that name in the manifests, overlaid by --node-labels.
 */
export function nodeLabels(name: string, nodes: readonly unknown[], flagLabels: Record<string, string>) {
  const node = nodes.find((n) => (n as { metadata?: { name?: unknown } }).metadata?.name === name) as
    | { metadata?: { labels?: Record<string, string> } }
    | undefined;
  return { ...(node?.metadata?.labels ?? {}), ...flagLabels };
}
