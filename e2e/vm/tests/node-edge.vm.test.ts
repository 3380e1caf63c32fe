/**
 * The node edge on a real kernel: the RtLink / VipBinder contract on NetlinkRtLink (the suite
 * FakeRtLink passes on the host), cross-checked with `ip`. Every test uses its own dummy link with a
 * unique name (never dummy0).
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NetlinkIpvsKernel } from "../../../src/kernel/netlink-kernel.ts";
import { IpvsTuner } from "../../../src/node-edge/ipvs-tuning.ts";
import { NetlinkRtLink } from "../../../src/node-edge/netlink-rt-link.ts";
import { SysctlAsserter } from "../../../src/node-edge/sysctl-asserter.ts";
import { NODE_SYSCTL_KEYS, nodeSysctls } from "../../../src/node-edge/sysctl-plan.ts";
import { ProcSysctlStore } from "../../../src/node-edge/sysctl-store.ts";
import { VipBinder } from "../../../src/node-edge/vip-binder.ts";
import { defineRtLinkContract, uniqueLinkName } from "../../../test/node-edge/rt-link-contract.ts";
import { ipvsadm } from "./vm-helpers.ts";

function ip(args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
}

function linkExists(name: string): boolean {
  try {
    ip(["link", "show", "dev", name]);
    return true;
  } catch {
    return false;
  }
}

defineRtLinkContract("netlink", () => new NetlinkRtLink(), {
  setDown: (name) => void ip(["link", "set", "dev", name, "down"]),
  deleteLink: (name) => void ip(["link", "del", "dev", name]),
  addAddress: (name, cidr) => void ip(["addr", "add", cidr, "dev", name]),
  removeAddress: (name, cidr) => void ip(["addr", "del", cidr, "dev", name]),
  addNonDummyLink: (name) => void ip(["link", "add", name, "type", "veth", "peer", "name", `${name}p`]),
  cleanup: (name) => {
    if (linkExists(name)) ip(["link", "del", "dev", name]);
  },
});

describe("VipBinder cross-checked with ip", () => {
  // Debian 12's iproute2 (6.1) neither prints nor sets IFA_PROTO; that the kernel keeps it is shown by
  // the contract above (the value comes back in the kernel's own dump).
  it("binds IPv4 /32 and IPv6 /128 (nodad) on an up dummy, visible to `ip -d addr`, with local routes", async () => {
    const link = new NetlinkRtLink();
    const name = uniqueLinkName();
    try {
      const r = await new VipBinder(link, { interfaceName: name }).sync(["198.18.9.1", "2001:db8:ed9e::9:1"]);
      expect(r.errors).toEqual([]);
      const shown = ip(["-d", "addr", "show", "dev", name]);
      expect(shown).toMatch(/<BROADCAST,NOARP,UP,LOWER_UP>/);
      expect(shown).toMatch(/^\s+dummy /m);
      expect(shown).toMatch(/inet 198\.18\.9\.1\/32 scope global/);
      expect(shown).toMatch(/inet6 2001:db8:ed9e::9:1\/128 scope global nodad/);
      // The kernel's own link-local address is there, and left out of the report.
      expect(shown).toMatch(/inet6 fe80:/);
      expect(r.foreign).toEqual([]);
      expect(ip(["route", "show", "table", "local", "dev", name])).toMatch(/^local 198\.18\.9\.1 /m);
      expect(ip(["-6", "route", "show", "table", "local", "dev", name])).toMatch(
        /^local 2001:db8:ed9e::9:1 /m,
      );
    } finally {
      if (linkExists(name)) ip(["link", "del", "dev", name]);
      await link.close();
    }
  });

  it("syncs 1,000 VIPs (500 IPv4, 500 IPv6) and then nothing", async () => {
    const link = new NetlinkRtLink();
    const name = uniqueLinkName();
    try {
      const binder = new VipBinder(link, { interfaceName: name });
      const wanted = [
        ...Array.from({ length: 500 }, (_, i) => `198.18.${10 + (i >> 8)}.${i & 255}`),
        ...Array.from({ length: 500 }, (_, i) => `2001:db8:ed9e:a::${(i + 1).toString(16)}`),
      ];
      let t = performance.now();
      const first = await binder.sync(wanted);
      const firstMs = performance.now() - t;
      t = performance.now();
      const second = await binder.sync(wanted);
      const secondMs = performance.now() - t;
      t = performance.now();
      const removed = await binder.sync([]);
      const removeMs = performance.now() - t;
      // The baseline: the same 1,000 additions and deletions through `ip -batch` (one process, one socket).
      const base = uniqueLinkName();
      ip(["link", "add", base, "type", "dummy"]);
      ip(["link", "set", base, "up"]);
      const batch = (verb: string) =>
        wanted.map((a) => `addr ${verb} ${a}/${a.includes(":") ? 128 : 32} dev ${base}`).join("\n");
      t = performance.now();
      execFileSync("ip", ["-batch", "-"], { input: batch("add") });
      const ipAddMs = performance.now() - t;
      t = performance.now();
      execFileSync("ip", ["-batch", "-"], { input: batch("del") });
      const ipDelMs = performance.now() - t;
      ip(["link", "del", "dev", base]);
      console.log(
        `[figure] VipBinder 1000 VIPs: bind ${firstMs.toFixed(0)} ms, no-op sync ${secondMs.toFixed(0)} ms, ` +
          `unbind ${removeMs.toFixed(0)} ms; ip -batch: add ${ipAddMs.toFixed(0)} ms, del ${ipDelMs.toFixed(0)} ms`,
      );
      expect(first.errors).toEqual([]);
      expect(first.added).toHaveLength(1000);
      expect(second).toMatchObject({ added: [], removed: [], errors: [] });
      expect(removed.removed).toHaveLength(1000);
      expect(ip(["addr", "show", "dev", name]).match(/inet6? (?!fe80:)/g) ?? []).toEqual([]);
    } finally {
      if (linkExists(name)) ip(["link", "del", "dev", name]);
      await link.close();
    }
  });
});

/** The real /proc/sys; every value changed is put back afterwards (later test files share the boot). */
describe("SysctlAsserter on /proc/sys", () => {
  const file = (key: string) => `/proc/sys/${key.replaceAll(".", "/")}`;
  const original = new Map<string, string>();
  beforeAll(() => {
    for (const k of NODE_SYSCTL_KEYS) original.set(k, readFileSync(file(k), "utf8").trim());
  });
  afterAll(() => {
    for (const [k, v] of original) writeFileSync(file(k), v);
  });

  it("writes enforced values, reports the others, repairs a change made with sysctl -w", async () => {
    writeFileSync(file("net.ipv4.ip_forward"), "0");
    writeFileSync(file("net.ipv4.vs.expire_nodest_conn"), "0");
    writeFileSync(file("net.ipv4.vs.conntrack"), "0");
    const settings = nodeSysctls(
      {
        "net.ipv4.vs.expire_nodest_conn": { value: "1", policy: "Enforce" },
        "net.ipv4.vs.conntrack": { value: "1", policy: "Report" },
      },
      { ipv6Services: true },
    );
    const asserter = new SysctlAsserter(new ProcSysctlStore());
    const first = await asserter.sync(settings);
    expect(first.errors).toEqual([]);
    expect(execFileSync("sysctl", ["-n", "net.ipv4.ip_forward"], { encoding: "utf8" }).trim()).toBe("1");
    expect(
      execFileSync("sysctl", ["-n", "net.ipv4.vs.expire_nodest_conn"], { encoding: "utf8" }).trim(),
    ).toBe("1");
    expect(execFileSync("sysctl", ["-n", "net.ipv6.conf.all.forwarding"], { encoding: "utf8" }).trim()).toBe(
      "1",
    );
    expect(readFileSync(file("net.ipv4.vs.conntrack"), "utf8").trim()).toBe("0");
    expect(first.drift).toEqual([
      { key: "net.ipv4.vs.conntrack", expected: "1", found: "0", action: "Reported" },
    ]);
    expect(first.entries.find((e) => e.key === "net.ipv4.vs.conn_reuse_mode")).toMatchObject({
      state: "Observed",
    });

    execFileSync("sysctl", ["-q", "-w", "net.ipv4.ip_forward=0"]);
    const second = await asserter.sync(settings);
    expect(second.drift).toContainEqual({
      key: "net.ipv4.ip_forward",
      expected: "1",
      found: "0",
      action: "Repaired",
    });
    expect(readFileSync(file("net.ipv4.ip_forward"), "utf8").trim()).toBe("1");
  });

  it("reports a key that does not exist, without failing the rest", async () => {
    const r = await new SysctlAsserter(new ProcSysctlStore()).sync([
      { key: "net.ipv4.vs.no_such_key", value: "1", policy: "Enforce" },
      { key: "net.ipv4.ip_forward", policy: "Report" },
    ]);
    expect(r.entries.map((e) => e.state)).toEqual(["Missing", "Observed"]);
    expect(r.errors).toEqual([
      "sysctl net.ipv4.vs.no_such_key does not exist (is its module loaded?): expected 1",
    ]);
  });
});

describe("IpvsTuner on the real kernel, cross-checked with ipvsadm", () => {
  let kernel: NetlinkIpvsKernel;
  const daemonLink = uniqueLinkName();
  let originalTimeouts: string;
  beforeAll(async () => {
    kernel = new NetlinkIpvsKernel({ timeoutMs: 10000 });
    ip(["link", "add", daemonLink, "type", "dummy"]);
    ip(["link", "set", daemonLink, "up"]);
    originalTimeouts = ipvsadm(["-L", "--timeout"]);
  });
  afterAll(async () => {
    for (const d of await kernel.getDaemons()) await kernel.stopDaemon(d.state);
    const [tcp, tcpFin, udp] = /(\d+) (\d+) (\d+)/.exec(originalTimeouts)!.slice(1).map(Number);
    await kernel.setTimeouts({ tcp, tcpFin, udp });
    await kernel.close();
    if (linkExists(daemonLink)) ip(["link", "del", "dev", daemonLink]);
  });

  it("sets the timeouts it is given (0 leaves one unchanged) and reports them as ipvsadm shows them", async () => {
    ipvsadm(["--set", "900", "120", "300"]);
    const tuner = new IpvsTuner(kernel);
    const r = await tuner.sync({ timeouts: { tcp: 600, tcpFin: 0, udp: 45 } });
    expect(r.errors).toEqual([]);
    expect(r.timeouts).toEqual({ tcp: 600, tcpFin: 120, udp: 45 });
    expect(ipvsadm(["-L", "--timeout"]).trim()).toBe("Timeout (tcp tcpfin udp): 600 120 45");
    expect((await tuner.sync({ timeouts: { tcp: 600, udp: 45 } })).applied).toEqual([]);
    ipvsadm(["--set", "700", "0", "0"]);
    const repaired = await tuner.sync({ timeouts: { tcp: 600, udp: 45 } });
    expect(repaired.drift).toEqual([
      { object: "timeout tcp", expected: "600", found: "700", action: "Repaired" },
    ]);
    expect(ipvsadm(["-L", "--timeout"]).trim()).toBe("Timeout (tcp tcpfin udp): 600 120 45");
  });

  it("starts, restarts and stops sync daemons as configured, as ipvsadm --daemon shows them", async () => {
    const tuner = new IpvsTuner(kernel);
    const r = await tuner.sync({ daemons: { Master: { interface: daemonLink, syncId: 7 } } });
    expect(r.errors).toEqual([]);
    expect(r.daemons).toMatchObject([{ state: "Master", interface: daemonLink, syncId: 7 }]);
    expect(ipvsadm(["-L", "--daemon"])).toMatch(
      new RegExp(`master sync daemon \\(mcast=${daemonLink}, syncid=7`),
    );

    // Someone restarts it with another sync id: repaired.
    ipvsadm(["--stop-daemon", "master"]);
    ipvsadm(["--start-daemon", "master", "--mcast-interface", daemonLink, "--syncid", "9"]);
    const repaired = await tuner.sync({ daemons: { Master: { interface: daemonLink, syncId: 7 } } });
    expect(repaired.drift).toEqual([
      {
        object: "daemon Master",
        expected: `on ${daemonLink}, syncid 7`,
        found: `Master on ${daemonLink}, syncid 9, group 224.0.0.81:8848, ttl 1, maxlen 1472`,
        action: "Repaired",
      },
    ]);
    expect(ipvsadm(["-L", "--daemon"])).toMatch(/master sync daemon \(mcast=\S+, syncid=7/);

    // A backup daemon the configuration does not mention is left alone; "Stopped" stops the master.
    ipvsadm(["--start-daemon", "backup", "--mcast-interface", daemonLink, "--syncid", "3"]);
    const stopped = await tuner.sync({ daemons: { Master: "Stopped" } });
    expect(stopped.errors).toEqual([]);
    const shown = ipvsadm(["-L", "--daemon"]);
    expect(shown).not.toMatch(/master sync daemon/);
    expect(shown).toMatch(/backup sync daemon \(mcast=\S+, syncid=3/);
  });
});
