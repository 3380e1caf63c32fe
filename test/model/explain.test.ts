import { describe, expect, it } from "vitest";
import { type ExplainInput, explain, parseTarget } from "../../src/model/explain.ts";
import type { Snapshot } from "../../src/model/snapshot.ts";
import { NODE, rs, service, slice, snapshot, vs } from "./desired-fixtures.ts";

const WEB = { address: "192.0.2.10", port: 80, scheduler: "rr" };

function run(target: string, snap: Snapshot, extra: Partial<ExplainInput> = {}) {
  const parsed = parseTarget(target);
  if (typeof parsed === "string") throw new Error(parsed);
  const result = explain(parsed, {
    snapshot: snap,
    node: NODE,
    health: "healthy",
    managedCidrs: [],
    managedFwmarks: [],
    now: 1_000_000,
    ...extra,
  });
  return { inTable: result.inTable, text: result.lines.join("\n") };
}

describe("parseTarget", () => {
  it("reads addresses, address:port, service keys and firewall marks", () => {
    expect(parseTarget("192.0.2.10")).toEqual({ kind: "address", address: "192.0.2.10" });
    expect(parseTarget("198.51.100.5:8080")).toEqual({
      kind: "address",
      address: "198.51.100.5",
      port: 8080,
    });
    expect(parseTarget("[2001:DB8::5]:80")).toEqual({ kind: "address", address: "2001:db8::5", port: 80 });
    expect(parseTarget("2001:db8::5")).toEqual({ kind: "address", address: "2001:db8::5" });
    const key = { kind: "key", protocol: "TCP", address: "192.0.2.10", port: 80 };
    expect(parseTarget("TCP 192.0.2.10:80")).toEqual(key);
    expect(parseTarget("tcp/192.0.2.10:80")).toEqual(key);
    expect(parseTarget("fwmark/7")).toEqual({ kind: "fwmark", fwmark: 7 });
    expect(parseTarget("FWM 7 IPv6")).toEqual({ kind: "fwmark", fwmark: 7, family: "IPv6" });
  });

  it("says why a target is not one", () => {
    expect(parseTarget("web.example")).toMatch(/is not an address/);
    expect(parseTarget("tcp/192.0.2.10")).toMatch(/needs a port/);
    expect(parseTarget("192.0.2.10:99999")).toMatch(/not within 0..65535/);
    expect(parseTarget("FWM 0")).toMatch(/not within/);
  });
});

describe("explain", () => {
  it("a VirtualService whose nodeSelector selects the node is in the table, with its real servers", () => {
    const snap = snapshot({
      virtualServices: [vs("web", { ...WEB, nodeSelector: { matchLabels: { zone: "a" } } })],
      realServers: [rs("web-a", { address: "198.51.100.5", port: 8080, weight: 3 })],
    });
    const r = run("192.0.2.10", snap);
    expect(r.inTable).toBe(true);
    expect(r.text).toContain("192.0.2.10 is in node worker-1's table: TCP 192.0.2.10:80");
    expect(r.text).toContain("its nodeSelector selects node worker-1");
    expect(r.text).toContain("real server 198.51.100.5:8080 weight 3 NAT (RealServer edge/web-a)");
  });

  it("names the unmet nodeSelector requirement", () => {
    const snap = snapshot({
      virtualServices: [
        vs("web", {
          ...WEB,
          nodeSelector: { matchExpressions: [{ key: "zone", operator: "In", values: ["b", "c"] }] },
        }),
      ],
    });
    const r = run("TCP 192.0.2.10:80", snap);
    expect(r.inTable).toBe(false);
    expect(r.text).toContain("is NOT in node worker-1's table");
    expect(r.text).toContain("zone In (b,c) is not met: the node has zone=a");
  });

  it("explains an invalid VirtualService by its validation problems", () => {
    const r = run("192.0.2.10", snapshot({ virtualServices: [vs("web", { ...WEB, port: 0 })] }));
    expect(r.inTable).toBe(false);
    expect(r.text).toMatch(/it is invalid, so no node programs it:\n {2}- spec\.port: port 0 \(all ports\)/);
  });

  it("says which of two VirtualServices at one key wins and why", () => {
    const snap = snapshot({
      virtualServices: [
        vs("new", WEB, { creationTimestamp: "2026-02-01T00:00:00Z" }),
        vs("old", WEB, { creationTimestamp: "2026-01-01T00:00:00Z" }),
      ],
    });
    const r = run("tcp/192.0.2.10:80", snap);
    expect(r.inTable).toBe(true);
    expect(r.text).toContain("from VirtualService edge/old");
    expect(r.text).toMatch(
      /VirtualService edge\/old \(TCP 192\.0\.2\.10:80\):\n- it wins the key .* over VirtualService edge\/new \(the older one wins/,
    );
    expect(r.text).toMatch(
      /VirtualService edge\/new .*\n- it loses the conflict .*older VirtualService edge\/old/,
    );
  });

  it("settles a tie in age by namespace/name", () => {
    const snap = snapshot({ virtualServices: [vs("b", WEB), vs("a", WEB)] });
    expect(run("192.0.2.10:80", snap).text).toContain(
      "same creation time (without a creationTimestamp), so namespace/name decides: edge/a sorts first",
    );
  });

  it("reports a RealServer of the wrong family and one with a bad port", () => {
    const snap = snapshot({
      virtualServices: [vs("web", { ...WEB, forwarding: { method: "DirectRouting" } })],
      realServers: [
        rs("v6", { address: "2001:db8::5" }),
        rs("port", { address: "198.51.100.6", port: 8080 }),
      ],
    });
    const r = run("192.0.2.10", snap);
    expect(r.text).toMatch(/RealServer edge\/v6 is not used \(Invalid\): spec\.address: .*IPv4/);
    expect(r.text).toMatch(/RealServer edge\/port is not used \(Invalid\): spec\.port:/);
  });

  it("tells ready, terminating and not-ready endpoints apart, and skips slices of the other family", () => {
    const snap = snapshot({
      virtualServices: [vs("web", { ...WEB, backends: { serviceRef: { name: "web" }, weight: 7 } })],
      services: [service("web", [{ name: "http", port: 80 }])],
      endpointSlices: [
        slice(
          "web-1",
          "web",
          [
            { address: "198.51.100.5" },
            { address: "198.51.100.6", ready: false, serving: true, terminating: true },
            { address: "198.51.100.7", ready: false },
          ],
          [{ name: "http", port: 8080 }],
        ),
        slice("web-6", "web", [{ address: "2001:db8::7" }], [{ name: "http", port: 8080 }], "IPv6"),
      ],
    });
    const ready = run("198.51.100.5", snap);
    expect(ready.inTable).toBe(true);
    expect(ready.text).toContain("ready unset, serving unset, terminating unset -> weight 7");
    const terminating = run("198.51.100.6:8080", snap);
    expect(terminating.inTable).toBe(true);
    expect(terminating.text).toContain("-> weight 0 (draining)");
    const notReady = run("198.51.100.7", snap);
    expect(notReady.inTable).toBe(false);
    expect(notReady.text).toContain("not ready and not a serving terminating endpoint, so it is absent");
    const v6 = run("2001:db8::7", snap);
    expect(v6.inTable).toBe(false);
    expect(v6.text).toContain(
      "EndpointSlice edge/web-6 has addressType IPv6, the service is IPv4: it is not used",
    );
  });

  it("finds a real server behind two services", () => {
    const snap = snapshot({
      virtualServices: [vs("web", WEB), vs("api", { ...WEB, port: 443 })],
      realServers: [
        rs("web-a", { address: "198.51.100.5", port: 8080 }),
        rs("api-a", { virtualServiceRef: { name: "api" }, address: "198.51.100.5", port: 8443 }),
      ],
    });
    const r = run("198.51.100.5", snap);
    expect(r.inTable).toBe(true);
    expect(r.text).toContain(
      "as real server 198.51.100.5:8080 weight 1 NAT (RealServer edge/web-a) of TCP 192.0.2.10:80",
    );
    expect(r.text).toContain(
      "as real server 198.51.100.5:8443 weight 1 NAT (RealServer edge/api-a) of TCP 192.0.2.10:443",
    );
    const one = run("198.51.100.5:8443", snap);
    expect(one.text).not.toContain("edge/web-a");
  });

  it("tells the health assumption: a backend absent in its initial state", () => {
    const check = { type: "TCP", initialState: "Unhealthy", onFailure: "Remove" };
    const snap = snapshot({
      virtualServices: [vs("web", { ...WEB, healthCheck: check })],
      realServers: [rs("web-a", { address: "198.51.100.5", port: 8080 })],
    });
    const healthy = run("198.51.100.5", snap);
    expect(healthy.inTable).toBe(true);
    expect(healthy.text).toContain(
      "taken as passing (no probes run here): before its first probe the agent programs it absent",
    );
    const initial = run("198.51.100.5", snap, { health: "initial" });
    expect(initial.inTable).toBe(false);
    expect(initial.text).toContain("its health check starts Unhealthy (initialState) with onFailure Remove");
  });

  it("says who owns the key: the journal, a managed CIDR, or nobody (foreign)", () => {
    const snap = snapshot({ virtualServices: [vs("web", WEB)] });
    const journal = {
      services: ["TCP 192.0.2.10:80"],
      owners: { "TCP 192.0.2.10:80": "edge/web" },
      drains: [],
      bootId: "b1",
    };
    expect(run("192.0.2.10", snap, { journal, currentBootId: "b1" }).text).toContain(
      "the journal records it: this tool programmed it (for VirtualService edge/web)",
    );
    const stale = run("192.0.2.10", snap, { journal, currentBootId: "b2" }).text;
    expect(stale).toContain("the journal was written in another boot (b1), so its entries own nothing now");
    expect(stale).toContain("it is not owned");
    expect(run("192.0.2.10", snap, { managedCidrs: ["192.0.2.0/24"] }).text).toContain(
      "192.0.2.10 is inside --managed-cidr 192.0.2.0/24",
    );
    expect(run("192.0.2.10", snap).text).toContain(
      "apply reports it as Foreign and never changes or deletes it",
    );
    expect(run("FWM 7", snapshot({}), { managedFwmarks: [{ from: 1, to: 10 }] }).text).toContain(
      "it is owned but not desired: apply drains and deletes a kernel entry at this key",
    );
  });

  it("reports drains recorded in the journal", () => {
    const journal = {
      services: ["TCP 192.0.2.10:80"],
      owners: {},
      drains: [
        {
          service: "TCP 192.0.2.10:80",
          destination: "198.51.100.9:8080",
          startedAt: 940_000,
          timeoutSeconds: 300,
        },
      ],
      bootId: "b1",
    };
    const r = run("198.51.100.9", snapshot({ virtualServices: [vs("web", WEB)] }), {
      journal,
      currentBootId: "b1",
    });
    expect(r.inTable).toBe(false);
    expect(r.text).toContain(
      "Drain: 198.51.100.9:8080 of TCP 192.0.2.10:80 is draining (weight 0) for 60 s; apply deletes it when its connections reach 0, at the latest in 240 s",
    );
  });
});
