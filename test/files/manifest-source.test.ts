import { mkdir, mkdtemp, symlink, writeFile } from "node:fs/promises";
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
    expect(parsed.documents.map((d) => d.where)).toEqual(["x.yaml: document 1", "x.yaml: document 3"]);
    expect(parsed.errors).toHaveLength(1);
    expect(parsed.errors[0]).toMatch(/^x\.yaml: document 2: /);
  });

  it("reports an alias without its anchor as that document's error, never throwing", () => {
    const parsed = parseManifestText(
      `${vs("ok")}---
kind: VirtualService
spec: {scheduler: *missing}
`,
      "a.yaml",
    );
    expect(parsed.documents.map((d) => d.where)).toEqual(["a.yaml: document 1"]);
    expect(parsed.errors).toEqual([
      "a.yaml: document 2: Unresolved alias (the anchor must be set before the alias): missing",
    ]);
  });

  it("follows symbolic links to files and directories", async () => {
    const dir = await mkdtemp(join(tmpdir(), "links-"));
    await mkdir(join(dir, "real"));
    await writeFile(join(dir, "real", "vs.yaml"), vs("linked", "edge"));
    await symlink(join(dir, "real", "vs.yaml"), join(dir, "file-link.yaml"));
    await symlink(join(dir, "real"), join(dir, "dir-link"));
    await symlink(join(dir, "missing.yaml"), join(dir, "broken.yaml"));
    const load = await loadManifests([
      join(dir, "file-link.yaml"),
      join(dir, "dir-link"),
      join(dir, "broken.yaml"),
    ]);
    expect(load.objects.virtualServices).toHaveLength(2);
    expect(load.errors).toEqual([`${join(dir, "broken.yaml")}: ENOENT`]);
  });

  it("reports non-objects, a bad namespace and a wrong ipvs.dev version with their document", async () => {
    const dir = await mkdtemp(join(tmpdir(), "bad-"));
    const file = join(dir, "y.yaml");
    await writeFile(
      file,
      `- just a list\n---\n${vs("ns").replace("{name: ns}", "{name: ns, namespace: 5}")}---\napiVersion: ipvs.dev/v1\nkind: VirtualService\nmetadata: {name: old}\n`,
    );
    const load = await loadManifests([file]);
    expect(load.errors).toEqual([
      `${file}: document 1: not a Kubernetes object (apiVersion and kind are required)`,
      `${file}: document 2: VirtualService "ns": metadata.namespace must be a string`,
      `${file}: document 3: ipvs.dev/v1 VirtualService "old" is not served here (known: ipvs.dev/v1alpha1 VirtualService, ipvs.dev/v1alpha1 RealServer, ipvs.dev/v1alpha1 IPVSAddressPolicy)`,
    ]);
    expect(load.objects.virtualServices).toEqual([]);
  });

  it("reports a path that does not exist", async () => {
    const load = await loadManifests(["/nonexistent/manifests"]);
    expect(load.errors).toEqual(["/nonexistent/manifests: ENOENT"]);
  });
});
