/** One entry point for every probe kind: what the monitor calls (and tests can replace). */
import { probeDns } from "./dns-probe.ts";
import { probeExec } from "./exec-probe.ts";
import { probeHttp } from "./http-probe.ts";
import type { ProbeContext, ProbeResult } from "./probe-result.ts";
import type { ProbeSpec } from "./probe-spec.ts";
import { probeTcp } from "./tcp-probe.ts";
import { probeUdp } from "./udp-probe.ts";

export type Prober = (spec: ProbeSpec, context: ProbeContext) => Promise<ProbeResult>;

export const runProbe: Prober = (spec, context) => {
  if (spec.kind !== "Exec" && (spec.port < 1 || spec.port > 65535)) {
    return Promise.resolve({
      healthy: false,
      reason: `${spec.kind} health check has no port to probe (the destination has none: set healthCheck.port)`,
      durationMs: 0,
    });
  }
  switch (spec.kind) {
    case "TCP":
      return probeTcp(spec, context);
    case "HTTP":
    case "HTTPS":
      return probeHttp(spec, context);
    case "UDP":
      return probeUdp(spec, context);
    case "DNS":
      return probeDns(spec, context);
    case "Exec":
      return probeExec(spec, context);
  }
};
