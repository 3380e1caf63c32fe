/** The health server: /readyz and /healthz answer 200 or 503 with the check's line; /metrics serves the registry. */
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { parseHostPort, startHealthServer } from "../../src/observability/health-server.ts";
import { AgentMetrics } from "../../src/observability/metrics.ts";
import type { SyncResult } from "../../src/reconcile/reconciler.ts";

const servers: { close(cb: () => void): void }[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

describe("health server", () => {
  it("parses host:port forms", () => {
    expect(parseHostPort(":9796")).toEqual({ host: "0.0.0.0", port: 9796 });
    expect(parseHostPort("127.0.0.1:80")).toEqual({ host: "127.0.0.1", port: 80 });
    expect(parseHostPort("[::1]:9796")).toEqual({ host: "::1", port: 9796 });
    expect(() => parseHostPort("nope")).toThrow(/host:port/);
  });

  it("answers /readyz, /healthz and /metrics; 404 for anything else", async () => {
    const metrics = new AgentMetrics({ processMetrics: false });
    const result = {
      outcomes: [
        {
          operation: { op: "deleteService", key: { kind: "fwmark", family: "IPv4", fwmark: 1 } },
          description: "delete service FWM 1 IPv4",
          result: "failed",
          reason: "ESRCH",
        },
      ],
      drift: [{ kind: "Foreign", service: "TCP 192.0.2.1:80", action: "Ignored" }],
      draining: 0,
      drains: [],
      failed: 1,
      ok: false,
      errors: [],
      snapshot: { table: [], undecodable: [] },
      dumped: true,
      nextWakeAt: undefined,
      notes: [],
      owned: { services: 3, destinations: 7 },
    } as SyncResult;
    metrics.observeSync(result, { startedAt: 1000, endedAt: 1250, oldestRequestAt: 900 });
    const server = await startHealthServer("127.0.0.1:0", {
      ready: () => ({ ok: false, message: "waiting for the caches to sync" }),
      healthy: () => ({ ok: true, message: "ok" }),
      metrics: () => metrics.expose(),
    });
    servers.push(server);
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const ready = await fetch(`${base}/readyz`);
    expect([ready.status, await ready.text()]).toEqual([503, "waiting for the caches to sync\n"]);
    const healthy = await fetch(`${base}/healthz`);
    expect([healthy.status, await healthy.text()]).toEqual([200, "ok\n"]);
    expect((await fetch(`${base}/other`)).status).toBe(404);
    const scraped = await fetch(`${base}/metrics`);
    expect(scraped.status).toBe(200);
    expect(scraped.headers.get("content-type")).toContain("text/plain");
    const text = await scraped.text();
    expect(text).toContain(
      'ipvs_operator_kernel_operations_total{operation="deleteService",result="failed"} 1',
    );
    expect(text).toContain('ipvs_operator_drift_items{kind="Foreign",action="Ignored"} 1');
    expect(text).toContain('ipvs_operator_owned_entries{entry="destinations"} 7');
    expect(text).toContain('ipvs_operator_sync_duration_seconds_count{result="partial"} 1');
    expect(text).toContain('ipvs_operator_sync_duration_seconds_sum{result="partial"} 0.25');
    // A failed sync is no successful one and programs nothing.
    expect(text).toContain("ipvs_operator_last_successful_sync_timestamp_seconds 0");
    expect(text).toContain("ipvs_operator_network_programming_duration_seconds_count 0");
  });
});
