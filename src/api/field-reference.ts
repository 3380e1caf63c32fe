/** Markdown field tables for docs/api.md, generated from the same schemas as the CRDs. */
import { generateCrds, type JsonSchema } from "./crds.ts";

export const REFERENCE_BEGIN = "<!-- BEGIN GENERATED FIELD REFERENCE (npm run gen:crds) -->";
export const REFERENCE_END = "<!-- END GENERATED FIELD REFERENCE -->";

interface Row {
  path: string;
  type: string;
  def: string;
  description: string;
}

function typeOf(s: JsonSchema): string {
  if (s["x-kubernetes-int-or-string"] === true) return "int or string";
  if (Array.isArray(s.enum)) return (s.enum as unknown[]).map((v) => String(v)).join(" | ");
  const t = String(s.type);
  if (t === "array") return `[]${typeOf(s.items as JsonSchema)}`;
  if (t === "object" && s.additionalProperties)
    return `map[string]${typeOf(s.additionalProperties as JsonSchema)}`;
  const bounds: string[] = [];
  if (s.minimum !== undefined || s.maximum !== undefined)
    bounds.push(`${s.minimum ?? ""}..${s.maximum ?? ""}`);
  if (s.format) bounds.push(String(s.format));
  return bounds.length > 0 ? `${t} (${bounds.join(", ")})` : t;
}

function walk(s: JsonSchema, path: string, required: boolean, rows: Row[]): void {
  const def = s.default === undefined ? "" : `\`${JSON.stringify(s.default)}\``;
  rows.push({
    path: `\`${path}\`${required ? " (required)" : ""}`,
    type: typeOf(s),
    def,
    description: String(s.description ?? ""),
  });
  const req = new Set((s.required as string[] | undefined) ?? []);
  for (const [name, sub] of Object.entries((s.properties as Record<string, JsonSchema>) ?? {})) {
    walk(sub, `${path}.${name}`, req.has(name), rows);
  }
  const items = s.items as JsonSchema | undefined;
  if (items?.properties) {
    const itemReq = new Set((items.required as string[] | undefined) ?? []);
    for (const [name, sub] of Object.entries(items.properties as Record<string, JsonSchema>)) {
      walk(sub, `${path}[].${name}`, itemReq.has(name), rows);
    }
  }
}

const esc = (text: string) =>
  text.replaceAll("|", "\\|").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll("\n", " ");

function rulesOf(s: JsonSchema, path: string, out: string[]): void {
  for (const v of (s["x-kubernetes-validations"] as { message: string }[] | undefined) ?? []) {
    out.push(`- \`${path}\`: ${v.message}`);
  }
  for (const [name, sub] of Object.entries((s.properties as Record<string, JsonSchema>) ?? {})) {
    rulesOf(sub, `${path}.${name}`, out);
  }
  if (s.items) rulesOf(s.items as JsonSchema, `${path}[]`, out);
}

/** The generated section (between the markers, markers included). */
export function generateFieldReference(): string {
  const parts: string[] = [REFERENCE_BEGIN, ""];
  for (const crd of generateCrds()) {
    const spec = crd.object.spec as JsonSchema;
    const kind = (spec.names as JsonSchema).kind as string;
    const version = (spec.versions as JsonSchema[])[0]!;
    const root = (version.schema as JsonSchema).openAPIV3Schema as JsonSchema;
    parts.push(`### ${kind} fields`, "");
    for (const top of ["spec", "status"]) {
      const sub = (root.properties as Record<string, JsonSchema>)[top];
      if (!sub) continue;
      const rows: Row[] = [];
      walk(sub, top, false, rows);
      parts.push("| Field | Type | Default | Description |", "|---|---|---|---|");
      for (const r of rows)
        parts.push(`| ${r.path} | ${esc(r.type)} | ${esc(r.def)} | ${esc(r.description)} |`);
      parts.push("");
    }
    const rules: string[] = [];
    rulesOf(root, kind, rules);
    if (rules.length > 0)
      parts.push(
        `Validation rules of ${kind} (CEL in the CRD, the same rules at runtime):`,
        "",
        ...rules,
        "",
      );
  }
  parts.push(REFERENCE_END);
  return parts.join("\n");
}

/** Replaces the generated section of a document; throws if the markers are missing. */
export function replaceFieldReference(doc: string): string {
  const a = doc.indexOf(REFERENCE_BEGIN);
  const b = doc.indexOf(REFERENCE_END);
  if (a < 0 || b < a)
    throw new Error(`docs/api.md lacks the markers ${REFERENCE_BEGIN} ... ${REFERENCE_END}`);
  return doc.slice(0, a) + generateFieldReference() + doc.slice(b + REFERENCE_END.length);
}
