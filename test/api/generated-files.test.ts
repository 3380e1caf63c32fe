import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { generateCrds } from "../../src/api/crds.ts";
import { CHART_CRD_DIR, chartCrdTemplate, generatedFiles } from "../../src/api/generated-files.ts";

const root = new URL("../../", import.meta.url);

describe("generated files are committed and up to date", () => {
  it.each(generatedFiles().map((f) => [f.path, f] as const))("%s", (path, file) => {
    let committed: string;
    try {
      committed = readFileSync(new URL(path, root), "utf8");
    } catch {
      committed = "<missing>";
    }
    expect(committed === file.content, `${path} is stale: run npm run gen:crds`).toBe(true);
  });

  it("deploy/crds.yaml holds the four CRDs as separate documents", () => {
    const deploy = generatedFiles().find((f) => f.path === "deploy/crds.yaml")!;
    const names = parseAllDocuments(deploy.content).map(
      (d) => (d.toJS() as { metadata: { name: string } }).metadata.name,
    );
    expect(names.sort()).toEqual([
      "ipvsaddresspolicies.ipvs.dev",
      "ipvsnodes.ipvs.dev",
      "realservers.ipvs.dev",
      "virtualservices.ipvs.dev",
    ]);
  });

  it("the chart carries the CRDs as templates only: a crds/ folder would install them twice", () => {
    expect(CHART_CRD_DIR).toBe("charts/ipvs-operator/templates/crds");
    expect(existsSync(new URL("charts/ipvs-operator/crds", root))).toBe(false);
    const chartCrds = generatedFiles().filter((f) => f.path.startsWith(`${CHART_CRD_DIR}/`));
    expect(chartCrds).toHaveLength(4);
    for (const file of chartCrds) {
      expect(file.content.startsWith("{{- if .Values.crds.install }}\n"), file.path).toBe(true);
      expect(file.content.trimEnd().endsWith("{{- end }}"), file.path).toBe(true);
    }
  });

  it("a CRD whose text holds template braces is refused, not rendered wrongly by Helm", () => {
    const [crd] = generateCrds();
    const object = structuredClone(crd!.object) as { spec: { names: { kind: string } } };
    object.spec.names.kind = "{{ .Values.x }}";
    expect(() => chartCrdTemplate({ ...crd!, object })).toThrow(/escape them/);
  });
});
