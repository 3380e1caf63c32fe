/**
 * IPVSAddressPolicy (cluster-scoped): which namespaces may use which virtual addresses, firewall marks
 * and ports (in the spirit of MetalLB's IPAddressPool with its namespaces and namespaceSelectors). A
 * policy is for a namespace named in spec.namespaces (or every one with *) or whose labels one of
 * spec.namespaceSelectors matches; it needs at least one of the two. With the agent's
 * --address-policy Enforce, a VirtualService is programmed only when a policy for its namespace covers
 * its address and port (or its firewall mark); the ranges are checked by the agent (model/address-policy).
 */
import { z } from "zod";
import { conditionsField, LabelSelectorSchema, withRules } from "./common.ts";

const RANGE = /^\d{1,10}(-\d{1,10})?$/;

export const AddressPolicySpecSchema = withRules(
  z.strictObject({
    namespaces: z
      .array(
        z
          .string()
          .min(1)
          .max(63)
          .regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?|\*)$/, "must be a namespace name or *")
          .meta({ description: "A namespace name, or * for every namespace." }),
      )
      .min(1)
      .max(1000)
      .optional()
      .meta({
        description:
          "Namespaces whose VirtualServices may use the ranges of this policy; * means every namespace. Optional when namespaceSelectors is set.",
        "x-kubernetes-list-type": "set",
      }),
    namespaceSelectors: z
      .array(
        LabelSelectorSchema.meta({
          description:
            "A label selector on Namespace objects (matchLabels, matchExpressions); {} selects every namespace.",
        }),
      )
      .min(1)
      .max(32)
      .optional()
      .meta({
        description:
          "Namespaces whose labels match any of these selectors may also use the ranges of this policy (as MetalLB's serviceAllocation.namespaceSelectors). Optional when namespaces is set.",
      }),
    cidrs: z
      .array(
        z
          .string()
          .max(49)
          .regex(/^[0-9a-fA-F:.]+\/\d{1,3}$/, "must be a CIDR like 192.0.2.0/24 or 2001:db8::/64")
          .meta({ description: "An IPv4 or IPv6 CIDR." }),
      )
      .max(256)
      .optional()
      .meta({ description: "Virtual addresses (spec.address) allowed, as CIDRs." }),
    ports: z
      .array(
        z.string().max(11).regex(RANGE, "must be a port N or a range A-B").meta({ description: "N or A-B." }),
      )
      .max(256)
      .optional()
      .meta({
        description:
          "Ports allowed with those addresses (N or A-B); absent: every port. Port 0 (every port of the address) only when a range includes 0.",
      }),
    fwmarks: z
      .array(
        z.string().max(21).regex(RANGE, "must be a mark N or a range A-B").meta({ description: "N or A-B." }),
      )
      .max(256)
      .optional()
      .meta({ description: "Firewall marks (spec.firewallMark) allowed (N or A-B)." }),
  }),
  "Who may use which addresses, ports and firewall marks.",
  [
    {
      rule: "has(self.namespaces) || has(self.namespaceSelectors)",
      message: "a policy needs namespaces or namespaceSelectors (or both): which namespaces it is for",
      check: (s) => s.namespaces !== undefined || s.namespaceSelectors !== undefined,
    },
  ],
);

export const AddressPolicyStatusSchema = z
  .object({
    conditions: conditionsField(
      "Reserved for metav1.Conditions; refused VirtualServices are reported on those objects.",
    ),
  })
  .meta({ description: "Reserved; the agents report refused VirtualServices on those objects." });

export type AddressPolicySpec = z.output<typeof AddressPolicySpecSchema>;
