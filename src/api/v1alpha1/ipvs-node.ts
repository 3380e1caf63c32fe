/** IPVSNode (cluster-scoped, name = node name): what one node's agent sees and did. Status only. */
import { z } from "zod";
import { API_GROUP_VERSION, conditionsField, ObjectMetaSchema } from "./common.ts";

const time = (description: string) =>
  z.iso.datetime({ offset: true }).meta({ description, format: "date-time" });
const count = (description: string) => z.int().min(0).default(0).meta({ description });

/** Bounds of the per-node lists (most recent / most relevant entries first). */
export const IPVS_NODE_LIMITS = {
  drift: 50,
  /** Entries of the per VirtualService list (those with something to report). */
  virtualServices: 1000,
  /**
   * JSON bytes of `virtualServices` and `programmedVirtualServices` together (docs/decisions/0012): at
   * ~25 bytes a name, about 15,000 VirtualServices; past it `virtualServiceCounts.unlisted` says how many
   * are in neither list.
   */
  virtualServiceBytes: 384 * 1024,
  backends: 5000,
  vips: 1000,
  foreignVips: 100,
  errors: 10,
} as const;

const str = (max: number, description: string) => z.string().max(max).meta({ description });

/** The node plumbing around IPVS as this node's agent last found and left it. */
export const NodeEdgeStatusSchema = z
  .object({
    vip: z
      .object({
        interface: str(15, "The dummy interface that holds the VIPs."),
        present: z.boolean().meta({ description: "Whether it exists." }),
        up: z.boolean().meta({ description: "Whether it is up." }),
        addresses: z
          .array(str(45, "An address the agent holds."))
          .max(IPVS_NODE_LIMITS.vips)
          .optional()
          .meta({ description: "Addresses the agent holds on it (bounded)." }),
        foreign: z
          .array(str(64, "An address someone else put there."))
          .max(IPVS_NODE_LIMITS.foreignVips)
          .optional()
          .meta({ description: "Addresses on it that are not the agent's: reported, never removed." }),
      })
      .optional()
      .meta({ description: "VIP binding; absent when off." }),
    loopback: z
      .object({
        interface: str(15, "The loopback interface."),
        addresses: z
          .array(str(45, "A VIP the agent holds on the loopback."))
          .max(IPVS_NODE_LIMITS.vips)
          .optional()
          .meta({
            description: "VIPs of DirectRouting services whose real servers are on this node (bounded).",
          }),
      })
      .optional()
      .meta({ description: "The DR real-server role (--dr-real-server); absent when off." }),
    tunnels: z
      .array(
        z.object({
          interface: str(
            15,
            "The tunnel device: tunl0, ip6tnl0 (IPIP over IPv4, IPv6), gre0 or ip6gre0 (GRE).",
          ),
          up: z.boolean().meta({ description: "Whether the device is up." }),
          addresses: z
            .array(str(45, "A VIP the agent holds on the tunnel device."))
            .max(IPVS_NODE_LIMITS.vips)
            .optional()
            .meta({
              description:
                "VIPs of Tunnel (IPIP or GRE) services whose real servers are on this node (bounded).",
            }),
        }),
      )
      .max(4)
      .optional()
      .meta({
        description:
          "The real-server role's tunnel devices that exist on the node (--dr-real-server); absent when none.",
      }),
    snat: z
      .object({
        table: str(64, "The agent's nftables table (inet ipvs_operator)."),
        present: z.boolean().meta({ description: "Whether the table exists." }),
        virtualServices: z
          .array(str(253, "namespace/name"))
          .max(IPVS_NODE_LIMITS.vips)
          .optional()
          .meta({ description: "VirtualServices with a source NAT rule on this node (bounded)." }),
      })
      .optional()
      .meta({ description: "Source NAT for one-arm NAT (VirtualService spec.snat); absent when off." }),
    sysctls: z
      .array(
        z.object({
          key: str(128, "The sysctl."),
          value: str(256, "Its value when read (before a write); absent when missing.").optional(),
          expected: str(256, "The configured value.").optional(),
          policy: z
            .enum(["Enforce", "Report"])
            .meta({ description: "Enforce (written) or Report (only read)." }),
          state: z
            .enum(["Ok", "Set", "Differs", "Observed", "Missing", "Failed"])
            .meta({ description: "Ok, Set (written now), Differs (reported), Observed, Missing or Failed." }),
        }),
      )
      .max(32)
      .optional()
      .meta({ description: "The node's IPVS sysctls (and the DR role's ARP settings; bounded)." }),
    timeouts: z
      .object({
        tcp: z.int().min(0).meta({ description: "TCP session timeout (s)." }),
        tcpFin: z.int().min(0).meta({ description: "TCP FIN_WAIT timeout (s)." }),
        udp: z.int().min(0).meta({ description: "UDP timeout (s)." }),
      })
      .optional()
      .meta({ description: "IPVS timeouts as read from the kernel (ipvsadm -L --timeout)." }),
    daemons: z
      .array(
        z.object({
          state: z.enum(["Master", "Backup"]).meta({ description: "Master or Backup." }),
          interface: str(15, "Multicast interface."),
          syncId: z.int().min(0).max(255).meta({ description: "Sync id." }),
        }),
      )
      .max(2)
      .optional()
      .meta({ description: "Connection sync daemons running (ipvsadm -L --daemon)." }),
    drift: z
      .array(
        z.object({
          area: z
            .enum(["VIP", "LoopbackVIP", "TunnelVIP", "SNAT", "Sysctl", "Timeout", "SyncDaemon"])
            .meta({ description: "What it is about." }),
          kind: str(
            32,
            "InterfaceMissing, InterfaceDown, AddressMissing, Foreign, TableMissing, RulesModified or Modified.",
          ),
          object: str(128, "The interface, address, nftables table, sysctl, timeout or daemon."),
          expected: str(256, "What the configuration says.").optional(),
          found: str(256, "What the node had.").optional(),
          action: z.enum(["Repaired", "Reported", "Ignored"]).meta({ description: "What the agent did." }),
        }),
      )
      .max(IPVS_NODE_LIMITS.drift)
      .optional()
      .meta({ description: "Differences found by the last sync (bounded)." }),
    errors: z
      .array(str(1024, "One problem."))
      .max(IPVS_NODE_LIMITS.errors)
      .optional()
      .meta({ description: "Problems of the last sync, by area (bounded)." }),
  })
  .meta({
    description:
      "VIPs, the DR real-server role, source NAT, sysctls, IPVS timeouts and sync daemons on this node.",
  });

const BackendCountsSchema = z
  .object({
    total: z.int().min(0).meta({
      description: "Real servers in this node's table for it (the sorry server not counted).",
    }),
    healthy: z.int().min(0).meta({
      description: "Of those, the ones that take new connections (not draining, not quiesced).",
    }),
    draining: z.int().min(0).meta({ description: "Of those, the ones being drained." }),
  })
  .meta({ description: "Real server counts on this node." });

export const DriftEntrySchema = z
  .object({
    detectedAt: time("When the difference was found."),
    kind: z.enum(["Missing", "Unexpected", "Modified", "Foreign"]).meta({
      description:
        "Missing (desired, absent), Unexpected (present in the managed scope, not desired), Modified (a field differs) or Foreign (outside the managed scope; never touched).",
    }),
    service: z
      .string()
      .max(128)
      .meta({ description: "The service key, e.g. 'TCP 192.0.2.10:80' or 'FWM 7 IPv4'." }),
    destination: z
      .string()
      .max(64)
      .optional()
      .meta({ description: "The destination, e.g. '198.51.100.5:8080'; absent for a service-level drift." }),
    field: z
      .string()
      .max(64)
      .optional()
      .meta({ description: "For Modified: the field that differs, e.g. weight." }),
    expected: z.string().max(256).optional().meta({ description: "For Modified: the desired value." }),
    actual: z
      .string()
      .max(256)
      .optional()
      .meta({ description: "For Modified: the value found in the kernel." }),
    action: z
      .enum(["Repaired", "Reported", "Ignored"])
      .meta({ description: "Repaired, Reported or Ignored." }),
  })
  .meta({ description: "One difference between the desired and the actual IPVS table." });

export const IPVSNodeStatusSchema = z
  .object({
    kernel: z
      .object({
        ipvsVersion: z.string().max(32).optional().meta({ description: "IPVS version, e.g. 1.2.1." }),
        connectionTableSize: z
          .int()
          .min(0)
          .optional()
          .meta({ description: "Size of the connection hash table." }),
        schedulers: z
          .array(z.string().max(16).meta({ description: "A scheduler name." }))
          .max(64)
          .optional()
          .meta({ description: "Schedulers the kernel can load.", "x-kubernetes-list-type": "set" }),
      })
      .optional()
      .meta({ description: "What the node's kernel offers." }),
    lastSync: z
      .object({
        time: time("When the last sync finished."),
        durationMilliseconds: z.int().min(0).meta({ description: "How long it took." }),
        result: z
          .enum(["Success", "PartialFailure", "Failure"])
          .meta({ description: "Success, PartialFailure or Failure." }),
        operations: z.int().min(0).meta({ description: "Kernel operations applied." }),
        message: z.string().max(4096).optional().meta({ description: "Errors, if any." }),
      })
      .optional()
      .meta({ description: "The most recent reconciliation of the kernel table." }),
    services: count("IPVS services in the managed scope on this node."),
    destinations: count("IPVS destinations in the managed scope on this node."),
    conditions: conditionsField("Ready, Synced and Drifted (metav1.Condition)."),
    drift: z
      .array(DriftEntrySchema)
      .max(IPVS_NODE_LIMITS.drift)
      .optional()
      .meta({ description: "Most recent differences first, bounded." }),
    virtualServices: z
      .array(
        z
          .object({
            name: z.string().max(317).meta({ description: "namespace/name of the VirtualService." }),
            programmed: z.boolean().meta({ description: "Whether it is in this node's kernel as desired." }),
            drifted: z
              .boolean()
              .optional()
              .meta({ description: "Whether this node reports a difference for it that is not repaired." }),
            message: z.string().max(1024).default("").meta({ description: "Why not, if not." }),
            backends: BackendCountsSchema.optional(),
          })
          .meta({ description: "One VirtualService on this node." }),
      )
      .max(IPVS_NODE_LIMITS.virtualServices)
      .optional()
      .meta({
        description:
          "The VirtualServices of this node with something to report (not programmed, drifted or with a message), not programmed first; bounded.",
      }),
    programmedVirtualServices: z
      .array(
        z
          .object({
            namespace: z.string().max(63).meta({ description: "Their namespace." }),
            backends: BackendCountsSchema.optional(),
            names: z
              .array(z.string().max(253).meta({ description: "A VirtualService name." }))
              .max(100_000)
              .meta({ description: "Their names, sorted." }),
          })
          .meta({ description: "VirtualServices of one namespace with the same real server counts." }),
      )
      .max(10_000)
      .optional()
      .meta({
        description:
          "The other VirtualServices of this node: programmed as desired, nothing to report. Grouped by namespace and real server counts, a name costs its length + 3 bytes (10,000 names of 20 characters: ~230 KB); bounded in bytes together with virtualServices.",
      }),
    virtualServiceCounts: z
      .object({
        total: count("VirtualServices of this node: in its desired table or refused with a problem."),
        programmed: count("Of those, the ones programmed as desired."),
        unlisted: count(
          "Of those, the ones in neither list (past the byte bound). The aggregator does not count a VirtualService Ready while a node with unlisted ones does not list it.",
        ),
      })
      .optional()
      .meta({ description: "How many VirtualServices this node has and how many its lists leave out." }),
    backendCounts: z
      .object({
        probed: count("Real servers this node probes."),
        unhealthy: count("Of those, the ones unhealthy as seen from this node."),
        unlisted: count(
          "Of those, the ones left out of `backends` (past its bound, healthy ones first): their RealServers show Healthy Unknown (NotListed) instead of a result.",
        ),
      })
      .optional()
      .meta({ description: "How many real servers this node probes and how many `backends` leaves out." }),
    backends: z
      .array(
        z
          .object({
            virtualService: z
              .string()
              .max(317)
              .meta({ description: "namespace/name of the VirtualService." }),
            address: z.string().max(45).meta({ description: "Real server address." }),
            port: z.int().min(0).max(65535).meta({ description: "Real server port." }),
            realServer: z.string().max(317).optional().meta({
              description: "namespace/name of the RealServer; absent for a real server from endpoints.",
            }),
            healthy: z.boolean().meta({ description: "Health as seen from this node." }),
            lastProbe: time("When it was last probed.").optional(),
            message: z.string().max(1024).default("").meta({ description: "Last probe error, if any." }),
          })
          .meta({ description: "One real server as seen from this node." }),
      )
      .max(IPVS_NODE_LIMITS.backends)
      .optional()
      .meta({ description: "Per real server health as seen from this node, bounded." }),
    nodeEdge: NodeEdgeStatusSchema.optional(),
  })
  .meta({ description: "What this node's agent sees and did; written only by that agent." });

export const IPVSNodeSchema = z.object({
  apiVersion: z.literal(API_GROUP_VERSION).meta({ description: "ipvs.dev/v1alpha1" }),
  kind: z.literal("IPVSNode").meta({ description: "IPVSNode" }),
  metadata: ObjectMetaSchema,
  status: IPVSNodeStatusSchema.optional(),
});

export type IPVSNode = z.output<typeof IPVSNodeSchema>;
export type IPVSNodeStatus = z.output<typeof IPVSNodeStatusSchema>;
export type DriftEntry = z.output<typeof DriftEntrySchema>;
