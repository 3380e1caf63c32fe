/**
 * The scrape-time IPVS counters (ipvs-stats.ts) through AgentMetrics.expose(), with a Reconciler
 * programming the fake kernel (the labels come from its last plan, as in the agent): labels and values,
 * owned services only, one table read per scrape, the read error path, series gone with their service,
 * the bound on destination series, and backends by state.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import type { DesiredTable } from "../../src/model/desired-table.ts";
import { IPVS_STATS_FAMILIES } from "../../src/observability/ipvs-stats.ts";
import { AgentMetrics } from "../../src/observability/metrics.ts";
import { MemoryJournalStore } from "../../src/reconcile/ownership-journal.ts";
import { Reconciler } from "../../src/reconcile/reconciler.ts";
import {
  type IpvsStats,
  type KernelSnapshot,
  NO_FLAGS,
  type ServiceKey,
  serviceKeyString,
} from "../../src/vocabulary/table.ts";
import { realServer, service, tcpKey } from "../support/desired-builders.ts";

const WEB = tcpKey("192.0.2.10");
const MARK: ServiceKey = { kind: "fwmark", family: "IPv4", fwmark: 7 };
const FOREIGN = tcpKey("203.0.113.9");

function stats(base: bigint): IpvsStats {
  return {
    connections: base,
    inPackets: base * 10n,
    outPackets: base * 9n,
    inBytes: base * 1000n,
    outBytes: 9_007_199_254_740_993n, // above 2^53: must be written exactly
    cps: 3n,
    inPps: 30n,
    outPps: 27n,
    inBps: 3000n,
    outBps: 2700n,
  };
}

/** Sample lines of `text` for `name` as "labels value" (labels sorted as written). */
function samples(text: string, name: string): string[] {
  return text
    .split("\n")
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .map((l) => l.slice(name.length));
}

function table(): DesiredTable {
  const terminating = { ...realServer("198.51.100.3", 0), draining: true };
  return [
    service(WEB, [realServer("198.51.100.1"), realServer("198.51.100.2", 0), terminating], { name: "web" }),
    service(MARK, [realServer("198.51.100.4")], { name: "marked" }),
    // Desired at the key of a foreign service: reported Foreign, never taken over, so never labelled.
    service(FOREIGN, [realServer("198.51.100.9")], { name: "taken" }),
  ];
}

describe("IPVS counters at scrape time", () => {
  let kernel: FakeIpvsKernel;
  let reconciler: Reconciler;
  let reads: number;
  let failRead: Error | undefined;
  let metrics: AgentMetrics;

  beforeEach(async () => {
    kernel = new FakeIpvsKernel();
    reconciler = new Reconciler({
      kernel,
      journal: new MemoryJournalStore(),
      scope: { managedCidrs: [], managedFwmarks: [] },
      bootId: "b",
    });
    reads = 0;
    failRead = undefined;
    metrics = new AgentMetrics({
      processMetrics: false,
      ipvs: {
        planned: () => reconciler.planned(),
        // The fake kernel keeps no traffic counters: give every service and destination some.
        readTable: async (): Promise<KernelSnapshot> => {
          reads++;
          if (failRead) throw failRead;
          const snapshot = await kernel.readTable();
          for (const e of snapshot.table) {
            e.service.stats = stats(e.service.key.kind === "fwmark" ? 5n : 100n);
            for (const [i, d] of e.destinations.entries()) d.stats = stats(BigInt(i + 1));
          }
          return snapshot;
        },
      },
    });
    // A service of another tool: outside the scope, never journaled.
    await kernel.addService({
      key: FOREIGN,
      config: { scheduler: "rr", flags: NO_FLAGS, timeout: 0, netmask: 0xffffffff, persistenceEngine: "" },
    });
  });

  it("exports nothing before the first sync, without reading the kernel", async () => {
    const { text } = await metrics.expose();
    expect(reads).toBe(0);
    expect(text).not.toMatch(/^ipvs_operator_(service|destination)_/m);
    expect(samples(text, "ipvs_operator_backends")).toEqual([]);
  });

  it("labels owned services and their real servers from the last plan; foreign ones are not exported", async () => {
    expect((await reconciler.sync({ desired: table(), now: 0 })).ok).toBe(true);
    kernel.setConnections(
      WEB,
      { family: "IPv4", address: "198.51.100.1", port: 8080 },
      { active: 4, inactive: 2 },
    );
    const { text } = await metrics.expose();
    expect(reads).toBe(1);
    expect(text).not.toContain("203.0.113.9");
    expect(text).not.toContain('virtualservice="taken"');

    const web = 'namespace="demo",virtualservice="web",protocol="TCP",vip="192.0.2.10",port="80"';
    const marked = 'namespace="demo",virtualservice="marked",fwmark="7",family="IPv4"';
    expect(samples(text, "ipvs_operator_service_connections_total")).toEqual([
      `{${web}} 100`,
      `{${marked}} 5`,
    ]);
    expect(samples(text, "ipvs_operator_service_bytes_total")).toEqual([
      `{${web},direction="in"} 100000`,
      `{${web},direction="out"} 9007199254740993`,
      `{${marked},direction="in"} 5000`,
      `{${marked},direction="out"} 9007199254740993`,
    ]);
    expect(samples(text, "ipvs_operator_service_packets_total")).toContain(`{${web},direction="out"} 900`);
    expect(samples(text, "ipvs_operator_service_connections_per_second")).toContain(`{${web}} 3`);
    expect(samples(text, "ipvs_operator_service_packets_per_second")).toContain(`{${web},direction="in"} 30`);
    expect(samples(text, "ipvs_operator_service_bytes_per_second")).toContain(
      `{${web},direction="out"} 2700`,
    );
    for (const f of IPVS_STATS_FAMILIES) {
      expect(text).toContain(`# TYPE ${f.name} ${f.type}\n`);
      expect(samples(text, f.name).length, f.name).toBeGreaterThan(0);
    }

    const rs1 = `${web},real_server="198.51.100.1:8080",source_kind="RealServer",source_namespace="demo",source_name="198.51.100.1"`;
    const active = samples(text, "ipvs_operator_destination_active_connections");
    expect(active).toHaveLength(4); // three of web, one of marked
    expect(active).toContain(`{${rs1}} 4`);
    expect(samples(text, "ipvs_operator_destination_inactive_connections")).toContain(`{${rs1}} 2`);
    expect(samples(text, "ipvs_operator_destination_weight")).toContain(
      `{${web},real_server="198.51.100.2:8080",source_kind="RealServer",source_namespace="demo",source_name="198.51.100.2"} 0`,
    );
    // The fake lists destinations newest first, like the kernel: 198.51.100.1 is the third (stats(3)).
    expect(samples(text, "ipvs_operator_destination_connections_total")).toContain(`{${rs1}} 3`);
    expect(samples(text, "ipvs_operator_destination_packets_total")).toContain(`{${rs1},direction="in"} 30`);
    expect(samples(text, "ipvs_operator_destination_bytes_total")).toContain(
      `{${rs1},direction="out"} 9007199254740993`,
    );

    expect(samples(text, "ipvs_operator_backends").sort()).toEqual([
      '{namespace="demo",virtualservice="marked",state="ready"} 1',
      '{namespace="demo",virtualservice="web",state="quiesced"} 1',
      '{namespace="demo",virtualservice="web",state="ready"} 1',
      '{namespace="demo",virtualservice="web",state="terminating"} 1',
    ]);
    expect(samples(text, "ipvs_operator_scrape_errors_total")).toEqual([" 0"]);
  });

  it("reads the kernel once per scrape, and once for overlapping scrapes", async () => {
    await reconciler.sync({ desired: table(), now: 0 });
    await metrics.expose();
    expect(reads).toBe(1);
    const [a, b] = await Promise.all([metrics.expose(), metrics.expose()]);
    expect(reads).toBe(2);
    expect(a.text).toBe(b.text);
  });

  it("a failed read counts as a scrape error and leaves no IPVS series; the next sync is not affected", async () => {
    await reconciler.sync({ desired: table(), now: 0 });
    expect((await metrics.expose()).text).toMatch(/^ipvs_operator_service_connections_total\{/m);
    failRead = new Error("netlink: ETIMEDOUT");
    const { text } = await metrics.expose();
    expect(text).not.toMatch(/^ipvs_operator_(service|destination)_/m);
    expect(samples(text, "ipvs_operator_scrape_errors_total")).toEqual([" 1"]);
    // Backends by state come from the plan, not the kernel: still there.
    expect(samples(text, "ipvs_operator_backends")).toContain(
      '{namespace="demo",virtualservice="web",state="ready"} 1',
    );
    const next = await reconciler.sync({ desired: table(), now: 1 });
    expect(next.ok).toBe(true);
    failRead = undefined;
    expect((await metrics.expose()).text).toMatch(/^ipvs_operator_service_connections_total\{/m);
  });

  it("a removed VirtualService's series disappear with its service", async () => {
    await reconciler.sync({ desired: table(), now: 0 });
    expect((await metrics.expose()).text).toContain('virtualservice="marked"');
    const result = await reconciler.sync({ desired: table().slice(0, 1), now: 1 });
    expect(result.ok).toBe(true);
    expect(await kernel.listDestinations(MARK)).toEqual([]); // no connections: deleted at once
    const { text } = await metrics.expose();
    expect(text).not.toContain('virtualservice="marked"');
    expect(text).toContain('virtualservice="web"');
  });

  it("a removed real server that drains is exported without a source; a removed VirtualService's draining service is not exported", async () => {
    await reconciler.sync({ desired: table(), now: 0 });
    kernel.setConnections(WEB, { family: "IPv4", address: "198.51.100.1", port: 8080 }, { active: 1 });
    const [web, marked] = table();
    const withoutRs1 = { ...web!, destinations: web!.destinations.slice(1) };
    await reconciler.sync({ desired: [withoutRs1, marked!], now: 1 });
    let { text } = await metrics.expose();
    expect(samples(text, "ipvs_operator_backends")).toContain(
      '{namespace="demo",virtualservice="web",state="draining"} 1',
    );
    expect(samples(text, "ipvs_operator_destination_weight")).toContain(
      '{namespace="demo",virtualservice="web",protocol="TCP",vip="192.0.2.10",port="80",real_server="198.51.100.1:8080",source_kind="",source_namespace="",source_name=""} 0',
    );

    // web is deleted while 198.51.100.1 still has a connection: its service stays, owned and draining.
    const gone = await reconciler.sync({ desired: [marked!], now: 2 });
    expect(gone.draining).toBe(1);
    expect((await kernel.listServices()).map((s) => serviceKeyString(s.key))).toContain(
      serviceKeyString(WEB),
    );
    ({ text } = await metrics.expose());
    expect(text).not.toContain('virtualservice="web"');
    expect(text).not.toContain('vip="192.0.2.10"');
    expect(text).toContain('virtualservice="marked"');
  });

  it("counts a backend whose last probe failed as unhealthy, not ready", async () => {
    const probed = new AgentMetrics({
      processMetrics: false,
      ipvs: {
        planned: () => reconciler.planned(),
        readTable: () => kernel.readTable(),
        health: (vs, address, port) =>
          vs.name === "web" && address === "198.51.100.1" && port === 8080 ? false : undefined,
      },
    });
    await reconciler.sync({ desired: table(), now: 0 });
    const backends = samples((await probed.expose()).text, "ipvs_operator_backends");
    expect(backends).toContain('{namespace="demo",virtualservice="web",state="unhealthy"} 1');
    expect(backends).toContain('{namespace="demo",virtualservice="web",state="ready"} 0');
    expect(backends).toContain('{namespace="demo",virtualservice="marked",state="ready"} 1');
  });

  it("writes no destination series above the bound, and says how many it left out", async () => {
    const bounded = new AgentMetrics({
      processMetrics: false,
      maxDestinations: 3,
      ipvs: { planned: () => reconciler.planned(), readTable: () => kernel.readTable() },
    });
    await reconciler.sync({ desired: table(), now: 0 });
    const { text } = await bounded.expose();
    expect(text).not.toMatch(/^ipvs_operator_destination_/m);
    expect(samples(text, "ipvs_operator_scrape_destinations_omitted")).toEqual([" 4"]);
    expect(samples(text, "ipvs_operator_service_connections_total")).toHaveLength(2);
  });
});
