/**
 * Building blocks shared by the v1alpha1 schemas: constants, field helpers, IP literal checks, and the
 * rule mechanism that keeps the runtime (zod) and CRD (CEL) validation of cross-field rules in one place.
 */
import { isIP } from "node:net";
import { z } from "zod";

export const API_GROUP = "ipvs.dev";
export const API_VERSION = "v1alpha1";
export const API_GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

/** Largest value of the kernel's unsigned 32-bit fields (fwmark, thresholds). */
export const U32_MAX = 4294967295;

/**
 * Is `text` an IP literal as Kubernetes' CEL `isIP()` accepts it: an IPv4 dotted quad without leading
 * zeros or an IPv6 address, with no zone (`%eth0`) and not IPv4-mapped (`::ffff:1.2.3.4`).
 */
export function isApiIp(text: string): boolean {
  if (isIP(text) === 0 || text.includes("%")) return false;
  return !isIpv4Mapped(text);
}

function isIpv4Mapped(text: string): boolean {
  if (!text.includes(":")) return false;
  // Expand to 8 hextets (an embedded IPv4 tail counts as two) and look at the first six.
  const lower = text.toLowerCase();
  const v4Tail = /\d+\.\d+\.\d+\.\d+$/.test(lower);
  const body = v4Tail ? lower.slice(0, lower.lastIndexOf(":") + 1) + "0:0" : lower;
  const [head = "", tail] = body.split("::");
  const headParts = head === "" ? [] : head.split(":");
  const tailParts = tail === undefined || tail === "" ? [] : tail.split(":");
  const fill = tail === undefined ? 0 : 8 - headParts.length - tailParts.length;
  const hextets = [...headParts, ...Array<string>(fill).fill("0"), ...tailParts].map((h) =>
    Number.parseInt(h, 16),
  );
  return hextets.slice(0, 5).every((h) => h === 0) && hextets[5] === 0xffff;
}

/** "IPv4" or "IPv6" for an address accepted by isApiIp (the CEL rules use `contains(':')`). */
export function apiIpFamily(address: string): "IPv4" | "IPv6" {
  return address.includes(":") ? "IPv6" : "IPv4";
}

/** A validation rule written once, enforced twice: by zod at runtime and by CEL in the CRD. */
export interface CelRule<T> {
  /** CEL expression over `self` (the object the rule is attached to; defaults already applied). */
  rule: string;
  message: string;
  /** Where the issue is reported, relative to the object, e.g. ".persistence.netmask" (CRD fieldPath). */
  fieldPath?: string;
  /** The same rule in TypeScript. */
  check: (self: T) => boolean;
}

/** A transition rule (CEL `oldSelf`); checked by the validate*Update functions at runtime. */
export interface CelTransitionRule<T> {
  rule: string;
  message: string;
  fieldPath?: string;
  check: (self: T, oldSelf: T) => boolean;
}

export interface CrdValidation {
  rule: string;
  message: string;
  fieldPath?: string;
}

/** Attaches rules to an object schema: a zod superRefine plus the CRD `x-kubernetes-validations`. */
export function withRules<S extends z.ZodType>(
  schema: S,
  description: string,
  rules: CelRule<z.output<S>>[],
  transitionRules: CelTransitionRule<z.output<S>>[] = [],
): S {
  const validations: CrdValidation[] = [...rules, ...transitionRules].map(({ rule, message, fieldPath }) =>
    fieldPath === undefined ? { rule, message } : { rule, message, fieldPath },
  );
  return schema
    .superRefine((value, ctx) => {
      for (const r of rules) {
        if (!r.check(value)) {
          ctx.addIssue({ code: "custom", message: r.message, path: fieldPathToArray(r.fieldPath) });
        }
      }
    })
    .meta({ description, "x-kubernetes-validations": validations }) as S;
}

export function fieldPathToArray(fieldPath: string | undefined): string[] {
  if (!fieldPath) return [];
  return fieldPath.split(".").filter((p) => p !== "");
}

// ---- field helpers --------------------------------------------------------------------------------

export const ipAddress = (description: string) =>
  z
    .string()
    .max(45)
    .refine(isApiIp, { message: "must be an IPv4 or IPv6 address literal (no zone, not IPv4-mapped)" })
    .meta({
      description,
      "x-kubernetes-validations": [
        { rule: "isIP(self)", message: "must be an IPv4 or IPv6 address literal" },
      ],
    });

export const portNumber = (description: string) => z.int().min(1).max(65535).meta({ description });

/** A DNS-1123 label (Kubernetes object names of Services, ports and the like). */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** A DNS-1123 subdomain (most object names). */
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export const objectName = (description: string) =>
  z.string().min(1).max(253).regex(DNS_SUBDOMAIN).meta({ description });

/** Contiguous IPv4 dotted masks, 0.0.0.0 .. 255.255.255.255. */
const MASK_OCTET = "(255|254|252|248|240|224|192|128|0)";
export const NETMASK_PATTERN = new RegExp(
  `^(255\\.255\\.255\\.${MASK_OCTET}|255\\.255\\.${MASK_OCTET}\\.0|255\\.${MASK_OCTET}\\.0\\.0|${MASK_OCTET}\\.0\\.0\\.0)$`,
);

// ---- shared types -----------------------------------------------------------------------------

export const FamilySchema = z.enum(["IPv4", "IPv6"]).meta({ description: "Address family: IPv4 or IPv6." });
export const ProtocolSchema = z
  .enum(["TCP", "UDP", "SCTP"])
  .meta({ description: "Transport protocol: TCP, UDP or SCTP." });

/** metav1.Condition. */
export const ConditionSchema = z
  .object({
    type: z
      .string()
      .min(1)
      .max(316)
      .meta({ description: "Type of condition in CamelCase, e.g. Accepted, Programmed, Healthy." }),
    status: z.enum(["True", "False", "Unknown"]).meta({ description: "Status of the condition." }),
    observedGeneration: z
      .int()
      .min(0)
      .optional()
      .meta({ description: "The .metadata.generation the condition was computed from." }),
    lastTransitionTime: z.iso
      .datetime({ offset: true })
      .meta({ description: "Last time the condition changed status (RFC 3339).", format: "date-time" }),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
      .meta({ description: "Machine-readable CamelCase reason for the last transition." }),
    message: z.string().max(32768).meta({ description: "Human-readable details about the transition." }),
  })
  .meta({ description: "A condition of the object (metav1.Condition)." });

export const conditionsField = (description: string) =>
  z
    .array(ConditionSchema)
    .max(16)
    .refine((cs) => new Set(cs.map((c) => c.type)).size === cs.length, {
      message: "duplicate condition type",
    })
    .optional()
    .meta({ description, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] });

export const observedGenerationField = () =>
  z.int().min(0).optional().meta({ description: "The .metadata.generation this status was computed from." });

/** metav1.ObjectMeta, only what validation needs; everything else passes through. */
export const ObjectMetaSchema = z
  .looseObject({
    name: z.string().min(1).max(253).meta({ description: "Object name." }),
    namespace: z.string().min(1).max(63).optional().meta({ description: "Object namespace." }),
  })
  .meta({ description: "Standard object metadata." });

/** metav1.LabelSelector. */
export const LabelSelectorSchema = z
  .strictObject({
    matchLabels: z
      .record(z.string().max(317), z.string().max(63))
      .optional()
      .meta({ description: "Labels that must all match (key: value)." }),
    matchExpressions: z
      .array(
        withRules(
          z.strictObject({
            key: z.string().min(1).max(317).meta({ description: "Label key the requirement applies to." }),
            operator: z
              .enum(["In", "NotIn", "Exists", "DoesNotExist"])
              .meta({ description: "In, NotIn, Exists or DoesNotExist." }),
            values: z
              .array(z.string().max(63).meta({ description: "A label value." }))
              .max(64)
              .optional()
              .meta({
                description: "Values for In / NotIn (non-empty); must be empty for Exists / DoesNotExist.",
              }),
          }),
          "A label selector requirement.",
          [
            {
              rule: "(self.operator == 'In' || self.operator == 'NotIn') == (has(self.values) && size(self.values) > 0)",
              message: "values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist",
              fieldPath: ".values",
              check: (r) =>
                (r.operator === "In" || r.operator === "NotIn") ===
                (r.values !== undefined && r.values.length > 0),
            },
          ],
        ),
      )
      .max(32)
      .optional()
      .meta({ description: "Label requirements that must all match." }),
  })
  .meta({ description: "A Kubernetes label selector (metav1.LabelSelector)." });
