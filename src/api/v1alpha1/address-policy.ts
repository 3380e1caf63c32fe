/**
 * IPVSAddressPolicy (cluster-scoped): which namespaces may use which virtual addresses, firewall marks
 * and ports (in the spirit of MetalLB's IPAddressPool with its namespaces). With the agent's
 * --address-policy Enforce, a VirtualService is programmed only when a policy for its namespace covers
 * its address and port (or its firewall mark); the ranges are checked by the agent (model/address-policy).
 */
import { z } from "zod";
import { conditionsField } from "./common.ts";

const RANGE = /^\d{1,10}(-\d{1,10})?$/;

export const AddressPolicySpecSchema = z
  .strictObject({
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
      .meta({
        description:
          "Namespaces whose VirtualServices may use the ranges of this policy; * means every namespace.",
        "x-kubernetes-list-type": "set",
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
  })
  .meta({ description: "Who may use which addresses, ports and firewall marks." });

export const AddressPolicyStatusSchema = z
  .object({
    conditions: conditionsField(
      "Reserved for metav1.Conditions; refused VirtualServices are reported on those objects.",
    ),
  })
  .meta({ description: "Reserved; the agents report refused VirtualServices on those objects." });

export type AddressPolicySpec = z.output<typeof AddressPolicySpecSchema>;
