/**
 * charts/ipvs-operator/README.md's values table lists every value of values.yaml, once, with its
 * default as values.yaml has it, and no value values.yaml lacks; values.schema.json knows each one.
 * A value is a leaf of values.yaml, where an object the schema describes property by property is
 * walked into and anything else (a list, a map such as nodeSelector) is one value.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CHART_DIR } from "../../scripts/gen-install.ts";

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
}

const values = parse(readFileSync(`${CHART_DIR}/values.yaml`, "utf8")) as Record<string, unknown>;
const schema = JSON.parse(readFileSync(`${CHART_DIR}/values.schema.json`, "utf8")) as SchemaNode;
const readme = readFileSync(`${CHART_DIR}/README.md`, "utf8");

/** How the table writes a default: a string as it is ("" for the empty one), anything else as JSON. */
const written = (v: unknown) => (typeof v === "string" ? (v === "" ? '""' : v) : JSON.stringify(v));

function leaves(value: unknown, node: SchemaNode | undefined, path: string[], out: Map<string, string>) {
  const isObject = value !== null && typeof value === "object" && !Array.isArray(value);
  if (isObject && node?.properties && Object.keys(value).length > 0) {
    for (const [key, v] of Object.entries(value)) {
      expect(node.properties[key], `values.schema.json has no ${[...path, key].join(".")}`).toBeDefined();
      leaves(v, node.properties[key], [...path, key], out);
    }
  } else {
    out.set(path.join("."), written(value));
  }
  return out;
}

describe("the chart README's values table", () => {
  const fromValues = leaves(values, schema, [], new Map());
  const rows = [...readme.matchAll(/^\| `([^`]+)` \| `([^`]*)` \|/gm)].map((m) => [m[1]!, m[2]!] as const);

  it("has a row for every value, once, and none for a value that does not exist", () => {
    expect(rows.length).toBeGreaterThan(40);
    expect(rows.map(([path]) => path).sort()).toEqual([...fromValues.keys()].sort());
  });

  it("gives each value the default values.yaml has", () => {
    for (const [path, shown] of rows) expect(shown, path).toBe(fromValues.get(path));
  });
});
