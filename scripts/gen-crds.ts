/**
 * Writes crds/<plural>.ipvs.dev.yaml and the field reference in docs/api.md from the zod schemas.
 * Usage: node scripts/gen-crds.ts   (npm run gen:crds)
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { generateCrds } from "../src/api/crds.ts";
import { replaceFieldReference } from "../src/api/field-reference.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

for (const crd of generateCrds()) {
  writeFileSync(`${root}crds/${crd.fileName}`, crd.yaml);
  process.stdout.write(`wrote crds/${crd.fileName}\n`);
}
const docPath = `${root}docs/api.md`;
writeFileSync(docPath, replaceFieldReference(readFileSync(docPath, "utf8")));
process.stdout.write("updated docs/api.md\n");
