/**
 * PURE: SNAT for one-arm NAT. The VirtualServices that ask for it in, one nft script out: the
 * operator's own table `inet ipvs_operator` with one nat chain (hook postrouting, priority srcnat) and
 * one rule per service that masquerades (or SNATs to a given address) the packets IPVS NATed to the
 * service's real servers. The script is one atomic transaction that replaces the table whole
 * (`add table` + `delete table` + `add table` ...: a missing table is no error, and nft 1.0.6 has no
 * `destroy`); no other table is named in it. With no rule the script only removes the table.
 *
 * The match (found on Linux 6.1 with nft 1.0.6): IPVS with `net.ipv4.vs.conntrack=1` keeps a conntrack
 * entry whose ORIGINAL tuple is client -> VIP:port, so a NATed packet on its way to a real server is
 *   meta l4proto tcp ct original ip daddr <VIP> ct original proto-dst <port> ip daddr { <rs>, ... }
 * (`ct original proto-dst` needs the `meta l4proto` dependency; `ct original protocol tcp` does not
 * parse in nft 1.0.6). Port 0 services leave out the port; firewall-mark services match
 * `meta mark <fwmark>` and the real servers.
 *
 * planSnatSync decides, from what the previous sync left and what `nft list table` shows now, whether
 * to run the script and which drift that repairs (TableMissing, RulesModified, TableUnexpected).
 */
import { canonicalIp, ipFamily } from "../vocabulary/addresses.ts";
import type { Family, Protocol } from "../vocabulary/table.ts";
import { sortByAddress } from "./vip-plan.ts";

export const SNAT_TABLE_FAMILY = "inet";
export const SNAT_TABLE = "ipvs_operator";
export const SNAT_CHAIN = "postrouting";
/** `table inet ipvs_operator`, as drift objects and messages name it. */
export const SNAT_TABLE_NAME = `${SNAT_TABLE_FAMILY} ${SNAT_TABLE}`;
/** nft refuses comments of more than 128 characters. */
const COMMENT_MAX = 128;

export type SnatMatch =
  | { kind: "address"; protocol: Protocol; address: string; port: number }
  | { kind: "fwmark"; fwmark: number };

export interface SnatService {
  /** "namespace/name" of the VirtualService (the rule's comment). */
  owner: string;
  family: Family;
  /** Address services: protocol, canonical address, port (0 = all ports); firewall-mark services: the mark. */
  match: SnatMatch;
  /** Addresses of its NAT destinations; none means no rule. */
  realServers: readonly string[];
  /** SNAT to this address; absent = masquerade (the outgoing interface's address). */
  toAddress?: string;
}

export interface SnatRule {
  owner: string;
  /** The rule as the script adds it, without `add rule inet ipvs_operator postrouting`. */
  rule: string;
}

export interface SnatScript {
  /** The whole nft script (one transaction). */
  script: string;
  /** One per service with a rule, in script order (by owner). */
  rules: SnatRule[];
  /** The table is wanted (at least one rule). */
  wanted: boolean;
  /** Input that was left out: a bad address, a family mismatch, a bad port or mark. */
  problems: string[];
}

/** The comment nft gets: characters a Kubernetes "namespace/name" has, others replaced, at most 128. */
export function snatComment(owner: string): string {
  return owner.replace(/[^A-Za-z0-9._/:-]/g, "_").slice(0, COMMENT_MAX);
}

function addressOf(text: string, family: Family): string | undefined {
  return ipFamily(text) === family ? canonicalIp(text) : undefined;
}

/** The rule of one service, or why there is none (undefined rule and no problem: no real servers). */
export function snatRule(service: SnatService): { rule?: string; problems: string[] } {
  const { owner, family, match } = service;
  const problems: string[] = [];
  const ip = family === "IPv6" ? "ip6" : "ip";
  const matches: string[] = [];
  if (match.kind === "address") {
    const vip = addressOf(match.address, family);
    if (!vip)
      return {
        problems: [`${owner}: ${JSON.stringify(match.address)} is not an ${family} address: no SNAT rule`],
      };
    if (!Number.isInteger(match.port) || match.port < 0 || match.port > 65535) {
      return { problems: [`${owner}: port ${match.port} is not 0..65535: no SNAT rule`] };
    }
    matches.push(`meta l4proto ${match.protocol.toLowerCase()}`, `ct original ${ip} daddr ${vip}`);
    if (match.port !== 0) matches.push(`ct original proto-dst ${match.port}`);
  } else {
    if (!Number.isInteger(match.fwmark) || match.fwmark < 1 || match.fwmark > 0xffffffff) {
      return { problems: [`${owner}: firewall mark ${match.fwmark} is not 1..4294967295: no SNAT rule`] };
    }
    matches.push(`meta mark ${match.fwmark}`);
  }
  const servers = new Set<string>();
  for (const text of service.realServers) {
    const address = addressOf(text, family);
    if (address) servers.add(address);
    else
      problems.push(
        `${owner}: real server ${JSON.stringify(text)} is not an ${family} address: left out of the SNAT rule`,
      );
  }
  if (servers.size === 0) return { problems };
  matches.push(`${ip} daddr { ${sortByAddress([...servers], (a) => a).join(", ")} }`);
  let action = "masquerade";
  if (service.toAddress !== undefined) {
    const to = addressOf(service.toAddress, family);
    if (!to) {
      problems.push(
        `${owner}: SNAT address ${JSON.stringify(service.toAddress)} is not an ${family} address: no SNAT rule`,
      );
      return { problems };
    }
    action = `snat ${ip} to ${to}`;
  }
  return { rule: `${matches.join(" ")} ${action} comment "${snatComment(owner)}"`, problems };
}

/** The script that makes the table exactly these services' rules (or removes it when there are none). */
export function planSnatScript(services: readonly SnatService[]): SnatScript {
  const rules: SnatRule[] = [];
  const problems: string[] = [];
  for (const service of services) {
    const r = snatRule(service);
    problems.push(...r.problems);
    if (r.rule) rules.push({ owner: service.owner, rule: r.rule });
  }
  rules.sort((a, b) => cmp(a.owner, b.owner) || cmp(a.rule, b.rule));
  const table = `${SNAT_TABLE_FAMILY} ${SNAT_TABLE}`;
  // `add` then `delete`: the delete never fails on a missing table, and the whole script is one transaction.
  const lines = [`add table ${table}`, `delete table ${table}`];
  if (rules.length > 0) {
    lines.push(
      `add table ${table}`,
      `add chain ${table} ${SNAT_CHAIN} { type nat hook postrouting priority srcnat; policy accept; }`,
      ...rules.map((r) => `add rule ${table} ${SNAT_CHAIN} ${r.rule}`),
    );
  }
  return { script: `${lines.join("\n")}\n`, rules, wanted: rules.length > 0, problems };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export type SnatDriftKind = "TableMissing" | "RulesModified" | "TableUnexpected";

export interface SnatDrift {
  kind: SnatDriftKind;
  /** "inet ipvs_operator". */
  object: string;
  message?: string;
  action: "Repaired" | "Ignored" | "Reported";
}

/** What `nft list table inet ipvs_operator` showed: absent, or the text nft printed. */
export type SnatObserved = { present: false } | { present: true; rendering: string };

/** What the previous sync left; undefined on a process's first sync. */
export interface SnatPrevious {
  /** The script applied last (or found already in place). */
  script: string;
  /** The table as nft printed it right after (undefined: the table was removed). */
  rendering: string | undefined;
}

export interface SnatSyncPlan {
  /** Run the script. */
  apply: boolean;
  drift: SnatDrift[];
}

/**
 * Whether to run `desired.script` and what drift it repairs. A changed desired script is applied
 * (a change, not drift); with the same script, a missing table is TableMissing, a table nft prints
 * differently from right after the last apply is RulesModified, and a table back after the operator
 * removed it is TableUnexpected: each is repaired by replacing the table whole. On the first sync
 * whatever is there is replaced, without calling it drift (only an absent table with none wanted is
 * left alone: the script would change nothing).
 */
export function planSnatSync(input: {
  desired: SnatScript;
  observed: SnatObserved;
  previous?: SnatPrevious;
}): SnatSyncPlan {
  const { desired, observed, previous } = input;
  const object = SNAT_TABLE_NAME;
  if (!previous) return { apply: desired.wanted || observed.present, drift: [] };
  const drift: SnatDrift[] = [];
  if (previous.rendering !== undefined) {
    if (!observed.present) {
      drift.push({
        kind: "TableMissing",
        object,
        message: "the table was deleted out of band",
        action: "Repaired",
      });
    } else if (observed.rendering !== previous.rendering) {
      drift.push({
        kind: "RulesModified",
        object,
        message: "the table differs from what the operator programmed: replaced whole",
        action: "Repaired",
      });
    }
  } else if (observed.present) {
    drift.push({
      kind: "TableUnexpected",
      object,
      message: "the table is back after the operator removed it",
      action: "Repaired",
    });
  }
  // Drift no longer matters when the table goes anyway (a missing table needs no removal).
  if (!desired.wanted) {
    const kept = drift.filter((d) => d.kind !== "TableMissing" && d.kind !== "RulesModified");
    return { apply: observed.present, drift: kept };
  }
  return { apply: desired.script !== previous.script || drift.length > 0, drift };
}
