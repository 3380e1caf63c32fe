/**
 * PURE: the SNAT rules this node should have (VirtualService spec.snat), from the desired table and
 * the VirtualServices' specs: one per programmed service that asks for it, matching its NAT
 * destinations (real servers and sorry server; DirectRouting and Tunnel destinations keep the
 * client's address by design and are left out).
 *
 * Rules never follow input that was read in part, nor an edit that made a VirtualService invalid
 * (its last valid state stays in the kernel, so its traffic still needs the rule): `previous` rules of
 * owners in `keep` stay as they were.
 */
import type { SnatService } from "../node-edge/snat-plan.ts";
import type { DesiredTable } from "./desired-table.ts";

export interface SnatSpec {
  mode?: "Masquerade" | "Address";
  address?: string;
}

/** spec.snat of every VirtualService that has one, by "namespace/name". */
export function snatSpecs(virtualServices: readonly unknown[]): Map<string, SnatSpec> {
  const out = new Map<string, SnatSpec>();
  for (const raw of virtualServices) {
    const vs = raw as { metadata?: { namespace?: unknown; name?: unknown }; spec?: { snat?: unknown } };
    const snat = vs?.spec?.snat;
    const { namespace, name } = vs?.metadata ?? {};
    if (
      typeof snat !== "object" ||
      snat === null ||
      typeof namespace !== "string" ||
      typeof name !== "string"
    )
      continue;
    out.set(`${namespace}/${name}`, snat as SnatSpec);
  }
  return out;
}

export function snatServices(
  table: DesiredTable,
  specs: ReadonlyMap<string, SnatSpec>,
  held: { previous: readonly SnatService[]; keep: (owner: string) => boolean } = {
    previous: [],
    keep: () => false,
  },
): SnatService[] {
  const out: SnatService[] = [];
  const owners = new Set<string>();
  for (const entry of table) {
    const owner = `${entry.service.source.namespace}/${entry.service.source.name}`;
    const spec = specs.get(owner);
    if (!spec) continue;
    const key = entry.service.key;
    const realServers = [
      ...new Set(entry.destinations.filter((d) => d.config.forwarding === "NAT").map((d) => d.key.address)),
    ].sort();
    owners.add(owner);
    out.push({
      owner,
      family: key.family,
      match:
        key.kind === "address"
          ? { kind: "address", protocol: key.protocol, address: key.address, port: key.port }
          : { kind: "fwmark", fwmark: key.fwmark },
      realServers,
      ...(spec.mode === "Address" && spec.address ? { toAddress: spec.address } : {}),
    });
  }
  for (const p of held.previous) {
    if (!owners.has(p.owner) && held.keep(p.owner)) out.push(p);
  }
  return out.sort((a, b) => (a.owner < b.owner ? -1 : a.owner > b.owner ? 1 : 0));
}
