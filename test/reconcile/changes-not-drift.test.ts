/**
 * A change of the desired table is applied, not reported as drift; drift is what differs from what the
 * previous sync programmed (an ipvsadm edit, an out-of-band delete).
 */
import { describe, expect, it } from "vitest";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { MemoryJournalStore } from "../../src/reconcile/ownership-journal.ts";
import { Reconciler } from "../../src/reconcile/reconciler.ts";
import { realServer, service, tcpKey } from "../support/desired-builders.ts";

const scope = { managedCidrs: [], managedFwmarks: [] };
const KEY = tcpKey("192.0.2.1");
const web = (dests = [realServer("198.51.100.1"), realServer("198.51.100.2")], scheduler = "rr") =>
  service(KEY, dests, { name: "web", scheduler });

function setup() {
  const kernel = new FakeIpvsKernel();
  const reconciler = new Reconciler({ kernel, journal: new MemoryJournalStore(), scope, bootId: "b" });
  return { kernel, reconciler };
}

describe("Reconciler: changes are not drift", () => {
  it("a new weight, scheduler, real server or service is applied without a drift item", async () => {
    const { kernel, reconciler } = setup();
    await reconciler.sync({ desired: [web()], now: 0 });
    const changed = [
      web([realServer("198.51.100.1", 5), realServer("198.51.100.2"), realServer("198.51.100.3")], "wrr"),
      service(tcpKey("192.0.2.2"), [realServer("198.51.100.9")], { name: "api" }),
    ];
    const result = await reconciler.sync({ desired: changed, now: 1 });
    expect(result.ok).toBe(true);
    expect(result.outcomes.map((o) => o.description)).toEqual([
      "update service TCP 192.0.2.1:80",
      "add service TCP 192.0.2.2:80",
      "add destination TCP 192.0.2.1:80 -> 198.51.100.3:8080 (weight 1)",
      "add destination TCP 192.0.2.2:80 -> 198.51.100.9:8080 (weight 1)",
      "update destination TCP 192.0.2.1:80 -> 198.51.100.1:8080 (weight 5)",
    ]);
    expect(result.drift).toEqual([]);
    const dest = (await kernel.listDestinations(KEY)).find((d) => d.key.address === "198.51.100.1");
    expect(dest?.config.weight).toBe(5);
  });

  it("a removed real server drains over several syncs without ever being drift", async () => {
    const { kernel, reconciler } = setup();
    await reconciler.sync({ desired: [web()], now: 0 });
    kernel.setConnections(KEY, realServer("198.51.100.2").key, { active: 3 });
    const one = [web([realServer("198.51.100.1")])];
    const first = await reconciler.sync({ desired: one, now: 1_000 });
    expect(first.draining).toBe(1);
    expect(first.drift).toEqual([]);
    const second = await reconciler.sync({ desired: one, now: 2_000 });
    expect(second.draining).toBe(1);
    expect(second.drift).toEqual([]);
    const last = await reconciler.sync({ desired: one, now: 400_000 });
    expect(last.outcomes.map((o) => o.description)).toEqual([
      "delete destination TCP 192.0.2.1:80 -> 198.51.100.2:8080",
    ]);
    expect(last.drift).toEqual([]);
  });

  it("a removed service is deleted without a drift item", async () => {
    const { reconciler } = setup();
    await reconciler.sync({ desired: [service(KEY, [], { name: "web" })], now: 0 });
    const result = await reconciler.sync({ desired: [], now: 1 });
    expect(result.outcomes.map((o) => o.description)).toEqual(["delete service TCP 192.0.2.1:80"]);
    expect(result.drift).toEqual([]);
  });

  it("an ipvsadm edit is drift, also in the same sync as a change of another field", async () => {
    const { kernel, reconciler } = setup();
    await reconciler.sync({ desired: [web()], now: 0 });
    const d1 = (await kernel.listDestinations(KEY)).find((d) => d.key.address === "198.51.100.1")!;
    await kernel.updateDestination(KEY, { ...d1, config: { ...d1.config, weight: 7 } }); // ipvsadm -e -w 7
    await kernel.deleteDestination(KEY, { family: "IPv4", address: "198.51.100.2", port: 8080 }); // ipvsadm -d
    const result = await reconciler.sync({ desired: [web(undefined, "wrr")], now: 1 });
    expect(result.drift).toEqual([
      {
        kind: "Modified",
        service: "TCP 192.0.2.1:80",
        destination: "198.51.100.1:8080",
        field: "weight",
        expected: "1",
        actual: "7",
        action: "Repaired",
      },
      {
        kind: "Missing",
        service: "TCP 192.0.2.1:80",
        destination: "198.51.100.2:8080",
        action: "Repaired",
      },
    ]);
    expect(result.ok).toBe(true);
  });

  it("without a previous sync (a restart, the CLI) every difference is drift", async () => {
    const { kernel, reconciler } = setup();
    await reconciler.sync({ desired: [web()], now: 0 });
    const restarted = new Reconciler({ kernel, journal: new MemoryJournalStore(), scope, bootId: "b" });
    await restarted.sync({ desired: [], now: 1 }); // adopts nothing: the journal is new, so nothing is owned
    const owning = new Reconciler({
      kernel,
      journal: new MemoryJournalStore(),
      scope: { managedCidrs: ["192.0.2.0/24"], managedFwmarks: [] },
      bootId: "b",
    });
    const result = await owning.sync({ desired: [web(undefined, "wrr")], now: 2 });
    expect(result.drift).toEqual([
      {
        kind: "Modified",
        service: "TCP 192.0.2.1:80",
        field: "scheduler",
        expected: "wrr",
        actual: "rr",
        action: "Repaired",
      },
    ]);
  });
});
