/**
 * PURE: which sysctls the node should have, and what to write and report given what was read.
 *
 * Policy per key: "Enforce" writes the value when it differs (and reports drift when a value the
 * agent had in place changed behind its back); "Report" never writes and reports a differing value
 * as drift on every sync. A key without an expected value is only read and reported ("Observed").
 * A missing key (module not loaded) is reported, never fatal.
 */

import { normalizeSysctlValue } from "./sysctl-store.ts";

export type SysctlPolicy = "Enforce" | "Report";

export interface SysctlSetting {
  key: string;
  /** Expected value; undefined = only read and report it. */
  value?: string;
  policy: SysctlPolicy;
}

/** The keys the node edge knows, in report order. */
export const NODE_SYSCTL_KEYS = [
  "net.ipv4.ip_forward",
  "net.ipv6.conf.all.forwarding",
  "net.ipv4.vs.conntrack",
  "net.ipv4.vs.conn_reuse_mode",
  "net.ipv4.vs.expire_nodest_conn",
  "net.ipv4.vs.expire_quiescent_template",
] as const;
export type NodeSysctlKey = (typeof NODE_SYSCTL_KEYS)[number];

/** Per key: an expected value and policy, or "Ignore" to leave the key out of the report entirely. */
export type SysctlConfig = Partial<
  Record<NodeSysctlKey, { value?: string; policy?: SysctlPolicy } | "Ignore">
>;

/**
 * Defaults: forwarding is enforced (IPVS NAT needs it; IPv6 only when IPv6 services exist, since
 * forwarding=1 makes the kernel ignore router advertisements on every interface); the net.ipv4.vs.*
 * keys are read and reported until the configuration gives them a value.
 */
const DEFAULTS: Record<NodeSysctlKey, { value?: string; policy: SysctlPolicy }> = {
  "net.ipv4.ip_forward": { value: "1", policy: "Enforce" },
  "net.ipv6.conf.all.forwarding": { value: "1", policy: "Enforce" },
  "net.ipv4.vs.conntrack": { policy: "Report" },
  "net.ipv4.vs.conn_reuse_mode": { policy: "Report" },
  "net.ipv4.vs.expire_nodest_conn": { policy: "Report" },
  "net.ipv4.vs.expire_quiescent_template": { policy: "Report" },
};

export interface NodeSysctlNeeds {
  /** IPv6 services exist: IPv6 forwarding is asserted too. */
  ipv6Services: boolean;
  /**
   * VirtualServices with snat exist: their nftables rule matches IPVS connections by conntrack, so
   * net.ipv4.vs.conntrack is enforced at 1 unless the configuration names the key itself.
   */
  snatServices?: boolean;
  /**
   * Interfaces holding the addresses of direct-routing real servers on this node (the DR real-server
   * role): arp_ignore=1 and arp_announce=2 on each, so the node neither answers ARP for the VIPs on its
   * loopback nor uses them as ARP source addresses.
   */
  arpInterfaces?: readonly string[];
  /**
   * IPv4 tunnel devices holding VIPs of Tunnel real servers (the role: tunl0, gre0): a decapsulated
   * packet comes in there from a client the node routes elsewhere, which strict reverse-path filtering
   * drops, so rp_filter is set to 2 (loose) on each. Loose wins over `all`'s 1: the kernel uses the
   * larger value.
   */
  tunnelDevices?: readonly string[];
}

/** The sysctl key of an interface setting; names with dots (VLANs: eth0.100) need the slash form. */
export function interfaceSysctlKey(family: "ipv4" | "ipv6", name: string, setting: string): string {
  return name.includes(".")
    ? `net/${family}/conf/${name}/${setting}`
    : `net.${family}.conf.${name}.${setting}`;
}

/**
 * The settings for this node from the configuration; IPv6 forwarding only when IPv6 services exist,
 * IPVS conntrack when SNAT needs it, the ARP settings of the DR real-server role.
 */
export function nodeSysctls(config: SysctlConfig, needs: NodeSysctlNeeds): SysctlSetting[] {
  const out: SysctlSetting[] = [];
  for (const key of NODE_SYSCTL_KEYS) {
    if (key === "net.ipv6.conf.all.forwarding" && !needs.ipv6Services) continue;
    const c = config[key];
    if (c === "Ignore") continue;
    if (key === "net.ipv4.vs.conntrack" && needs.snatServices && c === undefined) {
      out.push({ key, value: "1", policy: "Enforce" });
      continue;
    }
    // A policy without a value keeps the default value; `value: undefined` given explicitly means "only report it".
    const value = c && "value" in c ? c.value : DEFAULTS[key].value;
    const policy = c?.policy ?? DEFAULTS[key].policy;
    out.push({ key, ...(value !== undefined ? { value: normalizeSysctlValue(value) } : {}), policy });
  }
  for (const name of [...new Set(needs.arpInterfaces ?? [])].sort()) {
    out.push(
      { key: interfaceSysctlKey("ipv4", name, "arp_ignore"), value: "1", policy: "Enforce" },
      { key: interfaceSysctlKey("ipv4", name, "arp_announce"), value: "2", policy: "Enforce" },
    );
  }
  for (const name of [...new Set(needs.tunnelDevices ?? [])].sort()) {
    out.push({ key: interfaceSysctlKey("ipv4", name, "rp_filter"), value: "2", policy: "Enforce" });
  }
  return out;
}

export type SysctlRead = { value: string } | { missing: true } | { error: string };

/**
 * Ok: as expected. Set: written this sync (a change, or a repair). Differs: Report policy, not as
 * expected. Observed: no expectation. Missing: the key does not exist. Failed: read or write failed.
 */
export type SysctlState = "Ok" | "Set" | "Differs" | "Observed" | "Missing" | "Failed";

export interface SysctlEntry {
  key: string;
  /** What was read (before a write); null when missing or unreadable. */
  value: string | null;
  expected?: string;
  policy: SysctlPolicy;
  state: SysctlState;
}

export interface SysctlDrift {
  key: string;
  expected: string;
  found: string;
  action: "Repaired" | "Reported" | "Ignored";
  message?: string;
}

export interface SysctlPlan {
  writes: { key: string; value: string }[];
  entries: SysctlEntry[];
  drift: SysctlDrift[];
  problems: string[];
}

/**
 * `inPlace`: the keys the previous sync left as expected; a change to one of those is drift. Without
 * it (first sync) an Enforce write is the configuration being applied, not drift.
 */
export function planSysctls(
  settings: readonly SysctlSetting[],
  observed: ReadonlyMap<string, SysctlRead>,
  inPlace: ReadonlySet<string> = new Set(),
): SysctlPlan {
  const plan: SysctlPlan = { writes: [], entries: [], drift: [], problems: [] };
  for (const s of settings) {
    const read = observed.get(s.key) ?? { missing: true as const };
    const base = { key: s.key, ...(s.value !== undefined ? { expected: s.value } : {}), policy: s.policy };
    if ("error" in read) {
      plan.entries.push({ ...base, value: null, state: "Failed" });
      plan.problems.push(read.error);
      continue;
    }
    if ("missing" in read) {
      plan.entries.push({ ...base, value: null, state: "Missing" });
      if (s.value !== undefined) {
        plan.problems.push(`sysctl ${s.key} does not exist (is its module loaded?): expected ${s.value}`);
      }
      continue;
    }
    const value = normalizeSysctlValue(read.value);
    if (s.value === undefined) {
      plan.entries.push({ ...base, value, state: "Observed" });
      continue;
    }
    if (value === s.value) {
      plan.entries.push({ ...base, value, state: "Ok" });
      continue;
    }
    if (s.policy === "Report") {
      plan.entries.push({ ...base, value, state: "Differs" });
      plan.drift.push({ key: s.key, expected: s.value, found: value, action: "Reported" });
      continue;
    }
    plan.entries.push({ ...base, value, state: "Set" });
    plan.writes.push({ key: s.key, value: s.value });
    if (inPlace.has(s.key))
      plan.drift.push({ key: s.key, expected: s.value, found: value, action: "Repaired" });
  }
  return plan;
}
