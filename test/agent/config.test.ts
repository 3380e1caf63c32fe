import { describe, expect, it } from "vitest";
import { AgentConfigError, parseDuration, resolveAgentConfig } from "../../src/agent/config.ts";

describe("agent configuration", () => {
  it("takes the node name from the downward API variable and defaults the rest", () => {
    expect(resolveAgentConfig({}, { NODE_NAME: "node-a" })).toEqual({
      nodeName: "node-a",
      source: { kind: "kubernetes" },
      managedCidrs: [],
      managedFwmarks: [],
      addressPolicy: "Off",
      stateFile: "/var/lib/ipvs-operator/journal.json",
      minSyncIntervalMs: 1000,
      resyncIntervalMs: 30_000,
      defaultDriftPolicy: "Repair",
      leaseNamespace: "ipvs-operator",
      aggregateStatus: true,
      httpAddress: "0.0.0.0:9796",
      probes: { execAllow: [], maxInFlight: 256, maxPerSecond: 0, sourceAddress: {} },
      nodeEdge: { vipInterface: "ipvs0", sysctls: {}, ipvs: {}, drRealServer: false },
      logLevel: "info",
    });
  });

  it("reads the node plumbing's settings and refuses wrong ones with their flag", () => {
    expect(
      resolveAgentConfig(
        { sysctls: ["net.ipv4.vs.conntrack=1:Report"], vipInterface: "" },
        {
          NODE_NAME: "n",
          IPVS_OPERATOR_SYNC_DAEMONS: "backup:eth0:3",
          IPVS_OPERATOR_IPVS_TIMEOUTS: "0,0,30",
        },
      ).nodeEdge,
    ).toEqual({
      vipInterface: "",
      sysctls: { "net.ipv4.vs.conntrack": { value: "1", policy: "Report" } },
      ipvs: {
        timeouts: { tcp: 0, tcpFin: 0, udp: 30 },
        daemons: { Backup: { interface: "eth0", syncId: 3 } },
      },
      drRealServer: false,
    });
    expect(() =>
      resolveAgentConfig(
        { sysctls: ["kernel.panic=1"], ipvsTimeouts: "900,120", syncDaemons: ["leader:eth0:1"] },
        { NODE_NAME: "n" },
      ),
    ).toThrow(
      /--sysctl \(IPVS_OPERATOR_SYSCTLS\): "kernel.panic=1" is not[\s\S]*--ipvs-timeouts \(IPVS_OPERATOR_IPVS_TIMEOUTS\): "900,120" is not[\s\S]*--sync-daemon \(IPVS_OPERATOR_SYNC_DAEMONS\): "leader:eth0:1" is not/,
    );
    for (const name of ["lo", "tunl0", "ip6tnl0", "gre0", "ip6gre0"]) {
      expect(() => resolveAgentConfig({ vipInterface: name }, { NODE_NAME: "n" })).toThrow(
        /--vip-interface \(IPVS_OPERATOR_VIP_INTERFACE\): must not be lo, tunl0, ip6tnl0, gre0, ip6gre0/,
      );
    }
    expect(resolveAgentConfig({ vipInterface: "kube-ipvs0" }, { NODE_NAME: "n" }).nodeEdge.vipInterface).toBe(
      "kube-ipvs0",
    );
  });

  it("reads the probers' settings and refuses wrong ones with their flag", () => {
    expect(
      resolveAgentConfig(
        { probeExecAllow: ["/bin/check"], probeMaxPerSecond: "50" },
        { NODE_NAME: "n", IPVS_OPERATOR_PROBE_SOURCE_IPV6: "fd00::1" },
      ).probes,
    ).toEqual({
      execAllow: ["/bin/check"],
      maxInFlight: 256,
      maxPerSecond: 50,
      sourceAddress: { ipv6: "fd00::1" },
    });
    expect(() =>
      resolveAgentConfig(
        { probeExecAllow: ["check"], probeMaxInFlight: "0", probeSourceIpv4: "fd00::1" },
        { NODE_NAME: "n" },
      ),
    ).toThrow(
      /--probe-exec-allow \(IPVS_OPERATOR_PROBE_EXEC_ALLOW\): must be an absolute path[\s\S]*--probe-max-in-flight \(IPVS_OPERATOR_PROBE_MAX_IN_FLIGHT\): must be at least 1[\s\S]*--probe-source-ipv4 \(IPVS_OPERATOR_PROBE_SOURCE_IPV4\): must be an IPv4 address/,
    );
  });

  it("lets flags win over the environment, and splits comma lists from the environment", () => {
    const c = resolveAgentConfig(
      { nodeName: "flag-node", managedFwmarks: ["10-20"], resyncInterval: "2m", httpAddress: "" },
      {
        NODE_NAME: "env-node",
        IPVS_OPERATOR_MANAGED_CIDRS: "10.0.0.0/8, fd00::/16",
        IPVS_OPERATOR_MANAGED_FWMARKS: "1",
        KUBECONFIG: "/k",
      },
    );
    expect(c).toMatchObject({
      nodeName: "flag-node",
      source: { kind: "kubernetes", kubeconfig: "/k" },
      managedCidrs: ["10.0.0.0/8", "fd00::/16"],
      managedFwmarks: [{ from: 10, to: 20 }],
      resyncIntervalMs: 120_000,
      httpAddress: "",
    });
  });

  it("runs from a directory without Kubernetes; KUBECONFIG in the environment does not conflict", () => {
    const c = resolveAgentConfig({ fromDir: "/etc/ipvs" }, { NODE_NAME: "n", KUBECONFIG: "/k" });
    expect(c.source).toEqual({ kind: "directory", path: "/etc/ipvs" });
  });

  it("reports every problem at once with its flag and variable", () => {
    let error: unknown;
    try {
      resolveAgentConfig(
        {
          managedCidrs: ["10.0.0.0/99"],
          resyncInterval: "soon",
          defaultDriftPolicy: "Fix",
          fromDir: "/d",
          kubeconfig: "/k",
        },
        {},
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AgentConfigError);
    const message = (error as Error).message;
    expect(message).toContain("--node-name (NODE_NAME): is required");
    expect(message).toContain('--resync-interval (IPVS_OPERATOR_RESYNC_INTERVAL): "soon" is not a duration');
    expect(message).toContain("--default-drift-policy (IPVS_OPERATOR_DEFAULT_DRIFT_POLICY)");
    expect(message).toContain('--managed-cidr (IPVS_OPERATOR_MANAGED_CIDRS): managedCidrs[0]: "10.0.0.0/99"');
    expect(message).toContain("--from-dir (IPVS_OPERATOR_FROM_DIR): use either --from-dir or --kubeconfig");
  });

  it("refuses a state file inside the manifest directory, and takes one beside it", () => {
    const env = { NODE_NAME: "n" };
    for (const stateFile of ["/etc/lb/journal.json", "/etc/lb/sub/journal.json", "/etc/lb/../lb/j.json"]) {
      expect(() => resolveAgentConfig({ fromDir: "/etc/lb", stateFile }, env)).toThrow(
        "--state-file (IPVS_OPERATOR_STATE_FILE): ",
      );
    }
    expect(() =>
      resolveAgentConfig({ fromDir: "/etc/lb/" }, { ...env, IPVS_OPERATOR_STATE_FILE: "/etc/lb/j" }),
    ).toThrow("is inside --from-dir /etc/lb");
    for (const stateFile of ["/etc/lb.json", "/etc/lb-state/journal.json", "/etc/..lb/j.json"]) {
      expect(resolveAgentConfig({ fromDir: "/etc/lb", stateFile }, env).stateFile).toBe(stateFile);
    }
    // The default state file is outside any usual manifest directory.
    expect(() => resolveAgentConfig({ fromDir: "/etc/lb" }, env)).not.toThrow();
  });

  it("rejects an inverted fwmark range", () => {
    expect(() => resolveAgentConfig({ managedFwmarks: ["20-10"] }, { NODE_NAME: "n" })).toThrow(
      "--managed-fwmarks (IPVS_OPERATOR_MANAGED_FWMARKS): managedFwmarks[0]: 20-10 is not a range",
    );
  });

  it("parses durations", () => {
    expect([
      parseDuration("500ms"),
      parseDuration("30s"),
      parseDuration("5m"),
      parseDuration("1h"),
      parseDuration("7"),
    ]).toEqual([500, 30_000, 300_000, 3_600_000, 7000]);
    expect(parseDuration("5 minutes")).toBeUndefined();
  });
});
