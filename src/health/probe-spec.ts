/**
 * What one health probe does (ProbeSpec) and how often (ProbePlan), and the pure mapping from the API's
 * HealthCheck plus the backend it applies to (a HealthTarget from computeDesired) to a plan.
 *
 * Every field of the API's HealthCheck maps onto a ProbeSpec field (tls, udp, dns included); where the
 * API leaves something out, the defaults below apply.
 *
 * Pure: no I/O, no clock.
 */
import type { HealthCheck } from "../api/v1alpha1/index.ts";
import type { HealthTarget } from "../model/snapshot.ts";

/** An inclusive range of HTTP status codes; a single code has from === to. */
export interface StatusRange {
  from: number;
  to: number;
}

/** 200-399: what ldirectord and keepalived's HTTP_GET accept when nothing is configured. */
export const DEFAULT_EXPECT_STATUS: readonly StatusRange[] = Object.freeze([{ from: 200, to: 399 }]);

/** How much of a response body the body regular expression sees at most (the rest is not read). */
export const MAX_BODY_BYTES = 64 * 1024;

export interface TcpProbeSpec {
  kind: "TCP";
  address: string;
  port: number;
}

export interface HttpProbeFields {
  address: string;
  port: number;
  /** Request path, starting with "/". */
  path: string;
  /** Host header; absent: the address (IPv6 in brackets), with ":port" unless it is the scheme's default. */
  host?: string;
  expectStatus: readonly StatusRange[];
  /** JavaScript regular expression the first MAX_BODY_BYTES of the body (as UTF-8) must match. */
  expectBody?: string;
}

export interface HttpProbeSpec extends HttpProbeFields {
  kind: "HTTP";
}

export interface TlsSpec {
  /** Verify the certificate chain and name. Off by default: backends mostly have self-signed certificates. */
  verify: boolean;
  /** PEM text of the CA certificate(s) to trust when verifying; absent: Node's bundled public CAs. */
  ca?: string;
  /**
   * SNI server name, and the name the certificate must carry when verifying. Absent: the Host header's
   * name when it is a DNS name (no SNI for an address), else the certificate must carry the address.
   */
  serverName?: string;
}

export interface HttpsProbeSpec extends HttpProbeFields {
  kind: "HTTPS";
  tls: TlsSpec;
}

/** What a UDP probe waits for: the reply's exact bytes, or a regular expression over it (as latin1 text). */
export type UdpExpect = { bytes: Uint8Array } | { regex: string };

export interface UdpProbeSpec {
  kind: "UDP";
  address: string;
  port: number;
  /** The datagram sent; may be empty. */
  payload: Uint8Array;
  /**
   * With expect: healthy when a matching reply arrives before the timeout (keepalived UDP_CHECK
   * require_reply). Without: healthy when no ICMP port unreachable comes back within quietMs (a
   * connected UDP socket surfaces it as ECONNREFUSED), or any reply arrives first.
   */
  expect?: UdpExpect;
  /**
   * Without expect: how long to listen for the ICMP error; capped by the timeout. ICMP comes back within
   * one round trip, so this is short and a healthy UDP probe does not take the whole timeout.
   */
  quietMs: number;
}

/** Record types the DNS probe can ask for (those node:dns resolves by type). */
export type DnsRecordType = "A" | "AAAA" | "CNAME" | "MX" | "NS" | "PTR" | "SOA" | "SRV" | "TXT" | "CAA";

export interface DnsProbeSpec {
  kind: "DNS";
  /** The DNS server: the real server's address and port. */
  address: string;
  port: number;
  query: { name: string; type: DnsRecordType };
  /**
   * Healthy only when this value is among the answers (compared as text: an address for A/AAAA, the
   * name for CNAME/NS/PTR, "priority exchange" for MX, the joined strings for TXT). Absent: any
   * non-empty NOERROR answer is healthy.
   */
  expect?: string;
}

export interface ExecProbeSpec {
  kind: "Exec";
  /** The real server, passed to the command as IPVS_RS_ADDRESS and IPVS_RS_PORT. */
  address: string;
  port: number;
  /** argv; argv[0] must be an absolute path on this node's allowlist (ExecPolicy). */
  command: readonly string[];
}

export type ProbeSpec =
  | TcpProbeSpec
  | HttpProbeSpec
  | HttpsProbeSpec
  | UdpProbeSpec
  | DnsProbeSpec
  | ExecProbeSpec;

export type ProbeKind = ProbeSpec["kind"];

/** A probe and its schedule: everything the monitor needs for one target. */
export interface ProbePlan {
  probe: ProbeSpec;
  intervalMs: number;
  /** At most intervalMs (the API enforces it). */
  timeoutMs: number;
  riseCount: number;
  fallCount: number;
  /** The state before the first result (HealthCheck.initialState). */
  initiallyHealthy: boolean;
}

/** Default quiet time of a UDP probe without an expected reply. */
export const DEFAULT_UDP_QUIET_MS = 1000;

/**
 * The plan for one target, or undefined for a check that probes nothing (type None).
 *
 * Ports: healthCheck.port when set, else the destination's port. A destination without a port (0: fwmark
 * or all-ports service) and no healthCheck.port gives a spec with port 0, which the prober fails with a
 * reason that says so (runProbe), so the problem shows up in status instead of disappearing here.
 *
 * UDP without udp.expectReply(Hex) is the no-expect form: the payload (empty by default), healthy unless
 * an ICMP port unreachable comes back (or healthy at once if anything replies).
 */
export function probePlanFor(target: HealthTarget): ProbePlan | undefined {
  const probe = probeSpecFor(target.healthCheck, target);
  if (!probe) return undefined;
  const check = target.healthCheck;
  return {
    probe,
    intervalMs: check.intervalSeconds * 1000,
    timeoutMs: Math.min(check.timeoutSeconds, check.intervalSeconds) * 1000,
    riseCount: check.riseCount,
    fallCount: check.fallCount,
    initiallyHealthy: check.initialState === "Healthy",
  };
}

/** The probe for a check against a backend; undefined for type None. */
export function probeSpecFor(
  check: HealthCheck,
  backend: { address: string; port: number },
): ProbeSpec | undefined {
  const address = backend.address;
  const port = check.port ?? backend.port;
  switch (check.type) {
    case "None":
      return undefined;
    case "TCP":
      return { kind: "TCP", address, port };
    case "HTTP":
    case "HTTPS": {
      const fields: HttpProbeFields = {
        address,
        port,
        path: check.path ?? "/",
        expectStatus: check.expectStatus ? check.expectStatus.map(parseStatusRange) : DEFAULT_EXPECT_STATUS,
      };
      if (check.host !== undefined) fields.host = check.host;
      if (check.expectBody !== undefined) fields.expectBody = check.expectBody;
      if (check.type === "HTTP") return { kind: "HTTP", ...fields };
      const tls: TlsSpec = { verify: check.tls?.verify ?? false };
      if (check.tls?.ca !== undefined) tls.ca = check.tls.ca;
      if (check.tls?.serverName !== undefined) tls.serverName = check.tls.serverName;
      return { kind: "HTTPS", ...fields, tls };
    }
    case "UDP": {
      const udp = check.udp;
      const payload =
        udp?.payloadHex !== undefined
          ? Uint8Array.from(Buffer.from(udp.payloadHex, "hex"))
          : new TextEncoder().encode(udp?.payload ?? "");
      const spec: UdpProbeSpec = { kind: "UDP", address, port, payload, quietMs: DEFAULT_UDP_QUIET_MS };
      if (udp?.expectReplyHex !== undefined)
        spec.expect = { bytes: Uint8Array.from(Buffer.from(udp.expectReplyHex, "hex")) };
      else if (udp?.expectReply !== undefined) spec.expect = { regex: udp.expectReply };
      return spec;
    }
    case "DNS": {
      // The schema requires dns with DNS; without it (an unchecked object) ask for the root's NS.
      const dns = check.dns ?? { name: ".", type: "NS" as const };
      const spec: DnsProbeSpec = { kind: "DNS", address, port, query: { name: dns.name, type: dns.type } };
      if (check.dns?.expectAnswer !== undefined) spec.expect = check.dns.expectAnswer;
      return spec;
    }
    case "Exec":
      // The schema requires command with Exec; an empty argv is refused by the prober with a reason.
      return { kind: "Exec", address, port: backend.port, command: check.command ?? [] };
  }
}

/** "200" or "200-399" (the API's pattern) to a range; a reversed range is normalised. */
export function parseStatusRange(text: string): StatusRange {
  const [a, b] = text.split("-");
  const from = Number(a);
  const to = b === undefined ? from : Number(b);
  return from <= to ? { from, to } : { from: to, to: from };
}
