/**
 * Sysctls: the pure plan, the asserter over FakeSysctlStore, and ProcSysctlStore over a temp folder
 * laid out like /proc/sys (the VM test runs the same asserter on the real /proc/sys).
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SysctlAsserter } from "../../src/node-edge/sysctl-asserter.ts";
import { nodeSysctls, planSysctls, type SysctlRead } from "../../src/node-edge/sysctl-plan.ts";
import { FakeSysctlStore, ProcSysctlStore, sysctlPath } from "../../src/node-edge/sysctl-store.ts";

const STOCK = {
  "net.ipv4.ip_forward": "0",
  "net.ipv6.conf.all.forwarding": "0",
  "net.ipv4.vs.conntrack": "0",
  "net.ipv4.vs.conn_reuse_mode": "1",
  "net.ipv4.vs.expire_nodest_conn": "0",
  "net.ipv4.vs.expire_quiescent_template": "0",
};

describe("nodeSysctls", () => {
  it("enforces forwarding and reports the IPVS keys by default; IPv6 forwarding only with IPv6 services", () => {
    expect(nodeSysctls({}, { ipv6Services: false })).toEqual([
      { key: "net.ipv4.ip_forward", value: "1", policy: "Enforce" },
      { key: "net.ipv4.vs.conntrack", policy: "Report" },
      { key: "net.ipv4.vs.conn_reuse_mode", policy: "Report" },
      { key: "net.ipv4.vs.expire_nodest_conn", policy: "Report" },
      { key: "net.ipv4.vs.expire_quiescent_template", policy: "Report" },
    ]);
    expect(nodeSysctls({}, { ipv6Services: true }).map((s) => s.key)).toContain(
      "net.ipv6.conf.all.forwarding",
    );
  });

  it("takes values and policies from the configuration, and leaves out ignored keys", () => {
    const settings = nodeSysctls(
      {
        "net.ipv4.ip_forward": { policy: "Report" },
        "net.ipv4.vs.conntrack": { value: "1", policy: "Enforce" },
        "net.ipv4.vs.expire_nodest_conn": { value: "1" },
        "net.ipv4.vs.conn_reuse_mode": "Ignore",
      },
      { ipv6Services: false },
    );
    expect(settings).toEqual([
      { key: "net.ipv4.ip_forward", value: "1", policy: "Report" },
      { key: "net.ipv4.vs.conntrack", value: "1", policy: "Enforce" },
      { key: "net.ipv4.vs.expire_nodest_conn", value: "1", policy: "Report" },
      { key: "net.ipv4.vs.expire_quiescent_template", policy: "Report" },
    ]);
  });

  it("enforces IPVS conntrack for SNAT unless the configuration names the key, and adds the DR role's ARP settings", () => {
    const conntrack = (config: Parameters<typeof nodeSysctls>[0]) =>
      nodeSysctls(config, { ipv6Services: false, snatServices: true }).find(
        (s) => s.key === "net.ipv4.vs.conntrack",
      );
    expect(conntrack({})).toEqual({ key: "net.ipv4.vs.conntrack", value: "1", policy: "Enforce" });
    expect(conntrack({ "net.ipv4.vs.conntrack": { value: "0", policy: "Report" } })).toEqual({
      key: "net.ipv4.vs.conntrack",
      value: "0",
      policy: "Report",
    });
    expect(conntrack({ "net.ipv4.vs.conntrack": "Ignore" })).toBeUndefined();
    const arp = nodeSysctls({}, { ipv6Services: false, arpInterfaces: ["eth1.100", "eth0", "eth0"] });
    expect(arp.slice(-4)).toEqual([
      { key: "net.ipv4.conf.eth0.arp_ignore", value: "1", policy: "Enforce" },
      { key: "net.ipv4.conf.eth0.arp_announce", value: "2", policy: "Enforce" },
      { key: "net/ipv4/conf/eth1.100/arp_ignore", value: "1", policy: "Enforce" },
      { key: "net/ipv4/conf/eth1.100/arp_announce", value: "2", policy: "Enforce" },
    ]);
    expect(sysctlPath("net/ipv4/conf/eth1.100/arp_ignore")).toBe("net/ipv4/conf/eth1.100/arp_ignore");
    const tunnel = nodeSysctls(
      {},
      { ipv6Services: false, arpInterfaces: ["eth0"], tunnelDevices: ["tunl0", "gre0"] },
    );
    expect(tunnel.slice(-2)).toEqual([
      { key: "net.ipv4.conf.gre0.rp_filter", value: "2", policy: "Enforce" },
      { key: "net.ipv4.conf.tunl0.rp_filter", value: "2", policy: "Enforce" },
    ]);
    expect(nodeSysctls({}, { ipv6Services: false }).some((s) => s.key.includes("rp_filter"))).toBe(false);
  });
});

describe("planSysctls", () => {
  const read = (entries: Record<string, SysctlRead>) => new Map(Object.entries(entries));

  it("writes an enforced value that differs; it is drift only when it was in place before", () => {
    const settings = [{ key: "net.ipv4.ip_forward", value: "1", policy: "Enforce" as const }];
    const first = planSysctls(settings, read({ "net.ipv4.ip_forward": { value: "0" } }));
    expect(first).toEqual({
      writes: [{ key: "net.ipv4.ip_forward", value: "1" }],
      entries: [{ key: "net.ipv4.ip_forward", value: "0", expected: "1", policy: "Enforce", state: "Set" }],
      drift: [],
      problems: [],
    });
    const later = planSysctls(
      settings,
      read({ "net.ipv4.ip_forward": { value: "0" } }),
      new Set(["net.ipv4.ip_forward"]),
    );
    expect(later.drift).toEqual([
      { key: "net.ipv4.ip_forward", expected: "1", found: "0", action: "Repaired" },
    ]);
  });

  it("never writes a reported key: a difference is drift, every time", () => {
    const settings = [{ key: "net.ipv4.vs.conntrack", value: "1", policy: "Report" as const }];
    const plan = planSysctls(settings, read({ "net.ipv4.vs.conntrack": { value: "0" } }));
    expect(plan.writes).toEqual([]);
    expect(plan.entries[0]?.state).toBe("Differs");
    expect(plan.drift).toEqual([
      { key: "net.ipv4.vs.conntrack", expected: "1", found: "0", action: "Reported" },
    ]);
  });

  it("reports a missing key and a failed read without writing, and compares values whitespace-insensitively", () => {
    const plan = planSysctls(
      [
        { key: "net.ipv4.vs.conntrack", value: "1", policy: "Enforce" },
        { key: "net.ipv4.vs.conn_reuse_mode", policy: "Report" },
        { key: "net.ipv4.tcp_rmem", value: "4096 131072 6291456", policy: "Enforce" },
        { key: "net.ipv4.ip_forward", value: "1", policy: "Enforce" },
      ],
      read({
        "net.ipv4.tcp_rmem": { value: "4096\t131072\t6291456" },
        "net.ipv4.ip_forward": { error: "read sysctl net.ipv4.ip_forward failed: EACCES" },
      }),
    );
    expect(plan.writes).toEqual([]);
    expect(plan.entries.map((e) => [e.key, e.state, e.value])).toEqual([
      ["net.ipv4.vs.conntrack", "Missing", null],
      ["net.ipv4.vs.conn_reuse_mode", "Missing", null],
      ["net.ipv4.tcp_rmem", "Ok", "4096 131072 6291456"],
      ["net.ipv4.ip_forward", "Failed", null],
    ]);
    expect(plan.problems).toEqual([
      "sysctl net.ipv4.vs.conntrack does not exist (is its module loaded?): expected 1",
      "read sysctl net.ipv4.ip_forward failed: EACCES",
    ]);
  });
});

describe("SysctlAsserter on FakeSysctlStore", () => {
  const settings = nodeSysctls(
    {
      "net.ipv4.vs.expire_nodest_conn": { value: "1", policy: "Enforce" },
      "net.ipv4.vs.conntrack": { value: "1" },
    },
    { ipv6Services: true },
  );

  it("writes what differs, reports values, then is quiet; a later change is drift, repaired", async () => {
    const store = new FakeSysctlStore(STOCK);
    const asserter = new SysctlAsserter(store);
    const first = await asserter.sync(settings);
    expect(store.writes).toEqual([
      { key: "net.ipv4.ip_forward", value: "1" },
      { key: "net.ipv6.conf.all.forwarding", value: "1" },
      { key: "net.ipv4.vs.expire_nodest_conn", value: "1" },
    ]);
    expect(first.drift).toEqual([
      { key: "net.ipv4.vs.conntrack", expected: "1", found: "0", action: "Reported" },
    ]);
    expect(first.errors).toEqual([]);
    const second = await asserter.sync(settings);
    expect(second.entries.map((e) => e.state)).toEqual(["Ok", "Ok", "Differs", "Observed", "Ok", "Observed"]);
    expect(store.writes).toHaveLength(3);
    store.set("net.ipv4.ip_forward", "0");
    const third = await asserter.sync(settings);
    expect(third.drift).toEqual([
      { key: "net.ipv4.ip_forward", expected: "1", found: "0", action: "Repaired" },
      { key: "net.ipv4.vs.conntrack", expected: "1", found: "0", action: "Reported" },
    ]);
    expect(await store.read("net.ipv4.ip_forward")).toBe("1");
  });

  it("reports a write that fails and keys of a module that is not loaded, and still writes the rest", async () => {
    const store = new FakeSysctlStore({ "net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0" });
    store.makeReadOnly("net.ipv6.conf.all.forwarding");
    const r = await new SysctlAsserter(store).sync(settings);
    expect(await store.read("net.ipv4.ip_forward")).toBe("1");
    expect(r.entries.map((e) => [e.key, e.state])).toEqual([
      ["net.ipv4.ip_forward", "Set"],
      ["net.ipv6.conf.all.forwarding", "Failed"],
      ["net.ipv4.vs.conntrack", "Missing"],
      ["net.ipv4.vs.conn_reuse_mode", "Missing"],
      ["net.ipv4.vs.expire_nodest_conn", "Missing"],
      ["net.ipv4.vs.expire_quiescent_template", "Missing"],
    ]);
    expect(r.errors).toEqual([
      "sysctl net.ipv4.vs.conntrack does not exist (is its module loaded?): expected 1",
      "sysctl net.ipv4.vs.expire_nodest_conn does not exist (is its module loaded?): expected 1",
      "write sysctl net.ipv6.conf.all.forwarding failed: EACCES",
    ]);
  });

  it("observe() writes nothing", async () => {
    const store = new FakeSysctlStore(STOCK);
    const r = await new SysctlAsserter(store).observe(settings);
    expect(store.writes).toEqual([]);
    expect(r.entries[0]).toMatchObject({ key: "net.ipv4.ip_forward", value: "0", state: "Differs" });
  });
});

describe("ProcSysctlStore", () => {
  it("reads and writes files under its root, and never creates a missing key", async () => {
    const root = mkdtempSync(join(tmpdir(), "sysctl-"));
    mkdirSync(join(root, "net/ipv4"), { recursive: true });
    writeFileSync(join(root, "net/ipv4/ip_forward"), "0\n");
    const store = new ProcSysctlStore(root);
    expect(await store.read("net.ipv4.ip_forward")).toBe("0");
    await store.write("net.ipv4.ip_forward", "1");
    expect(readFileSync(join(root, "net/ipv4/ip_forward"), "utf8")).toBe("1\n");
    expect(await store.read("net.ipv4.vs.conntrack")).toBeUndefined();
    await expect(store.write("net.ipv4.vs.conntrack", "1")).rejects.toMatchObject({ errno: "ENOENT" });
    expect(await store.read("net/ipv4/ip_forward")).toBe("1");
  });

  it("refuses names that are not sysctl names", () => {
    expect(() => sysctlPath("../../etc/passwd")).toThrow(/not a sysctl name/);
    expect(() => sysctlPath("net..ipv4")).toThrow(/not a sysctl name/);
    expect(sysctlPath("net.ipv4.conf.eth0.rp_filter")).toBe("net/ipv4/conf/eth0/rp_filter");
  });
});
