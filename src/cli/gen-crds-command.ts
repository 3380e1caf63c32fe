/**
 * `ipvs-operator gen-crds [--out DIR]`: writes the CRDs generated from the zod schemas, or prints them
 * as one multi-document YAML stream to stdout (for `| kubectl apply -f -`) when no --out is given.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { generateCrds } from "../api/crds.ts";
import { parseOptions } from "./options.ts";

export async function genCrdsCommand(args: string[]): Promise<number> {
  const { values } = parseOptions("gen-crds", args, { out: { type: "string" } });
  if (values.help) {
    process.stdout.write("Usage: ipvs-operator gen-crds [--out DIR]   (stdout when no --out)\n");
    return 0;
  }
  const crds = generateCrds();
  if (values.out === undefined) {
    process.stdout.write(crds.map((c) => c.yaml).join("---\n"));
    return 0;
  }
  await mkdir(values.out, { recursive: true });
  for (const crd of crds) {
    await writeFile(join(values.out, crd.fileName), crd.yaml);
    process.stderr.write(`wrote ${join(values.out, crd.fileName)}\n`);
  }
  return 0;
}
