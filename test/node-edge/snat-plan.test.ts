/**
 * SNAT plan: the nft script for IPv4, IPv6, port 0, firewall marks, a fixed SNAT address and no
 * service at all (the rule syntax is the one the VM test runs on Linux 6.1 with nft 1.0.6), and the
 * sync decision (apply or not, which drift).
 */
import { describe, expect, it } from "vitest";
import {
  planSnatScript,
  planSnatSync,
  SNAT_TABLE,
  SNAT_TABLE_NAME,
  type SnatService,
  snatComment,
} from "../../src/node-edge/snat-plan.ts";

const HEAD = [
  "add table inet ipvs_operator",
  "delete table inet ipvs_operator",
  "add table inet ipvs_operator",
  "add chain inet ipvs_operator postrouting { type nat hook postrouting priority srcnat; policy accept; }",
];
const RULE = "add rule inet ipvs_operator postrouting";

function web(overrides: Partial<SnatService> = {}): SnatService {
  return {
    owner: "shop/web",
    family: "IPv4",
    match: { kind: "address", protocol: "TCP", address: "10.99.9.9", port: 80 },
    realServers: ["10.99.0.20", "10.99.0.3"],
    ...overrides,
  };
}

describe("planSnatScript", () => {
  it("names the operator's own table", () => {
    expect(SNAT_TABLE).toBe("ipvs_operator");
    expect(SNAT_TABLE_NAME).toBe("inet ipvs_operator");
  });

  it("IPv4 TCP service: the conntrack original tuple, the real servers in address order, masquerade", () => {
    const plan = planSnatScript([web()]);
    expect(plan.script).toBe(
      [
        ...HEAD,
        `${RULE} meta l4proto tcp ct original ip daddr 10.99.9.9 ct original proto-dst 80 ip daddr { 10.99.0.3, 10.99.0.20 } masquerade comment "shop/web"`,
        "",
      ].join("\n"),
    );
    expect(plan).toMatchObject({ wanted: true, problems: [], rules: [{ owner: "shop/web" }] });
  });

  it("IPv6 UDP service with a fixed SNAT address: ip6 matches and snat ip6 to, canonical addresses", () => {
    const plan = planSnatScript([
      {
        owner: "dns/resolver",
        family: "IPv6",
        match: { kind: "address", protocol: "UDP", address: "2001:db8:99::9", port: 53 },
        realServers: ["2001:DB8:99:0::20"],
        toAddress: "2001:db8:99:0:0:0:0:1",
      },
    ]);
    expect(plan.script.split("\n").at(-2)).toBe(
      `${RULE} meta l4proto udp ct original ip6 daddr 2001:db8:99::9 ct original proto-dst 53 ip6 daddr { 2001:db8:99::20 } snat ip6 to 2001:db8:99::1 comment "dns/resolver"`,
    );
  });

  it("port 0 leaves out the port, but keeps the protocol; SCTP; snat ip to", () => {
    const plan = planSnatScript([
      web({
        match: { kind: "address", protocol: "SCTP", address: "10.99.9.9", port: 0 },
        toAddress: "10.99.0.1",
      }),
    ]);
    expect(plan.script.split("\n").at(-2)).toBe(
      `${RULE} meta l4proto sctp ct original ip daddr 10.99.9.9 ip daddr { 10.99.0.3, 10.99.0.20 } snat ip to 10.99.0.1 comment "shop/web"`,
    );
  });

  it("firewall-mark services match the mark and the real servers, in their family", () => {
    const plan = planSnatScript([
      { owner: "a/v4", family: "IPv4", match: { kind: "fwmark", fwmark: 7 }, realServers: ["10.99.0.20"] },
      { owner: "a/v6", family: "IPv6", match: { kind: "fwmark", fwmark: 8 }, realServers: ["2001:db8::5"] },
    ]);
    expect(plan.script.split("\n").slice(4, 6)).toEqual([
      `${RULE} meta mark 7 ip daddr { 10.99.0.20 } masquerade comment "a/v4"`,
      `${RULE} meta mark 8 ip6 daddr { 2001:db8::5 } masquerade comment "a/v6"`,
    ]);
  });

  it("no service: the script only removes the table (add + delete, so a missing table is no error)", () => {
    const plan = planSnatScript([]);
    expect(plan.script).toBe("add table inet ipvs_operator\ndelete table inet ipvs_operator\n");
    expect(plan.wanted).toBe(false);
  });

  it("a service without real servers has no rule; when it is the only one, the table goes", () => {
    const plan = planSnatScript([web({ realServers: [] })]);
    expect(plan).toMatchObject({ wanted: false, rules: [], problems: [] });
  });

  it("orders rules by owner, whatever the input order, and drops duplicate real servers", () => {
    const a = web({ owner: "b/second", realServers: ["10.99.0.5", "10.99.0.5"] });
    const b = web({ owner: "a/first" });
    const one = planSnatScript([a, b]);
    expect(one.script).toBe(planSnatScript([b, a]).script);
    expect(one.rules.map((r) => r.owner)).toEqual(["a/first", "b/second"]);
    expect(one.rules[1]!.rule).toContain("ip daddr { 10.99.0.5 } masquerade");
  });

  it("reports what it leaves out: a wrong-family real server, a bad VIP, port, mark or SNAT address", () => {
    const plan = planSnatScript([
      web({ owner: "x/mixed", realServers: ["10.99.0.20", "2001:db8::5"] }),
      web({ owner: "x/vip", match: { kind: "address", protocol: "TCP", address: "nope", port: 80 } }),
      web({
        owner: "x/port",
        match: { kind: "address", protocol: "TCP", address: "10.99.9.9", port: 70000 },
      }),
      web({ owner: "x/mark", match: { kind: "fwmark", fwmark: 0 } }),
      web({ owner: "x/to", toAddress: "2001:db8::1" }),
    ]);
    expect(plan.rules.map((r) => r.owner)).toEqual(["x/mixed"]);
    expect(plan.problems).toHaveLength(5);
    expect(plan.problems[0]).toMatch(/x\/mixed: real server "2001:db8::5" is not an IPv4 address/);
  });

  it("comments keep a Kubernetes namespace/name and never break the script", () => {
    expect(snatComment("shop/web-1.a")).toBe("shop/web-1.a");
    expect(snatComment('evil"; flush ruleset')).toBe("evil___flush_ruleset");
    expect(snatComment("n".repeat(300))).toHaveLength(128);
  });
});

describe("planSnatSync", () => {
  const wanted = planSnatScript([web()]);
  const none = planSnatScript([]);
  const R = "table inet ipvs_operator { ... }\n";

  it("first sync: replaces whatever is there without drift; leaves an absent table absent when none is wanted", () => {
    expect(planSnatSync({ desired: wanted, observed: { present: false } })).toEqual({
      apply: true,
      drift: [],
    });
    expect(planSnatSync({ desired: wanted, observed: { present: true, rendering: "x" } })).toEqual({
      apply: true,
      drift: [],
    });
    expect(planSnatSync({ desired: none, observed: { present: true, rendering: "x" } })).toEqual({
      apply: true,
      drift: [],
    });
    expect(planSnatSync({ desired: none, observed: { present: false } })).toEqual({
      apply: false,
      drift: [],
    });
  });

  it("same script, table as nft printed it after the last apply: nothing to do", () => {
    const previous = { script: wanted.script, rendering: R };
    expect(planSnatSync({ desired: wanted, observed: { present: true, rendering: R }, previous })).toEqual({
      apply: false,
      drift: [],
    });
  });

  it("a missing table and a changed one are drift, repaired by re-applying", () => {
    const previous = { script: wanted.script, rendering: R };
    const missing = planSnatSync({ desired: wanted, observed: { present: false }, previous });
    expect(missing.apply).toBe(true);
    expect(missing.drift).toMatchObject([
      { kind: "TableMissing", object: "inet ipvs_operator", action: "Repaired" },
    ]);
    const changed = planSnatSync({
      desired: wanted,
      observed: { present: true, rendering: "other" },
      previous,
    });
    expect(changed.apply).toBe(true);
    expect(changed.drift).toMatchObject([{ kind: "RulesModified", action: "Repaired" }]);
  });

  it("a changed desired script is applied without drift", () => {
    const previous = { script: planSnatScript([web({ owner: "other/svc" })]).script, rendering: R };
    expect(planSnatSync({ desired: wanted, observed: { present: true, rendering: R }, previous })).toEqual({
      apply: true,
      drift: [],
    });
  });

  it("the last service gone: the table is removed, without drift; a table back after removal is drift", () => {
    const had = { script: wanted.script, rendering: R };
    expect(
      planSnatSync({ desired: none, observed: { present: true, rendering: "other" }, previous: had }),
    ).toEqual({ apply: true, drift: [] });
    const removed = { script: none.script, rendering: undefined };
    expect(planSnatSync({ desired: none, observed: { present: false }, previous: removed })).toEqual({
      apply: false,
      drift: [],
    });
    const back = planSnatSync({
      desired: none,
      observed: { present: true, rendering: R },
      previous: removed,
    });
    expect(back.apply).toBe(true);
    expect(back.drift).toMatchObject([{ kind: "TableUnexpected", action: "Repaired" }]);
  });
});
