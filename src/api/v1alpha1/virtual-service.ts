/** VirtualService: one IPVS virtual service (ipvsadm -A). */
import { z } from "zod";
import { IPVS_SCHEDULERS } from "../../vocabulary/table.ts";
import {
  API_GROUP_VERSION,
  apiIpFamily,
  type CelTransitionRule,
  conditionsField,
  DNS_LABEL,
  FamilySchema,
  ipAddress,
  LabelSelectorSchema,
  NETMASK_PATTERN,
  ObjectMetaSchema,
  observedGenerationField,
  ProtocolSchema,
  portNumber,
  U32_MAX,
  withRules,
} from "./common.ts";
import { HealthCheckSchema } from "./health-check.ts";

export const SCHEDULERS = IPVS_SCHEDULERS;
export const SchedulerSchema = z.enum(SCHEDULERS).meta({
  description:
    "IPVS scheduler (kernel module ip_vs_<name>): rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos.",
});

export const SCHEDULER_FLAGS = ["sh-fallback", "sh-port", "mh-fallback", "mh-port"] as const;

export const PersistenceSchema = withRules(
  z.strictObject({
    timeoutSeconds: z
      .int()
      .min(1)
      .max(2147483)
      .default(360)
      .meta({ description: "Persistence timeout in seconds (ipvsadm -p); 360 like ipvsadm and keepalived." }),
    netmask: z
      .string()
      .regex(NETMASK_PATTERN, { message: "must be a contiguous dotted IPv4 mask such as 255.255.255.0" })
      .optional()
      .meta({
        description:
          "IPv4 services only: client addresses under this contiguous dotted mask share one persistence entry (ipvsadm -M); absent means 255.255.255.255.",
      }),
    prefixLength: z.int().min(1).max(128).optional().meta({
      description:
        "IPv6 services only: client addresses with this prefix length share one persistence entry (ipvsadm -M); absent means 128.",
    }),
    engine: z
      .enum(["sip"])
      .optional()
      .meta({ description: "Persistence engine (ipvsadm --pe); only 'sip' exists." }),
  }),
  "Client persistence (ipvsadm -p / -M / --pe); absent means not persistent.",
  [
    {
      rule: "!(has(self.netmask) && has(self.prefixLength))",
      message: "netmask and prefixLength are mutually exclusive",
      fieldPath: ".prefixLength",
      check: (s) => !(s.netmask !== undefined && s.prefixLength !== undefined),
    },
  ],
);

export const TunnelSchema = withRules(
  z.strictObject({
    type: z
      .enum(["IPIP", "GUE", "GRE"])
      .default("IPIP")
      .meta({ description: "Encapsulation: IPIP, GUE or GRE." }),
    port: portNumber("GUE only (and required there): UDP destination port of the encapsulation.").optional(),
    checksum: z.enum(["None", "Checksum", "RemoteChecksum"]).default("None").meta({
      description:
        "GUE/GRE checksum: None, Checksum or RemoteChecksum (ipvsadm --tun-nocsum / --tun-csum / --tun-remcsum).",
    }),
  }),
  "Tunnel encapsulation (ipvsadm --tun-type); only with method Tunnel. Absent means IPIP.",
  [
    {
      rule: "self.type != 'GUE' || has(self.port)",
      message: "port is required with tunnel type GUE",
      fieldPath: ".port",
      check: (s) => s.type !== "GUE" || s.port !== undefined,
    },
    {
      rule: "!has(self.port) || self.type == 'GUE'",
      message: "port is only allowed with tunnel type GUE",
      fieldPath: ".port",
      check: (s) => s.port === undefined || s.type === "GUE",
    },
  ],
);

export const ForwardingSchema = withRules(
  z.strictObject({
    method: z.enum(["NAT", "DirectRouting", "Tunnel"]).default("NAT").meta({
      description:
        "NAT (masquerading, ipvsadm -m), DirectRouting (gatewaying, -g) or Tunnel (ipip/gue/gre, -i).",
    }),
    tunnel: TunnelSchema.optional(),
  }),
  "Packet forwarding method.",
  [
    {
      rule: "!has(self.tunnel) || self.method == 'Tunnel'",
      message: "tunnel is only allowed with method Tunnel",
      fieldPath: ".tunnel",
      check: (s) => s.tunnel === undefined || s.method === "Tunnel",
    },
  ],
);

export const ServiceRefSchema = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .max(63)
      .regex(DNS_LABEL)
      .meta({ description: "Name of a Service in the same namespace." }),
    port: z
      .union([z.int().min(1).max(65535), z.string().min(1).max(15).regex(DNS_LABEL)])
      .optional()
      .meta({
        description:
          "The Service port, by name or number; absent is allowed only when the Service has exactly one port.",
        "x-kubernetes-int-or-string": true,
        "x-kubernetes-validations": [
          {
            rule: "type(self) == int ? (self >= 1 && self <= 65535) : (size(self) <= 15 && self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'))",
            message: "must be a port number 1..65535 or a port name",
          },
        ],
      }),
  })
  .meta({ description: "A Service in the same namespace whose endpoints become real servers." });

export const BackendsSchema = z
  .strictObject({
    serviceRef: ServiceRefSchema,
    weight: z
      .int()
      .min(0)
      .max(65535)
      .default(1)
      .meta({ description: "Weight of every endpoint-derived real server." }),
    source: z.enum(["EndpointSlice", "Endpoints"]).default("EndpointSlice").meta({
      description: "Which API the endpoints are read from: EndpointSlice (default) or the legacy Endpoints.",
    }),
  })
  .meta({
    description:
      "Real servers taken from a Service's ready endpoints (optional, in addition to RealServer objects).",
  });

export const SorryServerSchema = z
  .strictObject({
    address: ipAddress("Address of the sorry server; same family as the service."),
    port: portNumber("Port of the sorry server; absent means the service port.").optional(),
  })
  .meta({ description: "Used only while no real server is healthy (keepalived sorry_server)." });

export const SnatSchema = withRules(
  z.strictObject({
    mode: z.enum(["Masquerade", "Address"]).default("Masquerade").meta({
      description:
        "Masquerade: the source becomes the address of the interface the packet leaves by. Address: the source becomes `address`.",
    }),
    address: ipAddress(
      "Mode Address only (and required there): the source address; same family as the service.",
    ).optional(),
  }),
  "Source NAT of this service's traffic to its NAT real servers, for one-arm NAT (the node and the real servers on one network, where the real servers would answer clients directly). The agent keeps one rule per service in an nftables table of its own (inet ipvs_operator) and turns on net.ipv4.vs.conntrack, which the rule needs. Absent: no source NAT.",
  [
    {
      rule: "self.mode != 'Address' || has(self.address)",
      message: "address is required with mode Address",
      fieldPath: ".address",
      check: (s) => s.mode !== "Address" || s.address !== undefined,
    },
    {
      rule: "!has(self.address) || self.mode == 'Address'",
      message: "address is only allowed with mode Address",
      fieldPath: ".address",
      check: (s) => s.address === undefined || s.mode === "Address",
    },
  ],
);

export const DrainSchema = z
  .strictObject({
    timeoutSeconds: z.int().min(0).max(86400).default(300).meta({
      description:
        "Seconds a removed real server stays at weight 0 (draining) before it is deleted; 0 deletes at once. UDP services (protocol UDP) never wait: their removed real servers are deleted at once whatever this says, as kube-proxy does, because UDP has no connection end to drain towards.",
    }),
  })
  .meta({ description: "Draining of removed real servers." });

/** Effective family of a spec: the family field, else the address's family. */
export function specFamily(spec: { address?: string | undefined; family?: "IPv4" | "IPv6" | undefined }) {
  if (spec.family) return spec.family;
  return spec.address === undefined ? undefined : apiIpFamily(spec.address);
}

// CEL for "the service family is IPv6" / "IPv4".
const CEL_IS_V6 =
  "(has(self.family) ? self.family == 'IPv6' : (has(self.address) && self.address.contains(':')))";
const CEL_IS_V4 =
  "(has(self.family) ? self.family == 'IPv4' : (has(self.address) && !self.address.contains(':')))";

const VirtualServiceSpecObject = z.strictObject({
  address: ipAddress(
    "Virtual IP (IPv4 or IPv6 literal). Key field, with port and protocol; immutable. Exclusive with firewallMark.",
  ).optional(),
  port: z.int().min(0).max(65535).optional().meta({
    description:
      "Virtual port, required with address; 0 means all ports and requires persistence. Immutable.",
  }),
  protocol: ProtocolSchema.optional().meta({
    description: "TCP, UDP or SCTP; only with address, absent means TCP. Immutable.",
  }),
  firewallMark: z.int().min(1).max(U32_MAX).optional().meta({
    description:
      "Firewall-mark service (ipvsadm -f) instead of address/port/protocol; requires family. Immutable.",
  }),
  family: FamilySchema.optional().meta({
    description: "IPv4 or IPv6; required with firewallMark, and must match the address when both are given.",
  }),
  scheduler: SchedulerSchema.default("wlc"),
  schedulerFlags: z
    .array(z.enum(SCHEDULER_FLAGS).meta({ description: "sh-fallback, sh-port, mh-fallback or mh-port." }))
    .max(4)
    .refine((flags) => new Set(flags).size === flags.length, { message: "duplicate scheduler flag" })
    .optional()
    .meta({
      description:
        "Scheduler flags (ipvsadm -b): sh-fallback and sh-port only with scheduler sh, mh-fallback and mh-port only with mh.",
      "x-kubernetes-list-type": "set",
    }),
  persistence: PersistenceSchema.optional(),
  onePacket: z.boolean().default(false).meta({
    description:
      "One-packet scheduling (ipvsadm -o): schedule every datagram on its own. Only for UDP services and firewall-mark services (which may carry UDP).",
  }),
  forwarding: ForwardingSchema.prefault({}).meta({
    description: "Default packet forwarding for every real server of this service.",
  }),
  backends: BackendsSchema.optional(),
  nodeSelector: LabelSelectorSchema.optional().meta({
    description:
      "Which nodes program this service (label selector on Node objects); absent means every agent.",
  }),
  bindAddress: z.boolean().default(true).meta({
    description: "Put the virtual IP on the node's dummy interface so the node accepts its packets.",
  }),
  snat: SnatSchema.optional(),
  healthCheck: HealthCheckSchema.optional(),
  sorryServer: SorryServerSchema.optional(),
  drain: DrainSchema.prefault({}),
  driftPolicy: z.enum(["Repair", "Report"]).default("Repair").meta({
    description:
      "Repair: undo changes made behind the operator's back. Report: only report drift, change nothing.",
  }),
});

type SpecShape = z.output<typeof VirtualServiceSpecObject>;

/** Key immutability: CEL transition rules in the CRD, checked at runtime by validateVirtualServiceUpdate. */
export const VIRTUAL_SERVICE_TRANSITION_RULES: CelTransitionRule<SpecShape>[] = [
  ...(["address", "port", "firewallMark"] as const).map((f) => ({
    rule: `has(self.${f}) == has(oldSelf.${f}) && (!has(self.${f}) || self.${f} == oldSelf.${f})`,
    message: `${f} is immutable`,
    fieldPath: `.${f}`,
    check: (s: SpecShape, o: SpecShape) => s[f] === o[f],
  })),
  {
    rule: "(has(self.protocol) ? self.protocol : 'TCP') == (has(oldSelf.protocol) ? oldSelf.protocol : 'TCP')",
    message: "protocol is immutable",
    fieldPath: ".protocol",
    check: (s, o) => (s.protocol ?? "TCP") === (o.protocol ?? "TCP"),
  },
  {
    rule: "!has(self.family) || !has(oldSelf.family) || self.family == oldSelf.family",
    message: "family is immutable",
    fieldPath: ".family",
    check: (s, o) => s.family === undefined || o.family === undefined || s.family === o.family,
  },
];

export const VirtualServiceSpecSchema = withRules(
  VirtualServiceSpecObject,
  "Desired state of the virtual service.",
  [
    {
      rule: "has(self.address) != has(self.firewallMark)",
      message: "exactly one of address (with port) or firewallMark (with family) must be set",
      check: (s) => (s.address !== undefined) !== (s.firewallMark !== undefined),
    },
    {
      rule: "!has(self.address) || has(self.port)",
      message: "port is required with address",
      fieldPath: ".port",
      check: (s) => s.address === undefined || s.port !== undefined,
    },
    {
      rule: "!has(self.firewallMark) || (!has(self.port) && !has(self.protocol))",
      message: "port and protocol are not allowed with firewallMark",
      fieldPath: ".firewallMark",
      check: (s) => s.firewallMark === undefined || (s.port === undefined && s.protocol === undefined),
    },
    {
      rule: "!has(self.firewallMark) || has(self.family)",
      message: "family is required with firewallMark",
      fieldPath: ".family",
      check: (s) => s.firewallMark === undefined || s.family !== undefined,
    },
    {
      rule: "!has(self.family) || !has(self.address) || (self.family == 'IPv6') == self.address.contains(':')",
      message: "family does not match the address",
      fieldPath: ".family",
      check: (s) => s.family === undefined || s.address === undefined || s.family === apiIpFamily(s.address),
    },
    {
      rule: "!has(self.port) || self.port != 0 || has(self.persistence)",
      message: "port 0 (all ports) requires persistence",
      fieldPath: ".port",
      check: (s) => s.port !== 0 || s.persistence !== undefined,
    },
    {
      rule: "!has(self.schedulerFlags) || self.schedulerFlags.all(f, f.startsWith(self.scheduler + '-'))",
      message: "schedulerFlags sh-* need scheduler sh and mh-* need scheduler mh",
      fieldPath: ".schedulerFlags",
      check: (s) => (s.schedulerFlags ?? []).every((f) => f.startsWith(`${s.scheduler}-`)),
    },
    {
      rule: "!self.onePacket || has(self.firewallMark) || (has(self.protocol) && self.protocol == 'UDP')",
      message: "onePacket is only allowed for UDP and firewall-mark services",
      fieldPath: ".onePacket",
      check: (s) => !s.onePacket || s.firewallMark !== undefined || s.protocol === "UDP",
    },
    {
      rule: `!has(self.persistence) || !has(self.persistence.netmask) || ${CEL_IS_V4}`,
      message: "persistence.netmask is only for IPv4 services (use prefixLength for IPv6)",
      fieldPath: ".persistence.netmask",
      check: (s) => s.persistence?.netmask === undefined || specFamily(s) === "IPv4",
    },
    {
      rule: `!has(self.persistence) || !has(self.persistence.prefixLength) || ${CEL_IS_V6}`,
      message: "persistence.prefixLength is only for IPv6 services (use netmask for IPv4)",
      fieldPath: ".persistence.prefixLength",
      check: (s) => s.persistence?.prefixLength === undefined || specFamily(s) === "IPv6",
    },
    {
      rule: `!has(self.sorryServer) || (self.sorryServer.address.contains(':') ? ${CEL_IS_V6} : ${CEL_IS_V4})`,
      message: "sorryServer.address must have the service's address family",
      fieldPath: ".sorryServer.address",
      check: (s) => s.sorryServer === undefined || apiIpFamily(s.sorryServer.address) === specFamily(s),
    },
    {
      rule: `!has(self.snat) || !has(self.snat.address) || (self.snat.address.contains(':') ? ${CEL_IS_V6} : ${CEL_IS_V4})`,
      message: "snat.address must have the service's address family",
      fieldPath: ".snat.address",
      check: (s) => s.snat?.address === undefined || apiIpFamily(s.snat.address) === specFamily(s),
    },
    {
      rule: "!has(self.sorryServer) || !has(self.sorryServer.port) || self.forwarding.method == 'NAT' || !has(self.port) || self.sorryServer.port == self.port",
      message:
        "with forwarding DirectRouting or Tunnel, sorryServer.port must equal the service port or be omitted",
      fieldPath: ".sorryServer.port",
      check: (s) =>
        s.sorryServer?.port === undefined ||
        s.forwarding.method === "NAT" ||
        s.port === undefined ||
        s.sorryServer.port === s.port,
    },
  ],
  VIRTUAL_SERVICE_TRANSITION_RULES,
);

export const VirtualServiceStatusSchema = z
  .object({
    observedGeneration: observedGenerationField(),
    conditions: conditionsField("Accepted, Programmed, BackendsHealthy and Drifted (metav1.Condition)."),
    address: z.string().max(64).optional().meta({
      description: "The service key for display: '192.0.2.10:80', '[2001:db8::1]:80' or 'fwmark 7'.",
    }),
    nodes: z
      .object({
        selected: z.int().min(0).default(0).meta({ description: "Nodes selected to program the service." }),
        programmed: z.int().min(0).default(0).meta({ description: "Nodes that programmed it." }),
        drifted: z.int().min(0).default(0).meta({ description: "Nodes that currently report drift for it." }),
        unlisted: z.int().min(0).optional().meta({
          description:
            "Nodes whose IPVSNode lists only part of its VirtualServices (past its bound), not this one: they may select it, so it is not Ready; absent when none.",
        }),
        summary: z
          .string()
          .max(32)
          .optional()
          .meta({ description: "'programmed/selected', for display; ' +N?' with N unlisted nodes." }),
      })
      .optional()
      .meta({ description: "Node counts." }),
    backends: z
      .object({
        total: z.int().min(0).default(0).meta({ description: "Real servers (objects and endpoints)." }),
        healthy: z.int().min(0).default(0).meta({ description: "Real servers healthy on the nodes." }),
        draining: z.int().min(0).default(0).meta({ description: "Real servers being drained." }),
        summary: z.string().max(32).optional().meta({ description: "'healthy/total', for display." }),
      })
      .optional()
      .meta({ description: "Real server counts." }),
  })
  .meta({ description: "Observed state, aggregated from every node's IPVSNode." });

export const VirtualServiceSchema = z.strictObject({
  apiVersion: z.literal(API_GROUP_VERSION).meta({ description: "ipvs.dev/v1alpha1" }),
  kind: z.literal("VirtualService").meta({ description: "VirtualService" }),
  metadata: ObjectMetaSchema,
  spec: VirtualServiceSpecSchema,
  status: VirtualServiceStatusSchema.optional(),
});

export type VirtualService = z.output<typeof VirtualServiceSchema>;
export type VirtualServiceInput = z.input<typeof VirtualServiceSchema>;
export type VirtualServiceSpec = z.output<typeof VirtualServiceSpecSchema>;
export type VirtualServiceStatus = z.output<typeof VirtualServiceStatusSchema>;
export type Persistence = z.output<typeof PersistenceSchema>;
export type Forwarding = z.output<typeof ForwardingSchema>;
export type Tunnel = z.output<typeof TunnelSchema>;
export type Backends = z.output<typeof BackendsSchema>;
export type ServiceRef = z.output<typeof ServiceRefSchema>;
export type SorryServer = z.output<typeof SorryServerSchema>;
export type Drain = z.output<typeof DrainSchema>;
export type Scheduler = (typeof SCHEDULERS)[number];
export type SchedulerFlag = (typeof SCHEDULER_FLAGS)[number];
