/** The address policy as one decision (model/address-policy.ts) and in computeDesired. */
import { describe, expect, it } from "vitest";
import { compileAddressPolicy } from "../../src/model/address-policy.ts";
import { computeDesired } from "../../src/model/desired.ts";
import { EMPTY_SNAPSHOT } from "../../src/model/snapshot.ts";
import type { ServiceKey } from "../../src/vocabulary/table.ts";

const policy = (name: string, spec: unknown) => ({
  apiVersion: "ipvs.dev/v1alpha1",
  kind: "IPVSAddressPolicy",
  metadata: { name },
  spec,
});
const tcp = (address: string, port: number): ServiceKey => ({
  kind: "address",
  family: address.includes(":") ? "IPv6" : "IPv4",
  protocol: "TCP",
  address,
  port,
});
const mark = (fwmark: number): ServiceKey => ({ kind: "fwmark", family: "IPv4", fwmark });

describe("compileAddressPolicy", () => {
  const p = compileAddressPolicy([
    policy("a", {
      namespaces: ["team-a"],
      cidrs: ["192.0.2.0/28", "2001:db8:a::/64"],
      ports: ["80", "8000-8999"],
    }),
    policy("marks", { namespaces: ["team-a", "team-b"], fwmarks: ["100-199"] }),
    policy("shared", { namespaces: ["*"], cidrs: ["198.18.0.0/24"] }),
    policy("typo", { namespaces: ["team-b"], cidrs: ["10.0.0.0/33"] }),
    policy("unknown-field", { namespaces: ["team-b"], cidrs: ["10.0.0.0/8"], everything: true }),
  ]);

  it("allows a namespace its CIDRs on its ports, its marks, and what * gives everyone", () => {
    expect(p.refusal("team-a", tcp("192.0.2.5", 80))).toBeUndefined();
    expect(p.refusal("team-a", tcp("192.0.2.5", 8443))).toBeUndefined();
    expect(p.refusal("team-a", tcp("2001:db8:a::5", 80))).toBeUndefined();
    expect(p.refusal("team-a", mark(150))).toBeUndefined();
    expect(p.refusal("team-b", mark(100))).toBeUndefined();
    expect(p.refusal("anyone", tcp("198.18.0.9", 0))).toBeUndefined(); // no ports listed: every port, 0 too
  });

  it("refuses another range, another port, port 0 where ports are listed, another mark, another namespace", () => {
    expect(p.refusal("team-a", tcp("192.0.2.16", 80))).toMatch(
      /no IPVSAddressPolicy for namespace team-a covers 192\.0\.2\.16 port 80 \(policies for it: a, marks, shared\)/,
    );
    expect(p.refusal("team-a", tcp("192.0.2.5", 443))).toBeDefined();
    expect(p.refusal("team-a", tcp("192.0.2.5", 0))).toBeDefined();
    expect(p.refusal("team-a", mark(200))).toMatch(/firewall mark 200/);
    expect(p.refusal("team-c", tcp("192.0.2.5", 80))).toBeDefined();
  });

  it("leaves out a policy that does not parse or holds a bad range, whole, and says why", () => {
    expect(p.refusal("team-b", tcp("10.0.0.1", 80))).toBeDefined();
    expect(p.ignored).toEqual([
      'typo: cidr "10.0.0.0/33" is not a CIDR',
      expect.stringMatching(/^unknown-field: spec\.: /),
    ]);
  });

  it("refuses everything when there is no policy", () => {
    expect(compileAddressPolicy([]).refusal("team-a", tcp("192.0.2.5", 80))).toMatch(
      /no IPVSAddressPolicy lets namespace team-a use addresses/,
    );
  });
});

describe("compileAddressPolicy: namespaceSelectors", () => {
  const p = compileAddressPolicy([
    policy("gold", {
      namespaceSelectors: [
        { matchLabels: { tier: "gold" } },
        { matchExpressions: [{ key: "team", operator: "In", values: ["red", "blue"] }] },
      ],
      cidrs: ["192.0.2.0/28"],
    }),
    policy("not-shared", {
      namespaceSelectors: [{ matchExpressions: [{ key: "shared", operator: "NotIn", values: ["no"] }] }],
      cidrs: ["198.18.0.0/24"],
    }),
    policy("both", {
      namespaces: ["legacy"],
      namespaceSelectors: [{ matchLabels: { tier: "silver" } }],
      fwmarks: ["7"],
    }),
    policy("everyone", { namespaceSelectors: [{}], cidrs: ["203.0.113.0/24"] }),
    policy("nobody", { cidrs: ["10.0.0.0/8"] }),
    policy("empty-list", { namespaceSelectors: [], cidrs: ["10.0.0.0/8"] }),
    policy("bad-selector", {
      namespaceSelectors: [{ matchExpressions: [{ key: "tier", operator: "In" }] }],
      cidrs: ["10.0.0.0/8"],
    }),
  ]);

  it("is for a namespace whose labels any selector matches (matchLabels, matchExpressions)", () => {
    expect(p.refusal("x", tcp("192.0.2.1", 80), { tier: "gold" })).toBeUndefined();
    expect(p.refusal("y", tcp("192.0.2.1", 80), { team: "blue", tier: "bronze" })).toBeUndefined();
    expect(p.refusal("z", tcp("192.0.2.1", 80), { tier: "silver" })).toMatch(
      /no IPVSAddressPolicy for namespace z covers 192\.0\.2\.1 port 80 \(policies for it: both, everyone, not-shared\)/,
    );
    expect(p.refusal("z", tcp("192.0.2.1", 80))).toBeDefined(); // no labels: only {} and NotIn match
  });

  it("matches a namespace without the key by NotIn, and every namespace by {}", () => {
    expect(p.refusal("plain", tcp("198.18.0.1", 80))).toBeUndefined();
    expect(p.refusal("plain", tcp("198.18.0.1", 80), { shared: "yes" })).toBeUndefined();
    expect(p.refusal("private", tcp("198.18.0.1", 80), { shared: "no" })).toBeDefined();
    expect(p.refusal("anything", tcp("203.0.113.9", 443))).toBeUndefined();
  });

  it("is for the namespaces it names OR those its selectors match", () => {
    expect(p.refusal("legacy", mark(7))).toBeUndefined();
    expect(p.refusal("new", mark(7), { tier: "silver" })).toBeUndefined();
    expect(p.refusal("new", mark(7), { tier: "gold" })).toBeDefined();
  });

  it("leaves out a policy with neither namespaces nor selectors, an empty selector list or a bad requirement", () => {
    expect(p.refusal("x", tcp("10.0.0.1", 80), { tier: "gold" })).toBeDefined();
    expect(p.ignored).toEqual([
      "nobody: spec.: a policy needs namespaces or namespaceSelectors (or both): which namespaces it is for",
      expect.stringMatching(/^empty-list: spec\.namespaceSelectors: /),
      "bad-selector: spec.namespaceSelectors.0.matchExpressions.0.values: values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist",
    ]);
  });
});

describe("computeDesired with the address policy", () => {
  const vs = (namespace: string, name: string, address: string) => ({
    apiVersion: "ipvs.dev/v1alpha1",
    kind: "VirtualService",
    metadata: { namespace, name, creationTimestamp: "2026-12-01T00:00:00Z" },
    spec: { address, port: 80 },
  });
  const snapshot = {
    ...EMPTY_SNAPSHOT,
    virtualServices: [
      vs("team-a", "web", "192.0.2.1"),
      vs("team-b", "steal", "192.0.2.2"),
      vs("team-b", "web", "198.51.100.1"),
    ],
  };
  const policies = [
    policy("a", { namespaces: ["team-a"], cidrs: ["192.0.2.0/24"] }),
    policy("b", { namespaces: ["team-b"], cidrs: ["198.51.100.0/24"] }),
  ];

  it("programs what the policies allow and reports the rest as NotAllowed at spec.address", () => {
    const { table, problems } = computeDesired(
      { ...snapshot, addressPolicies: policies },
      { name: "n", labels: {} },
    );
    expect(table.map((e) => e.service.source.name + "@" + e.service.source.namespace).sort()).toEqual([
      "web@team-a",
      "web@team-b",
    ]);
    expect(problems).toEqual([
      expect.objectContaining({
        kind: "NotAllowed",
        object: { kind: "VirtualService", namespace: "team-b", name: "steal" },
        field: "spec.address",
      }),
    ]);
  });

  it("does not enforce without policies in the snapshot (--address-policy Off), and refuses all with an empty list", () => {
    expect(computeDesired(snapshot, { name: "n", labels: {} }).table).toHaveLength(3);
    const none = computeDesired({ ...snapshot, addressPolicies: [] }, { name: "n", labels: {} });
    expect(none.table).toEqual([]);
    expect(none.problems.map((p) => p.kind)).toEqual(["NotAllowed", "NotAllowed", "NotAllowed"]);
  });

  it("reads the namespaces' labels from the snapshot for namespaceSelectors; a namespace not listed has none", () => {
    const namespace = (name: string, labels?: Record<string, string>) => ({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name, ...(labels ? { labels } : {}) },
    });
    const selected = [
      policy("tenants", {
        namespaceSelectors: [{ matchLabels: { tenant: "yes" } }],
        cidrs: ["192.0.2.0/24"],
      }),
    ];
    const run = (namespaces: ReturnType<typeof namespace>[] | undefined) =>
      computeDesired(
        { ...snapshot, addressPolicies: selected, ...(namespaces ? { namespaces } : {}) },
        { name: "n", labels: {} },
      ).table.map((e) => `${e.service.source.namespace}/${e.service.source.name}`);
    expect(run([namespace("team-a", { tenant: "yes" }), namespace("team-b")])).toEqual(["team-a/web"]);
    expect(
      run([namespace("team-a", { tenant: "yes" }), namespace("team-b", { tenant: "yes" })]).sort(),
    ).toEqual(["team-a/web", "team-b/steal"]);
    expect(run([namespace("team-a", { tenant: "no" })])).toEqual([]);
    expect(run(undefined)).toEqual([]);
  });
});
