/**
 * The chart tests' access to helm: the binary e2e/control-plane/build.sh built (found, never built,
 * here: a missing helm fails the test with the command to run), and `helm template` parsed into
 * objects.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { CHART_DIR, helmBinary, runHelm } from "../../scripts/gen-install.ts";

let helmPath: string | undefined;

/** The built helm; throws "... run e2e/control-plane/build.sh ..." when there is none. */
export function helm(): string {
  helmPath ??= helmBinary({ build: false });
  return helmPath;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  // biome-ignore lint/suspicious/noExplicitAny: rendered objects are read by path in assertions
  [key: string]: any;
}

export const RELEASE = "test";

/** The kinds the chart renders with its default values, sorted. */
export const DEFAULT_KINDS = [
  "ClusterRole",
  "ClusterRoleBinding",
  "CustomResourceDefinition",
  "CustomResourceDefinition",
  "CustomResourceDefinition",
  "CustomResourceDefinition",
  "DaemonSet",
  "Role",
  "RoleBinding",
  "ServiceAccount",
];
export const NAMESPACE = "ipvs-system";

/** Runs helm with `args` and the values (as a file); resolves to exit code, stdout and stderr. */
export function helmWithValues(
  args: readonly string[],
  values: unknown = {},
): { code: number; stdout: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), "ipvs-operator-chart-"));
  try {
    const file = join(dir, "values.yaml");
    writeFileSync(file, JSON.stringify(values));
    try {
      return { code: 0, stdout: runHelm(helm(), [...args, "--values", file]), stderr: "" };
    } catch (error) {
      const message = (error as Error).message;
      const code = Number(/exited (\d+)/.exec(message)?.[1] ?? 1);
      return { code, stdout: "", stderr: message };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `helm template` of the chart with `values` (merged over values.yaml), parsed; throws on failure. */
export function render(values: unknown = {}): K8sObject[] {
  const r = helmWithValues(["template", RELEASE, CHART_DIR, "--namespace", NAMESPACE], values);
  if (r.code !== 0) throw new Error(r.stderr);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

/** The one object of `kind` (and `name`, when given); fails when there is not exactly one. */
export function only(objects: readonly K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) {
    throw new Error(
      `expected one ${kind}${name ? ` ${name}` : ""}, found ${found.length} (kinds: ${objects.map((o) => o.kind).join(", ")})`,
    );
  }
  return found[0]!;
}
