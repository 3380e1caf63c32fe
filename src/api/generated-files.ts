/**
 * Every file generated from the zod schemas, with its path in the repository: the CRDs in crds/, the
 * same CRDs in the Helm chart (charts/ipvs-operator/crds/, which Helm installs before the templates)
 * and as one stream in deploy/crds.yaml (for `kubectl apply -f`). scripts/gen-crds.ts writes them;
 * test/api/generated-files.test.ts fails when a committed copy is stale.
 * (docs/api.md's field reference is generated too, but only between markers: see field-reference.ts.)
 */
import { generateCrds } from "./crds.ts";

export interface GeneratedFile {
  path: string;
  content: string;
}

export const CHART_CRD_DIR = "charts/ipvs-operator/crds";

export function generatedFiles(): GeneratedFile[] {
  const crds = generateCrds();
  return [
    ...crds.map((crd) => ({ path: `crds/${crd.fileName}`, content: crd.yaml })),
    ...crds.map((crd) => ({ path: `${CHART_CRD_DIR}/${crd.fileName}`, content: crd.yaml })),
    { path: "deploy/crds.yaml", content: crds.map((crd) => crd.yaml).join("---\n") },
  ];
}
