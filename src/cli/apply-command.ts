/**
 * `ipvs-operator apply -f PATH...`: one standalone reconcile of this machine's IPVS table with the
 * manifests, through the same engine as the agent (computeDesired -> diff -> batched netlink).
 *
 * Exit status: 0 the kernel now matches the plan (draining destinations may still be waiting);
 * 1 some operations failed (each reported, the rest applied); 3 some objects were invalid (the rest
 * applied); 4 IPVS is not available on this machine.
 */
import { IpvsDecodeError } from "../kernel/errors.ts";
import type { IpvsKernel } from "../kernel/ipvs-kernel.ts";
import { NetlinkIpvsKernel } from "../kernel/netlink-kernel.ts";
import type { DesiredTable } from "../model/desired-table.ts";
import type { DriftItem } from "../model/diff.ts";
import { lastGoodHolds } from "../model/last-good.ts";
import { type FwmarkRange, ownershipScopeProblems, parseFwmarkRange } from "../model/ownership.ts";
import { createRootLogger } from "../observability/logger.ts";
import { readBootId } from "../reconcile/boot-id.ts";
import { FileNodeLock } from "../reconcile/node-lock.ts";
import { FileJournalStore, JournalFormatError } from "../reconcile/ownership-journal.ts";
import { Reconciler, type SyncError, type SyncResult } from "../reconcile/reconciler.ts";
import { DEFAULT_STATE_FILE, statePath } from "../reconcile/state-file.ts";
import { CliError } from "./cli-error.ts";
import { desiredFromFiles, parseHealthAssumption, reportInputIssues } from "./desired-from-files.ts";
import { nodeName, parseLabels, parseOptions } from "./options.ts";

const HELP = `Usage: ipvs-operator apply -f PATH... [options]

Reconciles this machine's IPVS table with the manifests once, and reports what changed and what had
drifted. Only entries this tool owns are touched: those it created (recorded in the state file)
and those inside --managed-cidr or --managed-fwmarks. A desired service whose key is already held
by a kernel entry it does not own is reported and left alone (adopt it with --managed-cidr).
Nothing is ever flushed; removed real servers are drained (weight 0) before they are deleted.
  -f, --filename PATH      manifests (repeatable): files or directories
  --node NAME              node to plan for (default: $NODE_NAME, else the host name)
  --node-labels k=v,...    node labels for nodeSelector
  --state-file PATH        ownership journal (default: $IPVS_OPERATOR_STATE_FILE or ${DEFAULT_STATE_FILE})
  --managed-cidr CIDR      services with an address inside are owned (repeatable)
  --managed-fwmarks A-B    fwmark services in this range are owned (repeatable)
  --dry-run                print the plan against the live kernel, change nothing
  --delete-despite-errors  when a manifest cannot be read, still delete and drain what it no longer
                           lists (default: nothing is removed then; additions and updates still apply)
  --lock-timeout SECONDS   how long to wait for another writer on this node (agent, apply) (default 30)
  --health healthy|initial backends with a healthCheck count as healthy (default: apply runs no probes)
                           or as their check's initialState
  -o, --output text|json   report format (default text)
  --log-level LEVEL        pino level for the JSON log on stderr (default warn)
Exit status: 0 in sync; 1 operations failed; 3 invalid objects or unreadable manifests (rest
applied); 4 IPVS unavailable.
`;

/** The dependencies of every command that syncs a kernel (tests pass a fake kernel and clock). */
export interface SyncCommandDependencies {
  makeKernel: () => IpvsKernel;
  now: () => number;
  bootId: () => Promise<string>;
}

/** The real kernel, clock and boot id. */
export const defaultDependencies: SyncCommandDependencies = {
  makeKernel: () => new NetlinkIpvsKernel(),
  now: () => Date.now(),
  bootId: () => readBootId(),
};

export async function applyCommand(
  args: string[],
  deps: SyncCommandDependencies = defaultDependencies,
): Promise<number> {
  const { values } = parseOptions("apply", args, {
    filename: { type: "string", short: "f", multiple: true },
    node: { type: "string" },
    "node-labels": { type: "string", multiple: true },
    "state-file": { type: "string" },
    "managed-cidr": { type: "string", multiple: true },
    "managed-fwmarks": { type: "string", multiple: true },
    "dry-run": { type: "boolean" },
    output: { type: "string", short: "o", default: "text" },
    "log-level": { type: "string", default: "warn" },
    health: { type: "string", default: "healthy" },
    "delete-despite-errors": { type: "boolean" },
    "lock-timeout": { type: "string", default: "30" },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const input = await desiredFromFiles(
    values.filename ?? [],
    nodeName(values.node),
    parseLabels(values["node-labels"]),
    parseHealthAssumption(values.health),
  );
  const invalid = lastGoodHolds(input.problems, input.snapshot.realServers);
  return runSync(
    {
      desired: input.table,
      inputIssues: reportInputIssues(input),
      ...(input.errors.length > 0 && !values["delete-despite-errors"]
        ? { partialInput: `${input.errors.length} manifest files or documents could not be read` }
        : {}),
      invalidVirtualServices: invalid.invalidVirtualServices,
      holdRemovalsFor: invalid.holdRemovalsFor,
      lockTimeoutSeconds: parseSeconds("--lock-timeout", values["lock-timeout"]),
      nodeName: input.node.name,
      statePath: statePath(values["state-file"]),
      managedCidrs: values["managed-cidr"] ?? [],
      managedFwmarks: values["managed-fwmarks"] ?? [],
      dryRun: values["dry-run"] ?? false,
      output: values.output ?? "text",
      logLevel: values["log-level"] ?? "warn",
    },
    deps,
  );
}

/** What `apply` and `flush --owned` hand to runSync once their own inputs are read. */
export interface SyncRequest {
  desired: DesiredTable;
  /** Invalid objects and unreadable files already reported (exit 3 when no operation failed). */
  inputIssues: number;
  nodeName: string;
  statePath: string;
  managedCidrs: string[];
  /** "A-B" or "A" ranges as given on the command line. */
  managedFwmarks: string[];
  dryRun: boolean;
  output: string;
  logLevel?: string;
  /** For services no longer desired; undefined = diff's default. */
  drainTimeoutSeconds?: number | undefined;
  /** The input was read only in part: nothing is removed (see Reconciler). */
  partialInput?: string;
  invalidVirtualServices?: ReadonlyMap<string, string>;
  holdRemovalsFor?: ReadonlyMap<string, string>;
  /** Recorded drains are forgotten: everything goes at once (flush --no-drain). */
  forgetDrains?: boolean;
  /** How long to wait for the node lock (default 30 s). */
  lockTimeoutSeconds?: number;
}

/** One sync of the kernel against `desired`, the report on stdout, and the exit status. */
export async function runSync(request: SyncRequest, deps: SyncCommandDependencies): Promise<number> {
  if (request.output !== "text" && request.output !== "json") {
    throw new CliError(`--output must be text or json, not "${request.output}"`);
  }
  const scope = {
    managedCidrs: request.managedCidrs,
    managedFwmarks: request.managedFwmarks.map(parseFwmarkFlag),
  };
  const scopeProblems = ownershipScopeProblems({ ...scope, journal: [] });
  if (scopeProblems.length > 0) throw new CliError(scopeProblems.join("; "));
  const logger = createRootLogger({ level: (request.logLevel ?? "warn") as "warn" }).child({
    component: "sync",
  });
  const { statePath } = request;
  const kernel = deps.makeKernel();
  let report: SyncResult;
  const started = performance.now();
  try {
    const reconciler = new Reconciler({
      kernel,
      journal: new FileJournalStore(statePath),
      lock: new FileNodeLock(statePath, {
        holder: `ipvs-operator ${request.nodeName ? "apply" : "flush"}`,
        waitMs: (request.lockTimeoutSeconds ?? 30) * 1000,
      }),
      scope,
      bootId: await deps.bootId(),
      logger,
    });
    report = await reconciler.sync({
      desired: request.desired,
      now: deps.now(),
      dryRun: request.dryRun,
      ...(request.drainTimeoutSeconds === undefined
        ? {}
        : { defaultDrainTimeoutSeconds: request.drainTimeoutSeconds }),
      ...(request.partialInput === undefined ? {} : { partialInput: request.partialInput }),
      ...(request.invalidVirtualServices ? { invalidVirtualServices: request.invalidVirtualServices } : {}),
      ...(request.holdRemovalsFor ? { holdRemovalsFor: request.holdRemovalsFor } : {}),
      forgetDrains: request.forgetDrains ?? false,
    });
  } finally {
    await kernel.close();
  }
  for (const note of report.notes) process.stderr.write(`note: ${note}\n`);
  // Transport and late journal errors come with a report; the others stop the sync before any change.
  const fatal = report.snapshot === undefined ? report.errors[0] : undefined;
  if (fatal) {
    if (fatal.kind === "Unavailable") {
      process.stderr.write(`error: ${fatal.message}\n`);
      return 4;
    }
    throw new CliError(fatalMessage(fatal, statePath), 1);
  }
  for (const error of report.errors) process.stderr.write(`error: ${error.message}\n`);
  const milliseconds = Math.round(performance.now() - started);
  logger.info(
    { node: request.nodeName, operations: report.outcomes.length, failed: report.failed, milliseconds },
    "sync done",
  );
  if (request.output === "json") {
    const document = {
      node: request.nodeName,
      milliseconds,
      ok: report.ok,
      draining: report.draining,
      operations: report.outcomes.map(({ description, result, reason }) => ({ description, result, reason })),
      drift: report.drift,
      errors: report.errors.map(({ kind, message }) => ({ kind, message })),
    };
    process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  } else {
    process.stdout.write(formatReport(report, request.dryRun, milliseconds));
  }
  if (!report.ok) return 1;
  return request.inputIssues > 0 ? 3 : 0;
}

export function formatDrift(item: DriftItem): string {
  const where = item.destination ? `${item.service} -> ${item.destination}` : item.service;
  const change = item.field ? ` ${item.field}: expected ${item.expected}, found ${item.actual}` : "";
  return `${item.kind} ${where}${change} (${item.action})${item.message ? `: ${item.message}` : ""}`;
}

export function formatReport(report: SyncResult, dryRun: boolean, milliseconds: number): string {
  const lines: string[] = [];
  for (const item of report.drift) lines.push(`drift: ${formatDrift(item)}`);
  for (const o of report.outcomes)
    lines.push(`${o.result}: ${o.description}${o.reason ? `: ${o.reason}` : ""}`);
  const count = (r: string) => report.outcomes.filter((o) => o.result === r).length;
  const summary = dryRun
    ? `${count("planned")} operations planned (dry run, nothing changed)`
    : `${count("applied")} operations applied, ${count("failed")} failed, ${count("skipped")} skipped` +
      (count("unknown") > 0 ? `, ${count("unknown")} unknown (acknowledgement lost)` : "");
  const state = dryRun
    ? ""
    : report.ok
      ? report.draining > 0
        ? `; ${report.draining} destinations draining`
        : "; the kernel matches the plan"
      : "; the kernel does NOT match the plan";
  lines.push(`${summary}${state} (${milliseconds} ms)`);
  return `${lines.join("\n")}\n`;
}

function parseFwmarkFlag(text: string): FwmarkRange {
  const range = parseFwmarkRange(text);
  if (!range) throw new CliError(`--managed-fwmarks "${text}" is not a number or a FROM-TO range`);
  return range;
}

function parseSeconds(flag: string, text: string | undefined): number {
  const value = Number(text);
  if (text === undefined || !Number.isFinite(value) || value < 0) {
    throw new CliError(`${flag} must be a number of seconds, not "${text}"`);
  }
  return value;
}

const STATE_FILE_ERRNOS = ["EACCES", "EROFS", "ENOTDIR", "EISDIR", "EPERM", "ENOENT"];

function fatalMessage(error: SyncError, statePath: string): string {
  const code = (error.cause as NodeJS.ErrnoException | undefined)?.code;
  if ((error.kind === "Journal" || error.kind === "Lock") && STATE_FILE_ERRNOS.includes(code ?? "")) {
    return `cannot use the state file ${statePath}: ${code} (see --state-file)`;
  }
  if (error.cause instanceof JournalFormatError) {
    return (
      `the state file is not usable: ${error.cause.message}. Move it away to start a new journal ` +
      "(the services it recorded are then left in place as Foreign, never deleted)."
    );
  }
  if (error.cause instanceof IpvsDecodeError) {
    return `the kernel sent a reply this version cannot decode: ${error.cause.message}`;
  }
  return error.message;
}
