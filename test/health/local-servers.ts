/**
 * Real servers on 127.0.0.1 for the prober component tests: TCP, HTTP, HTTPS (a self-signed certificate
 * made with openssl), UDP echo and silent UDP, a free (closed) port, and dnsmasq as the DNS server.
 */
import { execFileSync, spawn } from "node:child_process";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { mkdtempSync, readFileSync } from "node:fs";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { type AddressInfo, createServer as createTcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const DNSMASQ_SETUP = "e2e/health/install-deps.sh";

export interface Certificate {
  cert: string;
  key: string;
}

/** A self-signed certificate for DNS:probe.test and IP:127.0.0.1, valid for a day. */
export function selfSignedCertificate(commonName = "probe.test"): Certificate {
  const dir = mkdtempSync(join(tmpdir(), "health-cert-"));
  const key = join(dir, "key.pem");
  const cert = join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "1",
      "-subj",
      `/CN=${commonName}`,
      "-addext",
      `subjectAltName=DNS:${commonName},IP:127.0.0.1`,
    ],
    { stdio: "pipe" },
  );
  return { cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8") };
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export async function listen(server: Server | ReturnType<typeof createTcpServer>): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

export async function httpServer(handler: Handler): Promise<{ server: Server; port: number }> {
  const server = createHttpServer(handler);
  return { server, port: await listen(server) };
}

export async function httpsServer(
  certificate: Certificate,
  handler: Handler,
): Promise<{ server: Server; port: number }> {
  const server = createHttpsServer({ cert: certificate.cert, key: certificate.key }, handler);
  return { server, port: await listen(server) };
}

/** A TCP port on 127.0.0.1 nothing listens on (bound, then closed). */
export async function closedTcpPort(): Promise<number> {
  const server = createTcpServer();
  const port = await listen(server);
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function udpServer(
  reply: (message: Buffer) => Buffer | undefined,
): Promise<{ socket: UdpSocket; port: number }> {
  const socket = createSocket("udp4");
  socket.on("message", (message, remote) => {
    const answer = reply(message);
    if (answer) socket.send(answer, remote.port, remote.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  return { socket, port: socket.address().port };
}

export async function closedUdpPort(): Promise<number> {
  const socket = createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", () => resolve()));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** dnsmasq on 127.0.0.1: probe.test (and below) -> 192.0.2.53, TXT txt.probe.test, local.test authoritative. */
export async function startDnsmasq(): Promise<{ port: number; stop: () => void }> {
  let binary: string;
  try {
    binary = execFileSync("sh", ["-c", "command -v dnsmasq"], { encoding: "utf8" }).trim();
  } catch {
    binary = "";
  }
  if (!binary) {
    throw new Error(`dnsmasq is not installed: run ${DNSMASQ_SETUP} (as root) before the health tests`);
  }
  const port = await closedUdpPort();
  const child = spawn(
    binary,
    [
      "--no-daemon",
      `--port=${port}`,
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      "--no-resolv",
      "--no-hosts",
      "--conf-file=/dev/null",
      "--pid-file=",
      "--address=/probe.test/192.0.2.53",
      "--txt-record=txt.probe.test,v=probe",
      "--local=/local.test/",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<never>((_, reject) =>
    child.once("exit", (code) => reject(new Error(`dnsmasq exited (${code}): ${stderr}`))),
  );
  // Ready when it answers.
  const ready = (async () => {
    for (let i = 0; i < 100; i++) {
      if (await answers(port)) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`dnsmasq did not answer on 127.0.0.1:${port}: ${stderr}`);
  })();
  await Promise.race([ready, exited]);
  exited.catch(() => {});
  return { port, stop: () => child.kill("SIGKILL") };
}

async function answers(port: number): Promise<boolean> {
  const { Resolver } = await import("node:dns/promises");
  const resolver = new Resolver({ timeout: 200, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  try {
    await resolver.resolve4("probe.test");
    return true;
  } catch {
    return false;
  }
}
