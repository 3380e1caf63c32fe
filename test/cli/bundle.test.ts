/**
 * The shipped form (decision 0008): the esbuild bundle of the CLI, built here into .cache/ (inside the
 * project, so the external `netlink` package resolves), run as its own Node process, gives the same
 * output as the sources for commands that touch every layer that needs no kernel: plan (manifests,
 * validation, engine, rendering), import (parsers), gen-crds (zod -> CRDs), and the agent's
 * configuration (flags, environment, zod), with the same exit codes.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundle } from "../../scripts/build.ts";

const root = resolve(import.meta.dirname, "../..");
mkdirSync(join(root, ".cache"), { recursive: true });
const dir = mkdtempSync(join(root, ".cache/bundle-test."));
const built = join(dir, "ipvs-operator.mjs");

function run(entry: string, args: string[], input?: string) {
  const r = spawnSync(process.execPath, [entry, ...args], {
    cwd: root,
    encoding: "utf8",
    input,
    env: { ...process.env, NODE_NAME: "" },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const both = (args: string[], input?: string) => ({
  bundle: run(built, args, input),
  sources: run(join(root, "src/cli/main.ts"), args, input),
});

beforeAll(async () => {
  await bundle("src/cli/main.ts", built);
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the bundled CLI", () => {
  it("is one file that carries no TypeScript and no client-node API it does not call", () => {
    const text = readFileSync(built, "utf8");
    expect(statSync(built).size).toBeLessThan(8 * 2 ** 20);
    expect(text).toContain("CoreV1ApiRequestFactory=class");
    expect(text).not.toContain("StorageV1ApiRequestFactory=class"); // tree-shaken: never called
    expect(text).not.toMatch(/\bfrom ?["']\.\.?\//); // no relative imports left
  });

  it("prints the version of package.json", () => {
    const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
    for (const arg of ["version", "--version"]) {
      expect(run(built, [arg])).toMatchObject({ code: 0, stdout: `ipvs-operator ${version}\n` });
    }
  });

  it("plans every example exactly as the sources do", () => {
    const args = ["plan", "-f", "examples", "--node", "vm", "--node-labels", "ipvs.dev/edge=true"];
    const r = both(args);
    expect(r.bundle.code).toBe(0);
    expect(r.bundle.stdout).toContain("-A -t");
    expect(r.bundle).toEqual(r.sources);
  });

  it("reports invalid input with the same error and exit code", () => {
    const manifest =
      "apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: a}\nspec: {port: 99999}\n";
    const file = join(dir, "invalid.yaml");
    writeFileSync(file, manifest);
    const r = both(["plan", "-f", file]);
    expect(r.bundle.code).not.toBe(0);
    expect(r.bundle.stdout + r.bundle.stderr).toMatch(/spec\.port|spec\.address/);
    expect(r.bundle).toEqual(r.sources);
  });

  it("imports ipvsadm rules and generates the CRDs as the sources do", () => {
    const rules = "-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.1.0.1:8080 -m -w 3\n";
    const imported = both(["import", "-"], rules);
    expect(imported.bundle.code).toBe(0);
    expect(imported.bundle.stdout).toContain("kind: RealServer");
    expect(imported.bundle).toEqual(imported.sources);
    const crds = both(["gen-crds", "--out", join(dir, "crds")]);
    expect(crds.bundle).toEqual(crds.sources);
    expect(crds.bundle.code).toBe(0);
  });

  it("validates the agent's configuration as the sources do", () => {
    const r = both(["agent", "--resync-interval", "soon"]);
    expect(r.bundle.code).not.toBe(0);
    expect(r.bundle.stderr).toMatch(/resync/i);
    expect(r.bundle).toEqual(r.sources);
    const help = both(["agent", "--help"]);
    expect(help.bundle.stdout).toContain("--kubeconfig");
    expect(help.bundle).toEqual(help.sources);
  });
});
