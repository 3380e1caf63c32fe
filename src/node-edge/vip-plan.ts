/**
 * PURE: the VIP interface's plan. Wanted addresses and what the kernel shows in, the rtnetlink
 * actions and the drift out. No I/O, deterministic order (link actions first, then deletions, then
 * additions, each sorted by family and address).
 *
 * Ownership is decided in one place, `ownsAddress`: an address is the agent's if it carries the
 * agent's IFA_PROTO value (ownership "protocol", Linux >= 5.18), or, on older kernels, if it is a
 * host address listed in the journal the caller keeps (ownership "journal"). Everything else on the
 * interface is foreign: reported, never removed (docs/decisions/0009-vip-binding.md). IPv6 link-local
 * addresses (fe80::/10, the kernel's own) are neither: they are left out of the plan and the report.
 */
import { canonicalIp, ipFamily, ipToBytes } from "../vocabulary/addresses.ts";
import type { Family } from "../vocabulary/table.ts";
import { hostPrefix, type RtAddress, type RtLinkInfo, type TunnelKind } from "./rt-link.ts";

/** IFA_PROTO value the agent marks its addresses with (`ip -d addr show dev ipvs0` prints `proto 73`). */
export const VIP_ADDRESS_PROTOCOL = 73;
export const DEFAULT_VIP_INTERFACE = "ipvs0";

export type VipOwnership = "protocol" | "journal";

export interface VipOwnershipRule {
  ownership: VipOwnership;
  /** The IFA_PROTO marker (ownership "protocol"). */
  protocol: number;
  /** Addresses the agent added, as its journal recorded them (ownership "journal"). */
  journal: ReadonlySet<string>;
}

/** The one place that says whether an address on the interface is the agent's. */
export function ownsAddress(address: RtAddress, rule: VipOwnershipRule): boolean {
  if (rule.ownership === "protocol") return rule.protocol !== 0 && address.protocol === rule.protocol;
  return address.prefixLength === hostPrefix(address.family) && rule.journal.has(address.address);
}

export type VipAction =
  | { kind: "createLink"; name: string }
  | { kind: "setUp"; name: string }
  | { kind: "addAddress"; family: Family; address: string; prefixLength: number }
  | { kind: "deleteAddress"; family: Family; address: string; prefixLength: number };

export type VipDriftKind = "InterfaceMissing" | "InterfaceDown" | "AddressMissing" | "Foreign";
export type VipDriftAction = "Repaired" | "Ignored";

export interface VipDrift {
  kind: VipDriftKind;
  /** "ipvs0", or "192.0.2.10/32" for an address. */
  object: string;
  message?: string;
  action: VipDriftAction;
}

export interface VipObserved {
  /** undefined when there is no link of that name. */
  link: RtLinkInfo | undefined;
  /** Addresses of the link ([] when there is none). */
  addresses: readonly RtAddress[];
}

/** What the previous sync left (for telling drift from change); undefined on the first sync. */
export interface VipPrevious {
  linkPresent: boolean;
  bound: ReadonlySet<string>;
}

export interface VipPlanInput {
  interfaceName: string;
  wanted: readonly string[];
  observed: VipObserved;
  rule: VipOwnershipRule;
  previous?: VipPrevious;
  /**
   * The link is one the node already has (the loopback, for the DR real-server role): it is never
   * created or brought up and may be of any kind; a missing or down link is a problem; addresses on it
   * that are not the agent's (127.0.0.1/8, ::1) are normal there, not drift.
   */
  existingLink?: boolean;
  /**
   * The kind the link must be (default "dummy"). A tunnel kind's device (tunl0, gre0, ...) is made to
   * exist and set up only while an address is wanted on it: a node without Tunnel real servers does
   * not load the module. It is shared: addresses on it that are not the agent's are not drift.
   */
  linkKind?: VipLinkKind;
}

/** The kind of link a binder keeps: its own dummy, or a tunnel's fallback device. */
export type VipLinkKind = "dummy" | TunnelKind;

export interface VipPlan {
  actions: VipAction[];
  drift: VipDrift[];
  /** Owned addresses that stay (already bound and wanted). */
  kept: string[];
  /** Addresses on the link that are not the agent's, as "address/prefix". */
  foreign: string[];
  /** Wanted entries that are not IP addresses, a link that is not a dummy, a kernel dropping IFA_PROTO. */
  problems: string[];
}

function isLinkLocal(a: { family: Family; address: string }): boolean {
  return a.family === "IPv6" && /^fe[89ab][0-9a-f]:/.test(a.address);
}

interface Addr {
  family: Family;
  address: string;
}

/**
 * IPv4 first, then IPv6, each in address order. The sort key (4 or 16 bytes in hex, so IPv4's
 * shorter keys sort first) is computed once per item: compareIp per comparison made a plan of
 * 1,000 addresses take ~25 ms on the host, ~10 times that under the VM's emulation.
 */
export function sortByAddress<T>(items: readonly T[], address: (item: T) => string): T[] {
  const keyed = items.map((item) => ({ item, key: Buffer.from(ipToBytes(address(item))).toString("hex") }));
  keyed.sort((a, b) => a.key.length - b.key.length || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return keyed.map((k) => k.item);
}

export function planVips(input: VipPlanInput): VipPlan {
  const { interfaceName, observed, rule, previous } = input;
  const problems: string[] = [];
  const wanted = new Map<string, Addr>();
  for (const text of input.wanted) {
    const family = ipFamily(text);
    if (!family) {
      problems.push(`${JSON.stringify(text)} is not an IP address: not bound`);
      continue;
    }
    const address = canonicalIp(text);
    if (isLinkLocal({ family, address })) {
      problems.push(`${address} is an IPv6 link-local address: not bound`);
      continue;
    }
    wanted.set(address, { family, address });
  }
  const actions: VipAction[] = [];
  const drift: VipDrift[] = [];
  const link = observed.link;

  if (input.existingLink && (!link || !link.up)) {
    problems.push(`${interfaceName} is ${link ? "down" : "missing"}: no address bound`);
    return { actions: [], drift: [], kept: [], foreign: [], problems };
  }
  const linkKind = input.linkKind ?? "dummy";
  if (link && link.kind !== linkKind && !input.existingLink) {
    problems.push(
      `${interfaceName} exists and is ${link.kind ? `a ${link.kind} link` : "not a virtual link"}, not ${/^[aeiou]/.test(linkKind) ? "an" : "a"} ${linkKind}: no address bound`,
    );
    return { actions: [], drift: [], kept: [], foreign: [], problems };
  }
  let linkDrift = false;
  // A tunnel device is the agent's to keep up only while it held addresses there: bringing up one that
  // someone else's module load left down is a change, not a repair.
  const wasKept = previous?.linkPresent === true && (linkKind === "dummy" || previous.bound.size > 0);
  if (linkKind !== "dummy" && wanted.size === 0 && !link?.up) {
    // Nothing to hold on a tunnel device that is missing or down: leave it (and its module) alone.
  } else if (!link) {
    actions.push({ kind: "createLink", name: interfaceName }, { kind: "setUp", name: interfaceName });
    if (wasKept) {
      drift.push({ kind: "InterfaceMissing", object: interfaceName, action: "Repaired" });
      linkDrift = true;
    }
  } else if (!link.up) {
    actions.push({ kind: "setUp", name: interfaceName });
    if (wasKept) {
      drift.push({ kind: "InterfaceDown", object: interfaceName, action: "Repaired" });
      linkDrift = true;
    }
  }

  const deletions: (Addr & { prefixLength: number })[] = [];
  const foreign: (Addr & { prefixLength: number })[] = [];
  const present = new Set<string>(); // wanted addresses already bound (by the agent or someone else)
  const kept: Addr[] = [];
  for (const a of observed.addresses) {
    if (isLinkLocal(a)) continue; // the kernel's own fe80:: address of an up link
    if (ownsAddress(a, rule)) {
      if (wanted.has(a.address) && a.prefixLength === hostPrefix(a.family) && !present.has(a.address)) {
        present.add(a.address);
        kept.push(a);
      } else {
        deletions.push(a);
      }
      continue;
    }
    foreign.push(a);
    if (rule.ownership === "protocol" && a.protocol === 0 && previous?.bound.has(a.address) && !linkDrift) {
      problems.push(
        `${a.address} was bound by the agent but carries no IFA_PROTO marker now: either this kernel does not keep it (Linux < 5.18: use the journal ownership) or someone re-added it by hand; it is treated as foreign`,
      );
    }
  }
  for (const f of sortByAddress(foreign, (x) => x.address)) {
    const held = wanted.has(f.address);
    if (held) present.add(f.address);
    // The loopback and a tunnel's fallback device are shared: other addresses there are normal.
    if (input.existingLink || linkKind !== "dummy") continue;
    drift.push({
      kind: "Foreign",
      object: `${f.address}/${f.prefixLength}`,
      ...(held
        ? { message: "a wanted address, held by an address the agent did not add: left as it is" }
        : {}),
      action: "Ignored",
    });
  }
  for (const d of sortByAddress(deletions, (x) => x.address)) {
    actions.push({
      kind: "deleteAddress",
      family: d.family,
      address: d.address,
      prefixLength: d.prefixLength,
    });
  }
  const additions = sortByAddress(
    [...wanted.values()].filter((w) => !present.has(w.address)),
    (w) => w.address,
  );
  for (const w of additions) {
    actions.push({
      kind: "addAddress",
      family: w.family,
      address: w.address,
      prefixLength: hostPrefix(w.family),
    });
    if (!linkDrift && previous?.bound.has(w.address)) {
      drift.push({
        kind: "AddressMissing",
        object: `${w.address}/${hostPrefix(w.family)}`,
        action: "Repaired",
      });
    }
  }
  return {
    actions,
    drift,
    kept: sortByAddress(kept, (k) => k.address).map((k) => k.address),
    foreign: sortByAddress(foreign, (f) => f.address).map((f) => `${f.address}/${f.prefixLength}`),
    problems,
  };
}
