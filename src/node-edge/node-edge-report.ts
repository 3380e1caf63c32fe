/**
 * The node edge in one report, for the IPVSNode status: the VIP interface and the addresses the
 * agent holds, sysctl values, IPVS timeouts and sync daemons, and every drift item in one list.
 * buildNodeEdgeReport is PURE; NodeEdge runs the three parts of a sync (each failure stays in its
 * part: a broken sysctl never stops the VIPs).
 */
import { ipFamily } from "../vocabulary/addresses.ts";
import type { Family, IpvsTimeouts, SyncDaemonConfig } from "../vocabulary/table.ts";
import type { IpvsTuner, IpvsTuningConfig, TuningDrift, TuningReport } from "./ipvs-tuning.ts";
import { TUNNEL_CARRIES, TUNNEL_DEVICE, TUNNEL_KINDS } from "./rt-link.ts";
import type { SnatManager, SnatReport } from "./snat.ts";
import type { SnatService } from "./snat-plan.ts";
import type { SysctlAsserter, SysctlReport } from "./sysctl-asserter.ts";
import type { SysctlDrift, SysctlEntry, SysctlSetting } from "./sysctl-plan.ts";
import type { VipBinder, VipReport } from "./vip-binder.ts";

export type NodeEdgeArea = "VIP" | "LoopbackVIP" | "TunnelVIP" | "SNAT" | "Sysctl" | "Timeout" | "SyncDaemon";

/** One drift item, whatever its area: the shape of the IPVS table's DriftItem (kind, object, action). */
export interface NodeEdgeDrift {
  area: NodeEdgeArea;
  /** VIP: InterfaceMissing, InterfaceDown, AddressMissing, Foreign; otherwise Modified. */
  kind: string;
  /** "ipvs0", "192.0.2.10/32", "net.ipv4.ip_forward", "timeout tcp", "daemon Master". */
  object: string;
  expected?: string;
  found?: string;
  message?: string;
  action: "Repaired" | "Reported" | "Ignored";
}

export interface NodeEdgeReport {
  vip: {
    interface: string;
    present: boolean;
    up: boolean;
    /** Addresses the agent holds on the interface. */
    addresses: string[];
    /** Addresses on it that are not the agent's. */
    foreign: string[];
  } | null;
  /** The DR real-server role: the VIPs the agent holds on the loopback; null when the role is off. */
  loopback: { interface: string; addresses: string[] } | null;
  /**
   * The role's tunnel devices (tunl0, ip6tnl0, gre0, ip6gre0) that exist, with the VIPs the agent
   * holds there for Tunnel (IPIP, GRE) real servers; [] when the role is off or no module is loaded.
   */
  tunnels: { interface: string; up: boolean; addresses: string[] }[];
  /** Source NAT: the operator's nftables table; null when no SNAT manager runs. */
  snat: { table: string; present: boolean; virtualServices: string[] } | null;
  sysctls: SysctlEntry[];
  /** null when not read (IPVS missing, or the read failed). */
  timeouts: IpvsTimeouts | null;
  daemons: SyncDaemonConfig[];
  drift: NodeEdgeDrift[];
  /** Human-readable problems, each prefixed with its area ("VIP: ...", "Sysctl: ..."). */
  errors: string[];
}

export function buildNodeEdgeReport(parts: {
  vip?: VipReport;
  loopback?: VipReport;
  tunnels?: readonly VipReport[];
  snat?: SnatReport;
  sysctls?: SysctlReport;
  tuning?: TuningReport;
}): NodeEdgeReport {
  const { vip, loopback, snat, sysctls, tuning } = parts;
  const tunnels = parts.tunnels ?? [];
  const drift: NodeEdgeDrift[] = [];
  for (const [area, items] of [
    ["VIP", vip?.drift],
    ["LoopbackVIP", loopback?.drift],
    ...tunnels.map((t) => ["TunnelVIP", t.drift] as const),
    ["SNAT", snat?.drift],
  ] as const) {
    for (const d of items ?? []) {
      drift.push({
        area,
        kind: d.kind,
        object: d.object,
        ...(d.message ? { message: d.message } : {}),
        action: d.action,
      });
    }
  }
  const modified = (area: NodeEdgeArea, object: string, d: SysctlDrift | TuningDrift): NodeEdgeDrift => ({
    area,
    kind: "Modified",
    object,
    expected: d.expected,
    found: d.found,
    ...(d.message ? { message: d.message } : {}),
    action: d.action,
  });
  for (const d of sysctls?.drift ?? []) drift.push(modified("Sysctl", d.key, d));
  for (const d of tuning?.drift ?? []) {
    drift.push(modified(d.object.startsWith("daemon") ? "SyncDaemon" : "Timeout", d.object, d));
  }
  return {
    vip: vip
      ? {
          interface: vip.interface,
          present: vip.present,
          up: vip.up,
          addresses: vip.owned,
          foreign: vip.foreign,
        }
      : null,
    loopback: loopback ? { interface: loopback.interface, addresses: loopback.owned } : null,
    tunnels: tunnels
      .filter((t) => t.present)
      .map((t) => ({ interface: t.interface, up: t.up, addresses: t.owned })),
    snat: snat ? { table: snat.table, present: snat.present, virtualServices: snat.services } : null,
    sysctls: sysctls?.entries ?? [],
    timeouts: tuning?.timeouts ?? null,
    daemons: tuning?.daemons ?? [],
    drift,
    errors: [
      ...(vip?.errors ?? []).map((e) => `VIP: ${e}`),
      ...(loopback?.errors ?? []).map((e) => `Loopback VIP: ${e}`),
      ...tunnels.flatMap((t) => t.errors.map((e) => `Tunnel VIP: ${e}`)),
      ...(snat?.errors ?? []).map((e) => `SNAT: ${e}`),
      ...(sysctls?.errors ?? []).map((e) => `Sysctl: ${e}`),
      ...(tuning?.errors ?? []).map((e) => `IPVS: ${e}`),
    ],
  };
}

/** VIPs for the tunnel devices: by tunnel type, then by the real server's (the outer packet's) family. */
export type TunnelVips = Record<"IPIP" | "GRE", Record<Family, string[]>>;

/**
 * The tunnel devices that hold IPv4 VIPs of the role (loose rp_filter there: the decapsulated IPv4
 * packet's client is routed elsewhere); IPv6 has no reverse-path sysctl.
 */
export function devicesWithIpv4Vips(tunnelVips: TunnelVips): string[] {
  return TUNNEL_KINDS.filter((kind) => {
    const { type, family } = TUNNEL_CARRIES[kind];
    return tunnelVips[type][family].some((a) => ipFamily(a) === "IPv4");
  }).map((kind) => TUNNEL_DEVICE[kind]);
}

/** Where a tunnel device's VIPs belong in TunnelVips (for the VIPs held over input read in part). */
export function tunnelSlotOfDevice(name: string): { type: "IPIP" | "GRE"; family: Family } | undefined {
  const kind = TUNNEL_KINDS.find((k) => TUNNEL_DEVICE[k] === name);
  return kind ? TUNNEL_CARRIES[kind] : undefined;
}

export interface NodeEdgeDesired {
  /** Addresses to bind (owned VirtualServices with bindAddress: true); undefined = no VIP binding. */
  vips?: readonly string[];
  /** The DR real-server role's VIPs for the loopback; undefined = the role is off. */
  loopbackVips?: readonly string[];
  /**
   * The role's VIPs for the tunnel devices by tunnel type and real-server family (IPIP: tunl0,
   * ip6tnl0; GRE: gre0, ip6gre0); undefined = the role is off.
   */
  tunnelVips?: TunnelVips;
  /** The SNAT rules (VirtualService spec.snat); undefined = leave the table as it is. */
  snat?: readonly SnatService[];
  sysctls?: readonly SysctlSetting[];
  ipvs?: IpvsTuningConfig;
}

/** Runs the parts that are configured, one after the other; never throws for what the kernel says. */
export interface NodeEdgeParts {
  vip?: VipBinder;
  /** The DR real-server role's binder, on the loopback (VipBinder with existingLink). */
  loopback?: VipBinder;
  /** The role's binders on the tunnel devices (VipBinder with a tunnel kind each). */
  tunnels?: readonly VipBinder[];
  snat?: SnatManager;
  sysctls?: SysctlAsserter;
  tuner?: IpvsTuner;
}

export class NodeEdge {
  readonly #parts: NodeEdgeParts;

  constructor(parts: NodeEdgeParts) {
    this.#parts = parts;
  }

  /** A SNAT manager runs (the agent then computes the rules). */
  get hasSnat(): boolean {
    return this.#parts.snat !== undefined;
  }

  async sync(desired: NodeEdgeDesired): Promise<NodeEdgeReport> {
    return this.#run(desired, true);
  }

  /** The report without changing anything (for `plan`). */
  async observe(desired: NodeEdgeDesired): Promise<NodeEdgeReport> {
    return this.#run(desired, false);
  }

  async #run(desired: NodeEdgeDesired, apply: boolean): Promise<NodeEdgeReport> {
    const { vip, loopback, tunnels, snat, sysctls, tuner } = this.#parts;
    const parts: Parameters<typeof buildNodeEdgeReport>[0] = {};
    const bind = (binder: VipBinder, wanted: readonly string[]) =>
      apply ? binder.sync(wanted) : binder.observe(wanted);
    if (vip && desired.vips) parts.vip = await bind(vip, desired.vips);
    if (loopback && desired.loopbackVips) parts.loopback = await bind(loopback, desired.loopbackVips);
    if (tunnels && desired.tunnelVips) {
      const reports: VipReport[] = [];
      for (const binder of tunnels) {
        if (!binder.tunnel) continue;
        const { type, family } = TUNNEL_CARRIES[binder.tunnel];
        reports.push(await bind(binder, desired.tunnelVips[type][family]));
      }
      parts.tunnels = reports;
    }
    if (snat && desired.snat)
      parts.snat = apply ? await snat.sync(desired.snat) : await snat.observe(desired.snat);
    if (sysctls && desired.sysctls) {
      parts.sysctls = apply ? await sysctls.sync(desired.sysctls) : await sysctls.observe(desired.sysctls);
    }
    if (tuner && desired.ipvs)
      parts.tuning = apply ? await tuner.sync(desired.ipvs) : await tuner.observe(desired.ipvs);
    return buildNodeEdgeReport(parts);
  }
}
