/**
 * The one place that decides whether a kernel service belongs to this agent.
 *
 * IPVS entries carry no labels, so ownership is a rule over the service key. A kernel service is ours
 * if, and only if, at least one of these holds:
 * - its key is in the ownership journal: the agent programmed it (the journal is written before the
 *   kernel is changed, so every service the agent creates is in it, across restarts and after its
 *   VirtualService was deleted);
 * - it is an address service whose address lies inside one of the managed CIDRs (same family);
 * - it is a fwmark service whose mark lies inside one of the managed fwmark ranges (inclusive).
 * Everything else is foreign: reported, never modified or deleted. Being DESIRED is no claim: a
 * VirtualService whose key equals a service keepalived or kube-proxy made must not take it over
 * (diff() reports it as Foreign). A desired key that is not in the kernel at all is simply created,
 * and journalled first by the caller, which makes it ours from then on.
 *
 * Malformed scope entries (a CIDR that does not parse, an inverted range) match nothing; they are
 * reported by ownershipScopeProblems() so configuration validation can name them.
 */
import { ipFamily, ipToBytes } from "../vocabulary/addresses.ts";
import { ipv4Value } from "../vocabulary/order.ts";
import { type Family, type ServiceKey, serviceKeyString } from "../vocabulary/table.ts";

export interface FwmarkRange {
  /** Inclusive bounds. */
  from: number;
  to: number;
}

/** The configured part of ownership: what the agent may manage besides what it currently desires. */
export interface OwnershipScope {
  /** IPv4 / IPv6 CIDRs ("10.0.0.0/8", "2001:db8::/32"); a service address inside one is ours. */
  managedCidrs: readonly string[];
  managedFwmarks: readonly FwmarkRange[];
  /** serviceKeyString() of every service the agent has programmed (the node's journal file). */
  journal: readonly string[];
}

export interface ParsedCidr {
  family: Family;
  bytes: Uint8Array;
  prefixLength: number;
}

/** "10.0.0.0/8" -> parsed form; undefined when it is not a CIDR (no throw). A bare address is a host route. */
export function parseCidr(text: string): ParsedCidr | undefined {
  const slash = text.indexOf("/");
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = ipFamily(address);
  if (!family) return undefined;
  const max = family === "IPv4" ? 32 : 128;
  let prefixLength = max;
  if (slash >= 0) {
    const prefix = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefix)) return undefined;
    prefixLength = Number(prefix);
    if (prefixLength > max) return undefined;
  }
  return { family, bytes: ipToBytes(address), prefixLength };
}

/** "7" or "10-20" -> an inclusive range; undefined when it is neither (no throw). */
export function parseFwmarkRange(text: string): FwmarkRange | undefined {
  const match = /^(\d+)(?:-(\d+))?$/.exec(text.trim());
  if (!match) return undefined;
  const from = Number(match[1]);
  return { from, to: match[2] === undefined ? from : Number(match[2]) };
}

export function cidrContains(cidr: ParsedCidr, address: string): boolean {
  if (cidr.family === "IPv4") {
    // The usual case, a canonical dotted quad, as numbers: no regular expression, no bytes.
    const value = ipv4Value(address);
    if (value !== undefined) {
      const unit = 2 ** (32 - cidr.prefixLength);
      const base = ((cidr.bytes[0]! * 256 + cidr.bytes[1]!) * 256 + cidr.bytes[2]!) * 256 + cidr.bytes[3]!;
      return Math.floor(value / unit) === Math.floor(base / unit);
    }
  }
  if (ipFamily(address) !== cidr.family) return false;
  const bytes = ipToBytes(address);
  let bits = cidr.prefixLength;
  for (let i = 0; i < bytes.length && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((bytes[i]! & mask) !== (cidr.bytes[i]! & mask)) return false;
  }
  return true;
}

/**
 * A scope compiled for lookups: the journal as a set, the CIDRs parsed once. `keyText` is the key's
 * serviceKeyString when the caller has it already (diff() does: one string less per service).
 */
export type OwnershipRule = (key: ServiceKey, keyText?: string) => boolean;

export function ownershipRule(ownership: OwnershipScope): OwnershipRule {
  const journal = new Set(ownership.journal);
  const cidrs = ownership.managedCidrs.flatMap((c) => parseCidr(c) ?? []);
  const fwmarks = ownership.managedFwmarks.filter((r) => r.from <= r.to);
  return (key, keyText) => {
    if (journal.size > 0 && journal.has(keyText ?? serviceKeyString(key))) return true;
    if (key.kind === "fwmark") return fwmarks.some((r) => key.fwmark >= r.from && key.fwmark <= r.to);
    return cidrs.some((cidr) => cidrContains(cidr, key.address));
  };
}

/** One-off check; diff() compiles the scope once with ownershipRule() instead. */
export function isOwned(key: ServiceKey, ownership: OwnershipScope): boolean {
  return ownershipRule(ownership)(key);
}

/** Human-readable problems with a scope (empty when it is fine). */
export function ownershipScopeProblems(scope: OwnershipScope): string[] {
  const problems: string[] = [];
  scope.managedCidrs.forEach((c, i) => {
    if (!parseCidr(c)) problems.push(`managedCidrs[${i}]: ${JSON.stringify(c)} is not an IPv4 or IPv6 CIDR`);
  });
  scope.managedFwmarks.forEach((r, i) => {
    const ok = Number.isInteger(r.from) && Number.isInteger(r.to) && r.from >= 1 && r.to <= 0xffffffff;
    if (!ok || r.from > r.to) {
      problems.push(`managedFwmarks[${i}]: ${r.from}-${r.to} is not a range of marks within 1..4294967295`);
    }
  });
  return problems;
}
