/**
 * The agent drives the node plumbing after each whole sync (directory mode, fakes with real state):
 * the VIPs of the VirtualServices programmed here go onto the dummy interface (not those with
 * bindAddress: false, not fwmark services), and leave it with their VirtualService (not because of a
 * half-written file); sysctls and the IPVS
 * timeouts are asserted; an address deleted behind its back comes back; the IPVSNode status shows it all.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Agent } from "../../src/agent/agent.ts";
import { resolveAgentConfig } from "../../src/agent/config.ts";
import type { IPVSNodeStatus } from "../../src/api/v1alpha1/ipvs-node.ts";
import { DirectorySource } from "../../src/files/directory-source.ts";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { FakeRtLink } from "../../src/node-edge/fake-rt-link.ts";
import { IpvsTuner } from "../../src/node-edge/ipvs-tuning.ts";
import { NodeEdge } from "../../src/node-edge/node-edge-report.ts";
import { SysctlAsserter } from "../../src/node-edge/sysctl-asserter.ts";
import { FakeSysctlStore } from "../../src/node-edge/sysctl-store.ts";
import { VipBinder } from "../../src/node-edge/vip-binder.ts";
import { createRootLogger } from "../../src/observability/logger.ts";
import { until } from "../support/until.ts";

const vs = (name: string, spec: string) =>
  `apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: ${name}, namespace: t}\nspec: ${spec}\n---\n`;

describe("the agent and the node plumbing (fakes)", () => {
  let agent: Agent | undefined;
  afterEach(async () => {
    await agent?.stop();
  });

  it("binds the VIPs it programs, unbinds them with their VirtualService, asserts sysctls and timeouts", async () => {
    const dir = mkdtempSync(join(tmpdir(), "agent-edge-"));
    writeFileSync(join(dir, "a.yaml"), vs("web", "{address: 192.0.2.80, port: 80}"));
    writeFileSync(join(dir, "b.yaml"), vs("v6", "{address: '2001:db8::80', port: 443}"));
    writeFileSync(join(dir, "c.yaml"), vs("unbound", "{address: 192.0.2.81, port: 80, bindAddress: false}"));
    writeFileSync(join(dir, "d.yaml"), vs("marked", "{firewallMark: 7, family: IPv4}"));
    const kernel = new FakeIpvsKernel();
    kernel.close = async () => {};
    const link = new FakeRtLink();
    const sysctls = new FakeSysctlStore({
      "net.ipv4.ip_forward": "0",
      "net.ipv6.conf.all.forwarding": "0",
      "net.ipv4.vs.conntrack": "0",
      "net.ipv4.vs.expire_nodest_conn": "0",
    });
    const config = resolveAgentConfig(
      {
        fromDir: dir,
        stateFile: join(mkdtempSync(join(tmpdir(), "agent-edge-state-")), "journal.json"),
        minSyncInterval: "0",
        resyncInterval: "1s",
        httpAddress: "",
        sysctls: ["net.ipv4.vs.expire_nodest_conn=1"],
        ipvsTimeouts: "900,0,300",
      },
      { NODE_NAME: "n1" },
    );
    let status: IPVSNodeStatus | undefined;
    agent = new Agent(config, {
      kernel,
      source: new DirectorySource({ path: dir, nodeName: "n1", debounceMs: 20, rereadMs: 0 }),
      bootId: "boot",
      logger: createRootLogger({ level: "silent" }),
      nodeEdge: new NodeEdge({
        vip: new VipBinder(link, { interfaceName: "ipvs0" }),
        sysctls: new SysctlAsserter(sysctls),
        tuner: new IpvsTuner(kernel),
      }),
      statusWriter: {
        previous: async () => undefined,
        write: async (s) => {
          status = s;
          return true;
        },
      },
    });
    await agent.start();
    const bound = async () => {
      const ipvs0 = await link.getLink("ipvs0");
      // The kernel's own link-local address of the interface is not the agent's.
      return ipvs0
        ? (await link.listAddresses(ipvs0.index))
            .map((a) => a.address)
            .filter((a) => !a.startsWith("fe80:"))
            .sort()
        : [];
    };
    const becomes = (what: string, want: string[]) =>
      until(
        what,
        async () => (JSON.stringify(await bound()) === JSON.stringify(want) ? true : undefined),
        10_000,
        20,
      );

    await becomes("the two bound VIPs", ["192.0.2.80", "2001:db8::80"]);
    expect(await sysctls.read("net.ipv4.ip_forward")).toBe("1");
    expect(await sysctls.read("net.ipv6.conf.all.forwarding")).toBe("1"); // an IPv6 service exists
    expect(await sysctls.read("net.ipv4.vs.expire_nodest_conn")).toBe("1");
    expect(await sysctls.read("net.ipv4.vs.conntrack")).toBe("0"); // reported, not written
    expect(await kernel.getTimeouts()).toMatchObject({ tcp: 900, udp: 300 });

    // Deleted behind its back: back at the next resync, and reported.
    const ipvs0 = (await link.getLink("ipvs0"))!;
    await link.deleteAddress(ipvs0.index, { address: "192.0.2.80", prefixLength: 32 });
    await becomes("the VIP repaired", ["192.0.2.80", "2001:db8::80"]);

    // A file cut off mid-save: its VirtualService is missing from a partial input; its VIP stays.
    writeFileSync(join(dir, "a.yaml"), vs("web", "{address: 192.0.2.80, port: 80}").slice(0, 70));
    const syncs = agent.health().syncs;
    await until(
      "two syncs of the partial input",
      () => (agent!.health().syncs > syncs + 1 ? true : undefined),
      10_000,
    );
    expect(await bound()).toEqual(["192.0.2.80", "2001:db8::80"]);

    rmSync(join(dir, "a.yaml"));
    await becomes("the VIP gone with its VirtualService", ["2001:db8::80"]);

    await until(
      "the status",
      () => (status?.nodeEdge?.vip?.addresses?.length === 1 ? true : undefined),
      10_000,
    );
    expect(status!.nodeEdge!.vip).toEqual({
      interface: "ipvs0",
      present: true,
      up: true,
      addresses: ["2001:db8::80"],
    });
    expect(status!.nodeEdge!.sysctls?.find((e) => e.key === "net.ipv4.vs.conntrack")).toMatchObject({
      value: "0",
      policy: "Report",
    });
    expect(status!.nodeEdge!.timeouts).toMatchObject({ tcp: 900, udp: 300 });
  }, 30_000);
});
