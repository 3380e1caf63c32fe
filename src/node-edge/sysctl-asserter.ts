/**
 * SysctlAsserter: reads the node's sysctls, writes the enforced ones that differ (planSysctls) and
 * reports values and drift. Never throws for what the kernel says: failures come back as `errors`.
 */
import { errorText } from "./error-text.ts";
import {
  planSysctls,
  type SysctlDrift,
  type SysctlEntry,
  type SysctlRead,
  type SysctlSetting,
} from "./sysctl-plan.ts";
import type { SysctlStore } from "./sysctl-store.ts";

export interface SysctlReport {
  entries: SysctlEntry[];
  drift: SysctlDrift[];
  errors: string[];
}

export class SysctlAsserter {
  readonly #store: SysctlStore;
  #inPlace = new Set<string>();

  constructor(store: SysctlStore) {
    this.#store = store;
  }

  async sync(settings: readonly SysctlSetting[]): Promise<SysctlReport> {
    return this.#run(settings, true);
  }

  /** The same report without writing anything. */
  async observe(settings: readonly SysctlSetting[]): Promise<SysctlReport> {
    return this.#run(settings, false);
  }

  async #run(settings: readonly SysctlSetting[], apply: boolean): Promise<SysctlReport> {
    const observed = new Map<string, SysctlRead>();
    for (const s of settings) {
      try {
        const value = await this.#store.read(s.key);
        observed.set(s.key, value === undefined ? { missing: true } : { value });
      } catch (e) {
        observed.set(s.key, { error: errorText(e) });
      }
    }
    const plan = planSysctls(settings, observed, this.#inPlace);
    const report: SysctlReport = { entries: plan.entries, drift: plan.drift, errors: [...plan.problems] };
    if (!apply) {
      for (const e of report.entries) if (e.state === "Set") e.state = "Differs";
      return report;
    }
    for (const w of plan.writes) {
      try {
        await this.#store.write(w.key, w.value);
      } catch (e) {
        report.errors.push(errorText(e));
        const entry = report.entries.find((x) => x.key === w.key);
        if (entry) entry.state = "Failed";
        for (const d of report.drift) {
          if (d.key === w.key) {
            d.action = "Ignored";
            d.message = "repair failed (see errors)";
          }
        }
      }
    }
    this.#inPlace = new Set(
      report.entries.filter((e) => e.state === "Ok" || e.state === "Set").map((e) => e.key),
    );
    return report;
  }
}
