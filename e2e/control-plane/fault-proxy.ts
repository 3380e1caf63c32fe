/**
 * A fault-injecting HTTPS proxy between an agent and the real API server (tests only). It serves the
 * API server's own certificate (valid for 127.0.0.1), so the agent's kubeconfig only changes its server
 * URL. Faults: drop every open watch, answer the next N requests with 429 (Retry-After) or 500, answer
 * the next N reads at a resourceVersion with 410 Gone, the next N writes with 409 Conflict, add latency,
 * or go down entirely (connections reset) for a while.
 */
import { readFileSync, writeFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { Agent, createServer, request, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { dirname, join } from "node:path";
import type { ControlPlaneInfo } from "./control-plane.ts";

export interface FaultProxy {
  kubeconfig: string;
  /** The proxy's URL (https://127.0.0.1:<port>). */
  server: string;
  /** The next `count` requests get 429 Too Many Requests with Retry-After: `retryAfterSeconds`. */
  throttle(count: number, retryAfterSeconds?: number): void;
  /** The next `count` requests get 500. */
  fail(count: number): void;
  /**
   * The next `count` GETs at a resourceVersion (watches, lists resuming from one, continue tokens) get
   * 410 Gone "too old resource version": in turn an HTTP 410 and, for a watch, a 200 whose stream
   * carries one ERROR event with a 410 Expired Status and then ends (what the API server sends).
   */
  gone(count: number): void;
  /**
   * The next `count` writes (POST, PUT, PATCH, DELETE) whose path matches `path` (default: every
   * write) get 409 Conflict.
   */
  conflict(count: number, path?: RegExp): void;
  latency(ms: number): void;
  /** Ends every watch in flight (the agent must notice and watch again). */
  dropWatches(): number;
  /** Down (every connection reset at once) until up(). */
  down(): void;
  up(): void;
  readonly stats: FaultStats;
  /** Every request forwarded to the API server, with the status it answered (in the order answered). */
  readonly log: ForwardedRequest[];
  close(): Promise<void>;
}

export interface FaultStats {
  requests: number;
  /** 429s served. */
  throttled: number;
  /** 500s served. */
  failed: number;
  /** Connections reset while down. */
  reset: number;
  /** 410s served: as an HTTP status and as a watch ERROR event. */
  gone: number;
  goneEvents: number;
  /** 409s served. */
  conflicts: number;
  /** Watches ended by dropWatches(). */
  dropped: number;
  /** Requests held back by latency(). */
  delayed: number;
}

/** "410 x20 (10 as watch events), 409 x30": the faults served since `before` (a copy of stats). */
export function faultSummary(now: FaultStats, before?: FaultStats): string {
  const d = (k: keyof FaultStats) => now[k] - (before?.[k] ?? 0);
  const parts = [
    d("gone") > 0 ? `410 x${d("gone")} (${d("goneEvents")} as watch events)` : "",
    d("conflicts") > 0 ? `409 x${d("conflicts")}` : "",
    d("throttled") > 0 ? `429 x${d("throttled")}` : "",
    d("failed") > 0 ? `500 x${d("failed")}` : "",
    d("dropped") > 0 ? `dropped watches x${d("dropped")}` : "",
    d("delayed") > 0 ? `delayed requests x${d("delayed")}` : "",
    d("reset") > 0 ? `connections reset x${d("reset")}` : "",
  ].filter((p) => p !== "");
  return parts.length > 0 ? parts.join(", ") : "none";
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
  /**
   * Requests that get none of the counted faults (429, 500, 410, 409) and do not use them up: for a
   * client that shares the proxy with the one under test, such as a test's kubectl. Outages and
   * dropped watches still reach them, as they would through any network path.
   */
  spare?: (req: IncomingMessage) => boolean;
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
  let gone = 0;
  let conflict = 0;
  let conflictPath: RegExp | undefined;
  let delay = 0;
  let isDown = false;
  const stats: FaultStats = {
    requests: 0,
    throttled: 0,
    failed: 0,
    reset: 0,
    gone: 0,
    goneEvents: 0,
    conflicts: 0,
    dropped: 0,
    delayed: 0,
  };
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
      const faulty = !options.spare?.(req);
      if (faulty && throttle > 0) {
        throttle--;
        stats.throttled++;
        res.writeHead(429, { "content-type": "application/json", "retry-after": String(retryAfter) });
        res.end(status(429, "TooManyRequests", "injected by the fault proxy"));
        return;
      }
      if (faulty && fail > 0) {
        fail--;
        stats.failed++;
        res.writeHead(500, { "content-type": "application/json" });
        res.end(status(500, "InternalError", "injected by the fault proxy"));
        return;
      }
      const url = new URL(req.url ?? "/", "https://proxy");
      const isWatch = /^(true|1)$/.test(url.searchParams.get("watch") ?? "");
      if (
        faulty &&
        gone > 0 &&
        req.method === "GET" &&
        (url.searchParams.get("resourceVersion") || url.searchParams.get("continue"))
      ) {
        gone--;
        stats.gone++;
        const expired = status(410, "Expired", "too old resource version (injected by the fault proxy)");
        // Every other one a watch gets as the API server sends it: 200, one ERROR event, end of stream.
        if (isWatch && stats.gone % 2 === 0) {
          stats.goneEvents++;
          res.writeHead(200, { "content-type": "application/json" });
          res.end(`{"type":"ERROR","object":${expired}}\n`);
        } else {
          res.writeHead(410, { "content-type": "application/json" });
          res.end(expired);
        }
        return;
      }
      if (
        faulty &&
        conflict > 0 &&
        ["POST", "PUT", "PATCH", "DELETE"].includes(req.method ?? "") &&
        (conflictPath === undefined || conflictPath.test(url.pathname))
      ) {
        conflict--;
        stats.conflicts++;
        // The request body is not needed: read and drop it, so the connection stays usable.
        req.resume();
        res.writeHead(409, { "content-type": "application/json" });
        res.end(
          status(
            409,
            "Conflict",
            "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again (injected by the fault proxy)",
          ),
        );
        return;
      }
      const forward = () => {
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
      if (delay > 0) {
        stats.delayed++;
        setTimeout(forward, delay);
      } else forward();
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
    server: `https://127.0.0.1:${port}`,
    stats,
    log,
    throttle(count, seconds = 1) {
      throttle = count;
      retryAfter = seconds;
    },
    fail(count) {
      fail = count;
    },
    gone(count) {
      gone = count;
    },
    conflict(count, path) {
      conflict = count;
      conflictPath = path;
    },
    latency(ms) {
      delay = ms;
    },
    dropWatches() {
      const n = watches.size;
      stats.dropped += n;
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
