/**
 * Writes every file generated from the zod schemas (crds/, the chart's CRD templates, deploy/crds.yaml) and
 * the field reference in docs/api.md.
 * Usage: node scripts/gen-crds.ts   (npm run gen:crds)
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { replaceFieldReference } from "../src/api/field-reference.ts";
import { generatedFiles } from "../src/api/generated-files.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

for (const file of generatedFiles()) {
  mkdirSync(dirname(`${root}${file.path}`), { recursive: true });
  writeFileSync(`${root}${file.path}`, file.content);
  process.stdout.write(`wrote ${file.path}\n`);
}
const docPath = `${root}docs/api.md`;
writeFileSync(docPath, replaceFieldReference(readFileSync(docPath, "utf8")));
process.stdout.write("updated docs/api.md\n");
