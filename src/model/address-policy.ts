/**
 * PURE: the address policy (IPVSAddressPolicy objects) as one decision, made in one place: may a
 * VirtualService of this namespace use this IPVS key? Allowed when some policy is for the namespace (names
 * it or "*", or one of its namespaceSelectors matches the namespace's labels) and covers the key: its address in one of the policy's CIDRs and its port in the policy's
 * ports (every port when the policy lists none), or its firewall mark in the policy's marks.
 * No policy, or none for the namespace: refused (deny by default). A policy that does not parse or
 * holds a range that is not one is left out whole and reported (a typo never widens what is allowed).
 */
import { AddressPolicySpecSchema } from "../api/v1alpha1/address-policy.ts";
import type { LabelSelector } from "../api/v1alpha1/index.ts";
import type { ServiceKey } from "../vocabulary/table.ts";
import { matchesLabelSelector } from "./label-selector.ts";
import { cidrContains, type FwmarkRange, type ParsedCidr, parseCidr, parseFwmarkRange } from "./ownership.ts";

interface CompiledPolicy {
  name: string;
  namespaces: ReadonlySet<string>;
  selectors: readonly LabelSelector[];
  cidrs: ParsedCidr[];
  /** undefined: every port. */
  ports: FwmarkRange[] | undefined;
  fwmarks: FwmarkRange[];
}

export interface AddressPolicy {
  /**
   * undefined when allowed; otherwise why not, for the VirtualService's status and Events. `labels`: the
   * namespace's labels, for namespaceSelectors (a namespace unknown to the source has none).
   */
  refusal(namespace: string, key: ServiceKey, labels?: Readonly<Record<string, string>>): string | undefined;
  /** Policies left out, with why ("name: reason"). */
  ignored: string[];
}

function ranges(texts: readonly string[] | undefined, max: number, what: string): FwmarkRange[] {
  return (texts ?? []).map((t) => {
    const r = parseFwmarkRange(t);
    if (!r || r.from > r.to || r.to > max) throw new Error(`${what} "${t}" is not a range within 0-${max}`);
    return r;
  });
}

const inRanges = (list: readonly FwmarkRange[], n: number) => list.some((r) => n >= r.from && n <= r.to);

export function compileAddressPolicy(objects: readonly unknown[]): AddressPolicy {
  const compiled: CompiledPolicy[] = [];
  const ignored: string[] = [];
  for (const raw of objects) {
    const o = raw as { metadata?: { name?: unknown }; spec?: unknown };
    const name = typeof o?.metadata?.name === "string" ? o.metadata.name : "(unnamed)";
    const parsed = AddressPolicySpecSchema.safeParse(o?.spec);
    if (!parsed.success) {
      ignored.push(
        `${name}: ${parsed.error.issues.map((i) => `spec.${i.path.join(".")}: ${i.message}`).join("; ")}`,
      );
      continue;
    }
    try {
      const spec = parsed.data;
      compiled.push({
        name,
        namespaces: new Set(spec.namespaces ?? []),
        selectors: spec.namespaceSelectors ?? [],
        cidrs: (spec.cidrs ?? []).map((c) => {
          const p = parseCidr(c);
          if (!p) throw new Error(`cidr "${c}" is not a CIDR`);
          return p;
        }),
        ports: spec.ports === undefined ? undefined : ranges(spec.ports, 65535, "port"),
        fwmarks: ranges(spec.fwmarks, 0xffffffff, "fwmark"),
      });
    } catch (e) {
      ignored.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  compiled.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    ignored,
    refusal(namespace, key, labels = {}) {
      const mine = compiled.filter(
        (p) =>
          p.namespaces.has(namespace) ||
          p.namespaces.has("*") ||
          p.selectors.some((s) => matchesLabelSelector(s, labels)),
      );
      const covers = (p: CompiledPolicy) =>
        key.kind === "fwmark"
          ? inRanges(p.fwmarks, key.fwmark)
          : p.cidrs.some((c) => cidrContains(c, key.address)) &&
            (p.ports === undefined || inRanges(p.ports, key.port));
      if (mine.some(covers)) return undefined;
      const what = key.kind === "fwmark" ? `firewall mark ${key.fwmark}` : `${key.address} port ${key.port}`;
      if (mine.length === 0)
        return `no IPVSAddressPolicy lets namespace ${namespace} use addresses (${what} refused)`;
      return `no IPVSAddressPolicy for namespace ${namespace} covers ${what} (policies for it: ${mine.map((p) => p.name).join(", ")})`;
    },
  };
}
