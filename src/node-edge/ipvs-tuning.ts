/**
 * IPVS timeouts (`ipvsadm --set tcp tcpfin udp`) and the connection sync daemon
 * (`ipvsadm --start-daemon master|backup --mcast-interface IF --syncid N`) from configuration.
 *
 * planTuning is PURE: desired configuration plus what getTimeouts()/getDaemons() returned in, the
 * IpvsKernel calls to make and the drift out. IpvsTuner does the I/O through IpvsKernel.
 *
 * Timeouts: 0 (or absent) means "leave this one unchanged", as in `ipvsadm --set` and the kernel.
 * Daemons: per state (Master, Backup) a daemon to run, "Stopped" to stop one, or absent to leave
 * that state alone (a daemon keepalived started is not the agent's to stop unless told so).
 * A running daemon whose settings differ is stopped and started again (the kernel cannot change one).
 */

import type { IpvsKernel } from "../kernel/ipvs-kernel.ts";
import type { IpvsTimeouts, SyncDaemonConfig, SyncDaemonState } from "../vocabulary/table.ts";
import { errorText } from "./error-text.ts";

export type DaemonSetting = Omit<SyncDaemonConfig, "state"> | "Stopped";

export interface IpvsTuningConfig {
  /** Seconds; 0 or absent leaves that timeout unchanged. */
  timeouts?: Partial<IpvsTimeouts>;
  daemons?: Partial<Record<SyncDaemonState, DaemonSetting>>;
}

export type TuningCall =
  | { kind: "setTimeouts"; timeouts: Partial<IpvsTimeouts> }
  | { kind: "stopDaemon"; state: SyncDaemonState }
  | { kind: "startDaemon"; config: SyncDaemonConfig };

export interface TuningDrift {
  /** "timeout tcp", "timeout tcpFin", "timeout udp", "daemon Master", "daemon Backup". */
  object: string;
  expected: string;
  found: string;
  action: "Repaired" | "Ignored";
  message?: string;
}

export interface TuningPlan {
  calls: TuningCall[];
  /** Objects the calls change: drift when they were in place after the previous sync. */
  drift: TuningDrift[];
  /** Objects that will be as configured once the calls succeed. */
  willBeInPlace: string[];
  problems: string[];
}

const TIMEOUT_FIELDS = ["tcp", "tcpFin", "udp"] as const;
const STATES: readonly SyncDaemonState[] = ["Master", "Backup"];

/** "Backup on eth1, syncid 7, group 224.0.0.81:8848 ttl 1 maxlen 1472" (only the fields present). */
export function describeDaemon(d: Omit<SyncDaemonConfig, "state"> & { state?: SyncDaemonState }): string {
  const parts = [`${d.state ? `${d.state} ` : ""}on ${d.interface}`, `syncid ${d.syncId}`];
  if (d.group !== undefined || d.port !== undefined)
    parts.push(`group ${d.group ?? "default"}:${d.port ?? "default"}`);
  if (d.ttl !== undefined) parts.push(`ttl ${d.ttl}`);
  if (d.maxLength !== undefined) parts.push(`maxlen ${d.maxLength}`);
  return parts.join(", ");
}

/** A running daemon matches the wanted one: interface and sync id, plus each tuning field given. */
export function daemonMatches(running: SyncDaemonConfig, wanted: Omit<SyncDaemonConfig, "state">): boolean {
  if (running.interface !== wanted.interface || running.syncId !== wanted.syncId) return false;
  for (const f of ["maxLength", "group", "port", "ttl"] as const) {
    if (wanted[f] !== undefined && running[f] !== wanted[f]) return false;
  }
  return true;
}

export function planTuning(
  config: IpvsTuningConfig,
  observed: { timeouts: IpvsTimeouts; daemons: readonly SyncDaemonConfig[] },
  inPlace: ReadonlySet<string> = new Set(),
): TuningPlan {
  const plan: TuningPlan = { calls: [], drift: [], willBeInPlace: [], problems: [] };
  const set: Partial<IpvsTimeouts> = {};
  for (const f of TIMEOUT_FIELDS) {
    const want = config.timeouts?.[f];
    if (want === undefined || want === 0) continue;
    const object = `timeout ${f}`;
    if (!Number.isInteger(want) || want < 0) {
      plan.problems.push(`${object}: ${want} is not a whole number of seconds: left unchanged`);
      continue;
    }
    plan.willBeInPlace.push(object);
    if (observed.timeouts[f] === want) continue;
    set[f] = want;
    if (inPlace.has(object)) {
      plan.drift.push({
        object,
        expected: String(want),
        found: String(observed.timeouts[f]),
        action: "Repaired",
      });
    }
  }
  if (Object.keys(set).length > 0) plan.calls.push({ kind: "setTimeouts", timeouts: set });

  for (const state of STATES) {
    const want = config.daemons?.[state];
    if (want === undefined) continue;
    const object = `daemon ${state}`;
    const running = observed.daemons.find((d) => d.state === state);
    plan.willBeInPlace.push(object);
    if (want === "Stopped") {
      if (!running) continue;
      plan.calls.push({ kind: "stopDaemon", state });
      if (inPlace.has(object)) {
        plan.drift.push({ object, expected: "stopped", found: describeDaemon(running), action: "Repaired" });
      }
      continue;
    }
    if (running && daemonMatches(running, want)) continue;
    if (running) plan.calls.push({ kind: "stopDaemon", state });
    plan.calls.push({ kind: "startDaemon", config: { ...want, state } });
    if (inPlace.has(object)) {
      plan.drift.push({
        object,
        expected: describeDaemon(want),
        found: running ? describeDaemon(running) : "stopped",
        action: "Repaired",
      });
    }
  }
  return plan;
}

export interface TuningReport {
  /** Current values (after the sync); null when they could not be read. */
  timeouts: IpvsTimeouts | null;
  daemons: SyncDaemonConfig[];
  /** Calls made this sync, in ipvsadm words ("--set 900 120 300" style descriptions). */
  applied: string[];
  drift: TuningDrift[];
  errors: string[];
}

export function describeCall(call: TuningCall): string {
  switch (call.kind) {
    case "setTimeouts":
      return `set timeouts tcp ${call.timeouts.tcp ?? 0} tcpfin ${call.timeouts.tcpFin ?? 0} udp ${call.timeouts.udp ?? 0}`;
    case "stopDaemon":
      return `stop ${call.state} sync daemon`;
    case "startDaemon":
      return `start sync daemon ${describeDaemon(call.config)}`;
  }
}

export class IpvsTuner {
  readonly #kernel: IpvsKernel;
  #inPlace = new Set<string>();

  constructor(kernel: IpvsKernel) {
    this.#kernel = kernel;
  }

  async sync(config: IpvsTuningConfig): Promise<TuningReport> {
    return this.#run(config, true);
  }

  /** Current values and what a sync would change, without changing anything. */
  async observe(config: IpvsTuningConfig): Promise<TuningReport> {
    return this.#run(config, false);
  }

  async #read(report: TuningReport): Promise<boolean> {
    try {
      report.timeouts = await this.#kernel.getTimeouts();
      report.daemons = await this.#kernel.getDaemons();
      return true;
    } catch (e) {
      report.errors.push(`reading IPVS timeouts and sync daemons: ${errorText(e)}`);
      return false;
    }
  }

  async #run(config: IpvsTuningConfig, apply: boolean): Promise<TuningReport> {
    const report: TuningReport = { timeouts: null, daemons: [], applied: [], drift: [], errors: [] };
    if (!(await this.#read(report)) || !report.timeouts) return report;
    const plan = planTuning(config, { timeouts: report.timeouts, daemons: report.daemons }, this.#inPlace);
    report.drift = plan.drift;
    report.errors.push(...plan.problems);
    if (!apply) {
      report.applied = plan.calls.map((c) => `would ${describeCall(c)}`);
      return report;
    }
    const failedObjects = new Set<string>();
    for (const call of plan.calls) {
      try {
        if (call.kind === "setTimeouts") await this.#kernel.setTimeouts(call.timeouts);
        else if (call.kind === "stopDaemon") await this.#kernel.stopDaemon(call.state);
        else await this.#kernel.startDaemon(call.config);
        report.applied.push(describeCall(call));
      } catch (e) {
        report.errors.push(`${describeCall(call)}: ${errorText(e)}`);
        if (call.kind === "setTimeouts") {
          for (const f of Object.keys(call.timeouts)) failedObjects.add(`timeout ${f}`);
        } else {
          failedObjects.add(`daemon ${call.kind === "stopDaemon" ? call.state : call.config.state}`);
        }
      }
    }
    for (const d of report.drift) {
      if (failedObjects.has(d.object)) {
        d.action = "Ignored";
        d.message = "repair failed (see errors)";
      }
    }
    this.#inPlace = new Set(plan.willBeInPlace.filter((o) => !failedObjects.has(o)));
    if (plan.calls.length > 0) await this.#read(report);
    return report;
  }
}
