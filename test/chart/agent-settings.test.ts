/**
 * Every agent setting (src/agent/config.ts AGENT_SETTINGS) reaches the agent from the chart: as a value
 * under `agent:` turned into its environment variable, from the downward API, or, for the two that
 * make no sense in a cluster, said so in values.yaml. A setting added to the agent without a chart
 * value fails here. The rendered variables are read back with the agent's own resolveAgentConfig, so
 * the chart's defaults are checked to be the agent's defaults.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CHART_DIR } from "../../scripts/gen-install.ts";
import { AGENT_SETTINGS, resolveAgentConfig } from "../../src/agent/config.ts";
import { type K8sObject, only, render } from "./helm.ts";

type Setting = keyof typeof AGENT_SETTINGS;

/** Set by Kubernetes, not by a value. */
const FROM_DOWNWARD_API: Partial<Record<Setting, string>> = {
  nodeName: "spec.nodeName",
  leaseNamespace: "metadata.namespace",
};
/** Not used in a cluster (in-cluster credentials; the API, not a directory, is the source). */
const NOT_IN_CLUSTER: Setting[] = ["kubeconfig", "fromDir"];

const valuesText = readFileSync(`${CHART_DIR}/values.yaml`, "utf8");
const values = parse(valuesText) as { agent: Record<string, unknown> };

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}
const envOf = (objects: K8sObject[]): EnvVar[] =>
  only(objects, "DaemonSet").spec.template.spec.containers[0].env as EnvVar[];

/** The variables the agent would see in the pod (downward API filled in as Kubernetes would). */
function podEnvironment(env: EnvVar[]): Record<string, string> {
  const fieldValues: Record<string, string> = {
    "spec.nodeName": "node-a",
    "metadata.namespace": "ipvs-system",
  };
  return Object.fromEntries(
    env.map((e) => [
      e.name,
      e.value ?? fieldValues[e.valueFrom?.fieldRef?.fieldPath ?? ""] ?? "<unknown field>",
    ]),
  );
}

describe("every agent setting is a chart value", () => {
  it("values.yaml's agent: holds exactly the settings that are neither from the downward API nor unused", () => {
    const expected = (Object.keys(AGENT_SETTINGS) as Setting[]).filter(
      (s) => !(s in FROM_DOWNWARD_API) && !NOT_IN_CLUSTER.includes(s),
    );
    expect(Object.keys(values.agent).sort()).toEqual(expected.sort());
  });

  it("values.yaml says why the other four are not values", () => {
    for (const s of [...NOT_IN_CLUSTER, ...(Object.keys(FROM_DOWNWARD_API) as Setting[])]) {
      expect(valuesText, s).toContain(`${s} (${AGENT_SETTINGS[s].env})`);
    }
  });

  it("the DaemonSet sets every setting's variable, and none of the unused ones", () => {
    const env = envOf(render());
    const names = env.map((e) => e.name);
    for (const [s, setting] of Object.entries(AGENT_SETTINGS) as [
      Setting,
      (typeof AGENT_SETTINGS)[Setting],
    ][]) {
      if (NOT_IN_CLUSTER.includes(s)) expect(names, s).not.toContain(setting.env);
      else
        expect(
          names.filter((n) => n === setting.env),
          s,
        ).toHaveLength(1);
    }
    for (const [s, field] of Object.entries(FROM_DOWNWARD_API)) {
      expect(env.find((e) => e.name === AGENT_SETTINGS[s as Setting].env)?.valueFrom, s).toEqual({
        fieldRef: { fieldPath: field },
      });
    }
  });

  it("the chart's defaults are the agent's own defaults, but for the address policy, which a cluster enforces", () => {
    const fromChart = resolveAgentConfig({}, podEnvironment(envOf(render())));
    const agentAlone = resolveAgentConfig({}, { NODE_NAME: "node-a", POD_NAMESPACE: "ipvs-system" });
    expect(agentAlone.addressPolicy).toBe("Off");
    expect(fromChart).toEqual({ ...agentAlone, addressPolicy: "Enforce" });
  });

  it("other values reach the agent as the agent parses them", () => {
    const objects = render({
      agent: {
        managedCidrs: ["10.96.0.0/12", "192.0.2.0/24"],
        managedFwmarks: ["100-199", 7],
        stateFile: "/var/lib/ipvs/own.json",
        minSyncInterval: "500ms",
        resyncInterval: "2m",
        defaultDriftPolicy: "Report",
        addressPolicy: "Off",
        aggregateStatus: false,
        httpAddress: "0.0.0.0:9900",
        probeExecAllow: ["/usr/local/bin/check-db", "/bin/true"],
        probeMaxInFlight: 64,
        probeMaxPerSecond: 20,
        probeSourceIpv4: "10.0.0.7",
        probeSourceIpv6: "fd00::7",
        vipInterface: "lb0",
        sysctls: [
          "net.ipv4.vs.conntrack=1",
          "net.ipv4.vs.expire_nodest_conn=1:Report",
          "net.ipv4.ip_forward=Ignore",
        ],
        ipvsTimeouts: "900,120,300",
        syncDaemons: ["master:eth1:7", "backup:Stopped"],
        drRealServer: true,
        logLevel: "debug",
      },
    });
    const config = resolveAgentConfig({}, podEnvironment(envOf(objects)));
    expect(config).toEqual({
      nodeName: "node-a",
      source: { kind: "kubernetes" },
      managedCidrs: ["10.96.0.0/12", "192.0.2.0/24"],
      managedFwmarks: [
        { from: 100, to: 199 },
        { from: 7, to: 7 },
      ],
      addressPolicy: "Off",
      stateFile: "/var/lib/ipvs/own.json",
      minSyncIntervalMs: 500,
      resyncIntervalMs: 120_000,
      defaultDriftPolicy: "Report",
      leaseNamespace: "ipvs-system",
      aggregateStatus: false,
      httpAddress: "0.0.0.0:9900",
      probes: {
        execAllow: ["/usr/local/bin/check-db", "/bin/true"],
        maxInFlight: 64,
        maxPerSecond: 20,
        sourceAddress: { ipv4: "10.0.0.7", ipv6: "fd00::7" },
      },
      nodeEdge: {
        vipInterface: "lb0",
        sysctls: {
          "net.ipv4.vs.conntrack": { value: "1", policy: "Enforce" },
          "net.ipv4.vs.expire_nodest_conn": { value: "1", policy: "Report" },
          "net.ipv4.ip_forward": "Ignore",
        },
        ipvs: {
          timeouts: { tcp: 900, tcpFin: 120, udp: 300 },
          daemons: { Master: { interface: "eth1", syncId: 7 }, Backup: "Stopped" },
        },
        drRealServer: true,
      },
      logLevel: "debug",
    });
  });
});
