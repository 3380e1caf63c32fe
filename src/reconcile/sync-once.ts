/**
 * One node-wide sync: read the kernel, diff against the desired table, record ownership, apply.
 * The only place that does I/O around the pure core; used by `ipvs-operator apply` and the agent.
 *
 * Order of work:
 * 1. dump the kernel table and load the journal;
 * 2. diff (pure) -> operations, drift, drains;
 * 3. save the journal with every service about to be created (before touching the kernel);
 * 4. apply service additions/updates; a service the kernel refuses (say, a missing scheduler module)
 *    takes its destination operations with it (skipped, reported), the rest still applies;
 * 5. apply the remaining operations, then save the journal again (deleted services leave it).
 */
import { operationObject } from "../kernel/error-hints.ts";
import { IpvsError } from "../kernel/errors.ts";
import type { IpvsKernel, OperationResult } from "../kernel/ipvs-kernel.ts";
import { readKernelTable } from "../kernel/read-kernel-table.ts";
import type { DesiredTable } from "../model/desired-table.ts";
import { type DiffResult, type DriftItem, diff } from "../model/diff.ts";
import { drainKey } from "../model/drain.ts";
import type { OwnershipScope } from "../model/ownership.ts";
import { type Operation, operationServiceKey } from "../model/plan.ts";
import { destinationKeyString, type KernelTable, serviceKeyString } from "../model/table.ts";
import type { JournalStore } from "./ownership-journal.ts";

export interface SyncOptions {
  kernel: IpvsKernel;
  journal: JournalStore;
  /** Managed CIDRs and fwmark ranges; the journal part comes from `journal`. */
  scope: Omit<OwnershipScope, "journal">;
  /** The clock, in milliseconds (drain timing). */
  now: number;
  /** Plan only: compute and report, change neither the kernel nor the journal. */
  dryRun?: boolean;
  /** Drain timeout for owned destinations of services no longer desired (diff's default: 300 s). */
  defaultDrainTimeoutSeconds?: number;
}

export type OutcomeResult = "applied" | "failed" | "skipped" | "planned";

export interface OperationOutcome {
  operation: Operation;
  /** "add service TCP 192.0.2.10:80", "update destination TCP 192.0.2.10:80 -> 198.51.100.5:8080". */
  description: string;
  result: OutcomeResult;
  /** For failed and skipped operations: why. */
  reason?: string;
}

export interface SyncReport {
  outcomes: OperationOutcome[];
  drift: DriftItem[];
  /** Destinations still draining (weight 0, waiting for connections or the drain timeout). */
  draining: number;
  failed: number;
  /** No operation failed or was skipped. */
  ok: boolean;
}

export async function syncOnce(desired: DesiredTable, options: SyncOptions): Promise<SyncReport> {
  const { kernel, journal: store, now } = options;
  const [actual, journal] = [await readKernelTable(kernel), await store.load()];
  const result: DiffResult = diff(
    desired,
    actual,
    { ...options.scope, journal: journal.services },
    journal.drains,
    now,
    options.defaultDrainTimeoutSeconds === undefined
      ? {}
      : { defaultDrainTimeoutSeconds: options.defaultDrainTimeoutSeconds },
  );

  if (options.dryRun) {
    return report(
      result.operations.map((operation) => ({
        operation,
        description: describe(operation),
        result: "planned",
      })),
      result,
    );
  }

  const serviceOps = result.operations.filter((o) => o.op === "addService" || o.op === "updateService");
  const otherOps = result.operations.filter((o) => o.op !== "addService" && o.op !== "updateService");
  const adding = serviceOps.flatMap((o) => (o.op === "addService" ? [serviceKeyString(o.service.key)] : []));
  await store.save({ services: [...new Set([...journal.services, ...adding])], drains: journal.drains });

  const outcomes: OperationOutcome[] = [];
  const serviceResults = await kernel.apply(serviceOps);
  const failedServices = new Map<string, string>();
  serviceOps.forEach((operation, i) => {
    const outcome = toOutcome(operation, serviceResults[i]);
    outcomes.push(outcome);
    if (outcome.result === "failed")
      failedServices.set(serviceKeyString(operationServiceKey(operation)), outcome.reason!);
  });

  const runnable: Operation[] = [];
  for (const operation of otherOps) {
    const failed = failedServices.get(serviceKeyString(operationServiceKey(operation)));
    if (failed !== undefined) {
      outcomes.push({
        operation,
        description: describe(operation),
        result: "skipped",
        reason: `its service could not be programmed: ${failed}`,
      });
    } else {
      runnable.push(operation);
    }
  }
  const otherResults = await kernel.apply(runnable);
  outcomes.push(...runnable.map((operation, i) => toOutcome(operation, otherResults[i])));

  const created = new Set(
    outcomes
      .filter((o) => o.operation.op === "addService" && o.result === "applied")
      .map((o) => key(o.operation)),
  );
  // A failed add leaves the journal only if this run put it there: an entry journaled earlier (maybe
  // missed by a dump racing another writer, then refused with EEXIST) stays ours.
  const gone = new Set(
    outcomes
      .filter(
        (o) =>
          (o.operation.op === "deleteService" && o.result === "applied") ||
          (o.operation.op === "addService" &&
            o.result === "failed" &&
            !journal.services.includes(key(o.operation)) &&
            !o.reason?.includes("EEXIST")),
      )
      .map((o) => key(o.operation)),
  );
  const services = [...new Set([...journal.services, ...created])].filter((s) => !gone.has(s));
  // A drain's clock runs only once its weight-0 update reached the kernel: a drain whose update failed
  // or was skipped starts again next time instead of timing out with connections never quiesced.
  const notQuiesced = new Set(
    outcomes
      .filter(
        (o) =>
          o.operation.op === "updateDestination" &&
          o.operation.destination.config.weight === 0 &&
          o.result !== "applied",
      )
      .map((o) =>
        o.operation.op === "updateDestination"
          ? drainKey(serviceKeyString(o.operation.service), destinationKeyString(o.operation.destination.key))
          : "",
      ),
  );
  const drains = result.drains.filter((d) => !notQuiesced.has(drainKey(d.service, d.destination)));
  await store.save({ services, drains });
  return report(outcomes, result);
}

function report(outcomes: OperationOutcome[], result: DiffResult): SyncReport {
  const failed = outcomes.filter((o) => o.result === "failed" || o.result === "skipped").length;
  return { outcomes, drift: result.drift, draining: result.draining, failed, ok: failed === 0 };
}

function toOutcome(operation: Operation, result: OperationResult | undefined): OperationOutcome {
  const description = describe(operation);
  if (!result) return { operation, description, result: "failed", reason: "no result from the kernel" };
  if (result.ok) return { operation, description, result: "applied" };
  const error = result.error;
  return {
    operation,
    description,
    result: "failed",
    reason: error instanceof IpvsError ? error.message : String(error),
  };
}

function key(operation: Operation): string {
  return serviceKeyString(operationServiceKey(operation));
}

const VERBS: Record<Operation["op"], string> = {
  addService: "add service",
  updateService: "update service",
  deleteService: "delete service",
  addDestination: "add destination",
  updateDestination: "update destination",
  deleteDestination: "delete destination",
};

export function describe(operation: Operation): string {
  if (operation.op === "updateDestination" || operation.op === "addDestination") {
    return `${VERBS[operation.op]} ${operationObject(operation)} (weight ${operation.destination.config.weight})`;
  }
  return `${VERBS[operation.op]} ${operationObject(operation)}`;
}
