/**
 * The probers against real servers on 127.0.0.1 (component tests): every verdict here comes from a
 * real socket, a real TLS handshake, a real DNS server (dnsmasq) or a real process.
 */
import { execFileSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type Server as TcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXEC_DISABLED_REASON } from "../../src/health/exec-probe.ts";
import type { ExecPolicy } from "../../src/health/probe-result.ts";
import { DEFAULT_EXPECT_STATUS, type ProbeSpec } from "../../src/health/probe-spec.ts";
import { runProbe } from "../../src/health/run-probe.ts";
import {
  type Certificate,
  closedTcpPort,
  closedUdpPort,
  httpServer,
  httpsServer,
  listen,
  selfSignedCertificate,
  startDnsmasq,
  udpServer,
} from "./local-servers.ts";

const LOCAL = "127.0.0.1";
const probe = (spec: ProbeSpec, timeoutMs = 2000, extra: { localAddress?: string; exec?: ExecPolicy } = {}) =>
  runProbe(spec, { timeoutMs, ...extra });

describe("TCP probe", () => {
  let server: TcpServer;
  let port: number;
  const peers: string[] = [];
  beforeAll(async () => {
    server = createTcpServer((socket) => {
      peers.push(socket.remoteAddress ?? "");
      socket.destroy();
    });
    port = await listen(server);
  });
  afterAll(() => server.close());

  it("is healthy when the connection is accepted", async () => {
    const result = await probe({ kind: "TCP", address: LOCAL, port });
    expect(result).toMatchObject({ healthy: true, reason: `connected to 127.0.0.1:${port}` });
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
  });

  it("fails with ECONNREFUSED on a closed port", async () => {
    const result = await probe({ kind: "TCP", address: LOCAL, port: await closedTcpPort() });
    expect(result.healthy).toBe(false);
    expect(result.reason).toMatch(/ECONNREFUSED/);
  });

  it("connects from the source address it is given", async () => {
    peers.length = 0;
    const result = await probe({ kind: "TCP", address: LOCAL, port }, 2000, { localAddress: "127.0.0.2" });
    expect(result.healthy).toBe(true);
    await until(() => peers.length > 0);
    expect(peers).toEqual(["127.0.0.2"]);
  });

  it("fails without trying when the destination has no port", async () => {
    const result = await probe({ kind: "TCP", address: LOCAL, port: 0 });
    expect(result).toMatchObject({ healthy: false, durationMs: 0 });
    expect(result.reason).toMatch(/no port to probe.*healthCheck\.port/);
  });
});

describe("HTTP probe", () => {
  let server: Server;
  let port: number;
  const hosts: (string | undefined)[] = [];
  beforeAll(async () => {
    ({ server, port } = await httpServer((req, res) => {
      hosts.push(req.headers.host);
      if (req.url === "/ok") res.end("service is UP and running");
      else if (req.url === "/status/503") {
        res.statusCode = 503;
        res.end("down");
      } else if (req.url === "/status/404") {
        res.statusCode = 404;
        res.end();
      } else if (req.url === "/redirect") {
        res.statusCode = 302;
        res.setHeader("Location", "/ok");
        res.end();
      } else if (req.url === "/big") {
        // The marker sits after 100 KiB: beyond what the body expression sees.
        res.end("x".repeat(100 * 1024) + "MARKER");
      } else if (req.url === "/slow") {
        setTimeout(() => res.end("late"), 5000).unref();
      } else {
        res.statusCode = 500;
        res.end();
      }
    }));
  });
  afterAll(() => server.closeAllConnections?.() ?? server.close());

  const http = (path: string, more: Partial<Extract<ProbeSpec, { kind: "HTTP" }>> = {}): ProbeSpec => ({
    kind: "HTTP",
    address: LOCAL,
    port,
    path,
    expectStatus: DEFAULT_EXPECT_STATUS,
    ...more,
  });

  it("accepts 200-399 by default", async () => {
    expect(await probe(http("/ok"))).toMatchObject({ healthy: true, reason: "HTTP 200" });
    expect(await probe(http("/redirect"))).toMatchObject({ healthy: true, reason: "HTTP 302" });
    expect(await probe(http("/status/503"))).toMatchObject({
      healthy: false,
      reason: "HTTP 503, expected 200-399",
    });
  });

  it("accepts the configured codes and ranges only", async () => {
    const expectStatus = [
      { from: 404, to: 404 },
      { from: 500, to: 503 },
    ];
    expect((await probe(http("/status/404", { expectStatus }))).healthy).toBe(true);
    expect((await probe(http("/status/503", { expectStatus }))).healthy).toBe(true);
    expect(await probe(http("/ok", { expectStatus }))).toMatchObject({
      healthy: false,
      reason: "HTTP 200, expected 404, 500-503",
    });
  });

  it("matches the body against the expression", async () => {
    expect(await probe(http("/ok", { expectBody: "UP and" }))).toMatchObject({ healthy: true });
    expect(await probe(http("/ok", { expectBody: "^DOWN" }))).toMatchObject({
      healthy: false,
      reason: "HTTP 200, body does not match /^DOWN/",
    });
    expect((await probe(http("/ok", { expectBody: "(" }))).reason).toMatch(/not a valid regular expression/);
  });

  it("reads at most 64 KiB of the body", async () => {
    expect((await probe(http("/big", { expectBody: "^x+" }))).healthy).toBe(true);
    expect(await probe(http("/big", { expectBody: "MARKER" }))).toMatchObject({ healthy: false });
  });

  it("sends the configured Host header, else the address and port", async () => {
    hosts.length = 0;
    await probe(http("/ok", { host: "www.example.com" }));
    await probe(http("/ok"));
    expect(hosts).toEqual(["www.example.com", `127.0.0.1:${port}`]);
  });

  it("fails a slow server at the timeout, naming what it waited for", async () => {
    const result = await probe(http("/slow"), 1000);
    expect(result.healthy).toBe(false);
    expect(result.reason).toBe(
      `GET http://127.0.0.1:${port}/slow: waiting for the response: no answer within 1000 ms`,
    );
    expect(result.durationMs).toBeGreaterThanOrEqual(990);
    expect(result.durationMs).toBeLessThan(4000);
  });

  it("is cancelled at once by the caller's signal", async () => {
    const controller = new AbortController();
    const pending = runProbe(http("/slow"), { timeoutMs: 10_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    const result = await pending;
    expect(result.healthy).toBe(false);
    expect(result.reason).toMatch(/: probe cancelled$/);
    expect(result.durationMs).toBeLessThan(2000);
  });

  it("fails on a closed port", async () => {
    const result = await probe({ ...http("/"), port: await closedTcpPort() } as ProbeSpec);
    expect(result.healthy).toBe(false);
    expect(result.reason).toMatch(/ECONNREFUSED/);
  });
});

describe("HTTPS probe with a self-signed certificate", () => {
  let certificate: Certificate;
  let other: Certificate;
  let server: Server;
  let port: number;
  beforeAll(async () => {
    certificate = selfSignedCertificate("probe.test");
    other = selfSignedCertificate("other.test");
    ({ server, port } = await httpsServer(certificate, (_req, res) => res.end("secure")));
  });
  afterAll(() => server.close());

  const https = (tls: { verify: boolean; ca?: string; serverName?: string }, host?: string): ProbeSpec => ({
    kind: "HTTPS",
    address: LOCAL,
    port,
    path: "/",
    expectStatus: DEFAULT_EXPECT_STATUS,
    expectBody: "secure",
    tls,
    ...(host ? { host } : {}),
  });

  it("passes without verification (the default)", async () => {
    expect(await probe(https({ verify: false }))).toMatchObject({ healthy: true });
  });

  it("fails verification against the public CAs", async () => {
    const result = await probe(https({ verify: true }));
    expect(result.healthy).toBe(false);
    expect(result.reason).toMatch(/self.signed|DEPTH_ZERO/i);
  });

  it("passes verification with the right CA, for the address and for the server name", async () => {
    expect(await probe(https({ verify: true, ca: certificate.cert }))).toMatchObject({ healthy: true });
    expect(
      await probe(https({ verify: true, ca: certificate.cert, serverName: "probe.test" })),
    ).toMatchObject({
      healthy: true,
    });
    // The Host header's name is the SNI and verified name when serverName is absent.
    expect(await probe(https({ verify: true, ca: certificate.cert }, "probe.test:8443"))).toMatchObject({
      healthy: true,
    });
  });

  it("fails verification with another CA or another name", async () => {
    const wrongCa = await probe(https({ verify: true, ca: other.cert }));
    expect(wrongCa.healthy).toBe(false);
    expect(wrongCa.reason).toMatch(/self.signed|unable to verify|DEPTH_ZERO/i);
    const wrongName = await probe(https({ verify: true, ca: certificate.cert, serverName: "other.test" }));
    expect(wrongName.healthy).toBe(false);
    expect(wrongName.reason).toMatch(/ALTNAME|does not match/i);
  });
});

describe("UDP probe", () => {
  let echo: Awaited<ReturnType<typeof udpServer>>;
  let silent: Awaited<ReturnType<typeof udpServer>>;
  const seen: string[] = [];
  beforeAll(async () => {
    echo = await udpServer((message) => Buffer.concat([Buffer.from("echo:"), message]));
    silent = await udpServer((message) => {
      seen.push(message.toString());
      return undefined;
    });
  });
  afterAll(() => {
    echo.socket.close();
    silent.socket.close();
  });

  const udp = (port: number, more: Partial<Extract<ProbeSpec, { kind: "UDP" }>> = {}): ProbeSpec => ({
    kind: "UDP",
    address: LOCAL,
    port,
    payload: Buffer.from("ping"),
    quietMs: 200,
    ...more,
  });

  it("is healthy when the expected reply arrives (bytes or expression)", async () => {
    expect(await probe(udp(echo.port, { expect: { bytes: Buffer.from("echo:ping") } }))).toMatchObject({
      healthy: true,
      reason: `UDP 127.0.0.1:${echo.port}: expected reply received`,
    });
    expect((await probe(udp(echo.port, { expect: { regex: "^echo:p.ng$" } }))).healthy).toBe(true);
  });

  it("fails when the reply does not match, or none comes", async () => {
    const wrong = await probe(udp(echo.port, { expect: { bytes: Buffer.from("pong") } }), 1000);
    expect(wrong.healthy).toBe(false);
    expect(wrong.reason).toMatch(
      /waiting for the expected reply \(1 other replies\): no answer within 1000 ms/,
    );
    seen.length = 0;
    const none = await probe(udp(silent.port, { expect: { regex: "." } }), 1000);
    expect(none.healthy).toBe(false);
    expect(seen).toEqual(["ping"]);
  });

  it("fails on ICMP port unreachable, with and without an expected reply", async () => {
    const port = await closedUdpPort();
    for (const spec of [udp(port), udp(port, { expect: { regex: "." } })]) {
      const result = await probe(spec, 1000);
      expect(result).toMatchObject({ healthy: false });
      expect(result.reason).toMatch(/ICMP port unreachable \(ECONNREFUSED\)/);
    }
  });

  it("without an expected reply: healthy when no ICMP error comes back within the quiet time", async () => {
    const result = await probe(udp(silent.port), 2000);
    expect(result).toMatchObject({
      healthy: true,
      reason: `UDP 127.0.0.1:${silent.port}: no ICMP error within 200 ms`,
    });
    expect(await probe(udp(echo.port), 2000)).toMatchObject({
      healthy: true,
      reason: expect.stringMatching(/reply of 9 bytes/),
    });
  });
});

describe("DNS probe against dnsmasq", () => {
  let dns: { port: number; stop: () => void };
  beforeAll(async () => {
    dns = await startDnsmasq();
  });
  afterAll(() => dns?.stop());

  const query = (name: string, type: "A" | "AAAA" | "TXT", expect?: string): ProbeSpec => ({
    kind: "DNS",
    address: LOCAL,
    port: dns.port,
    query: { name, type },
    ...(expect !== undefined ? { expect } : {}),
  });

  it("is healthy when the server answers, with the expected value when one is set", async () => {
    expect(await probe(query("probe.test", "A"))).toMatchObject({
      healthy: true,
      reason: `DNS A probe.test @127.0.0.1:${dns.port}: 192.0.2.53`,
    });
    expect((await probe(query("www.probe.test", "A", "192.0.2.53"))).healthy).toBe(true);
    expect((await probe(query("txt.probe.test", "TXT", "v=probe"))).healthy).toBe(true);
  });

  it("fails when the expected value is not among the answers", async () => {
    expect(await probe(query("probe.test", "A", "192.0.2.99"))).toMatchObject({
      healthy: false,
      reason: `DNS A probe.test @127.0.0.1:${dns.port}: answer 192.0.2.53 does not include 192.0.2.99`,
    });
  });

  it("fails on NXDOMAIN", async () => {
    const result = await probe(query("missing.local.test", "A"));
    expect(result.healthy).toBe(false);
    expect(result.reason).toMatch(/NXDOMAIN/);
  });

  it("fails when no server answers", async () => {
    const result = await probe(
      { ...query("probe.test", "A"), port: await closedUdpPort() } as ProbeSpec,
      500,
    );
    expect(result.healthy).toBe(false);
    expect(result.reason).toMatch(/refused|no answer/);
  });
});

describe("Exec probe", () => {
  const policy: ExecPolicy = { enabled: true, allowedCommands: ["/bin/true", "/bin/false", "/bin/sh"] };
  const exec = (command: string[]): ProbeSpec => ({
    kind: "Exec",
    address: "192.0.2.7",
    port: 8080,
    command,
  });

  it("is healthy on exit status 0 and fails otherwise", async () => {
    expect(await probe(exec(["/bin/true"]), 2000, { exec: policy })).toMatchObject({ healthy: true });
    expect(await probe(exec(["/bin/false"]), 2000, { exec: policy })).toMatchObject({
      healthy: false,
      reason: "exec /bin/false: exit status 1",
    });
  });

  it("passes the real server in IPVS_RS_ADDRESS and IPVS_RS_PORT, and no agent environment", async () => {
    process.env.HEALTH_TEST_SECRET = "leak";
    const script =
      'test "$IPVS_RS_ADDRESS:$IPVS_RS_PORT" = "192.0.2.7:8080" && test -z "$HEALTH_TEST_SECRET"';
    expect(await probe(exec(["/bin/sh", "-c", script]), 2000, { exec: policy })).toMatchObject({
      healthy: true,
    });
    delete process.env.HEALTH_TEST_SECRET;
  });

  it("fails with the error when an allowlisted command cannot be started", async () => {
    const missing = "/nonexistent/health-check";
    const result = await probe(exec([missing]), 2000, {
      exec: { enabled: true, allowedCommands: [missing] },
    });
    expect(result.healthy).toBe(false);
    expect(result.reason).toMatch(/^exec \/nonexistent\/health-check: .*ENOENT/);
  });

  it("names the command's last output in the reason", async () => {
    const result = await probe(exec(["/bin/sh", "-c", "echo backend says no >&2; exit 3"]), 2000, {
      exec: policy,
    });
    expect(result).toMatchObject({ healthy: false, reason: "exec /bin/sh: exit status 3: backend says no" });
  });

  it("kills a command that outlives the timeout, with its children", async () => {
    const marker = `sleep ${37 + Math.floor(Math.random() * 1000) / 1000}`;
    const result = await probe(exec(["/bin/sh", "-c", `${marker}; true`]), 300, { exec: policy });
    expect(result.healthy).toBe(false);
    expect(result.reason).toMatch(/running: no answer within 300 ms/);
    await until(() => !running(marker));
  });

  it("refuses commands outside the allowlist and everything when disabled, without running them", async () => {
    const witness = join(tmpdir(), `health-exec-${process.pid}-${Date.now()}`);
    const refused = await probe(exec(["/usr/bin/touch", witness]), 2000, { exec: policy });
    expect(refused).toMatchObject({
      healthy: false,
      reason: "exec health check command /usr/bin/touch is not in this node's allowlist",
    });
    const relative = await probe(exec(["true"]), 2000, { exec: policy });
    expect(relative.reason).toMatch(/not an absolute, normalized path/);
    const sneaky = await probe(exec(["/bin/../usr/bin/touch", witness]), 2000, { exec: policy });
    expect(sneaky.healthy).toBe(false);
    for (const disabled of [{ enabled: false, allowedCommands: ["/usr/bin/touch"] }, undefined]) {
      const result = await probe(exec(["/usr/bin/touch", witness]), 2000, disabled ? { exec: disabled } : {});
      expect(result.healthy).toBe(false);
      expect(result.reason).toContain(EXEC_DISABLED_REASON);
    }
    expect(existsSync(witness)).toBe(false);
  });
});

function running(pattern: string): boolean {
  try {
    execFileSync("pgrep", ["-f", pattern], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}

async function until(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("IPv6 targets (::1)", () => {
  it("probes HTTP with a bracketed Host header and UDP over udp6", async () => {
    const hosts: (string | undefined)[] = [];
    const server = createServer((req, res) => {
      hosts.push(req.headers.host);
      res.end("v6");
    });
    await new Promise<void>((resolve) => server.listen(0, "::1", () => resolve()));
    const port = (server.address() as { port: number }).port;
    const udp = createSocket("udp6");
    udp.on("message", (message, remote) => udp.send(message, remote.port, remote.address));
    await new Promise<void>((resolve) => udp.bind(0, "::1", () => resolve()));
    try {
      const http = await probe({
        kind: "HTTP",
        address: "::1",
        port,
        path: "/",
        expectStatus: DEFAULT_EXPECT_STATUS,
      });
      expect(http).toMatchObject({ healthy: true, reason: "HTTP 200" });
      expect(hosts).toEqual([`[::1]:${port}`]);
      const echo = await probe({
        kind: "UDP",
        address: "::1",
        port: udp.address().port,
        payload: Buffer.from("six"),
        expect: { regex: "^six$" },
        quietMs: 200,
      });
      expect(echo.healthy).toBe(true);
      expect(
        (await probe({ kind: "TCP", address: "::1", port }, 2000, { localAddress: "::1" })).healthy,
      ).toBe(true);
    } finally {
      server.close();
      udp.close();
    }
  });
});
