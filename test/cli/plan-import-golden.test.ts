/**
 * Golden tests of `plan` over every example, and the `import` round trip:
 * plan(example) -> ipvsadm text -> import -> YAML -> plan -> the same text.
 * Regenerate the golden files with UPDATE_GOLDEN=1 after an intended change, and review the diff.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "./run-cli.ts";

const EXAMPLES = "examples";
const GOLDEN = "test/golden";
const update = process.env.UPDATE_GOLDEN === "1";
// node-selector.yaml selects nodes labelled ipvs.dev/edge=true.
const NODE = ["--node", "golden-node", "--node-labels", "ipvs.dev/edge=true"];

function golden(path: string, actual: string): void {
  if (update || !existsSync(path)) {
    if (!update) throw new Error(`missing golden file ${path}: run with UPDATE_GOLDEN=1 and review it`);
    writeFileSync(path, actual);
  }
  expect(actual).toBe(readFileSync(path, "utf8"));
}

const INPUTS = "test/golden/inputs"; // features that cannot be in examples/ (see each file)
const yamlFiles = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((f) => join(dir, f));
const examples = [...yamlFiles(EXAMPLES), ...yamlFiles(INPUTS)];

describe("plan golden output", () => {
  it("has examples to check", () => {
    expect(examples.length).toBeGreaterThanOrEqual(17);
  });

  for (const example of examples) {
    it(`plans ${example}`, async () => {
      const run = await runCli(["plan", "-f", example, ...NODE]);
      expect(run.stderr).toBe("");
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^-A /);
      golden(join(GOLDEN, "plan", basename(example).replace(/\.yaml$/, ".ipvsadm")), run.stdout);
    });
  }

  it("plans the whole examples directory as one table", async () => {
    const run = await runCli(["plan", "-f", EXAMPLES, ...NODE]);
    expect(run.code).toBe(0);
    golden(join(GOLDEN, "plan", "all-examples.ipvsadm"), run.stdout);
  });

  it("leaves out a service whose nodeSelector does not select the node", async () => {
    const run = await runCli(["plan", "-f", join(EXAMPLES, "node-selector.yaml"), "--node", "plain"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe("");
  });
});

describe("import round trip", () => {
  const dir = mkdtempSync(join(tmpdir(), "import-roundtrip-"));
  for (const example of examples) {
    it(`import(plan(${example})) plans the same table`, async () => {
      const planned = await runCli(["plan", "-f", example, ...NODE]);
      const save = join(dir, `${basename(example)}.ipvsadm`);
      writeFileSync(save, planned.stdout);
      const imported = await runCli(["import", save, "--namespace", "imported"]);
      expect(imported.stderr).toBe("");
      expect(imported.code).toBe(0);
      const manifest = join(dir, basename(example));
      writeFileSync(manifest, imported.stdout);
      const replanned = await runCli(["plan", "-f", manifest]);
      expect(replanned.stderr).toBe("");
      expect(replanned.stdout).toBe(planned.stdout);
    });
  }

  it("imports the full feature set to reviewed YAML and plans it back", async () => {
    const source = join(GOLDEN, "import", "feature-set.ipvsadm");
    const imported = await runCli(["import", source, "--namespace", "lb"]);
    expect(imported.code).toBe(0);
    golden(join(GOLDEN, "import", "feature-set.yaml"), imported.stdout);
    const manifest = join(dir, "feature-set.yaml");
    writeFileSync(manifest, imported.stdout);
    const replanned = await runCli(["plan", "-f", manifest]);
    expect(replanned.stdout).toBe(readFileSync(source, "utf8"));
  });
});
