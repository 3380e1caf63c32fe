import { readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * The NODE_FLAGS line of bin/ipvs-operator: the one place the agent's V8 flags are written
 * (docs/decisions/0007-agent-v8-flags.md), as a list of arguments.
 */
export function launcherNodeFlags(): string[] {
  const launcher = readFileSync(join(import.meta.dirname, "../bin/ipvs-operator"), "utf8");
  const flags = /^NODE_FLAGS="([^"]*)"$/m.exec(launcher)?.[1];
  if (flags === undefined) throw new Error("bin/ipvs-operator has no NODE_FLAGS line");
  return flags.split(" ").filter(Boolean);
}
