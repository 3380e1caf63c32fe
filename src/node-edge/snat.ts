/**
 * SnatManager: keeps the operator's nftables table (`inet ipvs_operator`) holding exactly the SNAT
 * rules of the VirtualServices that ask for them, one diff per sync: list the table, planSnatSync(),
 * replace it whole when needed (one transaction) and list it again to remember how nft prints it.
 * Only that table is ever listed or named in a script. Never throws for what nft says: failures come
 * back as `errors` (and the next sync retries). One sync at a time per manager.
 */
import { errorText } from "./error-text.ts";
import { type Nft, NftError } from "./nftables.ts";
import {
  planSnatScript,
  planSnatSync,
  SNAT_TABLE,
  SNAT_TABLE_FAMILY,
  SNAT_TABLE_NAME,
  type SnatDrift,
  type SnatObserved,
  type SnatPrevious,
  type SnatService,
} from "./snat-plan.ts";

export interface SnatReport {
  /** "inet ipvs_operator". */
  table: string;
  /** The table exists (after the sync; for observe(), now). */
  present: boolean;
  /** Owners ("namespace/name") with a rule in the desired table. */
  services: string[];
  /** The script ran (always false for observe()). */
  applied: boolean;
  drift: SnatDrift[];
  errors: string[];
}

export class SnatManager {
  readonly #nft: Nft;
  #previous: SnatPrevious | undefined;

  constructor(nft: Nft) {
    this.#nft = nft;
  }

  /** Makes the table exactly the rules of `desired` (removes it when none), repairing drift. */
  async sync(desired: readonly SnatService[]): Promise<SnatReport> {
    return this.#run(desired, true);
  }

  /** The same report without changing anything (drift is what a sync would repair). */
  async observe(desired: readonly SnatService[]): Promise<SnatReport> {
    return this.#run(desired, false);
  }

  async #read(): Promise<SnatObserved> {
    const rendering = await this.#nft.listTable(SNAT_TABLE_FAMILY, SNAT_TABLE);
    return rendering === undefined ? { present: false } : { present: true, rendering };
  }

  async #run(desired: readonly SnatService[], apply: boolean): Promise<SnatReport> {
    const script = planSnatScript(desired);
    const report: SnatReport = {
      table: SNAT_TABLE_NAME,
      present: false,
      services: script.rules.map((r) => r.owner),
      applied: false,
      drift: [],
      errors: [...script.problems],
    };
    let observed: SnatObserved;
    try {
      observed = await this.#read();
    } catch (e) {
      // Without nft there can be no table to remove: only a wanted table makes that an error.
      if (e instanceof NftError && e.reason === "missing") {
        if (script.wanted) report.errors.push(`nft not found: SNAT rules not programmed (${errorText(e)})`);
      } else {
        report.errors.push(`reading table ${SNAT_TABLE_NAME}: ${errorText(e)}`);
      }
      return report;
    }
    const plan = planSnatSync({
      desired: script,
      observed,
      ...(this.#previous ? { previous: this.#previous } : {}),
    });
    report.drift = plan.drift;
    report.present = observed.present;
    if (!apply || !plan.apply) {
      if (!apply) for (const d of report.drift) d.action = "Reported";
      // A sync that found the table as it should be: remember it (after a restart, an absent table with none wanted).
      if (apply && !this.#previous) {
        this.#previous = {
          script: script.script,
          rendering: observed.present ? observed.rendering : undefined,
        };
      }
      return report;
    }
    try {
      await this.#nft.apply(script.script);
      report.applied = true;
    } catch (e) {
      report.errors.push(
        e instanceof NftError && e.reason === "missing"
          ? `nft not found: SNAT rules not programmed (${errorText(e)})`
          : `replacing table ${SNAT_TABLE_NAME}: ${errorText(e)}`,
      );
      for (const d of report.drift) {
        d.action = "Ignored";
        d.message = "repair failed (see errors)";
      }
      return report;
    }
    let after: SnatObserved;
    try {
      after = await this.#read();
    } catch (e) {
      report.errors.push(`reading table ${SNAT_TABLE_NAME} back: ${errorText(e)}`);
      this.#previous = undefined; // the next sync replaces the table again, without calling it drift
      return report;
    }
    report.present = after.present;
    if (after.present !== script.wanted) {
      report.errors.push(
        `table ${SNAT_TABLE_NAME} is ${after.present ? "still there" : "missing"} right after nft ${after.present ? "removed" : "replaced"} it`,
      );
    }
    this.#previous = { script: script.script, rendering: after.present ? after.rendering : undefined };
    return report;
  }
}
