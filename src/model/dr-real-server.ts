/**
 * PURE: what the real-server role asks of this node. A real server behind a DirectRouting director
 * receives packets addressed to the VIP (only the MAC was rewritten), so it must hold the VIP on its
 * loopback and must neither answer ARP for it nor use it as an ARP source; the agent in this role does
 * that for every DR VirtualService (in the cluster, whatever its nodeSelector) one of whose real servers
 * has an address of this node.
 *
 * A real server behind a Tunnel director receives the packet for the VIP inside an IP-in-IP (IPIP) or
 * GRE packet to its own address: the tunnel module's fallback device of the real server's family
 * decapsulates it (tunl0 / ip6tnl0 for IPIP, gre0 / ip6gre0 for GRE), and the VIP must be held there;
 * ARP for the VIP is the same concern as for direct routing.
 *
 * A sorry server (used only while none of a VirtualService's backends is healthy) is a real server
 * too, prepared before it is needed: read from the valid VirtualServices' specs.
 *
 * Left out: firewall-mark services (no address to hold), GUE tunnels (the real server needs a FOU port
 * configured to match the director's), IPIP between families (IPv6 in IPv4 needs sit0, IPv4 in IPv6 an
 * ip6tnl device in mode any), and a VIP this node programs as a director itself (it is on the VIP
 * interface already, and IPVS forwards to itself as a local real server).
 */
import { canonicalIp, ipFamily } from "../vocabulary/addresses.ts";
import type { Family } from "../vocabulary/table.ts";
import type { DesiredTable } from "./desired-table.ts";

/** The tunnel types whose real servers the role prepares. */
export type RealServerTunnelType = "IPIP" | "GRE";

export interface DirectRoutingRealServerPlan {
  /** VIPs to hold on the loopback (DirectRouting), sorted. */
  vips: string[];
  /**
   * VIPs to hold on a tunnel device, by tunnel type and by the family of the real server (the outer
   * packet's, which picks the device), sorted.
   */
  tunnelVips: Record<RealServerTunnelType, Record<Family, string[]>>;
  /** Interfaces holding the real-server addresses (arp_ignore / arp_announce go there), sorted. */
  interfaces: string[];
  /** "namespace/name" of the VirtualServices served, sorted. */
  virtualServices: string[];
}

/** A VirtualService's sorry server, as its spec says (`owner` "namespace/name"). */
export interface SorryServerSpec {
  owner: string;
  address: string;
  forwarding: "DirectRouting" | "Tunnel";
  tunnelType: string;
}

/** The sorry servers of DirectRouting and Tunnel VirtualServices (raw objects; the rest is skipped). */
export function sorryServerSpecs(virtualServices: readonly unknown[]): SorryServerSpec[] {
  const out: SorryServerSpec[] = [];
  for (const raw of virtualServices) {
    const vs = raw as
      | {
          metadata?: { namespace?: unknown; name?: unknown };
          spec?: {
            sorryServer?: { address?: unknown };
            forwarding?: { method?: unknown; tunnel?: { type?: unknown } };
          };
        }
      | undefined;
    const address = vs?.spec?.sorryServer?.address;
    const method = vs?.spec?.forwarding?.method;
    const { namespace, name } = vs?.metadata ?? {};
    if (typeof address !== "string" || !ipFamily(address)) continue;
    if (method !== "DirectRouting" && method !== "Tunnel") continue;
    if (typeof namespace !== "string" || typeof name !== "string") continue;
    const type = vs?.spec?.forwarding?.tunnel?.type;
    out.push({
      owner: `${namespace}/${name}`,
      address: canonicalIp(address),
      forwarding: method,
      tunnelType: typeof type === "string" ? type : "IPIP",
    });
  }
  return out;
}

/**
 * @param cluster  computeDesired over every node (options.everyNode), every backend counted healthy
 * @param local    this node's addresses (canonical text) and the interface each is on; the VIP,
 *                 loopback and tunnel interfaces' own addresses are left out by the caller
 * @param director the VIPs this node programs as a director
 * @param sorry    sorryServerSpecs of the snapshot's VirtualServices (only valid ones, in `cluster`, count)
 */
export function planDirectRoutingRealServer(
  cluster: DesiredTable,
  local: ReadonlyMap<string, string>,
  director: ReadonlySet<string>,
  sorry: readonly SorryServerSpec[] = [],
): DirectRoutingRealServerPlan {
  const vips = new Set<string>();
  const tunnelVips = {
    IPIP: { IPv4: new Set<string>(), IPv6: new Set<string>() },
    GRE: { IPv4: new Set<string>(), IPv6: new Set<string>() },
  };
  const interfaces = new Set<string>();
  const served = new Set<string>();
  const sorryOf = new Map(sorry.map((s) => [s.owner, s]));
  /** Files the VIP for a real server at `address` reached with this forwarding. */
  const serve = (vip: string, address: string, forwarding: string, tunnelType: string, owner: string) => {
    const where = local.get(address);
    if (where === undefined) return;
    let held: Set<string> | undefined;
    if (forwarding === "DirectRouting") held = vips;
    else if (forwarding === "Tunnel" && (tunnelType === "IPIP" || tunnelType === "GRE")) {
      const outer = ipFamily(address);
      if (!outer || (tunnelType === "IPIP" && ipFamily(vip) !== outer)) return; // IPIP between families
      held = tunnelVips[tunnelType][outer];
    }
    if (held === undefined) return;
    held.add(vip);
    interfaces.add(where);
    served.add(owner);
  };
  for (const entry of cluster) {
    const key = entry.service.key;
    if (key.kind !== "address" || director.has(key.address)) continue;
    const owner = `${entry.service.source.namespace}/${entry.service.source.name}`;
    for (const d of entry.destinations) {
      serve(key.address, d.key.address, d.config.forwarding, d.config.tunnelType, owner);
    }
    const s = sorryOf.get(owner);
    if (s) serve(key.address, s.address, s.forwarding, s.tunnelType, owner);
  }
  const sorted = (set: Set<string>) => [...set].sort();
  return {
    vips: sorted(vips),
    tunnelVips: {
      IPIP: { IPv4: sorted(tunnelVips.IPIP.IPv4), IPv6: sorted(tunnelVips.IPIP.IPv6) },
      GRE: { IPv4: sorted(tunnelVips.GRE.IPv4), IPv6: sorted(tunnelVips.GRE.IPv6) },
    },
    interfaces: sorted(interfaces),
    virtualServices: sorted(served),
  };
}
