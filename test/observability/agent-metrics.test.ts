/**
 * The agent's wiring of the scrape-time IPVS counters: what its /metrics serves labels the kernel's
 * services with the VirtualServices of its own last plan, and follows the plan when a service goes.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Agent } from "../../src/agent/agent.ts";
import { resolveAgentConfig } from "../../src/agent/config.ts";
import { DirectorySource } from "../../src/files/directory-source.ts";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { createRootLogger } from "../../src/observability/logger.ts";
import { until } from "../support/until.ts";

const manifest = (name: string, address: string) => `apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: ${name}, namespace: shop}
spec: {address: ${address}, port: 80}
---
apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: ${name}-rs, namespace: shop}
spec: {virtualServiceRef: {name: ${name}}, address: 198.51.100.20, port: 8080}
`;

describe("the agent's /metrics", () => {
  let agent: Agent | undefined;
  const metricsText = async () => (await agent!.metrics.expose()).text;
  afterEach(async () => {
    await agent?.stop();
  });

  it("serves the IPVS counters labelled from its last plan", async () => {
    const dir = mkdtempSync(join(tmpdir(), "agent-metrics-"));
    writeFileSync(join(dir, "web.yaml"), manifest("web", "192.0.2.10"));
    writeFileSync(join(dir, "api.yaml"), manifest("api", "192.0.2.11"));
    const kernel = new FakeIpvsKernel();
    const config = resolveAgentConfig(
      {
        fromDir: dir,
        stateFile: join(mkdtempSync(join(tmpdir(), "agent-metrics-state-")), "journal.json"),
        minSyncInterval: "0",
        resyncInterval: "1m",
        httpAddress: "", // no server (a fixed port could clash with other runs): expose() is what /metrics serves
      },
      { NODE_NAME: "n1" },
    );
    agent = new Agent(config, {
      kernel,
      source: new DirectorySource({ path: dir, nodeName: "n1", debounceMs: 20, rereadMs: 0 }),
      bootId: "boot",
      logger: createRootLogger({ level: "silent" }),
    });
    await agent.start();
    await until("the first sync", () => (agent!.health().ready ? true : undefined), 10_000, 20);

    const text = await metricsText();
    for (const [name, vip] of [
      ["web", "192.0.2.10"],
      ["api", "192.0.2.11"],
    ]) {
      expect(text).toContain(
        `ipvs_operator_service_connections_total{namespace="shop",virtualservice="${name}",protocol="TCP",vip="${vip}",port="80"} 0`,
      );
      expect(text).toContain(
        `ipvs_operator_destination_weight{namespace="shop",virtualservice="${name}",protocol="TCP",vip="${vip}",port="80",real_server="198.51.100.20:8080",source_kind="RealServer",source_namespace="shop",source_name="${name}-rs"} 1`,
      );
      expect(text).toContain(
        `ipvs_operator_backends{namespace="shop",virtualservice="${name}",state="ready"} 1`,
      );
    }

    rmSync(join(dir, "api.yaml"));
    await until("api removed", async () => (kernel.serviceCount === 1 ? true : undefined), 10_000, 20);
    await until(
      "api's series gone",
      async () => (!(await metricsText()).includes('virtualservice="api"') ? true : undefined),
      10_000,
      20,
    );
    expect(await metricsText()).toContain('virtualservice="web"');
  });
});
