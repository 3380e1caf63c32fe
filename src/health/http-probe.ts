/**
 * HTTP and HTTPS probe: one GET (path, Host header), healthy when the status is in one of the expected
 * ranges and, with a body expression, the first MAX_BODY_BYTES of the body match it (ldirectord
 * request=/receive=, keepalived HTTP_GET/SSL_GET). No connection reuse (agent: false): each probe
 * proves that a new connection is accepted, as a client's would be.
 *
 * TLS: verification is off unless the spec asks for it; with it on, `ca` replaces the public CAs and
 * `serverName` is both the SNI name and the name checked against the certificate.
 */
import { type ClientRequest, request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest, type RequestOptions } from "node:https";
import { isIP, isIPv6 } from "node:net";
import { describeError, hostPort, type ProbeContext, type ProbeResult, runBounded } from "./probe-result.ts";
import { type HttpProbeSpec, type HttpsProbeSpec, MAX_BODY_BYTES, type StatusRange } from "./probe-spec.ts";

export function probeHttp(spec: HttpProbeSpec | HttpsProbeSpec, context: ProbeContext): Promise<ProbeResult> {
  const scheme = spec.kind === "HTTPS" ? "https" : "http";
  const url = `${scheme}://${hostPort(spec.address, spec.port)}${spec.path}`;
  let stage = `GET ${url}`;
  const body = spec.expectBody === undefined ? undefined : compileRegex(spec.expectBody);
  return runBounded(
    context,
    (done) => {
      if (body instanceof Error) {
        done({ healthy: false, reason: `expectBody is not a valid regular expression: ${body.message}` });
        return () => {};
      }
      const host = spec.host ?? defaultHost(spec.address, spec.port, scheme);
      const options: RequestOptions = {
        host: spec.address,
        port: spec.port,
        path: spec.path,
        method: "GET",
        headers: {
          Host: host,
          "User-Agent": "ipvs-operator-health-check",
          Accept: "*/*",
          Connection: "close",
        },
        agent: false,
        ...(context.localAddress ? { localAddress: context.localAddress } : {}),
      };
      if (spec.kind === "HTTPS") {
        const serverName = spec.tls.serverName ?? nameOf(spec.host);
        options.rejectUnauthorized = spec.tls.verify;
        if (spec.tls.ca !== undefined) options.ca = spec.tls.ca;
        if (serverName !== undefined) options.servername = serverName;
      }
      const req: ClientRequest = (spec.kind === "HTTPS" ? httpsRequest : httpRequest)(options);
      stage = `GET ${url}: connecting`;
      req.once("socket", (socket) => {
        socket.once(spec.kind === "HTTPS" ? "secureConnect" : "connect", () => {
          stage = `GET ${url}: waiting for the response`;
        });
      });
      req.once("response", (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        if (!statusMatches(status, spec.expectStatus)) {
          done({ healthy: false, reason: `HTTP ${status}, expected ${rangesText(spec.expectStatus)}` });
          return;
        }
        if (body === undefined) {
          done({ healthy: true, reason: `HTTP ${status}` });
          return;
        }
        stage = `GET ${url}: reading the body`;
        readBounded(res, MAX_BODY_BYTES, (text, error) => {
          if (error)
            done({ healthy: false, reason: `HTTP ${status}, reading the body: ${describeError(error)}` });
          else if (body.test(text))
            done({ healthy: true, reason: `HTTP ${status}, body matches /${body.source}/` });
          else done({ healthy: false, reason: `HTTP ${status}, body does not match /${body.source}/` });
        });
      });
      req.once("error", (error) => done({ healthy: false, reason: `GET ${url}: ${describeError(error)}` }));
      req.end();
      return () => req.destroy();
    },
    () => stage,
  );
}

export function statusMatches(status: number, ranges: readonly StatusRange[]): boolean {
  return ranges.some((r) => status >= r.from && status <= r.to);
}

function rangesText(ranges: readonly StatusRange[]): string {
  return ranges.map((r) => (r.from === r.to ? `${r.from}` : `${r.from}-${r.to}`)).join(", ");
}

/** The Host header a browser would send for this address and port. */
function defaultHost(address: string, port: number, scheme: "http" | "https"): string {
  const name = isIPv6(address) ? `[${address}]` : address;
  return port === (scheme === "https" ? 443 : 80) ? name : `${name}:${port}`;
}

/** The DNS name in a Host header ("www.example.com:8443" -> "www.example.com"); undefined for addresses. */
function nameOf(host: string | undefined): string | undefined {
  if (host === undefined || host.startsWith("[")) return undefined;
  const name = host.replace(/:\d+$/, "");
  return isIP(name) ? undefined : name;
}

/** Reads at most `limit` bytes, then stops reading (the rest is never transferred into memory). */
function readBounded(res: IncomingMessage, limit: number, then: (text: string, error?: Error) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const finish = (error?: Error): void => {
    if (finished) return;
    finished = true;
    res.removeAllListeners("data");
    then(Buffer.concat(chunks, Math.min(size, limit)).toString("utf8"), error);
  };
  res.on("data", (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= limit) finish();
  });
  res.once("end", () => finish());
  res.once("error", (error) => finish(error));
  res.once("close", () =>
    finish(res.complete ? undefined : new Error("connection closed before the end of the body")),
  );
}

const regexCache = new Map<string, RegExp | Error>();

/** Compiled once per expression; an invalid one is an Error value (the probe reports it). */
export function compileRegex(source: string): RegExp | Error {
  let compiled = regexCache.get(source);
  if (compiled === undefined) {
    try {
      compiled = new RegExp(source);
    } catch (error) {
      compiled = error instanceof Error ? error : new Error(String(error));
    }
    if (regexCache.size > 1000) regexCache.clear();
    regexCache.set(source, compiled);
  }
  return compiled;
}
