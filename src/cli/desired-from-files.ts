/**
 * The standalone front half of the engine: manifests -> snapshot -> computeDesired for one node.
 * Shared by `plan` and `apply` so both plan exactly the same table.
 */
import { isDeepStrictEqual } from "node:util";
import { loadManifests } from "../files/manifest-source.ts";
import { computeDesired, computeDesiredAssumingHealthy } from "../model/desired.ts";
import type { DesiredTable } from "../model/desired-table.ts";
import { formatProblem, type Problem } from "../model/problems.ts";
import type { Snapshot } from "../model/snapshot.ts";
import { CliError } from "./cli-error.ts";
import { nodeLabels } from "./options.ts";

export interface DesiredFromFiles {
  node: { name: string; labels: Record<string, string> };
  table: DesiredTable;
  problems: Problem[];
  /** Unknown kinds that were skipped. */
  notes: string[];
  /** Files or documents that could not be read. */
  errors: string[];
  /** The objects read (keep-last-good looks up the VirtualService of an invalid RealServer). */
  snapshot: Snapshot;
}

/**
 * How backends with a healthCheck count, since plan and apply run no probers:
 * "healthy": as passing their checks (the default: a standalone table must not stay quiesced forever);
 * "initial": in their check's initialState, as the agent programs them before the first probe result.
 */
export type HealthAssumption = "healthy" | "initial";

export async function desiredFromFiles(
  paths: readonly string[],
  name: string,
  flagLabels: Record<string, string>,
  health: HealthAssumption = "healthy",
): Promise<DesiredFromFiles> {
  if (paths.length === 0) throw new CliError("no manifests given: use -f PATH (a file or a directory)");
  const load = await loadManifests(paths);
  const node = { name, labels: nodeLabels(name, load.objects.nodes, flagLabels) };
  // Kubernetes core objects are read defensively by computeDesired; the manifest source only sorted them.
  // plan / apply / explain run as the node's admin from files: no address policy (IPVSAddressPolicy
  // documents are loaded but not enforced, nor are Namespace labels read; the agent enforces them with
  // --address-policy Enforce).
  const { addressPolicies: _notEnforced, namespaces: _noSelectors, ...objects } = load.objects;
  const snapshot = objects as Snapshot;
  const notes = [...load.notes];
  const { result, initial } =
    health === "healthy"
      ? computeDesiredAssumingHealthy(snapshot, node)
      : { result: computeDesired(snapshot, node), initial: undefined };
  // Both tables are plain data from one snapshot (same key order, no undefined fields), so deep
  // equality is JSON equality without serializing tens of megabytes twice.
  if (initial && initial !== result && !isDeepStrictEqual(result.table, initial.table)) {
    notes.push(
      "health checks are not run by plan/apply: backends with a healthCheck are taken as healthy " +
        "(--health initial plans them in their initialState instead)",
    );
  }
  return { node, table: result.table, problems: result.problems, notes, errors: load.errors, snapshot };
}

export function parseHealthAssumption(value: string | undefined): HealthAssumption {
  if (value === undefined || value === "healthy" || value === "initial") return value ?? "healthy";
  throw new CliError(`--health must be healthy or initial, not "${value}"`);
}

/** Writes notes, read errors and problems to stderr; returns how many were errors or problems. */
export function reportInputIssues(result: DesiredFromFiles, quietNotes = false): number {
  if (!quietNotes) for (const note of result.notes) process.stderr.write(`note: ${note}\n`);
  for (const error of result.errors) process.stderr.write(`error: ${error}\n`);
  for (const problem of result.problems)
    process.stderr.write(`problem: ${problem.kind}: ${formatProblem(problem)}\n`);
  return result.errors.length + result.problems.length;
}
