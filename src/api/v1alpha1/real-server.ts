/** RealServer: one real server (destination) of a VirtualService (ipvsadm -a). */
import { z } from "zod";
import {
  API_GROUP_VERSION,
  conditionsField,
  ipAddress,
  ObjectMetaSchema,
  objectName,
  observedGenerationField,
  portNumber,
  U32_MAX,
  withRules,
} from "./common.ts";
import { HealthCheckSchema } from "./health-check.ts";
import { ForwardingSchema } from "./virtual-service.ts";

export const RealServerSpecSchema = withRules(
  z.strictObject({
    virtualServiceRef: z
      .strictObject({ name: objectName("Name of the VirtualService in the same namespace.") })
      .meta({ description: "The VirtualService this real server belongs to (same namespace)." }),
    address: ipAddress(
      "Real server address (IPv4 or IPv6 literal); same family as the service unless forwarding is Tunnel.",
    ),
    port: portNumber(
      "Real server port; absent means the service port. NAT may remap; DirectRouting and Tunnel need the service port.",
    ).optional(),
    weight: z
      .int()
      .min(0)
      .max(65535)
      .default(1)
      .meta({ description: "Scheduling weight 0..65535 (ipvsadm -w); 0 = quiescent, no new connections." }),
    upperThreshold: z.int().min(0).max(U32_MAX).default(0).meta({
      description:
        "Connection upper threshold (ipvsadm -x): at this many connections the real server is overloaded and gets no new ones; 0 = no limit.",
    }),
    lowerThreshold: z.int().min(0).max(U32_MAX).default(0).meta({
      description:
        "Connection lower threshold (ipvsadm -y): an overloaded real server gets new connections again once it has fewer than this many; 0 = fewer than 3/4 of upperThreshold. At most upperThreshold, so 0 when there is no upper limit (the kernel rejects more with ERANGE).",
    }),
    forwarding: ForwardingSchema.optional().meta({
      description: "Override of the VirtualService forwarding for this real server.",
    }),
    healthCheck: HealthCheckSchema.optional().meta({
      description: "Replaces the VirtualService health check for this real server (same shape).",
    }),
    enabled: z.boolean().default(true).meta({
      description: "false = administratively drained: kept in the table at weight 0.",
    }),
  }),
  "Desired state of the real server.",
  [
    {
      // The kernel (ip_vs_add_dest / ip_vs_edit_dest) returns ERANGE for l_threshold > u_threshold, also
      // when u_threshold is 0 (no limit).
      rule: "self.lowerThreshold <= self.upperThreshold",
      message: "lowerThreshold must not exceed upperThreshold (0 when upperThreshold is 0)",
      fieldPath: ".lowerThreshold",
      check: (s) => s.lowerThreshold <= s.upperThreshold,
    },
  ],
);

export const RealServerStatusSchema = z
  .object({
    observedGeneration: observedGenerationField(),
    phase: z
      .enum(["Pending", "Active", "Draining", "Unhealthy", "Disabled"])
      .optional()
      .meta({ description: "Pending, Active, Draining, Unhealthy or Disabled." }),
    conditions: conditionsField("Healthy and Programmed (metav1.Condition)."),
    health: z
      .object({
        healthyNodes: z
          .int()
          .min(0)
          .default(0)
          .meta({ description: "Nodes that see this real server healthy." }),
        unhealthyNodes: z.int().min(0).default(0).meta({ description: "Nodes that see it unhealthy." }),
        lastError: z.string().max(1024).default("").meta({ description: "Most recent probe error, if any." }),
      })
      .optional()
      .meta({ description: "Health as seen from the nodes." }),
    connections: z
      .object({
        active: z.int().min(0).default(0).meta({ description: "Active connections, summed over nodes." }),
        inactive: z.int().min(0).default(0).meta({ description: "Inactive connections, summed over nodes." }),
      })
      .optional()
      .meta({ description: "Connection counts at the last node reports." }),
  })
  .meta({ description: "Observed state, aggregated from every node's IPVSNode." });

export const RealServerSchema = z.strictObject({
  apiVersion: z.literal(API_GROUP_VERSION).meta({ description: "ipvs.dev/v1alpha1" }),
  kind: z.literal("RealServer").meta({ description: "RealServer" }),
  metadata: ObjectMetaSchema,
  spec: RealServerSpecSchema,
  status: RealServerStatusSchema.optional(),
});

export type RealServer = z.output<typeof RealServerSchema>;
export type RealServerInput = z.input<typeof RealServerSchema>;
export type RealServerSpec = z.output<typeof RealServerSpecSchema>;
export type RealServerStatus = z.output<typeof RealServerStatusSchema>;
