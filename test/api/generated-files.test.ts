import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { generatedFiles } from "../../src/api/generated-files.ts";

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

  it("deploy/crds.yaml holds the three CRDs as separate documents", () => {
    const deploy = generatedFiles().find((f) => f.path === "deploy/crds.yaml")!;
    const names = parseAllDocuments(deploy.content).map(
      (d) => (d.toJS() as { metadata: { name: string } }).metadata.name,
    );
    expect(names.sort()).toEqual(["ipvsnodes.ipvs.dev", "realservers.ipvs.dev", "virtualservices.ipvs.dev"]);
  });
});
