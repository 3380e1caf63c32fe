/**
 * The chart and the generated manifests on the real API server, through the real helm and kubectl:
 * `helm install`, `helm upgrade` and `helm uninstall` of charts/ipvs-operator (the CRDs kept on
 * uninstall, with the objects in them), and `kubectl apply --server-side -f deploy/install.yaml`.
 * There is no kubelet here, so the DaemonSet's Pods never run: what is checked is what the API server
 * accepted and stores (RBAC, DaemonSet spec, CRDs), not the agent running in them.
 */
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { useControlPlane } from "./use-control-plane.ts";

const cp = useControlPlane();

interface DaemonSet {
  metadata: { name: string; labels?: Record<string, string> };
  spec: {
    template: {
      spec: {
        serviceAccountName: string;
        hostNetwork?: boolean;
        containers: {
          name: string;
          image: string;
          env?: { name: string; value?: string }[];
          securityContext?: { capabilities?: { add?: string[] }; privileged?: boolean };
        }[];
      };
    };
  };
}

const CRDS = ["virtualservices.ipvs.dev", "realservers.ipvs.dev", "ipvsnodes.ipvs.dev"];

async function daemonSets(ns: string): Promise<DaemonSet[]> {
  const list = JSON.parse(await cp.kubectlOk(["get", "daemonsets", "-n", ns, "-o", "json"])) as {
    items: DaemonSet[];
  };
  return list.items;
}

const envOf = (ds: DaemonSet, name: string) =>
  ds.spec.template.spec.containers[0]?.env?.find((e) => e.name === name)?.value;

beforeAll(async () => {
  // Other files installed the CRDs with kubectl; the chart takes them over (--take-ownership).
  await cp.installCrds();
});

describe("the Helm chart on the real API server", () => {
  it("installs, upgrades and uninstalls; the CRDs and the objects in them stay", async () => {
    const ns = await cp.newNamespace("chart");
    const release = `ipvs-${ns.slice(-8)}`;
    await cp.kubectlOk(["apply", "--server-side", "--field-manager=test", "-f", "-"], {
      input: `apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: keep-me, namespace: ${ns}}\nspec: {address: 192.0.2.241, port: 80, scheduler: rr}\n`,
    });

    const install = await cp.helmOk(
      ["install", release, "charts/ipvs-operator", "--namespace", ns, "--take-ownership"],
      { timeoutMs: 120_000 },
    );
    expect(install).toMatch(/STATUS: deployed/);
    const [ds] = await daemonSets(ns);
    expect(ds, "the DaemonSet").toBeDefined();
    const pod = ds!.spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.containers[0]!.securityContext?.capabilities?.add).toEqual(["NET_ADMIN"]);
    expect(pod.containers[0]!.securityContext?.privileged ?? false).toBe(false);
    // The ServiceAccount the DaemonSet runs as exists and is bound.
    await cp.kubectlOk(["get", "serviceaccount", pod.serviceAccountName, "-n", ns]);
    const can = async (verb: string) =>
      (
        await cp.kubectl([
          "auth",
          "can-i",
          verb,
          "virtualservices.ipvs.dev",
          `--as=system:serviceaccount:${ns}:${pod.serviceAccountName}`,
        ])
      ).stdout.trim();
    expect(await can("watch")).toBe("yes");
    expect(await can("delete")).toBe("no");
    for (const crd of CRDS) {
      const meta = JSON.parse(await cp.kubectlOk(["get", "crd", crd, "-o", "json"])) as {
        metadata: { annotations?: Record<string, string> };
      };
      expect(meta.metadata.annotations?.["meta.helm.sh/release-name"], crd).toBe(release);
      expect(meta.metadata.annotations?.["helm.sh/resource-policy"], crd).toBe("keep");
    }

    await cp.helmOk(
      [
        "upgrade",
        release,
        "charts/ipvs-operator",
        "--namespace",
        ns,
        "--reuse-values",
        "--set",
        "agent.logLevel=debug",
      ],
      { timeoutMs: 120_000 },
    );
    const [upgraded] = await daemonSets(ns);
    expect(envOf(upgraded!, "IPVS_OPERATOR_LOG_LEVEL")).toBe("debug");
    const history = JSON.parse(await cp.helmOk(["history", release, "--namespace", ns, "-o", "json"])) as {
      revision: number;
      status: string;
    }[];
    expect(history.map((h) => [h.revision, h.status])).toEqual([
      [1, "superseded"],
      [2, "deployed"],
    ]);

    const uninstall = await cp.helmOk(["uninstall", release, "--namespace", ns], { timeoutMs: 120_000 });
    expect(uninstall).toMatch(/uninstalled/);
    expect(await daemonSets(ns)).toEqual([]);
    for (const crd of CRDS) await cp.kubectlOk(["get", "crd", crd]);
    const kept = await cp.kubectlOk(["get", "virtualservice", "keep-me", "-n", ns, "-o", "name"]);
    expect(kept.trim()).toBe("virtualservice.ipvs.dev/keep-me");
  });

  it("deploy/install.yaml applies server-side and holds what the chart renders by default", async () => {
    const text = readFileSync("deploy/install.yaml", "utf8");
    const kinds = parseAllDocuments(text)
      .map((d) => d.toJS() as { kind?: string } | null)
      .flatMap((d) => (d?.kind ? [d.kind] : []));
    expect(kinds).toEqual(
      expect.arrayContaining(["Namespace", "ServiceAccount", "ClusterRole", "DaemonSet"]),
    );
    const apply = () =>
      cp.kubectlOk(
        [
          "apply",
          "--server-side",
          "--force-conflicts",
          "--field-manager=install-yaml",
          "-f",
          "deploy/install.yaml",
        ],
        { timeoutMs: 120_000 },
      );
    const out = await apply();
    expect(out).toMatch(/daemonset\.apps\/\S+ serverside-applied/);
    const [ds] = await daemonSets("ipvs-operator");
    expect(ds?.spec.template.spec.containers[0]?.image).toMatch(/ipvs-operator:/);
    // Applying again changes nothing.
    const again = await apply();
    expect(again).toMatch(/serverside-applied/);
    const diff = await cp.kubectl([
      "diff",
      "--server-side",
      "--field-manager=install-yaml",
      "-f",
      "deploy/install.yaml",
    ]);
    expect(diff.code, diff.stdout + diff.stderr).toBe(0);
  });
});
