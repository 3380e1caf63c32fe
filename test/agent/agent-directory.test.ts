/** The agent end to end in standalone mode: a watched manifest directory, the fake kernel, /readyz. */
import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Agent } from "../../src/agent/agent.ts";
import { resolveAgentConfig } from "../../src/agent/config.ts";
import { DirectorySource } from "../../src/files/directory-source.ts";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { readKernelTable } from "../../src/kernel/read-kernel-table.ts";
import { renderIpvsadmSave } from "../../src/model/ipvsadm-render.ts";
import { createRootLogger } from "../../src/observability/logger.ts";
import { until as waitFor } from "../support/until.ts";

const until = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined, limitMs = 10_000) =>
  waitFor(what, probe, limitMs, 20);

describe("agent --from-dir (fake kernel)", () => {
  let agent: Agent | undefined;
  afterEach(async () => {
    await agent?.stop();
  });

  it("programs the directory, follows edits, removes nothing while a file is half-written, and stops cleanly", async () => {
    const dir = mkdtempSync(join(tmpdir(), "agent-dir-"));
    const state = join(mkdtempSync(join(tmpdir(), "agent-state-")), "journal.json");
    copyFileSync("examples/nat-round-robin.yaml", join(dir, "web.yaml"));
    const kernel = new FakeIpvsKernel();
    kernel.close = async () => {};
    const config = resolveAgentConfig(
      {
        fromDir: dir,
        stateFile: state,
        minSyncInterval: "0",
        resyncInterval: "1s",
        httpAddress: "127.0.0.1:0",
      },
      { NODE_NAME: "n1" },
    );
    const source = new DirectorySource({ path: dir, nodeName: "n1", debounceMs: 20, rereadMs: 0 });
    agent = new Agent(config, {
      kernel,
      source,
      bootId: "boot",
      logger: createRootLogger({ level: "silent" }),
    });
    await agent.start();
    const table = () => readKernelTable(kernel).then(renderIpvsadmSave);
    await until("the first sync", async () =>
      (await table()).includes("198.51.100.11:8080") ? true : undefined,
    );
    expect(await table()).toBe(
      "-A -t 192.0.2.10:80 -s rr\n-a -t 192.0.2.10:80 -r 198.51.100.10:8080 -m -w 1\n-a -t 192.0.2.10:80 -r 198.51.100.11:8080 -m -w 1\n",
    );
    await until("ready", () => (agent!.health().ready ? true : undefined));

    // A second service appears; then its file is cut off mid-save: nothing is removed.
    const extra =
      "apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: extra, namespace: t}\nspec: {address: 192.0.2.99, port: 80}\n";
    writeFileSync(join(dir, "extra.yaml"), extra);
    await until("the new service", async () =>
      (await table()).includes("192.0.2.99:80") ? true : undefined,
    );
    writeFileSync(join(dir, "extra.yaml"), extra.slice(0, 71));
    const syncs = agent.health().syncs;
    await until("a sync after the bad save", () => (agent!.health().syncs > syncs + 1 ? true : undefined));
    expect(await table()).toContain("192.0.2.99:80");

    // Drift behind its back is repaired at the latest by the periodic resync.
    await kernel.updateDestination(
      { kind: "address", family: "IPv4", protocol: "TCP", address: "192.0.2.10", port: 80 },
      {
        key: { family: "IPv4", address: "198.51.100.10", port: 8080 },
        config: {
          forwarding: "NAT",
          weight: 0,
          upperThreshold: 0,
          lowerThreshold: 0,
          tunnelType: "IPIP",
          tunnelPort: 0,
          tunnelChecksum: "None",
        },
      },
    );
    await until("the repair", async () =>
      (await table()).includes("198.51.100.10:8080 -m -w 1") ? true : undefined,
    );

    // The metrics tell what happened: the operations by kind, the repair as drift, the dumps. They
    // are recorded when the sync ends, a moment after the kernel changed.
    const repaired = 'ipvs_operator_kernel_operations_total{operation="updateDestination",result="applied"}';
    const read = (text: string, series: string) =>
      Number(new RegExp(`^${series} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);
    const text = await until("the repair's metrics", async () => {
      const { text } = await agent!.metrics.expose();
      return read(text, repaired) >= 1 ? text : undefined;
    });
    const value = (series: string) => read(text, series);
    expect(value('ipvs_operator_kernel_operations_total{operation="addService",result="applied"}')).toBe(2);
    expect(value('ipvs_operator_kernel_operations_total{operation="addDestination",result="applied"}')).toBe(
      2,
    );
    expect(value(repaired)).toBe(1);
    expect(value("ipvs_operator_kernel_table_dumps_total")).toBeGreaterThanOrEqual(2);
    expect(value('ipvs_operator_owned_entries{entry="services"}')).toBe(2);
    expect(value("ipvs_operator_last_successful_sync_timestamp_seconds")).toBeGreaterThan(
      Date.now() / 1000 - 60,
    );
    expect(value('ipvs_operator_sync_duration_seconds_count{result="success"}')).toBeGreaterThan(2);
    expect(value("ipvs_operator_network_programming_duration_seconds_count")).toBeGreaterThanOrEqual(1);

    // After stop, the table stays as it is whatever the files say.
    await agent.stop();
    const before = await table();
    writeFileSync(join(dir, "web.yaml"), "");
    await new Promise((r) => setTimeout(r, 300));
    expect(await table()).toBe(before);
  });
});
