/** The pure mapping from the API's HealthCheck and a backend to the probe plan. */
import { describe, expect, it } from "vitest";
import { type HealthCheckInput, HealthCheckSchema } from "../../src/api/v1alpha1/index.ts";
import {
  DEFAULT_UDP_QUIET_MS,
  parseStatusRange,
  probePlanFor,
  probeSpecFor,
} from "../../src/health/probe-spec.ts";
import { type HealthTarget, healthKey } from "../../src/model/snapshot.ts";

const check = (input: HealthCheckInput) => HealthCheckSchema.parse(input);
const backend = { address: "10.0.0.5", port: 8080 };

function target(input: HealthCheckInput, port = 8080): HealthTarget {
  const vs = { namespace: "edge", name: "web" };
  return {
    key: healthKey(vs, "10.0.0.5", port),
    virtualService: vs,
    address: "10.0.0.5",
    port,
    healthCheck: check(input),
    source: { kind: "RealServer", namespace: "edge", name: "rs" },
  };
}

describe("probePlanFor", () => {
  it("takes the schedule from the check, in milliseconds, with the API's defaults", () => {
    expect(probePlanFor(target({ type: "TCP" }))).toEqual({
      probe: { kind: "TCP", address: "10.0.0.5", port: 8080 },
      intervalMs: 10_000,
      timeoutMs: 5_000,
      riseCount: 2,
      fallCount: 3,
      initiallyHealthy: false,
    });
    expect(
      probePlanFor(
        target({
          type: "TCP",
          intervalSeconds: 3,
          timeoutSeconds: 1,
          riseCount: 1,
          fallCount: 5,
          initialState: "Healthy",
        }),
      ),
    ).toMatchObject({
      intervalMs: 3000,
      timeoutMs: 1000,
      riseCount: 1,
      fallCount: 5,
      initiallyHealthy: true,
    });
  });

  it("is undefined for type None", () => {
    expect(probePlanFor(target({ type: "None" }))).toBeUndefined();
  });

  it("probes healthCheck.port when set, else the destination's port (0 stays 0 for the prober to report)", () => {
    expect(probeSpecFor(check({ type: "TCP", port: 9000 }), backend)).toMatchObject({ port: 9000 });
    expect(probeSpecFor(check({ type: "TCP" }), { address: "10.0.0.5", port: 0 })).toMatchObject({ port: 0 });
  });
});

describe("probeSpecFor", () => {
  it("HTTP: path '/' and 200-399 by default; host, status list and body when set", () => {
    expect(probeSpecFor(check({ type: "HTTP" }), backend)).toEqual({
      kind: "HTTP",
      address: "10.0.0.5",
      port: 8080,
      path: "/",
      expectStatus: [{ from: 200, to: 399 }],
    });
    expect(
      probeSpecFor(
        check({
          type: "HTTP",
          path: "/healthz",
          host: "www.example.com",
          expectStatus: ["200", "301-302"],
          expectBody: "ok",
        }),
        backend,
      ),
    ).toEqual({
      kind: "HTTP",
      address: "10.0.0.5",
      port: 8080,
      path: "/healthz",
      host: "www.example.com",
      expectStatus: [
        { from: 200, to: 200 },
        { from: 301, to: 302 },
      ],
      expectBody: "ok",
    });
  });

  it("HTTPS: TLS verification off by default, on with the CA and server name given", () => {
    expect(probeSpecFor(check({ type: "HTTPS", port: 8443 }), backend)).toMatchObject({
      kind: "HTTPS",
      port: 8443,
      tls: { verify: false },
    });
    const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    expect(
      probeSpecFor(check({ type: "HTTPS", tls: { verify: true, ca, serverName: "www.example" } }), backend),
    ).toMatchObject({ tls: { verify: true, ca, serverName: "www.example" } });
  });

  it("UDP: the payload (text or hex) and the expected reply (regex or exact bytes)", () => {
    expect(
      probeSpecFor(check({ type: "UDP", udp: { payload: "ping", expectReply: "^pong" } }), backend),
    ).toMatchObject({ payload: new TextEncoder().encode("ping"), expect: { regex: "^pong" } });
    expect(
      probeSpecFor(check({ type: "UDP", udp: { payloadHex: "00ff", expectReplyHex: "0a0B" } }), backend),
    ).toMatchObject({ payload: Uint8Array.of(0, 255), expect: { bytes: Uint8Array.of(10, 11) } });
  });

  it("DNS: the query (type A by default) and the expected answer", () => {
    expect(
      probeSpecFor(check({ type: "DNS", dns: { name: "probe.test", expectAnswer: "192.0.2.53" } }), {
        address: "10.0.0.5",
        port: 53,
      }),
    ).toEqual({
      kind: "DNS",
      address: "10.0.0.5",
      port: 53,
      query: { name: "probe.test", type: "A" },
      expect: "192.0.2.53",
    });
  });

  it("the schema keeps each probe's fields to its type", () => {
    const refused = (input: unknown) =>
      HealthCheckSchema.safeParse(input).error?.issues.map((i) => i.message);
    expect(refused({ type: "DNS" })).toEqual(["dns is required with type DNS and only allowed there"]);
    expect(refused({ type: "TCP", dns: { name: "x" } })).toEqual([
      "dns is required with type DNS and only allowed there",
    ]);
    expect(refused({ type: "HTTP", tls: {} })).toEqual(["tls is only allowed with type HTTPS"]);
    expect(refused({ type: "TCP", udp: {} })).toEqual(["udp is only allowed with type UDP"]);
    expect(refused({ type: "UDP", udp: { payload: "a", payloadHex: "00" } })).toEqual([
      "payload and payloadHex are mutually exclusive",
    ]);
    expect(refused({ type: "HTTPS", tls: { ca: "x" } })).toEqual(["ca is only used with verify: true"]);
  });

  it("UDP: an empty datagram, healthy unless an ICMP error comes back", () => {
    expect(probeSpecFor(check({ type: "UDP" }), { address: "10.0.0.5", port: 53 })).toEqual({
      kind: "UDP",
      address: "10.0.0.5",
      port: 53,
      payload: new Uint8Array(0),
      quietMs: DEFAULT_UDP_QUIET_MS,
    });
  });

  it("Exec: the command and the real server's own port", () => {
    expect(
      probeSpecFor(check({ type: "Exec", command: ["/usr/local/bin/check", "--fast"] }), backend),
    ).toEqual({
      kind: "Exec",
      address: "10.0.0.5",
      port: 8080,
      command: ["/usr/local/bin/check", "--fast"],
    });
  });

  it("parses status codes and ranges", () => {
    expect(parseStatusRange("204")).toEqual({ from: 204, to: 204 });
    expect(parseStatusRange("200-399")).toEqual({ from: 200, to: 399 });
    expect(parseStatusRange("399-200")).toEqual({ from: 200, to: 399 });
  });
});
