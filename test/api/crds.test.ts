import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { generateCrds, type JsonSchema, toStructural } from "../../src/api/crds.ts";
import { generateFieldReference, REFERENCE_BEGIN, REFERENCE_END } from "../../src/api/field-reference.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const crds = generateCrds();
const byKind = (kind: string) => {
  const crd = crds.find((c) => (c.object.spec as { names: { kind: string } }).names.kind === kind);
  if (!crd) throw new Error(`no CRD for ${kind}`);
  return crd.object as {
    metadata: { name: string };
    spec: {
      scope: string;
      names: { shortNames: string[]; plural: string };
      versions: {
        name: string;
        subresources: { status: object };
        additionalPrinterColumns: { name: string; jsonPath: string; type: string }[];
        schema: { openAPIV3Schema: JsonSchema };
      }[];
    };
  };
};

describe("committed files are up to date", () => {
  it.each(crds.map((c) => [c.fileName, c] as const))("crds/%s", (fileName, crd) => {
    let committed = "";
    try {
      committed = readFileSync(`${root}crds/${fileName}`, "utf8");
    } catch {
      committed = "<missing>";
    }
    expect(committed === crd.yaml, `crds/${fileName} is stale: run npm run gen:crds`).toBe(true);
  });

  it("crds/ holds no other CRD files", () => {
    const names = crds.map((c) => c.fileName).sort();
    expect(names).toEqual([
      "ipvsaddresspolicies.ipvs.dev.yaml",
      "ipvsnodes.ipvs.dev.yaml",
      "realservers.ipvs.dev.yaml",
      "virtualservices.ipvs.dev.yaml",
    ]);
  });

  it("docs/api.md field reference", () => {
    const doc = readFileSync(`${root}docs/api.md`, "utf8");
    const a = doc.indexOf(REFERENCE_BEGIN);
    const b = doc.indexOf(REFERENCE_END);
    expect(a >= 0 && b > a, "docs/api.md lacks the generated-section markers").toBe(true);
    const section = doc.slice(a, b + REFERENCE_END.length);
    expect(section === generateFieldReference(), "docs/api.md is stale: run npm run gen:crds").toBe(true);
  });
});

describe("names, scope, columns", () => {
  it.each([
    [
      "VirtualService",
      "virtualservices.ipvs.dev",
      "Namespaced",
      ["ipvsvs"],
      ["Address", "Protocol", "Scheduler", "Backends", "Nodes", "Drifted", "Age"],
    ],
    [
      "RealServer",
      "realservers.ipvs.dev",
      "Namespaced",
      ["ipvsrs"],
      ["VirtualService", "Address", "Weight", "Phase", "Healthy", "Age"],
    ],
    [
      "IPVSNode",
      "ipvsnodes.ipvs.dev",
      "Cluster",
      ["ipvsnode"],
      ["Services", "Destinations", "Drifted", "Last-Sync", "Ready"],
    ],
  ])("%s", (kind, name, scope, shortNames, columns) => {
    const crd = byKind(kind);
    expect(crd.metadata.name).toBe(name);
    expect(crd.spec.scope).toBe(scope);
    expect(crd.spec.names.shortNames).toEqual(shortNames);
    const v = crd.spec.versions[0]!;
    expect(v.name).toBe("v1alpha1");
    expect(v.subresources).toEqual({ status: {} });
    expect(v.additionalPrinterColumns.map((c) => c.name.toUpperCase())).toEqual(
      columns.map((c) => c.toUpperCase()),
    );
    // Every column's path exists in the schema (or is metadata / a condition filter).
    const schema = v.schema.openAPIV3Schema;
    for (const col of v.additionalPrinterColumns) {
      if (col.jsonPath.startsWith(".metadata.") || col.jsonPath.includes("[?(")) continue;
      let node: JsonSchema | undefined = schema;
      for (const part of col.jsonPath.slice(1).split(".")) {
        node = (node?.properties as Record<string, JsonSchema> | undefined)?.[part];
      }
      expect(node, `${kind} column ${col.name}: ${col.jsonPath}`).toBeDefined();
      expect(node?.type).toBe(col.type === "date" ? "string" : col.type);
    }
  });
});

/** Walks a schema; `visit` gets every node with its path and whether it is a named property. */
function walk(
  node: JsonSchema,
  path: string,
  visit: (n: JsonSchema, p: string, isProperty: boolean) => void,
  isProperty = false,
) {
  visit(node, path, isProperty);
  for (const [k, sub] of Object.entries((node.properties as Record<string, JsonSchema>) ?? {}))
    walk(sub, `${path}.${k}`, visit, true);
  if (node.items && typeof node.items === "object") walk(node.items as JsonSchema, `${path}[]`, visit);
  if (node.additionalProperties && typeof node.additionalProperties === "object") {
    walk(node.additionalProperties as JsonSchema, `${path}.*`, visit);
  }
}

describe("structural schema checks", () => {
  const FORBIDDEN = [
    "$ref",
    "$defs",
    "definitions",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "uniqueItems",
    "additionalItems",
    "patternProperties",
    "dependencies",
    "$schema",
    "id",
    "const",
    "propertyNames",
  ];
  it.each(crds.map((c) => [c.fileName, c] as const))("%s", (_f, crd) => {
    const problems: string[] = [];
    const schema = (crd.object.spec as { versions: { schema: { openAPIV3Schema: JsonSchema } }[] })
      .versions[0]!.schema.openAPIV3Schema;
    walk(schema, "", (n, p, isProperty) => {
      // The API server refuses anything but `type: object` under the root's metadata (checked on the real
      // server by e2e/control-plane), so that one property has no description.
      if (p === ".metadata") {
        if (JSON.stringify(n) !== '{"type":"object"}') problems.push(`${p}: must be only {type: object}`);
      } else if (isProperty && !(typeof n.description === "string" && n.description.length > 0))
        problems.push(`${p}: no description`);
      for (const k of FORBIDDEN) if (k in n) problems.push(`${p}: forbidden ${k}`);
      if (n.properties && "additionalProperties" in n)
        problems.push(`${p}: additionalProperties beside properties`);
      if (n.type === undefined && n["x-kubernetes-int-or-string"] !== true) problems.push(`${p}: no type`);
      if (n.type === "null" || Array.isArray(n.type))
        problems.push(`${p}: bad type ${JSON.stringify(n.type)}`);
      if ("nullable" in n && n.nullable !== true) problems.push(`${p}: nullable must be true if present`);
      if (Array.isArray(n.items)) problems.push(`${p}: items as array`);
      const topLevel = p === ".apiVersion" || p === ".kind"; // no CEL reads them
      if (
        !topLevel &&
        n.type === "string" &&
        n.format === undefined &&
        n.enum === undefined &&
        n.maxLength === undefined &&
        n.pattern === undefined
      ) {
        problems.push(`${p}: string without maxLength (CEL cost)`);
      }
      if (n.type === "array" && n.maxItems === undefined)
        problems.push(`${p}: array without maxItems (CEL cost)`);
      if (n["x-kubernetes-list-type"] === "map") {
        const keys = n["x-kubernetes-list-map-keys"] as string[];
        const req = ((n.items as JsonSchema).required as string[]) ?? [];
        for (const k of keys) if (!req.includes(k)) problems.push(`${p}: list map key ${k} not required`);
      }
      if (n.default !== undefined && n.type === "object" && typeof n.default !== "object")
        problems.push(`${p}: bad default`);
    });
    // Top level: only apiVersion, kind, metadata, spec, status; metadata not described beyond type.
    expect(Object.keys(schema.properties as object).sort()).toEqual(
      crd.fileName.startsWith("ipvsnodes")
        ? ["apiVersion", "kind", "metadata", "status"]
        : ["apiVersion", "kind", "metadata", "spec", "status"],
    );
    expect(problems).toEqual([]);
  });

  it("every object with a CEL rule has a message for it", () => {
    for (const crd of crds) {
      const schema = (crd.object.spec as { versions: { schema: { openAPIV3Schema: JsonSchema } }[] })
        .versions[0]!.schema.openAPIV3Schema;
      walk(schema, "", (n) => {
        for (const v of (n["x-kubernetes-validations"] as { rule: string; message: string }[]) ?? []) {
          expect(v.rule.length).toBeGreaterThan(0);
          expect(v.message.length).toBeGreaterThan(0);
        }
      });
    }
  });

  it("the post-processor rejects what the apiserver would reject", () => {
    expect(() =>
      toStructural({
        type: "object",
        properties: { a: { anyOf: [{ type: "string" }, { type: "integer" }] } },
      }),
    ).toThrow(/\.a: 'anyOf' is not structural/);
    expect(() => toStructural({ type: "object", properties: { a: { $ref: "#/definitions/x" } } })).toThrow(
      /'\$ref'/,
    );
    expect(
      toStructural({ type: "object", properties: { a: { type: "string" } }, additionalProperties: false }),
    ).toEqual({
      type: "object",
      properties: { a: { type: "string" } },
    });
    expect(
      toStructural({ "x-kubernetes-int-or-string": true, anyOf: [{ type: "integer" }, { type: "string" }] }),
    ).toEqual({ "x-kubernetes-int-or-string": true });
  });
});
