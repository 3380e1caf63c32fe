/**
 * PURE: what the direct-routing real-server role asks of this node. A real server behind a DR
 * director receives packets addressed to the VIP (only the MAC was rewritten), so it must hold the
 * VIP on its loopback and must neither answer ARP for it nor use it as an ARP source; the agent in this
 * role does that for every DR VirtualService (in the cluster, whatever its nodeSelector) one of whose
 * real servers has an address of this node.
 *
 * The tables are the cluster's with every backend healthy and, when a VirtualService has a sorry
 * server (programmed only while none of its backends is healthy), with every backend down as well
 * (realServerRoleTables): a sorry server is a real server too, prepared before it is needed.
 * A real server behind a Tunnel director receives the packet for the VIP inside an IP-in-IP (IPIP) or
 * GRE packet to its own address: the tunnel module's fallback device (tunl0, ip6tnl0, gre0, ip6gre0)
 * decapsulates it, and the VIP must be held there; ARP for the VIP is the same concern as for direct
 * routing. Left out: firewall-mark services (no address to hold), GUE tunnels (the real server needs a
 * FOU port configured to match the director's), and a VIP this node programs as a director itself (it
 * is on the VIP interface already, and IPVS forwards to itself as a local real server).
 */
import { computeDesired, computeDesiredAssumingHealthy } from "./desired.ts";
import type { DesiredTable } from "./desired-table.ts";
import type { NodeInfo, Snapshot } from "./snapshot.ts";

export interface DirectRoutingRealServerPlan {
  /** VIPs to hold on the loopback (DirectRouting), sorted. */
  vips: string[];
  /** VIPs to hold on the tunnel device of their tunnel type and family (Tunnel: IPIP, GRE), sorted. */
  tunnelVips: { IPIP: string[]; GRE: string[] };
  /** Interfaces holding the real-server addresses (arp_ignore / arp_announce go there), sorted. */
  interfaces: string[];
  /** "namespace/name" of the VirtualServices served, sorted. */
  virtualServices: string[];
}

/**
 * What the cluster asks of its real servers: computeDesired over every node with every backend
 * healthy, and with every backend down when some VirtualService has a sorry server (the sorry servers
 * are in that table only).
 */
export function realServerRoleTables(snapshot: Snapshot, node: NodeInfo): DesiredTable[] {
  const { result, initial } = computeDesiredAssumingHealthy(snapshot, node, { everyNode: true });
  const sorry = snapshot.virtualServices.some(
    (vs) => (vs as { spec?: { sorryServer?: unknown } } | undefined)?.spec?.sorryServer !== undefined,
  );
  if (!sorry || initial.healthTargets.length === 0) return [result.table];
  const down = new Map(initial.healthTargets.map((t) => [t.key, false]));
  return [result.table, computeDesired(snapshot, node, down, { everyNode: true }).table];
}

/**
 * @param cluster  the tables of realServerRoleTables
 * @param local    this node's addresses (canonical text) and the interface each is on; the VIP and
 *                 loopback interfaces' own addresses are left out by the caller
 * @param director the VIPs this node programs as a director
 */
export function planDirectRoutingRealServer(
  cluster: readonly DesiredTable[],
  local: ReadonlyMap<string, string>,
  director: ReadonlySet<string>,
): DirectRoutingRealServerPlan {
  const vips = new Set<string>();
  const tunnelVips = { IPIP: new Set<string>(), GRE: new Set<string>() };
  const interfaces = new Set<string>();
  const served = new Set<string>();
  for (const entry of cluster.flat()) {
    const key = entry.service.key;
    if (key.kind !== "address" || director.has(key.address)) continue;
    for (const d of entry.destinations) {
      const held =
        d.config.forwarding === "DirectRouting"
          ? vips
          : d.config.forwarding === "Tunnel" && d.config.tunnelType !== "GUE"
            ? tunnelVips[d.config.tunnelType]
            : undefined;
      if (held === undefined) continue;
      const where = local.get(d.key.address);
      if (where === undefined) continue;
      held.add(key.address);
      interfaces.add(where);
      served.add(`${entry.service.source.namespace}/${entry.service.source.name}`);
    }
  }
  return {
    vips: [...vips].sort(),
    tunnelVips: { IPIP: [...tunnelVips.IPIP].sort(), GRE: [...tunnelVips.GRE].sort() },
    interfaces: [...interfaces].sort(),
    virtualServices: [...served].sort(),
  };
}
