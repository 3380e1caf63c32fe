import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadManifests, parseManifestText } from "../../src/files/manifest-source.ts";

const vs = (name: string, ns?: string) =>
  `apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: ${name}${ns ? `, namespace: ${ns}` : ""}}\nspec: {address: 192.0.2.1, port: 80}\n`;

describe("manifest source", () => {
  it("loads files and nested directories, sorts by kind, defaults the namespace, notes unknown kinds", async () => {
    const dir = await mkdtemp(join(tmpdir(), "manifests-"));
    await mkdir(join(dir, "nested"));
    await writeFile(
      join(dir, "a.yaml"),
      `${vs("one", "edge")}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\n${vs("two")}`,
    );
    await writeFile(
      join(dir, "nested", "b.yml"),
      "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: api}\n",
    );
    await writeFile(join(dir, "README.md"), "not a manifest");
    const load = await loadManifests([dir]);
    expect(load.errors).toEqual([]);
    expect(
      load.objects.virtualServices.map((o) => (o as { metadata: { namespace: string } }).metadata.namespace),
    ).toEqual(["edge", "default"]);
    expect(load.objects.services).toHaveLength(1);
    expect(load.notes).toHaveLength(1);
    expect(load.notes[0]).toContain('ignored apps/v1 Deployment "web"');
  });

  it("reports a broken document with its file and number and keeps the others", () => {
    const parsed = parseManifestText(`${vs("ok")}---\nkind: [unclosed\n---\n${vs("also-ok")}`, "x.yaml");
    expect(parsed.objects).toHaveLength(2);
    expect(parsed.errors).toHaveLength(1);
    expect(parsed.errors[0]).toMatch(/^x\.yaml: document 2: /);
  });

  it("reports a path that does not exist", async () => {
    const load = await loadManifests(["/nonexistent/manifests"]);
    expect(load.errors).toEqual(["/nonexistent/manifests: ENOENT"]);
  });
});
