import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DirectorySource } from "../../src/files/directory-source.ts";

const vs = (name: string, address: string) =>
  `apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: ${name}, namespace: t}\nspec: {address: ${address}, port: 80}\n`;

/** A new directory holding these files (name -> text). */
function directoryWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "dir-source-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function changed(source: DirectorySource): Promise<void> {
  return new Promise((resolve) => source.onChange(resolve));
}

describe("DirectorySource", () => {
  let source: DirectorySource | undefined;
  afterEach(async () => {
    await source?.stop();
  });

  it("loads the directory, follows edits, and is incomplete while a file does not parse", async () => {
    const dir = directoryWith({
      "a.yaml": vs("a", "192.0.2.1"),
      "node.yaml": "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {zone: a}}\n",
    });
    source = new DirectorySource({
      path: dir,
      nodeName: "n1",
      nodeLabels: { extra: "x" },
      debounceMs: 20,
      rereadMs: 0,
    });
    await source.start();
    expect(source.synced).toBe(true);
    expect(source.current().snapshot.virtualServices).toHaveLength(1);
    expect(source.current().node).toEqual({ name: "n1", labels: { zone: "a", extra: "x" } });
    expect(source.current().incomplete).toEqual([]);

    let next = changed(source);
    writeFileSync(
      join(dir, "b.yaml"),
      "apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: b, nam",
    );
    await next;
    expect(source.current().incomplete).toEqual([expect.stringMatching(/b\.yaml: document 1: /)]);
    expect(source.current().snapshot.virtualServices).toHaveLength(1);

    next = changed(source);
    writeFileSync(join(dir, "b.yaml"), vs("b", "192.0.2.2"));
    await next;
    expect(source.current().incomplete).toEqual([]);
    expect(source.current().snapshot.virtualServices).toHaveLength(2);
  });

  it("re-reads on a timer when no change event arrives", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dir-source-"));
    source = new DirectorySource({ path: dir, nodeName: "n1", debounceMs: 10, rereadMs: 50 });
    await source.start();
    expect(source.current().snapshot.virtualServices).toHaveLength(0);
    let loads = 0;
    await new Promise<void>((resolve) =>
      source!.onChange(() => {
        if (++loads === 2) resolve();
      }),
    );
    expect(loads).toBe(2);
  });

  it("with the address policy enforced, gives the directory's policies and Namespace documents (their labels)", async () => {
    const dir = directoryWith({
      "a.yaml": vs("a", "192.0.2.1"),
      "policy.yaml":
        "apiVersion: ipvs.dev/v1alpha1\nkind: IPVSAddressPolicy\nmetadata: {name: p}\nspec: {namespaceSelectors: [{matchLabels: {tenant: 'yes'}}], cidrs: [192.0.2.0/24]}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: t, labels: {tenant: 'yes'}}\n",
    });
    const off = new DirectorySource({ path: dir, nodeName: "n1", rereadMs: 0 });
    await off.start();
    await off.stop();
    expect(off.current().snapshot.addressPolicies).toBeUndefined();
    expect(off.current().snapshot.namespaces).toBeUndefined();
    source = new DirectorySource({ path: dir, nodeName: "n1", rereadMs: 0, addressPolicies: true });
    await source.start();
    expect(source.current().snapshot.addressPolicies).toHaveLength(1);
    expect(source.current().snapshot.namespaces).toEqual([
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "t", labels: { tenant: "yes" } } },
    ]);
  });
});
