/**
 * /healthz and /readyz over plain HTTP (the DaemonSet's liveness and readiness probes), and /metrics
 * (Prometheus text) when the caller gives metrics.
 * /readyz: 200 once the caches synced and the first sync succeeded; /healthz: 200 while changes get
 * applied in time (kube-proxy's rule: no requested sync left unapplied for too long).
 */
import { createServer, type Server } from "node:http";

export interface HealthReport {
  ok: boolean;
  /** One line for humans ("ok", "waiting for the caches to sync", "last successful sync 95 s ago"). */
  message: string;
}

export interface HealthChecks {
  ready(): HealthReport;
  healthy(): HealthReport;
  /** The Prometheus exposition for /metrics. */
  metrics?(): Promise<{ contentType: string; text: string }>;
}

/** "0.0.0.0:9796", ":9796", "[::1]:9796" -> host and port. */
export function parseHostPort(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address);
  if (!match) throw new Error(`"${address}" is not host:port`);
  return { host: match[1] ?? (match[2] || "0.0.0.0"), port: Number(match[3]) };
}

export async function startHealthServer(address: string, checks: HealthChecks): Promise<Server> {
  const { host, port } = parseHostPort(address);
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/metrics" && checks.metrics && req.method === "GET") {
      checks.metrics().then(
        ({ contentType, text }) => res.writeHead(200, { "content-type": contentType }).end(text),
        (error: unknown) =>
          res.writeHead(500, { "content-type": "text/plain" }).end(`metrics failed: ${String(error)}\n`),
      );
      return;
    }
    const check =
      path === "/readyz"
        ? checks.ready()
        : path === "/healthz" || path === "/livez"
          ? checks.healthy()
          : undefined;
    if (!check || req.method !== "GET") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    res.writeHead(check.ok ? 200 : 503, { "content-type": "text/plain" }).end(`${check.message}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
