/**
 * CustomResourceDefinitions generated from the zod schemas (the single source of truth), so the CRD's
 * OpenAPI + CEL validation and the runtime validation cannot drift apart.
 *
 * z.toJSONSchema (openapi-3.0 target, input side so defaulted fields are optional) gives a near-structural
 * schema; toStructural() turns it into what the apiserver accepts, and throws on anything it cannot.
 */
import { stringify } from "yaml";
import { z } from "zod";
import { AddressPolicySpecSchema, AddressPolicyStatusSchema } from "./v1alpha1/address-policy.ts";
import {
  API_GROUP,
  API_VERSION,
  IPVSNodeStatusSchema,
  RealServerSpecSchema,
  RealServerStatusSchema,
  VirtualServiceSpecSchema,
  VirtualServiceStatusSchema,
} from "./v1alpha1/index.ts";

export type JsonSchema = { [key: string]: unknown };

export interface GeneratedCrd {
  /** File name under crds/, e.g. "virtualservices.ipvs.dev.yaml". */
  fileName: string;
  object: JsonSchema;
  yaml: string;
}

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description: string;
  priority?: number;
}

interface KindDefinition {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  scope: "Namespaced" | "Cluster";
  description: string;
  spec?: z.ZodType;
  status: z.ZodType;
  columns: PrinterColumn[];
}

const conditionColumn = (type: string, name: string, description: string): PrinterColumn => ({
  name,
  type: "string",
  jsonPath: `.status.conditions[?(@.type=="${type}")].status`,
  description,
});
const AGE: PrinterColumn = {
  name: "Age",
  type: "date",
  jsonPath: ".metadata.creationTimestamp",
  description: "Time since creation.",
};

export const KINDS: readonly KindDefinition[] = [
  {
    kind: "VirtualService",
    plural: "virtualservices",
    singular: "virtualservice",
    shortNames: ["ipvsvs"],
    scope: "Namespaced",
    description: "One IPVS virtual service (ipvsadm -A), programmed on every selected node.",
    spec: VirtualServiceSpecSchema,
    status: VirtualServiceStatusSchema,
    columns: [
      {
        name: "Address",
        type: "string",
        jsonPath: ".status.address",
        description: "address:port or fwmark.",
      },
      { name: "Protocol", type: "string", jsonPath: ".spec.protocol", description: "TCP, UDP or SCTP." },
      { name: "Scheduler", type: "string", jsonPath: ".spec.scheduler", description: "IPVS scheduler." },
      {
        name: "Backends",
        type: "string",
        jsonPath: ".status.backends.summary",
        description: "Healthy/total real servers.",
      },
      {
        name: "Nodes",
        type: "string",
        jsonPath: ".status.nodes.summary",
        description: "Programmed/selected nodes.",
      },
      {
        name: "Drifted",
        type: "integer",
        jsonPath: ".status.nodes.drifted",
        description: "Nodes reporting drift.",
      },
      AGE,
    ],
  },
  {
    kind: "RealServer",
    plural: "realservers",
    singular: "realserver",
    shortNames: ["ipvsrs"],
    scope: "Namespaced",
    description: "One real server of a VirtualService (ipvsadm -a).",
    spec: RealServerSpecSchema,
    status: RealServerStatusSchema,
    columns: [
      {
        name: "VirtualService",
        type: "string",
        jsonPath: ".spec.virtualServiceRef.name",
        description: "The VirtualService.",
      },
      { name: "Address", type: "string", jsonPath: ".spec.address", description: "Real server address." },
      { name: "Weight", type: "integer", jsonPath: ".spec.weight", description: "Scheduling weight." },
      { name: "Phase", type: "string", jsonPath: ".status.phase", description: "Lifecycle phase." },
      conditionColumn("Healthy", "Healthy", "Healthy condition."),
      AGE,
    ],
  },
  {
    kind: "IPVSNode",
    plural: "ipvsnodes",
    singular: "ipvsnode",
    shortNames: ["ipvsnode"],
    scope: "Cluster",
    description: "What one node's agent sees and did (name = node name); written only by that agent.",
    status: IPVSNodeStatusSchema,
    columns: [
      { name: "Services", type: "integer", jsonPath: ".status.services", description: "IPVS services." },
      {
        name: "Destinations",
        type: "integer",
        jsonPath: ".status.destinations",
        description: "IPVS destinations.",
      },
      conditionColumn("Drifted", "Drifted", "Drifted condition."),
      { name: "Last-Sync", type: "date", jsonPath: ".status.lastSync.time", description: "Last sync." },
      conditionColumn("Ready", "Ready", "Ready condition."),
    ],
  },
  {
    kind: "IPVSAddressPolicy",
    plural: "ipvsaddresspolicies",
    singular: "ipvsaddresspolicy",
    shortNames: ["ipvspolicy"],
    scope: "Cluster",
    description:
      "Which namespaces may use which virtual addresses, ports and firewall marks (enforced by agents started with --address-policy Enforce).",
    spec: AddressPolicySpecSchema,
    status: AddressPolicyStatusSchema,
    columns: [
      { name: "Namespaces", type: "string", jsonPath: ".spec.namespaces", description: "Namespaces." },
      { name: "CIDRs", type: "string", jsonPath: ".spec.cidrs", description: "Virtual address ranges." },
      { name: "Ports", type: "string", jsonPath: ".spec.ports", description: "Ports.", priority: 1 },
      {
        name: "Fwmarks",
        type: "string",
        jsonPath: ".spec.fwmarks",
        description: "Firewall marks.",
        priority: 1,
      },
      AGE,
    ],
  },
];

/** Keywords the apiserver rejects in a structural schema (or that would make it non-structural). */
const FORBIDDEN = ["$ref", "$defs", "definitions", "$schema", "id", "$id", "uniqueItems", "additionalItems"];

/**
 * Makes a z.toJSONSchema(openapi-3.0) result structural. Throws with the path on anything that cannot be
 * expressed, so a schema change that would break the CRD fails the generator instead of the apiserver.
 */
export function toStructural(node: JsonSchema, path = ""): JsonSchema {
  const out: JsonSchema = { ...node };
  for (const k of ["$schema", "propertyNames"]) delete out[k];
  if (out["x-kubernetes-int-or-string"] === true) {
    delete out.anyOf;
    delete out.oneOf;
    delete out.type;
  }
  if (out.maximum === Number.MAX_SAFE_INTEGER) delete out.maximum; // z.int()'s implicit bounds are noise
  if (out.minimum === Number.MIN_SAFE_INTEGER) delete out.minimum;
  if (out.format === "date-time") delete out.pattern; // zod's ISO regex is not RE2; the format check suffices
  for (const k of FORBIDDEN) {
    if (k in out) throw new Error(`${path || "<root>"}: '${k}' is not allowed in a CRD schema`);
  }
  for (const k of ["anyOf", "oneOf", "allOf", "not"]) {
    if (k in out) throw new Error(`${path || "<root>"}: '${k}' is not structural; flatten it or use CEL`);
  }
  if (out.properties) {
    delete out.additionalProperties;
    const props: JsonSchema = {};
    for (const [name, sub] of Object.entries(out.properties as Record<string, JsonSchema>)) {
      props[name] = toStructural(sub, `${path}.${name}`);
    }
    out.properties = props;
    if (out.type === undefined) out.type = "object";
  } else if (out.additionalProperties && typeof out.additionalProperties === "object") {
    out.additionalProperties = toStructural(out.additionalProperties as JsonSchema, `${path}.*`);
  } else if (out.additionalProperties === false) {
    delete out.additionalProperties;
  }
  if (out.items) {
    if (Array.isArray(out.items)) throw new Error(`${path}: tuple items are not structural`);
    out.items = toStructural(out.items as JsonSchema, `${path}[]`);
  }
  if (out.type === undefined && out["x-kubernetes-int-or-string"] !== true) {
    throw new Error(`${path || "<root>"}: no type`);
  }
  return orderKeys(out);
}

const KEY_ORDER = ["type", "description", "default"];

/** type, description, default first; properties and items last: easier to read in YAML. */
function orderKeys(o: JsonSchema): JsonSchema {
  const keys = Object.keys(o);
  const last = ["properties", "required", "items", "additionalProperties", "x-kubernetes-validations"];
  const head = KEY_ORDER.filter((k) => k in o);
  const tail = last.filter((k) => k in o);
  const middle = keys.filter((k) => !head.includes(k) && !tail.includes(k)).sort();
  return Object.fromEntries([...head, ...middle, ...tail].map((k) => [k, o[k]]));
}

export function openApiSchema(schema: z.ZodType): JsonSchema {
  const raw = z.toJSONSchema(schema, {
    target: "openapi-3.0",
    io: "input",
    unrepresentable: "throw",
    reused: "inline",
    cycles: "throw",
  }) as JsonSchema;
  return toStructural(raw);
}

export function crdName(k: KindDefinition): string {
  return `${k.plural}.${API_GROUP}`;
}

function crdObject(k: KindDefinition): JsonSchema {
  const properties: JsonSchema = {
    apiVersion: {
      type: "string",
      description: "APIVersion defines the versioned schema of this representation of an object.",
    },
    kind: { type: "string", description: "Kind is a string value representing the REST resource." },
    // The API server accepts nothing under metadata but its type (and name/generateName constraints).
    metadata: { type: "object" },
  };
  if (k.spec) properties.spec = openApiSchema(k.spec);
  properties.status = openApiSchema(k.status);
  const openAPIV3Schema: JsonSchema = { type: "object", description: k.description, properties };
  if (k.spec) openAPIV3Schema.required = ["spec"];
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: crdName(k), labels: { "app.kubernetes.io/part-of": "ipvs-operator" } },
    spec: {
      group: API_GROUP,
      names: {
        kind: k.kind,
        listKind: `${k.kind}List`,
        plural: k.plural,
        singular: k.singular,
        shortNames: k.shortNames,
        categories: ["ipvs"],
      },
      scope: k.scope,
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: k.columns,
          schema: { openAPIV3Schema },
        },
      ],
    },
  };
}

export const GENERATED_HEADER =
  "# Generated by scripts/gen-crds.ts from src/api/v1alpha1 (npm run gen:crds). Do not edit.\n";

export function generateCrds(): GeneratedCrd[] {
  return KINDS.map((k) => {
    const object = crdObject(k);
    return {
      fileName: `${crdName(k)}.yaml`,
      object,
      yaml: GENERATED_HEADER + stringify(object, { lineWidth: 0 }),
    };
  });
}
