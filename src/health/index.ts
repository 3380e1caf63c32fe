/**
 * Health checking of real servers: the probers (TCP, HTTP, HTTPS, UDP, DNS, Exec), the pure mapping from
 * the API's HealthCheck to a probe plan, and the HealthMonitor that schedules probes and keeps each
 * backend's rise/fall state for computeDesired. What the agent needs is exported here.
 */
export { EXEC_DISABLED_REASON, execRefusal } from "./exec-probe.ts";
export {
  DEFAULT_JITTER,
  DEFAULT_MAX_IN_FLIGHT,
  HealthMonitor,
  type HealthMonitorOptions,
  type HealthMonitorStats,
  type HealthTransition,
  PROBER_GRACE_MS,
  type TargetHealth,
} from "./health-monitor.ts";
export { EXEC_DISABLED, type ExecPolicy, type ProbeContext, type ProbeResult } from "./probe-result.ts";
export {
  DEFAULT_EXPECT_STATUS,
  DEFAULT_UDP_QUIET_MS,
  type DnsProbeSpec,
  type DnsRecordType,
  type ExecProbeSpec,
  type HttpProbeSpec,
  type HttpsProbeSpec,
  MAX_BODY_BYTES,
  type ProbeKind,
  type ProbePlan,
  type ProbeSpec,
  probePlanFor,
  probeSpecFor,
  type StatusRange,
  type TcpProbeSpec,
  type TlsSpec,
  type UdpExpect,
  type UdpProbeSpec,
} from "./probe-spec.ts";
export { type Prober, runProbe } from "./run-probe.ts";
export { SLOW_START_STEPS, type SlowStartState, withSlowStart } from "./slow-start.ts";
