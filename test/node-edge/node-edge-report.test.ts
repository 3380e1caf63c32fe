/** The combined node-edge report and the NodeEdge runner over the three fakes. */
import { describe, expect, it } from "vitest";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { FakeRtLink } from "../../src/node-edge/fake-rt-link.ts";
import { IpvsTuner } from "../../src/node-edge/ipvs-tuning.ts";
import { NodeEdge } from "../../src/node-edge/node-edge-report.ts";
import { SysctlAsserter } from "../../src/node-edge/sysctl-asserter.ts";
import { nodeSysctls } from "../../src/node-edge/sysctl-plan.ts";
import { FakeSysctlStore } from "../../src/node-edge/sysctl-store.ts";
import { VipBinder } from "../../src/node-edge/vip-binder.ts";

function setup() {
  const link = new FakeRtLink();
  const store = new FakeSysctlStore({ "net.ipv4.ip_forward": "0", "net.ipv4.vs.conntrack": "0" });
  const kernel = new FakeIpvsKernel({ interfaces: ["lo", "eth0"] });
  const edge = new NodeEdge({
    vip: new VipBinder(link),
    sysctls: new SysctlAsserter(store),
    tuner: new IpvsTuner(kernel),
  });
  const desired = {
    vips: ["192.0.2.10", "2001:db8::10"],
    sysctls: nodeSysctls({}, { ipv6Services: false }),
    ipvs: { timeouts: { tcp: 600 }, daemons: { Master: { interface: "eth0", syncId: 7 } } },
  };
  return { link, store, kernel, edge, desired };
}

describe("NodeEdge", () => {
  it("syncs the three parts into one report for IPVSNode", async () => {
    const { edge, desired } = setup();
    const r = await edge.sync(desired);
    expect(r).toEqual({
      vip: {
        interface: "ipvs0",
        present: true,
        up: true,
        addresses: ["192.0.2.10", "2001:db8::10"],
        foreign: [],
      },
      loopback: null, // the DR real-server role is off
      tunnels: [],
      snat: null, // no SNAT manager
      sysctls: [
        { key: "net.ipv4.ip_forward", value: "0", expected: "1", policy: "Enforce", state: "Set" },
        { key: "net.ipv4.vs.conntrack", value: "0", policy: "Report", state: "Observed" },
        { key: "net.ipv4.vs.conn_reuse_mode", value: null, policy: "Report", state: "Missing" },
        { key: "net.ipv4.vs.expire_nodest_conn", value: null, policy: "Report", state: "Missing" },
        { key: "net.ipv4.vs.expire_quiescent_template", value: null, policy: "Report", state: "Missing" },
      ],
      timeouts: { tcp: 600, tcpFin: 120, udp: 300 },
      daemons: [
        {
          state: "Master",
          interface: "eth0",
          syncId: 7,
          maxLength: 1472,
          group: "224.0.0.81",
          port: 8848,
          ttl: 1,
        },
      ],
      drift: [],
      errors: [],
    });
  });

  it("lists drift of every area in one list, and keeps each part's errors to itself", async () => {
    const { link, store, kernel, edge, desired } = setup();
    await edge.sync(desired);
    link.removeAddress("ipvs0", "192.0.2.10", 32);
    link.addForeignAddress("ipvs0", "192.0.2.99", 32);
    store.set("net.ipv4.ip_forward", "0");
    await kernel.setTimeouts({ tcp: 900 });
    kernel.failNext("startDaemon", "ENOMEM");
    await kernel.stopDaemon("Master");
    const r = await edge.sync(desired);
    expect(r.drift).toEqual([
      { area: "VIP", kind: "Foreign", object: "192.0.2.99/32", action: "Ignored" },
      { area: "VIP", kind: "AddressMissing", object: "192.0.2.10/32", action: "Repaired" },
      {
        area: "Sysctl",
        kind: "Modified",
        object: "net.ipv4.ip_forward",
        expected: "1",
        found: "0",
        action: "Repaired",
      },
      {
        area: "Timeout",
        kind: "Modified",
        object: "timeout tcp",
        expected: "600",
        found: "900",
        action: "Repaired",
      },
      {
        area: "SyncDaemon",
        kind: "Modified",
        object: "daemon Master",
        expected: "on eth0, syncid 7",
        found: "stopped",
        message: "repair failed (see errors)",
        action: "Ignored",
      },
    ]);
    expect(r.errors).toEqual([
      expect.stringMatching(/^IPVS: start sync daemon Master on eth0, syncid 7: .*ENOMEM/),
    ]);
    expect(r.vip?.addresses).toEqual(["192.0.2.10", "2001:db8::10"]);
  });

  it("observe() changes nothing", async () => {
    const { link, store, kernel, edge, desired } = setup();
    const r = await edge.observe(desired);
    expect(r.vip).toMatchObject({ present: false, addresses: [] });
    expect(await link.getLink("ipvs0")).toBeUndefined();
    expect(await store.read("net.ipv4.ip_forward")).toBe("0");
    expect(await kernel.getDaemons()).toEqual([]);
  });
});
