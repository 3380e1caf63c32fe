/**
 * The agent drives the node plumbing after each whole sync (directory mode, fakes with real state):
 * the VIPs of the VirtualServices programmed here go onto the dummy interface (not those with
 * bindAddress: false, not fwmark services), and leave it with their VirtualService (not because of a
 * half-written file); sysctls and the IPVS
 * timeouts are asserted; an address deleted behind its back comes back; the IPVSNode status shows it all.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
import { FakeNft } from "../../src/node-edge/nftables.ts";
import { NodeEdge } from "../../src/node-edge/node-edge-report.ts";
import { TUNNEL_KINDS } from "../../src/node-edge/rt-link.ts";
import { SnatManager } from "../../src/node-edge/snat.ts";
import { SysctlAsserter } from "../../src/node-edge/sysctl-asserter.ts";
import { FakeSysctlStore } from "../../src/node-edge/sysctl-store.ts";
import { VipBinder } from "../../src/node-edge/vip-binder.ts";
import { createRootLogger } from "../../src/observability/logger.ts";
import { until } from "../support/until.ts";

const vs = (name: string, spec: string) =>
  `apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: ${name}, namespace: t}\nspec: ${spec}\n---\n`;

/** An agent over `dir` in directory mode (resync every second) with the given plumbing; its last status. */
async function startAgent(
  dir: string,
  flags: Record<string, string | string[]>,
  deps: { kernel: FakeIpvsKernel; nodeEdge: NodeEdge; localAddresses?: () => Map<string, string> },
): Promise<{ agent: Agent; status: () => IPVSNodeStatus | undefined }> {
  const config = resolveAgentConfig(
    {
      fromDir: dir,
      stateFile: join(mkdtempSync(join(tmpdir(), "agent-edge-state-")), "journal.json"),
      minSyncInterval: "0",
      resyncInterval: "1s",
      httpAddress: "",
      ...flags,
    },
    { NODE_NAME: "n1" },
  );
  let status: IPVSNodeStatus | undefined;
  deps.kernel.close = async () => {};
  const agent = new Agent(config, {
    ...deps,
    source: new DirectorySource({ path: dir, nodeName: "n1", debounceMs: 20, rereadMs: 0 }),
    bootId: "boot",
    logger: createRootLogger({ level: "silent" }),
    statusWriter: {
      previous: async () => undefined,
      write: async (s) => {
        status = s;
        return true;
      },
    },
  });
  await agent.start();
  return { agent, status: () => status };
}

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
    const link = new FakeRtLink();
    const sysctls = new FakeSysctlStore({
      "net.ipv4.ip_forward": "0",
      "net.ipv6.conf.all.forwarding": "0",
      "net.ipv4.vs.conntrack": "0",
      "net.ipv4.vs.expire_nodest_conn": "0",
    });
    const started = await startAgent(
      dir,
      { sysctls: ["net.ipv4.vs.expire_nodest_conn=1"], ipvsTimeouts: "900,0,300" },
      {
        kernel,
        nodeEdge: new NodeEdge({
          vip: new VipBinder(link, { interfaceName: "ipvs0" }),
          sysctls: new SysctlAsserter(sysctls),
          tuner: new IpvsTuner(kernel),
        }),
      },
    );
    agent = started.agent;
    const status = started.status;
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
      () => (status()?.nodeEdge?.vip?.addresses?.length === 1 ? true : undefined),
      10_000,
    );
    expect(status()!.nodeEdge!.vip).toEqual({
      interface: "ipvs0",
      present: true,
      up: true,
      addresses: ["2001:db8::80"],
    });
    expect(status()!.nodeEdge!.sysctls?.find((e) => e.key === "net.ipv4.vs.conntrack")).toMatchObject({
      value: "0",
      policy: "Report",
    });
    expect(status()!.nodeEdge!.timeouts).toMatchObject({ tcp: 900, udp: 300 });
  }, 30_000);
});

const rs = (name: string, vsName: string, address: string, extra = "") =>
  `apiVersion: ipvs.dev/v1alpha1\nkind: RealServer\nmetadata: {name: ${name}, namespace: t}\nspec: {virtualServiceRef: {name: ${vsName}}, address: ${address}${extra}}\n---\n`;

describe("the DR real-server role (fakes)", () => {
  let agent: Agent | undefined;
  afterEach(async () => {
    await agent?.stop();
  });

  it("holds on lo the VIPs of DirectRouting services with a real server here, sets the ARP sysctls of that interface, and lets a VIP go with its service", async () => {
    const dir = mkdtempSync(join(tmpdir(), "agent-dr-"));
    // Programmed elsewhere (nodeSelector), with this node's address 10.0.0.5 as a DR real server.
    writeFileSync(
      join(dir, "a.yaml"),
      vs(
        "web",
        "{address: 192.0.2.90, port: 80, forwarding: {method: DirectRouting}, nodeSelector: {matchLabels: {role: lb}}}",
      ) +
        rs("web-here", "web", "10.0.0.5") +
        rs("web-other", "web", "10.0.0.6"),
    );
    // IPv6 DR with this node's address on a VLAN interface (a dotted name).
    writeFileSync(
      join(dir, "b.yaml"),
      vs(
        "v6",
        "{address: '2001:db8::90', port: 443, forwarding: {method: DirectRouting}, nodeSelector: {matchLabels: {role: lb}}}",
      ) + rs("v6-here", "v6", "'2001:db8:1::5'"),
    );
    // This node is its director too (no nodeSelector): the VIP is on ipvs0, not on lo as well.
    writeFileSync(
      join(dir, "d.yaml"),
      vs("self", "{address: 192.0.2.93, port: 80, forwarding: {method: DirectRouting}}") +
        rs("self-rs", "self", "10.0.0.5"),
    );
    // NAT with a real server here: not the role's business; DR with real servers elsewhere only: neither.
    writeFileSync(
      join(dir, "c.yaml"),
      vs("nat", "{address: 192.0.2.91, port: 80}") +
        rs("nat-here", "nat", "10.0.0.5") +
        vs("dr-elsewhere", "{address: 192.0.2.92, port: 80, forwarding: {method: DirectRouting}}") +
        rs("dr-elsewhere-rs", "dr-elsewhere", "10.0.0.7"),
    );
    const kernel = new FakeIpvsKernel();
    const link = new FakeRtLink();
    const lo = (await link.getLink("lo"))!;
    await link.addAddress(lo.index, { address: "127.0.0.1", prefixLength: 8, protocol: 0, noDad: false });
    const sysctls = new FakeSysctlStore({
      "net.ipv4.ip_forward": "1",
      "net.ipv4.conf.eth0.arp_ignore": "0",
      "net.ipv4.conf.eth0.arp_announce": "0",
      "net/ipv4/conf/eth1.100/arp_ignore": "0",
      "net/ipv4/conf/eth1.100/arp_announce": "0",
      "net.ipv4.conf.eth2.arp_ignore": "0",
    });
    const started = await startAgent(
      dir,
      { drRealServer: "true" },
      {
        kernel,
        nodeEdge: new NodeEdge({
          vip: new VipBinder(link, { interfaceName: "ipvs0" }),
          loopback: new VipBinder(link, { interfaceName: "lo", existingLink: true }),
          sysctls: new SysctlAsserter(sysctls),
        }),
        localAddresses: () =>
          new Map([
            ["10.0.0.5", "eth0"],
            ["2001:db8:1::5", "eth1.100"],
            ["10.0.0.9", "eth2"],
          ]),
      },
    );
    agent = started.agent;
    const status = started.status;
    const onLo = async () =>
      (await link.listAddresses(lo.index))
        .map((a) => `${a.address}/${a.prefixLength}`)
        .filter((a) => a !== "127.0.0.1/8")
        .sort();
    const becomes = (what: string, want: string[]) =>
      until(
        what,
        async () => (JSON.stringify(await onLo()) === JSON.stringify(want) ? true : undefined),
        10_000,
        20,
      );
    await becomes("the DR VIPs on lo", ["192.0.2.90/32", "2001:db8::90/128"]);
    expect(await sysctls.read("net.ipv4.conf.eth0.arp_ignore")).toBe("1");
    expect(await sysctls.read("net.ipv4.conf.eth0.arp_announce")).toBe("2");
    expect(await sysctls.read("net/ipv4/conf/eth1.100/arp_ignore")).toBe("1");
    expect(await sysctls.read("net.ipv4.conf.eth2.arp_ignore")).toBe("0"); // no real server there
    const ipvs0 = await link.getLink("ipvs0");
    const onIpvs0 = ipvs0 ? (await link.listAddresses(ipvs0.index)).map((a) => a.address) : [];
    expect(onIpvs0).toContain("192.0.2.93");
    // 127.0.0.1/8 is the loopback's own: never touched, never drift.
    expect((await link.listAddresses(lo.index)).map((a) => a.address)).toContain("127.0.0.1");

    // Out-of-band removal from lo: repaired at the next resync.
    await link.deleteAddress(lo.index, { address: "192.0.2.90", prefixLength: 32 });
    await becomes("the lo VIP repaired", ["192.0.2.90/32", "2001:db8::90/128"]);

    // The real server leaves: the VIP leaves lo.
    writeFileSync(
      join(dir, "a.yaml"),
      vs(
        "web",
        "{address: 192.0.2.90, port: 80, forwarding: {method: DirectRouting}, nodeSelector: {matchLabels: {role: lb}}}",
      ) + rs("web-other", "web", "10.0.0.6"),
    );
    await becomes("192.0.2.90 gone from lo", ["2001:db8::90/128"]);
    await until(
      "the status",
      () => (status()?.nodeEdge?.loopback?.addresses?.join() === "2001:db8::90" ? true : undefined),
      10_000,
    );
    expect(status()!.nodeEdge!.loopback).toEqual({ interface: "lo", addresses: ["2001:db8::90"] });
  }, 30_000);

  it("holds the VIPs of Tunnel services with a real server here on the tunnel devices (IPIP: tunl0, ip6tnl0; GRE: gre0), loose rp_filter on the IPv4 ones, not GUE's; a sorry server's VIP on lo; lets them go with the real server", async () => {
    const dir = mkdtempSync(join(tmpdir(), "agent-tunnel-"));
    const elsewhere = "nodeSelector: {matchLabels: {role: lb}}";
    writeFileSync(
      join(dir, "a.yaml"),
      vs("ipip", `{address: 192.0.2.70, port: 80, forwarding: {method: Tunnel}, ${elsewhere}}`) +
        rs("ipip-here", "ipip", "10.0.0.5") +
        vs("ipip6", `{address: '2001:db8::70', port: 80, forwarding: {method: Tunnel}, ${elsewhere}}`) +
        rs("ipip6-here", "ipip6", "'2001:db8:1::5'") +
        vs(
          "gue",
          `{address: 192.0.2.71, port: 80, forwarding: {method: Tunnel, tunnel: {type: GUE, port: 6080}}, ${elsewhere}}`,
        ) +
        rs("gue-here", "gue", "10.0.0.5") +
        vs(
          "gre",
          `{address: 192.0.2.73, port: 80, forwarding: {method: Tunnel, tunnel: {type: GRE}}, ${elsewhere}}`,
        ) +
        rs("gre-here", "gre", "10.0.0.5") +
        // GRE carries IPv4 in IPv6: the device is the real server's family's (ip6gre0), with loose rp_filter.
        vs(
          "gre46",
          `{address: 192.0.2.74, port: 80, forwarding: {method: Tunnel, tunnel: {type: GRE}}, ${elsewhere}}`,
        ) +
        rs("gre46-here", "gre46", "'2001:db8:1::5'") +
        // IPIP between families needs sit0 or an ip6tnl in mode any: not prepared.
        vs("ipip46", `{address: 192.0.2.75, port: 80, forwarding: {method: Tunnel}, ${elsewhere}}`) +
        rs("ipip46-here", "ipip46", "'2001:db8:1::5'") +
        // This node is only the sorry server (DirectRouting, no health checks: used once the real
        // servers are gone): prepared before it is needed.
        vs(
          "sorry",
          `{address: 192.0.2.72, port: 80, forwarding: {method: DirectRouting}, sorryServer: {address: 10.0.0.5}, ${elsewhere}}`,
        ) +
        rs("sorry-elsewhere", "sorry", "10.0.0.8"),
    );
    const link = new FakeRtLink();
    const sysctls = new FakeSysctlStore({
      "net.ipv4.ip_forward": "1",
      "net.ipv4.conf.eth0.arp_ignore": "0",
      "net.ipv4.conf.eth0.arp_announce": "0",
      "net.ipv4.conf.tunl0.rp_filter": "1",
      "net.ipv4.conf.gre0.rp_filter": "1",
      "net.ipv4.conf.ip6gre0.rp_filter": "1",
    });
    const started = await startAgent(
      dir,
      { drRealServer: "true", vipInterface: "" },
      {
        kernel: new FakeIpvsKernel(),
        nodeEdge: new NodeEdge({
          loopback: new VipBinder(link, { interfaceName: "lo", existingLink: true }),
          tunnels: TUNNEL_KINDS.map((tunnel) => new VipBinder(link, { tunnel })),
          sysctls: new SysctlAsserter(sysctls),
        }),
        localAddresses: () =>
          new Map([
            ["10.0.0.5", "eth0"],
            ["2001:db8:1::5", "eth0"],
          ]),
      },
    );
    agent = started.agent;
    const on = async (name: string) => {
      const l = await link.getLink(name);
      const all = l ? await link.listAddresses(l.index) : [];
      // The kernel's own fe80:: address of an up link is not ours.
      return all.filter((a) => !a.address.startsWith("fe80:")).map((a) => `${a.address}/${a.prefixLength}`);
    };
    await until("the VIPs on the tunnel devices", async () =>
      (await on("tunl0")).join() === "192.0.2.70/32" &&
      (await on("ip6tnl0")).join() === "2001:db8::70/128" &&
      (await on("gre0")).join() === "192.0.2.73/32"
        ? true
        : undefined,
    );
    expect(await link.getLink("gre0")).toMatchObject({ kind: "gre", up: true });
    expect(await on("ip6gre0")).toEqual(["192.0.2.74/32"]);
    expect(await sysctls.read("net.ipv4.conf.gre0.rp_filter")).toBe("2");
    expect(await sysctls.read("net.ipv4.conf.ip6gre0.rp_filter")).toBe("2");
    expect(await sysctls.read("net.ipv4.conf.tunl0.rp_filter")).toBe("2");
    expect(await link.getLink("tunl0")).toMatchObject({ kind: "ipip", up: true });
    expect(await link.getLink("ip6tnl0")).toMatchObject({ kind: "ip6tnl", up: true });
    expect(await on("lo")).toEqual(["192.0.2.72/32"]); // the sorry server's VIP only
    expect(await sysctls.read("net.ipv4.conf.tunl0.rp_filter")).toBe("2");
    expect(await sysctls.read("net.ipv4.conf.eth0.arp_ignore")).toBe("1");
    await until("the status", () => (started.status()?.nodeEdge?.tunnels?.length === 4 ? true : undefined));
    expect(started.status()!.nodeEdge!.tunnels).toEqual([
      { interface: "tunl0", up: true, addresses: ["192.0.2.70"] },
      { interface: "ip6tnl0", up: true, addresses: ["2001:db8::70"] },
      { interface: "gre0", up: true, addresses: ["192.0.2.73"] },
      { interface: "ip6gre0", up: true, addresses: ["192.0.2.74"] },
    ]);

    // An address deleted by hand comes back; the real servers leaving take the VIPs with them.
    const tunl0 = (await link.getLink("tunl0"))!;
    await link.deleteAddress(tunl0.index, { address: "192.0.2.70", prefixLength: 32 });
    await until("192.0.2.70 back on tunl0", async () =>
      (await on("tunl0")).join() === "192.0.2.70/32" ? true : undefined,
    );
    writeFileSync(
      join(dir, "a.yaml"),
      vs("ipip", `{address: 192.0.2.70, port: 80, forwarding: {method: Tunnel}, ${elsewhere}}`),
    );
    await until("the VIPs gone from the tunnel devices", async () =>
      (await on("tunl0")).length +
        (await on("ip6tnl0")).length +
        (await on("gre0")).length +
        (await on("ip6gre0")).length ===
      0
        ? true
        : undefined,
    );
  }, 30_000);
});

describe("SNAT for one-arm NAT (fakes)", () => {
  let agent: Agent | undefined;
  afterEach(async () => {
    await agent?.stop();
  });

  it("keeps one rule per VirtualService with snat over its NAT destinations, enforces IPVS conntrack, repairs the table, keeps rules over a half-written file, and removes the table with the last one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "agent-snat-"));
    writeFileSync(
      join(dir, "a.yaml"),
      vs("web", "{address: 192.0.2.95, port: 80, snat: {}}") +
        rs("web-nat", "web", "10.0.0.20") +
        rs("web-dr", "web", "10.0.0.21", ", forwarding: {method: DirectRouting}, port: 80"),
    );
    writeFileSync(
      join(dir, "b.yaml"),
      vs(
        "fixed",
        "{address: 192.0.2.96, port: 0, persistence: {}, snat: {mode: Address, address: 192.0.2.1}}",
      ) + rs("fixed-a", "fixed", "10.0.0.30"),
    );
    writeFileSync(
      join(dir, "c.yaml"),
      vs("plain", "{address: 192.0.2.97, port: 80}") + rs("plain-a", "plain", "10.0.0.40"),
    );
    const kernel = new FakeIpvsKernel();
    const nft = new FakeNft();
    nft.outOfBand(
      "add table ip usernat\nadd chain ip usernat post { type nat hook postrouting priority 100; }",
    );
    const userTable = nft.render("ip", "usernat");
    const sysctls = new FakeSysctlStore({ "net.ipv4.ip_forward": "1", "net.ipv4.vs.conntrack": "0" });
    const started = await startAgent(
      dir,
      { vipInterface: "" },
      {
        kernel,
        nodeEdge: new NodeEdge({ snat: new SnatManager(nft), sysctls: new SysctlAsserter(sysctls) }),
      },
    );
    agent = started.agent;
    const status = started.status;
    const table = () => nft.render("inet", "ipvs_operator") ?? "";
    const rules = () =>
      table()
        .split("\n")
        .filter((l) => l.includes("comment"));
    await until("two SNAT rules", () => (rules().length === 2 ? true : undefined), 10_000, 20);
    const [fixed, web] = rules();
    expect(web).toContain("192.0.2.95");
    expect(web).toContain("10.0.0.20");
    expect(web).not.toContain("10.0.0.21"); // a DirectRouting destination keeps the client's address
    expect(web).toContain("masquerade");
    expect(fixed).toContain("snat ip to 192.0.2.1");
    expect(fixed).not.toContain("proto-dst"); // port 0: every port
    expect(table()).not.toContain("192.0.2.97");
    expect(await sysctls.read("net.ipv4.vs.conntrack")).toBe("1");

    // Deleted behind its back: back at the next resync, and reported.
    nft.outOfBand("delete table inet ipvs_operator");
    await until("the table repaired", () => (rules().length === 2 ? true : undefined), 10_000, 20);
    await until(
      "the repair in the status",
      () =>
        status()?.nodeEdge?.drift?.some((d) => d.area === "SNAT" && d.action === "Repaired")
          ? true
          : undefined,
      10_000,
    );

    // A file cut off mid-save: its VirtualService is missing from a partial input; its rule stays.
    writeFileSync(join(dir, "a.yaml"), readFileSync(join(dir, "a.yaml"), "utf8").slice(0, 90));
    const syncs = agent.health().syncs;
    await until(
      "two syncs of the partial input",
      () => (agent!.health().syncs > syncs + 1 ? true : undefined),
      10_000,
    );
    expect(rules()).toHaveLength(2);

    rmSync(join(dir, "a.yaml"));
    await until("web's rule gone", () => (rules().length === 1 ? true : undefined), 10_000, 20);
    expect(status()?.nodeEdge?.snat).toMatchObject({ table: "inet ipvs_operator", present: true });
    rmSync(join(dir, "b.yaml"));
    await until("the table gone with the last rule", () => (table() === "" ? true : undefined), 10_000, 20);
    expect(nft.render("ip", "usernat")).toBe(userTable);
  }, 30_000);
});
