/**
 * `ipvs-operator apply -f PATH...`: one standalone reconcile of this machine's IPVS table with the
 * manifests, through the same engine as the agent (computeDesired -> diff -> batched netlink).
 *
 * Exit status: 0 the kernel now matches the plan (draining destinations may still be waiting);
 * 1 some operations failed (each reported, the rest applied); 3 some objects were invalid (the rest
 * applied); 4 IPVS is not available on this machine.
 */
import { IpvsDecodeError, IpvsError, IpvsUnavailableError } from "../kernel/errors.ts";
import type { IpvsKernel } from "../kernel/ipvs-kernel.ts";
import { NetlinkIpvsKernel } from "../kernel/netlink-kernel.ts";
import type { DesiredTable } from "../model/desired-table.ts";
import type { DriftItem } from "../model/diff.ts";
import { type FwmarkRange, ownershipScopeProblems } from "../model/ownership.ts";
import { createRootLogger } from "../observability/logger.ts";
import { FileJournalStore, JournalFormatError } from "../reconcile/ownership-journal.ts";
import { type SyncReport, syncOnce } from "../reconcile/sync-once.ts";
import { CliError } from "./cli-error.ts";
import { desiredFromFiles, parseHealthAssumption, reportInputIssues } from "./desired-from-files.ts";
import { nodeName, parseLabels, parseOptions } from "./options.ts";

export const DEFAULT_STATE_FILE = "/var/lib/ipvs-operator/journal.json";

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
  --health healthy|initial backends with a healthCheck count as healthy (default: apply runs no probes)
                           or as their check's initialState
  -o, --output text|json   report format (default text)
  --log-level LEVEL        pino level for the JSON log on stderr (default warn)
Exit status: 0 in sync; 1 operations failed; 3 invalid objects (rest applied); 4 IPVS unavailable.
`;

/** The dependencies of every command that syncs a kernel (tests pass a fake kernel and clock). */
export interface SyncCommandDependencies {
  makeKernel: () => IpvsKernel;
  now: () => number;
}

/** The real kernel and clock. */
export const defaultDependencies: SyncCommandDependencies = {
  makeKernel: () => new NetlinkIpvsKernel(),
  now: () => Date.now(),
};

/** --state-file, else $IPVS_OPERATOR_STATE_FILE, else DEFAULT_STATE_FILE. */
export function statePath(flag: string | undefined): string {
  return flag ?? process.env.IPVS_OPERATOR_STATE_FILE ?? DEFAULT_STATE_FILE;
}

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
  return runSync(
    {
      desired: input.table,
      inputIssues: reportInputIssues(input),
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
}

/** One sync of the kernel against `desired`, the report on stdout, and the exit status. */
export async function runSync(request: SyncRequest, deps: SyncCommandDependencies): Promise<number> {
  if (request.output !== "text" && request.output !== "json") {
    throw new CliError(`--output must be text or json, not "${request.output}"`);
  }
  const scope = {
    managedCidrs: request.managedCidrs,
    managedFwmarks: request.managedFwmarks.map(parseFwmarkRange),
  };
  const scopeProblems = ownershipScopeProblems({ ...scope, journal: [] });
  if (scopeProblems.length > 0) throw new CliError(scopeProblems.join("; "));
  const logger = createRootLogger({ level: (request.logLevel ?? "warn") as "warn" }).child({
    component: "sync",
  });
  const { statePath } = request;
  const kernel = deps.makeKernel();
  let report: SyncReport;
  const started = performance.now();
  try {
    report = await syncOnce(request.desired, {
      kernel,
      journal: new FileJournalStore(statePath),
      scope,
      now: deps.now(),
      dryRun: request.dryRun,
      ...(request.drainTimeoutSeconds === undefined
        ? {}
        : { defaultDrainTimeoutSeconds: request.drainTimeoutSeconds }),
    });
  } catch (error) {
    if (error instanceof IpvsUnavailableError) {
      process.stderr.write(`error: ${error.message}\n`);
      return 4;
    }
    if (error instanceof IpvsError) throw new CliError(error.message, 1);
    if (error instanceof IpvsDecodeError) {
      throw new CliError(`the kernel sent a reply this version cannot decode: ${error.message}`, 1);
    }
    if (error instanceof JournalFormatError) {
      throw new CliError(
        `the state file is not usable: ${error.message}. Move it away to start a new journal ` +
          "(the services it recorded are then left in place as Foreign, never deleted).",
        1,
      );
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (["EACCES", "EROFS", "ENOTDIR", "EISDIR", "EPERM", "ENOENT"].includes(code ?? "")) {
      throw new CliError(`cannot use the state file ${statePath}: ${code} (see --state-file)`, 1);
    }
    throw error;
  } finally {
    await kernel.close();
  }
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

export function formatReport(report: SyncReport, dryRun: boolean, milliseconds: number): string {
  const lines: string[] = [];
  for (const item of report.drift) lines.push(`drift: ${formatDrift(item)}`);
  for (const o of report.outcomes)
    lines.push(`${o.result}: ${o.description}${o.reason ? `: ${o.reason}` : ""}`);
  const count = (r: string) => report.outcomes.filter((o) => o.result === r).length;
  const summary = dryRun
    ? `${count("planned")} operations planned (dry run, nothing changed)`
    : `${count("applied")} operations applied, ${count("failed")} failed, ${count("skipped")} skipped`;
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

function parseFwmarkRange(text: string): FwmarkRange {
  const match = /^(\d+)(?:-(\d+))?$/.exec(text.trim());
  if (!match) throw new CliError(`--managed-fwmarks "${text}" is not a number or a FROM-TO range`);
  const from = Number(match[1]);
  return { from, to: match[2] === undefined ? from : Number(match[2]) };
}
