/**
 * The agent's configuration: flags first, then environment variables (the DaemonSet sets NODE_NAME
 * from the downward API), then defaults; validated with zod so every mistake is reported at once,
 * with the flag and the variable that carry it.
 */
import { isAbsolute, relative, resolve, sep } from "node:path";
import { z } from "zod";
import { type FwmarkRange, ownershipScopeProblems, parseFwmarkRange } from "../model/ownership.ts";
import type { IpvsTuningConfig } from "../node-edge/ipvs-tuning.ts";
import { TUNNEL_DEVICE } from "../node-edge/rt-link.ts";
import { NODE_SYSCTL_KEYS, type NodeSysctlKey, type SysctlConfig } from "../node-edge/sysctl-plan.ts";
import { DEFAULT_STATE_FILE } from "../reconcile/state-file.ts";

/** Interfaces that cannot be the VIP interface. */
const RESERVED_INTERFACES = ["lo", ...Object.values(TUNNEL_DEVICE)];

export interface AgentConfig {
  nodeName: string;
  /** Where objects come from: the Kubernetes API, or a watched directory of manifests. */
  source: { kind: "kubernetes"; kubeconfig?: string } | { kind: "directory"; path: string };
  managedCidrs: string[];
  managedFwmarks: FwmarkRange[];
  /**
   * Enforce: a VirtualService is programmed only when an IPVSAddressPolicy lets its namespace use its
   * address and port or firewall mark (none: refused). Off: any VirtualService may claim any address.
   */
  addressPolicy: "Enforce" | "Off";
  stateFile: string;
  minSyncIntervalMs: number;
  resyncIntervalMs: number;
  /** driftPolicy for objects that do not set one (directory mode; the CRD defaults it in a cluster). */
  defaultDriftPolicy: "Repair" | "Report";
  /** Namespace of the Lease that elects the status aggregator (the agent's own namespace). */
  leaseNamespace: string;
  /** Whether this agent takes part in electing the VirtualService/RealServer status aggregator. */
  aggregateStatus: boolean;
  /** host:port of /healthz, /readyz (and /metrics); "" turns the server off. */
  httpAddress: string;
  /** Health-check probers on this node. */
  probes: {
    /** Absolute paths Exec health checks may run; empty: Exec checks are off on this node. */
    execAllow: string[];
    /** Probes in flight at once. */
    maxInFlight: number;
    /** Probes started per second at most; 0: no cap (the intervals decide). */
    maxPerSecond: number;
    /** Source addresses of probes (DR/tunnel nodes hold the VIP: probes must not come from it). */
    sourceAddress: { ipv4?: string; ipv6?: string };
  };
  /** The node plumbing around IPVS. */
  nodeEdge: {
    /** Dummy interface that holds the VIPs of owned VirtualServices with bindAddress; "" = no binding. */
    vipInterface: string;
    /** Sysctls: per key a value and policy, or Ignore (defaults: see node-edge/sysctl-plan.ts). */
    sysctls: SysctlConfig;
    /** IPVS timeouts and sync daemons; undefined parts are left as they are. */
    ipvs: IpvsTuningConfig;
    /**
     * The DR real-server role: the VIPs of DirectRouting VirtualServices with a real server on this
     * node go on the loopback, those of Tunnel (IPIP, GRE) ones on tunl0 / ip6tnl0 / gre0 / ip6gre0
     * (rp_filter=2 on the IPv4 ones),
     * with arp_ignore=1 / arp_announce=2 on the real servers' interfaces.
     */
    drRealServer: boolean;
  };
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace";
}

/** One setting: its flag, its environment variable, what it holds. */
export const AGENT_SETTINGS = {
  nodeName: {
    flag: "node-name",
    env: "NODE_NAME",
    help: "this node's name (downward API: spec.nodeName); required",
  },
  kubeconfig: { flag: "kubeconfig", env: "KUBECONFIG", help: "kubeconfig file (default: in-cluster config)" },
  fromDir: {
    flag: "from-dir",
    env: "IPVS_OPERATOR_FROM_DIR",
    help: "watch this directory of manifests instead of the Kubernetes API",
  },
  managedCidrs: {
    flag: "managed-cidr",
    env: "IPVS_OPERATOR_MANAGED_CIDRS",
    help: "services inside are owned (repeatable; env: comma-separated)",
  },
  managedFwmarks: {
    flag: "managed-fwmarks",
    env: "IPVS_OPERATOR_MANAGED_FWMARKS",
    help: "fwmark range A-B that is owned (repeatable; env: comma-separated)",
  },
  addressPolicy: {
    flag: "address-policy",
    env: "IPVS_OPERATOR_ADDRESS_POLICY",
    help: "Enforce (program a VirtualService only where an IPVSAddressPolicy allows its namespace its address) or Off (default Off; the chart sets Enforce)",
  },
  stateFile: {
    flag: "state-file",
    env: "IPVS_OPERATOR_STATE_FILE",
    help: `ownership journal (default ${DEFAULT_STATE_FILE})`,
  },
  minSyncInterval: {
    flag: "min-sync-interval",
    env: "IPVS_OPERATOR_MIN_SYNC_INTERVAL",
    help: "least time between two syncs (default 1s)",
  },
  resyncInterval: {
    flag: "resync-interval",
    env: "IPVS_OPERATOR_RESYNC_INTERVAL",
    help: "full resync that finds out-of-band changes (default 30s)",
  },
  defaultDriftPolicy: {
    flag: "default-drift-policy",
    env: "IPVS_OPERATOR_DEFAULT_DRIFT_POLICY",
    help: "Repair or Report for objects that set none (default Repair)",
  },
  leaseNamespace: {
    flag: "lease-namespace",
    env: "POD_NAMESPACE",
    help: "namespace of the status aggregator's Lease (downward API: metadata.namespace; default ipvs-operator)",
  },
  aggregateStatus: {
    flag: "aggregate-status",
    env: "IPVS_OPERATOR_AGGREGATE_STATUS",
    help: "true or false: take part in electing the VirtualService/RealServer status writer (default true)",
  },
  httpAddress: {
    flag: "http-address",
    env: "IPVS_OPERATOR_HTTP_ADDRESS",
    help: 'host:port of /healthz and /readyz (default 0.0.0.0:9796; "" = off)',
  },
  probeExecAllow: {
    flag: "probe-exec-allow",
    env: "IPVS_OPERATOR_PROBE_EXEC_ALLOW",
    help: "absolute path an Exec health check may run (repeatable; env: comma-separated); none: Exec checks off",
  },
  probeMaxInFlight: {
    flag: "probe-max-in-flight",
    env: "IPVS_OPERATOR_PROBE_MAX_IN_FLIGHT",
    help: "health-check probes in flight at once (default 256)",
  },
  probeMaxPerSecond: {
    flag: "probe-max-per-second",
    env: "IPVS_OPERATOR_PROBE_MAX_PER_SECOND",
    help: "health-check probes started per second at most (default 0: no cap)",
  },
  probeSourceIpv4: {
    flag: "probe-source-ipv4",
    env: "IPVS_OPERATOR_PROBE_SOURCE_IPV4",
    help: "source address of IPv4 health-check probes (default: the kernel's choice)",
  },
  probeSourceIpv6: {
    flag: "probe-source-ipv6",
    env: "IPVS_OPERATOR_PROBE_SOURCE_IPV6",
    help: "source address of IPv6 health-check probes (default: the kernel's choice)",
  },
  vipInterface: {
    flag: "vip-interface",
    env: "IPVS_OPERATOR_VIP_INTERFACE",
    help: 'dummy interface holding the VIPs of owned VirtualServices with bindAddress (default ipvs0; "" = off)',
  },
  sysctls: {
    flag: "sysctl",
    env: "IPVS_OPERATOR_SYSCTLS",
    help: "KEY=VALUE (enforced), KEY=VALUE:Report or KEY=Ignore, for the node's IPVS sysctls (repeatable; env: comma-separated)",
  },
  ipvsTimeouts: {
    flag: "ipvs-timeouts",
    env: "IPVS_OPERATOR_IPVS_TIMEOUTS",
    help: "TCP,TCPFIN,UDP in seconds, like ipvsadm --set; 0 leaves one as it is (default: all left as they are)",
  },
  syncDaemons: {
    flag: "sync-daemon",
    env: "IPVS_OPERATOR_SYNC_DAEMONS",
    help: "master|backup:INTERFACE:SYNCID, or master|backup:Stopped (repeatable; env: comma-separated); others are left alone",
  },
  drRealServer: {
    flag: "dr-real-server",
    env: "IPVS_OPERATOR_DR_REAL_SERVER",
    help: "true or false: prepare this node as a real server of DirectRouting and Tunnel (IPIP, GRE) services (VIPs on lo or the tunnel devices, ARP and rp_filter sysctls; default false)",
  },
  logLevel: {
    flag: "log-level",
    env: "IPVS_OPERATOR_LOG_LEVEL",
    help: "fatal, error, warn, info, debug or trace (default info)",
  },
} as const;

/** "1500ms", "30s", "5m", "1h" or a bare number of seconds -> milliseconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? "s"]!;
  return Math.round(Number(match[1]) * unit);
}

const duration = (min: number, max: number) =>
  z.string().transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined || ms < min || ms > max) {
      ctx.addIssue({
        code: "custom",
        message: `"${text}" is not a duration between ${min / 1000}s and ${max / 1000}s (like 500ms, 30s, 5m)`,
      });
      return z.NEVER;
    }
    return ms;
  });

const fwmarkRange = z.string().transform((text, ctx): FwmarkRange => {
  const range = parseFwmarkRange(text);
  if (!range) {
    ctx.addIssue({ code: "custom", message: `"${text}" is not a number or a FROM-TO range` });
    return z.NEVER;
  }
  return range;
});

const count = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const sysctlSetting = z.string().transform((text, ctx) => {
  const m = /^([a-z0-9_.]+)=(?:(Ignore)|([^:]*)(?::(Enforce|Report))?)$/.exec(text.trim());
  const key = m?.[1] as NodeSysctlKey | undefined;
  if (!m || !key || !(NODE_SYSCTL_KEYS as readonly string[]).includes(key)) {
    ctx.addIssue({
      code: "custom",
      message: `"${text}" is not KEY=VALUE[:Enforce|:Report] or KEY=Ignore with KEY one of ${NODE_SYSCTL_KEYS.join(", ")}`,
    });
    return z.NEVER;
  }
  return m[2]
    ? ([key, "Ignore"] as const)
    : ([key, { value: m[3]!, policy: (m[4] ?? "Enforce") as "Enforce" | "Report" }] as const);
});

const ipvsTimeouts = z.string().transform((text, ctx) => {
  const parts = text.split(",").map((p) => p.trim());
  if (parts.length !== 3 || parts.some((p) => !/^\d{1,7}$/.test(p))) {
    ctx.addIssue({
      code: "custom",
      message: `"${text}" is not TCP,TCPFIN,UDP in seconds (like 900,120,300)`,
    });
    return z.NEVER;
  }
  const [tcp, tcpFin, udp] = parts.map(Number) as [number, number, number];
  return { tcp, tcpFin, udp };
});

const syncDaemon = z.string().transform((text, ctx) => {
  const m = /^(master|backup):(?:(Stopped)|([a-zA-Z0-9_.-]{1,15}):(\d{1,3}))$/i.exec(text.trim());
  const syncId = m?.[4] === undefined ? 0 : Number(m[4]);
  if (!m || syncId > 255) {
    ctx.addIssue({
      code: "custom",
      message: `"${text}" is not master|backup:INTERFACE:SYNCID (0-255) or master|backup:Stopped`,
    });
    return z.NEVER;
  }
  const state = m[1]!.toLowerCase() === "master" ? ("Master" as const) : ("Backup" as const);
  return m[2] ? { state, setting: "Stopped" as const } : { state, setting: { interface: m[3]!, syncId } };
});

const hostPort = z
  .string()
  .regex(/^$|^(\[[0-9a-fA-F:.]+\]|[0-9a-zA-Z.-]*):\d{1,5}$/, 'must be host:port, ":port" or "" (off)');

const schema = z.object({
  nodeName: z
    .string({ error: "is required (the DaemonSet sets NODE_NAME from spec.nodeName)" })
    .min(1, "is required"),
  kubeconfig: z.string().min(1).optional(),
  fromDir: z.string().min(1).optional(),
  managedCidrs: z.array(z.string()).default([]),
  managedFwmarks: z.array(fwmarkRange).default([]),
  stateFile: z.string().min(1).default(DEFAULT_STATE_FILE),
  minSyncInterval: duration(0, 3_600_000).default(1000),
  resyncInterval: duration(1000, 86_400_000).default(30_000),
  defaultDriftPolicy: z.enum(["Repair", "Report"]).default("Repair"),
  addressPolicy: z.enum(["Enforce", "Off"]).default("Off"),
  leaseNamespace: z
    .string()
    .max(63)
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a namespace name")
    .default("ipvs-operator"),
  aggregateStatus: z.enum(["true", "false"]).default("true"),
  httpAddress: hostPort.default("0.0.0.0:9796"),
  probeExecAllow: z.array(z.string().regex(/^\/[^\0]*$/, "must be an absolute path")).default([]),
  probeMaxInFlight: count(1, 100_000).default(256),
  probeMaxPerSecond: count(0, 1_000_000).default(0),
  probeSourceIpv4: z.ipv4({ error: "must be an IPv4 address" }).optional(),
  probeSourceIpv6: z.ipv6({ error: "must be an IPv6 address" }).optional(),
  vipInterface: z
    .string()
    .regex(/^$|^[a-zA-Z0-9_.-]{1,15}$/, 'must be an interface name (1-15 characters) or "" (off)')
    // The agent makes this a dummy of its own: not the loopback, not a tunnel module's device (a dummy
    // by that name would keep the module from creating it for the real-server role).
    .refine((name) => !RESERVED_INTERFACES.includes(name), {
      message: `must not be ${RESERVED_INTERFACES.join(", ")} (the loopback and the tunnel modules' devices)`,
    })
    .default("ipvs0"),
  sysctls: z.array(sysctlSetting).default([]),
  ipvsTimeouts: ipvsTimeouts.optional(),
  syncDaemons: z.array(syncDaemon).default([]),
  drRealServer: z.enum(["true", "false"]).default("false"),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]).default("info"),
});

/** Rules across settings, checked on the raw input so they are reported together with schema errors. */
function crossChecks(input: {
  managedCidrs?: string[] | undefined;
  fromDir?: string | undefined;
  kubeconfig?: string | undefined;
  stateFile?: string | undefined;
}): string[] {
  const problems = ownershipScopeProblems({
    managedCidrs: input.managedCidrs ?? [],
    managedFwmarks: [],
    journal: [],
  }).map((p) => `--managed-cidr (IPVS_OPERATOR_MANAGED_CIDRS): ${p}`);
  if (input.fromDir !== undefined && input.kubeconfig !== undefined) {
    problems.push("--from-dir (IPVS_OPERATOR_FROM_DIR): use either --from-dir or --kubeconfig, not both");
  }
  if (input.fromDir !== undefined && input.fromDir !== "") {
    // The journal is JSON: inside the directory it would be read as a manifest that does not load
    // (so nothing could ever be removed), and every write of it would trigger another read.
    const stateFile = resolve(input.stateFile ?? DEFAULT_STATE_FILE);
    const inside = relative(resolve(input.fromDir), stateFile);
    const outside = inside === ".." || inside.startsWith(`..${sep}`) || isAbsolute(inside);
    if (inside !== "" && !outside) {
      problems.push(
        `--state-file (IPVS_OPERATOR_STATE_FILE): ${stateFile} is inside --from-dir ${resolve(input.fromDir)}; the agent would read its own journal (and lock) as manifests: put it outside the directory`,
      );
    }
  }
  return problems;
}

export class AgentConfigError extends Error {
  override readonly name = "AgentConfigError";
}

type Raw = Partial<Record<keyof typeof AGENT_SETTINGS, string | string[]>>;

/**
 * Flags (already parsed into `flags`, keyed by setting name) over environment variables over defaults.
 * Throws AgentConfigError listing every problem with its flag and variable.
 */
export function resolveAgentConfig(flags: Raw, env: Record<string, string | undefined>): AgentConfig {
  const pick = (name: keyof typeof AGENT_SETTINGS): string | undefined => {
    const flag = flags[name];
    if (typeof flag === "string") return flag;
    const value = env[AGENT_SETTINGS[name].env];
    return value === undefined || value === "" ? undefined : value;
  };
  const list = (
    name: "managedCidrs" | "managedFwmarks" | "probeExecAllow" | "sysctls" | "syncDaemons",
  ): string[] | undefined => {
    const flag = flags[name];
    if (Array.isArray(flag) && flag.length > 0) return flag;
    const value = env[AGENT_SETTINGS[name].env];
    return value
      ? value
          .split(",")
          .map((v) => v.trim())
          .filter((v) => v !== "")
      : undefined;
  };
  const httpAddress =
    typeof flags.httpAddress === "string" ? flags.httpAddress : env[AGENT_SETTINGS.httpAddress.env];
  const input = {
    nodeName: pick("nodeName"),
    kubeconfig: pick("kubeconfig"),
    fromDir: pick("fromDir"),
    managedCidrs: list("managedCidrs"),
    managedFwmarks: list("managedFwmarks"),
    stateFile: pick("stateFile"),
    minSyncInterval: pick("minSyncInterval"),
    resyncInterval: pick("resyncInterval"),
    defaultDriftPolicy: pick("defaultDriftPolicy"),
    addressPolicy: pick("addressPolicy"),
    leaseNamespace: pick("leaseNamespace"),
    aggregateStatus: pick("aggregateStatus"),
    httpAddress,
    probeExecAllow: list("probeExecAllow"),
    probeMaxInFlight: pick("probeMaxInFlight"),
    probeMaxPerSecond: pick("probeMaxPerSecond"),
    probeSourceIpv4: pick("probeSourceIpv4"),
    probeSourceIpv6: pick("probeSourceIpv6"),
    vipInterface:
      typeof flags.vipInterface === "string" ? flags.vipInterface : env[AGENT_SETTINGS.vipInterface.env],
    sysctls: list("sysctls"),
    ipvsTimeouts: pick("ipvsTimeouts"),
    syncDaemons: list("syncDaemons"),
    drRealServer: pick("drRealServer"),
    logLevel: pick("logLevel"),
  };
  // In directory mode KUBECONFIG from the environment is irrelevant: only a --kubeconfig flag conflicts.
  if (input.fromDir !== undefined && typeof flags.kubeconfig !== "string") input.kubeconfig = undefined;
  const parsed = schema.safeParse(
    Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)),
  );
  const extra = crossChecks(input);
  if (!parsed.success || extra.length > 0) {
    const lines = (parsed.error?.issues ?? []).map((issue) => {
      const name = String(issue.path[0] ?? "") as keyof typeof AGENT_SETTINGS;
      const setting = AGENT_SETTINGS[name];
      const where = setting ? `--${setting.flag} (${setting.env})` : "configuration";
      return `${where}: ${issue.message}`;
    });
    throw new AgentConfigError(`invalid agent configuration:\n  ${[...lines, ...extra].join("\n  ")}`);
  }
  const c = parsed.data;
  const ranges = ownershipScopeProblems({ managedCidrs: [], managedFwmarks: c.managedFwmarks, journal: [] });
  if (ranges.length > 0) {
    throw new AgentConfigError(
      `invalid agent configuration:\n  ${ranges.map((p) => `--managed-fwmarks (IPVS_OPERATOR_MANAGED_FWMARKS): ${p}`).join("\n  ")}`,
    );
  }
  return {
    nodeName: c.nodeName,
    source:
      c.fromDir !== undefined
        ? { kind: "directory", path: c.fromDir }
        : { kind: "kubernetes", ...(c.kubeconfig === undefined ? {} : { kubeconfig: c.kubeconfig }) },
    managedCidrs: c.managedCidrs,
    managedFwmarks: c.managedFwmarks,
    addressPolicy: c.addressPolicy,
    stateFile: c.stateFile,
    minSyncIntervalMs: c.minSyncInterval,
    resyncIntervalMs: c.resyncInterval,
    defaultDriftPolicy: c.defaultDriftPolicy,
    leaseNamespace: c.leaseNamespace,
    aggregateStatus: c.aggregateStatus === "true",
    httpAddress: c.httpAddress,
    probes: {
      execAllow: c.probeExecAllow,
      maxInFlight: c.probeMaxInFlight,
      maxPerSecond: c.probeMaxPerSecond,
      sourceAddress: {
        ...(c.probeSourceIpv4 === undefined ? {} : { ipv4: c.probeSourceIpv4 }),
        ...(c.probeSourceIpv6 === undefined ? {} : { ipv6: c.probeSourceIpv6 }),
      },
    },
    nodeEdge: {
      vipInterface: c.vipInterface,
      sysctls: Object.fromEntries(c.sysctls) as SysctlConfig,
      ipvs: {
        ...(c.ipvsTimeouts ? { timeouts: c.ipvsTimeouts } : {}),
        ...(c.syncDaemons.length > 0
          ? { daemons: Object.fromEntries(c.syncDaemons.map((d) => [d.state, d.setting])) }
          : {}),
      },
      drRealServer: c.drRealServer === "true",
    },
    logLevel: c.logLevel,
  };
}
