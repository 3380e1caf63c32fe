import { describe, expect, it } from "vitest";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import type { IpvsKernel } from "../../src/kernel/ipvs-kernel.ts";
import { readKernelTable } from "../../src/kernel/read-kernel-table.ts";
import type { DesiredDestination, DesiredEntry, DesiredTable } from "../../src/model/desired-table.ts";
import { type JournalStore, MemoryJournalStore } from "../../src/reconcile/ownership-journal.ts";
import { Reconciler, type SyncInput } from "../../src/reconcile/reconciler.ts";
import { NO_FLAGS, NO_TUNNEL, type ServiceKey } from "../../src/vocabulary/table.ts";

const key = (address: string, port = 80): ServiceKey => ({
  kind: "address",
  family: "IPv4",
  protocol: "TCP",
  address,
  port,
});

function dest(address: string, weight = 1): DesiredDestination {
  return {
    key: { family: "IPv4", address, port: 8080 },
    config: { forwarding: "NAT", weight, upperThreshold: 0, lowerThreshold: 0, ...NO_TUNNEL },
    source: { kind: "RealServer", namespace: "demo", name: address },
  };
}

function entry(address: string, dests: DesiredDestination[], scheduler = "rr"): DesiredEntry {
  return {
    service: {
      key: key(address),
      config: { scheduler, flags: NO_FLAGS, timeout: 0, netmask: 0xffffffff, persistenceEngine: "" },
      source: { namespace: "demo", name: address },
      driftPolicy: "Repair",
      drainTimeoutSeconds: 300,
    },
    destinations: dests,
  };
}

const scope = { managedCidrs: [], managedFwmarks: [] };

/** One sync through a fresh Reconciler (what `apply` does per run). */
function syncOnce(
  desired: DesiredTable,
  o: { kernel: IpvsKernel; journal: JournalStore; scope: typeof scope; now: number } & Omit<
    SyncInput,
    "desired" | "now"
  >,
) {
  const { kernel, journal, scope: s, ...input } = o;
  return new Reconciler({ kernel, journal, scope: s, bootId: "boot-1" }).sync({ desired, ...input });
}

async function weights(kernel: FakeIpvsKernel) {
  const table = await readKernelTable(kernel);
  return Object.fromEntries(
    table.flatMap((e) =>
      e.destinations.map((d) => [
        `${e.service.key.kind === "address" ? e.service.key.address : ""}>${d.key.address}`,
        d.config.weight,
      ]),
    ),
  );
}

describe("Reconciler: one sync", () => {
  it("programs an empty kernel and then has nothing left to do", async () => {
    const kernel = new FakeIpvsKernel();
    const journal = new MemoryJournalStore();
    const desired: DesiredTable = [entry("192.0.2.1", [dest("198.51.100.1"), dest("198.51.100.2", 3)])];
    const first = await syncOnce(desired, { kernel, journal, scope, now: 0 });
    expect(first.ok).toBe(true);
    expect(first.outcomes.map((o) => `${o.result} ${o.description}`)).toEqual([
      "applied add service TCP 192.0.2.1:80",
      "applied add destination TCP 192.0.2.1:80 -> 198.51.100.1:8080 (weight 1)",
      "applied add destination TCP 192.0.2.1:80 -> 198.51.100.2:8080 (weight 3)",
    ]);
    expect(await weights(kernel)).toEqual({ "192.0.2.1>198.51.100.1": 1, "192.0.2.1>198.51.100.2": 3 });
    expect((await journal.load()).services).toEqual(["TCP 192.0.2.1:80"]);
    const second = await syncOnce(desired, { kernel, journal, scope, now: 1 });
    expect(second.outcomes).toEqual([]);
    expect(second.drift).toEqual([]);
  });

  it("repairs exactly the drifted weight and reports it", async () => {
    const kernel = new FakeIpvsKernel();
    const journal = new MemoryJournalStore();
    const desired = [entry("192.0.2.1", [dest("198.51.100.1", 5)])];
    await syncOnce(desired, { kernel, journal, scope, now: 0 });
    await kernel.updateDestination(key("192.0.2.1"), { ...dest("198.51.100.1", 0) });
    const report = await syncOnce(desired, { kernel, journal, scope, now: 1 });
    expect(report.drift).toMatchObject([
      { kind: "Modified", field: "weight", expected: "5", actual: "0", action: "Repaired" },
    ]);
    expect(report.outcomes.map((o) => o.description)).toEqual([
      "update destination TCP 192.0.2.1:80 -> 198.51.100.1:8080 (weight 5)",
    ]);
    expect(await weights(kernel)).toEqual({ "192.0.2.1>198.51.100.1": 5 });
  });

  it("never touches a foreign service and forgets nothing it owns", async () => {
    const kernel = new FakeIpvsKernel();
    const journal = new MemoryJournalStore();
    const foreign = entry("203.0.113.9", [dest("198.51.100.9")]);
    await kernel.addService(foreign.service);
    await kernel.addDestination(foreign.service.key, foreign.destinations[0]!);
    await syncOnce([entry("192.0.2.1", [dest("198.51.100.1")])], { kernel, journal, scope, now: 0 });
    // The managed service is removed from the manifests: the journal still owns it, so it goes.
    const report = await syncOnce([], { kernel, journal, scope, now: 1 });
    expect(report.drift).toContainEqual({
      kind: "Foreign",
      service: "TCP 203.0.113.9:80",
      action: "Ignored",
    });
    // No connections to drain: the service goes with its destinations in one operation.
    expect(report.outcomes.map((o) => o.description)).toEqual(["delete service TCP 192.0.2.1:80"]);
    expect(await weights(kernel)).toEqual({ "203.0.113.9>198.51.100.9": 1 });
    expect((await journal.load()).services).toEqual([]);
  });

  it("never takes over a foreign service whose key a VirtualService wants, and never journals it", async () => {
    const kernel = new FakeIpvsKernel();
    const journal = new MemoryJournalStore();
    // keepalived made 203.0.113.9:80 with scheduler wlc and one busy real server.
    const foreign = entry("203.0.113.9", [dest("198.51.100.9", 2)], "wlc");
    await kernel.addService(foreign.service);
    await kernel.addDestination(foreign.service.key, foreign.destinations[0]!);
    kernel.setConnections(foreign.service.key, dest("198.51.100.9").key, { active: 4 });
    const desired = [
      entry("203.0.113.9", [dest("198.51.100.1")]),
      entry("192.0.2.1", [dest("198.51.100.1")]),
    ];
    for (const now of [0, 1, 2]) {
      const report = await syncOnce(desired, { kernel, journal, scope, now });
      expect(report.outcomes.map((o) => o.description).filter((d) => d.includes("203.0.113.9"))).toEqual([]);
      expect(report.drift).toContainEqual(
        expect.objectContaining({ kind: "Foreign", service: "TCP 203.0.113.9:80", action: "Ignored" }),
      );
    }
    const table = await readKernelTable(kernel);
    expect(
      table.find((e) => e.service.key.kind === "address" && e.service.key.address === "203.0.113.9"),
    ).toMatchObject({ service: { config: { scheduler: "wlc" } }, destinations: [{ config: { weight: 2 } }] });
    expect(await weights(kernel)).toEqual({ "203.0.113.9>198.51.100.9": 2, "192.0.2.1>198.51.100.1": 1 });
    expect((await journal.load()).services).toEqual(["TCP 192.0.2.1:80"]);
  });

  it("drains a removed destination that still has connections before deleting it", async () => {
    const kernel = new FakeIpvsKernel();
    const journal = new MemoryJournalStore();
    await syncOnce([entry("192.0.2.1", [dest("198.51.100.1"), dest("198.51.100.2")])], {
      kernel,
      journal,
      scope,
      now: 0,
    });
    kernel.setConnections(key("192.0.2.1"), dest("198.51.100.2").key, { active: 3 });
    const desired = [entry("192.0.2.1", [dest("198.51.100.1")])];
    const draining = await syncOnce(desired, { kernel, journal, scope, now: 1000 });
    expect(draining.draining).toBe(1);
    expect(await weights(kernel)).toEqual({ "192.0.2.1>198.51.100.1": 1, "192.0.2.1>198.51.100.2": 0 });
    expect((await journal.load()).drains).toHaveLength(1);
    const waiting = await syncOnce(desired, { kernel, journal, scope, now: 2000 });
    expect(waiting.outcomes).toEqual([]);
    kernel.setConnections(key("192.0.2.1"), dest("198.51.100.2").key, { active: 0 });
    const done = await syncOnce(desired, { kernel, journal, scope, now: 3000 });
    expect(done.outcomes.map((o) => o.description)).toEqual([
      "delete destination TCP 192.0.2.1:80 -> 198.51.100.2:8080",
    ]);
    expect((await journal.load()).drains).toEqual([]);
  });

  it("reports a service the kernel refuses, skips its destinations and applies the rest", async () => {
    const kernel = new FakeIpvsKernel({ schedulers: ["rr"] });
    const journal = new MemoryJournalStore();
    const desired = [
      entry("192.0.2.1", [dest("198.51.100.1")], "twos"),
      entry("192.0.2.2", [dest("198.51.100.2")]),
    ];
    const report = await syncOnce(desired, { kernel, journal, scope, now: 0 });
    expect(report.ok).toBe(false);
    const byResult = (r: string) => report.outcomes.filter((o) => o.result === r).map((o) => o.description);
    expect(byResult("failed")).toEqual(["add service TCP 192.0.2.1:80"]);
    expect(report.outcomes.find((o) => o.result === "failed")?.reason).toContain("ip_vs_twos");
    expect(byResult("skipped")).toEqual(["add destination TCP 192.0.2.1:80 -> 198.51.100.1:8080 (weight 1)"]);
    expect(await weights(kernel)).toEqual({ "192.0.2.2>198.51.100.2": 1 });
    expect((await journal.load()).services).toEqual(["TCP 192.0.2.2:80"]);
  });

  it("changes nothing in a dry run", async () => {
    const kernel = new FakeIpvsKernel();
    const journal = new MemoryJournalStore();
    const report = await syncOnce([entry("192.0.2.1", [dest("198.51.100.1")])], {
      kernel,
      journal,
      scope,
      now: 0,
      dryRun: true,
    });
    expect(report.outcomes.map((o) => o.result)).toEqual(["planned", "planned"]);
    expect(kernel.serviceCount).toBe(0);
    expect((await journal.load()).services).toEqual([]);
  });

  it("reports a failed update of an existing service and still applies its destination changes", async () => {
    const kernel = new FakeIpvsKernel({ schedulers: ["rr"] });
    const journal = new MemoryJournalStore();
    await syncOnce([entry("192.0.2.1", [dest("198.51.100.1"), dest("198.51.100.2")])], {
      kernel,
      journal,
      scope,
      now: 0,
    });
    kernel.setConnections(key("192.0.2.1"), dest("198.51.100.2").key, { active: 5 });
    // The service update fails (no ip_vs_mh); the removed real server is still quiesced and drained.
    const desired = [entry("192.0.2.1", [dest("198.51.100.1"), dest("198.51.100.3")], "mh")];
    const result = await syncOnce(desired, { kernel, journal, scope, now: 1_000 });
    expect(result.outcomes.map((o) => `${o.result} ${o.description}`)).toEqual([
      "failed update service TCP 192.0.2.1:80",
      "applied add destination TCP 192.0.2.1:80 -> 198.51.100.3:8080 (weight 1)",
      "applied update destination TCP 192.0.2.1:80 -> 198.51.100.2:8080 (weight 0)",
    ]);
    expect(result.outcomes[0]?.reason).toContain("ENOENT");
    expect(await weights(kernel)).toEqual({
      "192.0.2.1>198.51.100.1": 1,
      "192.0.2.1>198.51.100.2": 0,
      "192.0.2.1>198.51.100.3": 1,
    });
    expect((await journal.load()).drains).toMatchObject([
      { destination: "198.51.100.2:8080", startedAt: 1_000 },
    ]);
  });

  it("starts a drain's clock only once the weight-0 update reached the kernel", async () => {
    const kernel = new FakeIpvsKernel();
    const journal = new MemoryJournalStore();
    await syncOnce([entry("192.0.2.1", [dest("198.51.100.1"), dest("198.51.100.2")])], {
      kernel,
      journal,
      scope,
      now: 0,
    });
    kernel.setConnections(key("192.0.2.1"), dest("198.51.100.2").key, { active: 5 });
    const desired = [entry("192.0.2.1", [dest("198.51.100.1")])];
    kernel.failNext("updateDestination", "EIO");
    const failed = await syncOnce(desired, { kernel, journal, scope, now: 1_000 });
    expect(failed.outcomes.map((o) => o.result)).toEqual(["failed"]);
    expect((await journal.load()).drains).toEqual([]);
    // Much later: .2 is quiesced first, not deleted with its 5 connections.
    const later = await syncOnce(desired, { kernel, journal, scope, now: 400_000 });
    expect(later.outcomes.map((o) => `${o.result} ${o.description}`)).toEqual([
      "applied update destination TCP 192.0.2.1:80 -> 198.51.100.2:8080 (weight 0)",
    ]);
    expect(await weights(kernel)).toEqual({ "192.0.2.1>198.51.100.1": 1, "192.0.2.1>198.51.100.2": 0 });
    expect((await journal.load()).drains).toMatchObject([
      { destination: "198.51.100.2:8080", startedAt: 400_000 },
    ]);
  });

  it("gives up a journaled service that a dump did not show: it may be someone else's now", async () => {
    const kernel = new FakeIpvsKernel();
    const journal = new MemoryJournalStore();
    const desired = [entry("192.0.2.1", [dest("198.51.100.1")])];
    await syncOnce(desired, { kernel, journal, scope, now: 0 });
    const list = kernel.listServices.bind(kernel);
    kernel.listServices = async () => []; // as after an out-of-band delete and a foreign re-create in between
    const raced = await syncOnce(desired, { kernel, journal, scope, now: 1 });
    expect(raced.outcomes[0]).toMatchObject({
      description: "add service TCP 192.0.2.1:80",
      result: "failed",
    });
    expect((await journal.load()).services).toEqual([]);
    kernel.listServices = list;
    const next = await syncOnce([], { kernel, journal, scope, now: 2 });
    expect(next.outcomes).toEqual([]);
    expect(next.drift).toEqual([{ kind: "Foreign", service: "TCP 192.0.2.1:80", action: "Ignored" }]);
    expect(kernel.serviceCount).toBe(1);
  });
});
