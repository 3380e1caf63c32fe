/**
 * deploy/install.yaml and deploy/kustomization.yaml are what scripts/gen-install.ts makes from the
 * chart now: rendered again here with the built helm and compared byte for byte.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { INSTALL_NAMESPACE, installManifests } from "../../scripts/gen-install.ts";
import { DEFAULT_KINDS, helm, type K8sObject } from "./helm.ts";

const root = new URL("../../", import.meta.url);
const manifests = installManifests(helm());

describe("deploy/ manifests generated from the chart", () => {
  it.each(manifests.map((m) => [m.path, m] as const))("%s is committed and up to date", (path, file) => {
    let committed: string;
    try {
      committed = readFileSync(new URL(path, root), "utf8");
    } catch {
      committed = "<missing>";
    }
    expect(committed === file.content, `${path} is stale: run npm run gen:install`).toBe(true);
  });

  it("install.yaml is the namespace first, then the chart's objects in it, CRDs kept", () => {
    const install = manifests.find((m) => m.path === "deploy/install.yaml")!;
    const objects = parseAllDocuments(install.content)
      .map((d) => d.toJS() as K8sObject | null)
      .filter((o): o is K8sObject => o !== null);
    expect(objects[0]).toMatchObject({ kind: "Namespace", metadata: { name: INSTALL_NAMESPACE } });
    expect(objects[0]!.metadata.labels?.["pod-security.kubernetes.io/enforce"]).toBe("privileged");
    expect(objects.map((o) => o.kind).sort()).toEqual([...DEFAULT_KINDS, "Namespace"].sort());
    for (const o of objects) {
      const clusterScoped = ["Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"];
      if (!clusterScoped.includes(o.kind)) expect(o.metadata.namespace, o.kind).toBe(INSTALL_NAMESPACE);
    }
  });

  it("kustomization.yaml builds (kubectl kustomize, next to helm) into install.yaml's objects", () => {
    const kubectl = join(dirname(helm()), "kubectl");
    const built = execFileSync(kubectl, ["kustomize", "deploy/"], { cwd: root, encoding: "utf8" });
    const objects = parseAllDocuments(built).map((d) => d.toJS() as K8sObject);
    expect(objects.map((o) => o.kind).sort()).toEqual([...DEFAULT_KINDS, "Namespace"].sort());
  });
});
