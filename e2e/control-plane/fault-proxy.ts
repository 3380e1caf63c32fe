/**
 * A fault-injecting HTTPS proxy between an agent and the real API server (tests only). It serves the
 * API server's own certificate (valid for 127.0.0.1), so the agent's kubeconfig only changes its server
 * URL. Faults: drop every open watch, answer the next N requests with 429 (Retry-After) or 500, add
 * latency, or go down entirely (connections reset) for a while.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { Agent, createServer, request, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { dirname, join } from "node:path";
import type { ControlPlaneInfo } from "./control-plane.ts";

export interface FaultProxy {
  kubeconfig: string;
  /** The next `count` requests get 429 Too Many Requests with Retry-After: `retryAfterSeconds`. */
  throttle(count: number, retryAfterSeconds?: number): void;
  /** The next `count` requests get 500. */
  fail(count: number): void;
  latency(ms: number): void;
  /** Ends every watch in flight (the agent must notice and watch again). */
  dropWatches(): number;
  /** Down (every connection reset at once) until up(). */
  down(): void;
  up(): void;
  readonly stats: { requests: number; throttled: number; failed: number; reset: number };
  /** Every request forwarded to the API server, with the status it answered (in the order answered). */
  readonly log: ForwardedRequest[];
  close(): Promise<void>;
}

export interface ForwardedRequest {
  method: string;
  url: string;
  status: number;
  /** Milliseconds since the proxy started, when the answer's headers arrived. */
  at: number;
  /** The response body of an error (status 400 and above), once it has been read. */
  message?: string;
}

export interface FaultProxyOptions {
  /** Bearer token the proxy's kubeconfig uses (default: the admin token of the control plane). */
  token?: string;
}

export async function startFaultProxy(
  info: ControlPlaneInfo,
  dir: string,
  options: FaultProxyOptions = {},
): Promise<FaultProxy> {
  const certDir = dirname(info.caFile);
  const ca = readFileSync(info.caFile, "utf8");
  const upstream = new URL(info.server);
  const agent = new Agent({ keepAlive: true, ca });
  const sockets = new Set<Socket>();
  const watches = new Set<Socket>();
  let throttle = 0;
  let retryAfter = 1;
  let fail = 0;
  let delay = 0;
  let isDown = false;
  const stats = { requests: 0, throttled: 0, failed: 0, reset: 0 };
  const log: ForwardedRequest[] = [];
  const startedAt = performance.now();
  const status = (code: number, reason: string, message: string) =>
    JSON.stringify({
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message,
      reason,
      code,
    });

  const server: Server = createServer(
    { cert: readFileSync(join(certDir, "apiserver.crt")), key: readFileSync(join(certDir, "apiserver.key")) },
    (req, res) => {
      stats.requests++;
      if (isDown) {
        stats.reset++;
        req.socket.destroy();
        return;
      }
      if (throttle > 0) {
        throttle--;
        stats.throttled++;
        res.writeHead(429, { "content-type": "application/json", "retry-after": String(retryAfter) });
        res.end(status(429, "TooManyRequests", "injected by the fault proxy"));
        return;
      }
      if (fail > 0) {
        fail--;
        stats.failed++;
        res.writeHead(500, { "content-type": "application/json" });
        res.end(status(500, "InternalError", "injected by the fault proxy"));
        return;
      }
      const forward = () => {
        const isWatch = /[?&]watch=(true|1)/.test(req.url ?? "");
        const out = request(
          {
            host: upstream.hostname,
            port: upstream.port,
            method: req.method,
            path: req.url,
            headers: { ...req.headers, host: upstream.host },
            agent,
          },
          (up) => {
            const entry: ForwardedRequest = {
              method: req.method ?? "GET",
              url: req.url ?? "/",
              status: up.statusCode ?? 502,
              at: Math.round(performance.now() - startedAt),
            };
            log.push(entry);
            if (entry.status >= 400) {
              // Keep what the API server said (a metav1.Status: "... cannot patch resource ...").
              let body = "";
              up.on("data", (chunk: Buffer) => {
                if (body.length < 4096) body += chunk.toString("utf8");
              });
              up.on("end", () => {
                entry.message = body;
              });
            }
            res.writeHead(up.statusCode ?? 502, up.headers);
            // A watch's headers come long before its first event: pass them on at once, as the API
            // server does (Node holds them back until the first body write otherwise).
            res.flushHeaders();
            up.pipe(res);
          },
        );
        out.on("error", () => req.socket.destroy());
        if (isWatch) {
          watches.add(req.socket);
          req.socket.once("close", () => watches.delete(req.socket));
        }
        req.pipe(out);
      };
      if (delay > 0) setTimeout(forward, delay);
      else forward();
    },
  );
  server.on("connection", (socket: Socket) => {
    if (isDown) {
      stats.reset++;
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const kubeconfig = join(dir, "proxy-kubeconfig.yaml");
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "proxy",
          cluster: { server: `https://127.0.0.1:${port}`, "certificate-authority": info.caFile },
        },
      ],
      users: [{ name: "admin", user: { token: options.token ?? info.token } }],
      contexts: [{ name: "proxy", context: { cluster: "proxy", user: "admin" } }],
      "current-context": "proxy",
    }),
  );
  return {
    kubeconfig,
    stats,
    log,
    throttle(count, seconds = 1) {
      throttle = count;
      retryAfter = seconds;
    },
    fail(count) {
      fail = count;
    },
    latency(ms) {
      delay = ms;
    },
    dropWatches() {
      const n = watches.size;
      for (const s of watches) s.destroy();
      watches.clear();
      return n;
    },
    down() {
      isDown = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
      watches.clear();
    },
    up() {
      isDown = false;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
