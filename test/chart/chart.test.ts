/**
 * charts/ipvs-operator through the real helm (built by e2e/control-plane/build.sh): `helm lint
 * --strict`, `helm template` with the defaults and with other values, the rendered objects parsed and
 * checked, and values.schema.json refusing wrong values. RBAC is in rbac.test.ts, the agent settings in
 * agent-settings.test.ts.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CHART_DIR } from "../../scripts/gen-install.ts";
import { DEFAULT_STATE_FILE } from "../../src/reconcile/state-file.ts";
import { DEFAULT_KINDS, helmWithValues, type K8sObject, NAMESPACE, only, RELEASE, render } from "./helm.ts";

const chart = parse(readFileSync(`${CHART_DIR}/Chart.yaml`, "utf8")) as { appVersion: string };
const CRDS = [
  "ipvsaddresspolicies.ipvs.dev",
  "ipvsnodes.ipvs.dev",
  "realservers.ipvs.dev",
  "virtualservices.ipvs.dev",
];

const podSpec = (objects: K8sObject[]) => only(objects, "DaemonSet").spec.template.spec;
const agentContainer = (objects: K8sObject[]) => {
  const containers = podSpec(objects).containers as { name: string }[];
  expect(containers.map((c) => c.name)).toEqual(["agent"]);
  // biome-ignore lint/suspicious/noExplicitAny: a rendered container, read by path
  return containers[0] as any;
};
const kinds = (objects: K8sObject[]) => objects.map((o) => o.kind).sort();

describe("helm lint", () => {
  it("passes --strict with the defaults", () => {
    const r = helmWithValues(["lint", "--strict", CHART_DIR]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  it("passes --strict with every optional object on", () => {
    const r = helmWithValues(["lint", "--strict", CHART_DIR], {
      metrics: {
        service: { enabled: true },
        serviceMonitor: { enabled: true },
        podMonitor: { enabled: true },
      },
      crds: { keep: false },
    });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });
});

describe("helm template with the defaults", () => {
  const objects = render();

  it("renders the CRDs, the ServiceAccount, RBAC and the DaemonSet, nothing else", () => {
    expect(kinds(objects)).toEqual(DEFAULT_KINDS);
    for (const o of objects) {
      if (o.kind === "CustomResourceDefinition" || o.kind.startsWith("Cluster")) {
        expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBeUndefined();
      } else {
        expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe(NAMESPACE);
      }
      expect(o.metadata.labels?.["app.kubernetes.io/instance"], o.kind).toBe(RELEASE);
      expect(o.metadata.labels?.["app.kubernetes.io/managed-by"], o.kind).toBe("Helm");
      expect(o.metadata.labels?.["app.kubernetes.io/version"], o.kind).toBe(chart.appVersion);
    }
  });

  it("runs the agent on the node's network with NET_ADMIN only, never privileged, read-only root", () => {
    const spec = podSpec(objects);
    expect(spec.hostNetwork).toBe(true);
    expect(spec.dnsPolicy).toBe("ClusterFirstWithHostNet");
    expect(spec.securityContext).toEqual({ seccompProfile: { type: "RuntimeDefault" } });
    expect(agentContainer(objects).securityContext).toEqual({
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsUser: 0,
      runAsNonRoot: false,
      capabilities: { drop: ["ALL"], add: ["NET_ADMIN"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(spec.initContainers).toBeUndefined();
    expect(spec.hostPID).toBeUndefined();
    expect(spec.hostIPC).toBeUndefined();
  });

  it("appVersion is package.json's version: the tag e2e/image/build.sh gives the image", () => {
    const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
    expect(chart.appVersion).toBe(pkg.version);
  });

  it("runs the image of the chart's appVersion with the agent command", () => {
    const c = agentContainer(objects);
    expect(c.image).toBe(`localhost/ipvs-operator:${chart.appVersion}`);
    expect(c.imagePullPolicy).toBe("IfNotPresent");
    expect(c.args).toEqual(["agent"]);
    // No command: the image's ENTRYPOINT, with the launcher's V8 flags (decision 0007).
    expect(c.command).toBeUndefined();
    expect(podSpec(objects).imagePullSecrets).toBeUndefined();
  });

  it("probes /healthz and /readyz on the http port of the agent's default address", () => {
    const c = agentContainer(objects);
    expect(c.ports).toEqual([{ name: "http", containerPort: 9796, protocol: "TCP" }]);
    expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(c.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "http" });
    expect(c.livenessProbe.periodSeconds).toBeGreaterThan(0);
  });

  it("takes the node name and the Lease namespace from the downward API", () => {
    const env = agentContainer(objects).env as { name: string; valueFrom?: unknown }[];
    expect(env.find((e) => e.name === "NODE_NAME")).toEqual({
      name: "NODE_NAME",
      valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } },
    });
    expect(env.find((e) => e.name === "POD_NAMESPACE")).toEqual({
      name: "POD_NAMESPACE",
      valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } },
    });
  });

  it("keeps the ownership journal on the node: a hostPath folder mounted where the state file is", () => {
    const spec = podSpec(objects);
    expect(spec.volumes).toEqual([
      { name: "journal", hostPath: { path: "/var/lib/ipvs-operator", type: "DirectoryOrCreate" } },
    ]);
    expect(agentContainer(objects).volumeMounts).toEqual([
      { name: "journal", mountPath: dirname(DEFAULT_STATE_FILE) },
    ]);
    const env = agentContainer(objects).env as { name: string; value?: string }[];
    expect(env.find((e) => e.name === "IPVS_OPERATOR_STATE_FILE")?.value).toBe(DEFAULT_STATE_FILE);
  });

  it("runs on every Linux node: tolerates every taint, node-critical priority, rolling update", () => {
    const ds = only(objects, "DaemonSet");
    const spec = podSpec(objects);
    expect(spec.tolerations).toEqual([{ operator: "Exists" }]);
    expect(spec.nodeSelector).toEqual({ "kubernetes.io/os": "linux" });
    expect(spec.affinity).toBeUndefined();
    expect(spec.priorityClassName).toBe("system-node-critical");
    expect(spec.terminationGracePeriodSeconds).toBe(30);
    expect(ds.spec.updateStrategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } });
    const selector = ds.spec.selector.matchLabels as Record<string, string>;
    expect(selector).toEqual({
      "app.kubernetes.io/name": "ipvs-operator",
      "app.kubernetes.io/instance": RELEASE,
    });
    expect(ds.spec.template.metadata.labels).toMatchObject(selector);
  });

  it("requests little and limits memory above the agent's measured peak (264 MiB at 10,000 services)", () => {
    expect(agentContainer(objects).resources).toEqual({
      requests: { cpu: "50m", memory: "128Mi" },
      limits: { memory: "512Mi" },
    });
  });

  it("installs the four CRDs, kept on uninstall", () => {
    const crds = objects.filter((o) => o.kind === "CustomResourceDefinition");
    expect(crds.map((c) => c.metadata.name).sort()).toEqual(CRDS);
    for (const crd of crds) {
      expect(crd.metadata.annotations, crd.metadata.name).toEqual({ "helm.sh/resource-policy": "keep" });
      expect(crd.spec.group).toBe("ipvs.dev");
    }
  });
});

describe("helm template with other values", () => {
  const objects = render({
    image: { repository: "registry.example/ipvs-operator", tag: "9.9.9", pullPolicy: "Always" },
    imagePullSecrets: [{ name: "pull" }],
    fullnameOverride: "ipvs",
    tolerations: [{ key: "dedicated", operator: "Equal", value: "lb", effect: "NoSchedule" }],
    nodeSelector: { "node-role.example/lb": "true" },
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: "lb", operator: "Exists" }] }],
        },
      },
    },
    priorityClassName: "",
    podAnnotations: { "example/a": "1" },
    podLabels: { team: "net" },
    extraEnv: [{ name: "EXTRA", value: "x" }],
    nodeFlags: ["--max-semi-space-size=4", "--expose-gc"],
    resources: { requests: { cpu: "200m", memory: "256Mi" }, limits: { memory: "1Gi" } },
    updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "10%" } },
    terminationGracePeriodSeconds: 60,
    journal: { hostPath: "/srv/ipvs" },
    agent: { stateFile: "/var/lib/ipvs/own.json", httpAddress: "0.0.0.0:9900" },
    crds: { keep: false },
  });

  it("uses the image, pull secrets, names and scheduling given", () => {
    const ds = only(objects, "DaemonSet", "ipvs");
    const spec = podSpec(objects);
    const c = agentContainer(objects);
    expect(c.image).toBe("registry.example/ipvs-operator:9.9.9");
    expect(c.imagePullPolicy).toBe("Always");
    expect(spec.imagePullSecrets).toEqual([{ name: "pull" }]);
    expect(spec.tolerations).toEqual([
      { key: "dedicated", operator: "Equal", value: "lb", effect: "NoSchedule" },
    ]);
    // Helm merges maps into the defaults (a key set to null removes one).
    expect(spec.nodeSelector).toEqual({ "kubernetes.io/os": "linux", "node-role.example/lb": "true" });
    expect(spec.affinity.nodeAffinity).toBeDefined();
    expect(spec.priorityClassName).toBeUndefined();
    expect(spec.terminationGracePeriodSeconds).toBe(60);
    expect(ds.spec.template.metadata.annotations).toEqual({ "example/a": "1" });
    expect(ds.spec.template.metadata.labels.team).toBe("net");
    expect(ds.spec.updateStrategy.rollingUpdate).toEqual({ maxUnavailable: "10%" });
    expect(c.resources).toEqual({ requests: { cpu: "200m", memory: "256Mi" }, limits: { memory: "1Gi" } });
    expect(only(objects, "ServiceAccount").metadata.name).toBe("ipvs");
  });

  it("mounts the journal's host folder where the state file is, and probes the port of httpAddress", () => {
    const c = agentContainer(objects);
    expect(podSpec(objects).volumes[0].hostPath.path).toBe("/srv/ipvs");
    expect(c.volumeMounts).toEqual([{ name: "journal", mountPath: "/var/lib/ipvs" }]);
    expect(c.ports).toEqual([{ name: "http", containerPort: 9900, protocol: "TCP" }]);
    expect(c.livenessProbe.httpGet.port).toBe("http");
  });

  it("appends extraEnv after the agent's settings", () => {
    const env = agentContainer(objects).env as { name: string }[];
    expect(env.at(-1)).toEqual({ name: "EXTRA", value: "x" });
  });

  it("nodeFlags replace the V8 flags of the image's ENTRYPOINT and keep its program", () => {
    const entrypoint = JSON.parse(
      /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync("Dockerfile", "utf8"))?.[1] ?? "null",
    ) as string[];
    const program = entrypoint.filter((word) => !word.startsWith("--"));
    expect(program).toEqual(["node", "/opt/ipvs-operator/dist/ipvs-operator.mjs"]);
    expect(agentContainer(objects).command).toEqual([
      program[0],
      "--max-semi-space-size=4",
      "--expose-gc",
      program[1],
    ]);
    expect(agentContainer(objects).args).toEqual(["agent"]);
  });

  it("crds.keep=false leaves the CRDs without the keep annotation", () => {
    const crds = objects.filter((o) => o.kind === "CustomResourceDefinition");
    expect(crds).toHaveLength(4);
    for (const crd of crds) expect(crd.metadata.annotations, crd.metadata.name).toBeUndefined();
  });

  it("crds.install=false renders no CRD", () => {
    const without = render({ crds: { install: false } });
    expect(without.filter((o) => o.kind === "CustomResourceDefinition")).toEqual([]);
    expect(kinds(without)).toContain("DaemonSet");
  });

  it('agent.httpAddress "" turns off the port and the probes (the agent serves nothing)', () => {
    const c = agentContainer(render({ agent: { httpAddress: "" } }));
    expect(c.ports).toBeUndefined();
    expect(c.livenessProbe).toBeUndefined();
    expect(c.readinessProbe).toBeUndefined();
  });
});

describe("metrics objects", () => {
  it("none by default", () => {
    const k = kinds(render());
    for (const kind of ["Service", "ServiceMonitor", "PodMonitor", "ConfigMap"])
      expect(k).not.toContain(kind);
  });

  it("a ServiceMonitor comes with a headless Service selecting the agents on the http port", () => {
    const objects = render({ metrics: { serviceMonitor: { enabled: true, labels: { release: "prom" } } } });
    expect(kinds(objects)).not.toContain("PodMonitor");
    const ds = only(objects, "DaemonSet");
    const service = only(objects, "Service");
    expect(service.spec.clusterIP).toBe("None");
    expect(service.spec.selector).toEqual(ds.spec.selector.matchLabels);
    expect(service.spec.ports).toEqual([{ name: "http", port: 9796, targetPort: "http", protocol: "TCP" }]);
    const monitor = only(objects, "ServiceMonitor");
    expect(monitor.apiVersion).toBe("monitoring.coreos.com/v1");
    expect(monitor.metadata.labels?.release).toBe("prom");
    expect(monitor.spec.selector.matchLabels).toEqual(ds.spec.selector.matchLabels);
    expect(monitor.spec.namespaceSelector).toEqual({ matchNames: [NAMESPACE] });
    expect(monitor.spec.endpoints[0]).toMatchObject({
      port: "http",
      path: "/metrics",
      interval: "30s",
      honorLabels: true,
    });
  });

  it("metrics.service alone gives the Service without a monitor", () => {
    expect(
      kinds(render({ metrics: { service: { enabled: true } } })).filter((k) => /Service|Monitor/.test(k)),
    ).toEqual(["Service", "ServiceAccount"]);
  });

  it("a PodMonitor scrapes the agent pods' http port", () => {
    const objects = render({ metrics: { podMonitor: { enabled: true, interval: "15s" } } });
    expect(kinds(objects)).not.toContain("ServiceMonitor");
    const monitor = only(objects, "PodMonitor");
    expect(monitor.spec.selector.matchLabels).toEqual(only(objects, "DaemonSet").spec.selector.matchLabels);
    expect(monitor.spec.podMetricsEndpoints[0]).toMatchObject({
      port: "http",
      path: "/metrics",
      interval: "15s",
      honorLabels: true,
    });
  });

  it("a monitor without the agent's HTTP server is refused with the reason", () => {
    const r = helmWithValues(["template", RELEASE, CHART_DIR], {
      agent: { httpAddress: "" },
      metrics: { podMonitor: { enabled: true } },
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/metrics.podMonitor.enabled needs agent.httpAddress/);
  });
});

describe("Grafana dashboards ConfigMap", () => {
  const dashboards = (() => {
    try {
      return readdirSync(`${CHART_DIR}/dashboards`).filter((f) => f.endsWith(".json"));
    } catch {
      return [];
    }
  })();
  const r = helmWithValues(["template", RELEASE, CHART_DIR, "--namespace", NAMESPACE], {
    dashboards: { enabled: true },
  });

  // Another change adds the dashboards; until then the switch must fail loudly, not render nothing.
  it("holds every dashboards/*.json labelled for the Grafana sidecar, or is refused while there is none", () => {
    if (dashboards.length === 0) {
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/no dashboards\/\*\.json/);
      return;
    }
    expect(r.stderr).toBe("");
    const configMap = only(render({ dashboards: { enabled: true } }), "ConfigMap");
    expect(configMap.metadata.labels?.grafana_dashboard).toBe("1");
    expect(Object.keys(configMap.data).sort()).toEqual(dashboards.sort());
    for (const file of dashboards) {
      const committed = JSON.parse(readFileSync(`${CHART_DIR}/dashboards/${file}`, "utf8"));
      expect(JSON.parse(configMap.data[file])).toEqual(committed);
    }
  });
});

describe("values.schema.json", () => {
  it.each([
    ["a wrong agent.aggregateStatus", { agent: { aggregateStatus: "yes" } }, /aggregateStatus.*want boolean/],
    ["a wrong agent.managedCidrs", { agent: { managedCidrs: "10.0.0.0/8" } }, /managedCidrs.*want array/],
    ["a wrong agent.logLevel", { agent: { logLevel: "verbose" } }, /logLevel/],
    ["a wrong agent.resyncInterval", { agent: { resyncInterval: "soon" } }, /resyncInterval/],
    ["a wrong agent.httpAddress", { agent: { httpAddress: "9796" } }, /httpAddress/],
    ["a wrong crds.keep", { crds: { keep: "false" } }, /keep.*want boolean/],
    [
      "a misspelt agent setting",
      { agent: { managedCIDRs: ["10.0.0.0/8"] } },
      /additional properties 'managedCIDRs'/,
    ],
    ["a misspelt top-level value", { tolerration: [] }, /additional properties 'tolerration'/],
    ["a wrong terminationGracePeriodSeconds", { terminationGracePeriodSeconds: "30" }, /want integer/],
    ["a node flag that is not a flag", { nodeFlags: ["max-semi-space-size=4"] }, /nodeFlags/],
    ["a tunnel device as the VIP interface", { agent: { vipInterface: "tunl0" } }, /vipInterface/],
  ])("refuses %s", (_name, values, message) => {
    const r = helmWithValues(["template", RELEASE, CHART_DIR], values);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(r.stderr).toMatch(message);
  });

  it("accepts the values the other tests use (the refusals above are the schema's, not a broken chart)", () => {
    const r = helmWithValues(["template", RELEASE, CHART_DIR], {
      agent: { aggregateStatus: false, managedCidrs: ["10.0.0.0/8"], resyncInterval: "5m" },
    });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });
});

describe("NOTES.txt", () => {
  const notes = (values: unknown) => {
    const r = helmWithValues(
      ["install", RELEASE, CHART_DIR, "--namespace", NAMESPACE, "--dry-run=client"],
      values,
    );
    expect(r.stderr).toBe("");
    return r.stdout.slice(r.stdout.indexOf("NOTES:"));
  };

  it("says how to watch the rollout, the Pod Security label the namespace needs, and what uninstall keeps", () => {
    const text = notes({});
    expect(text).toContain(`rollout status daemonset/${RELEASE}-ipvs-operator`);
    expect(text).toContain(
      `kubectl label namespace ${NAMESPACE} pod-security.kubernetes.io/enforce=privileged`,
    );
    expect(text).toMatch(/The CRDs stay on `helm uninstall`/);
    expect(text).toMatch(/owns only what it creates/);
  });

  it("warns that uninstall deletes the CRDs when crds.keep is false", () => {
    const text = notes({ crds: { keep: false }, agent: { managedCidrs: ["10.96.0.0/12"] } });
    expect(text).toMatch(/`helm uninstall` deletes the CRDs/);
    expect(text).not.toMatch(/owns only what it creates/);
  });
});
