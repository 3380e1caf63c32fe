/**
 * computeDesired remembers each VirtualService's entry while it reads the very same objects and health:
 * unchanged entries keep their identity (the reconciler diffs only changed ones), and every input that
 * can change an entry makes a new one with the same content a fresh computation gives.
 */
import { describe, expect, it } from "vitest";
import { computeDesired } from "../../src/model/desired.ts";
import { healthKey } from "../../src/model/snapshot.ts";
import { NODE, rs, service, slice, snapshot, summary, vs } from "./desired-fixtures.ts";

const http = [{ name: "http", port: 8080, protocol: "TCP" }];
const base = () => ({
  virtualServices: [
    vs("web", { address: "192.0.2.10", port: 80 }),
    vs("api", { address: "192.0.2.11", port: 80, backends: { serviceRef: { name: "api", port: "http" } } }),
    vs("checked", {
      address: "192.0.2.12",
      port: 80,
      healthCheck: { type: "TCP", onFailure: "Quiesce" },
    }),
  ],
  realServers: [
    rs("web-a", { address: "198.51.100.1", port: 8080 }),
    rs("checked-a", { virtualServiceRef: { name: "checked" }, address: "198.51.100.3", port: 8080 }),
  ],
  services: [service("api", [{ name: "http", port: 80 }])],
  endpointSlices: [slice("api-1", "api", [{ address: "10.1.0.1" }], http)],
});
const entry = (r: ReturnType<typeof computeDesired>, address: string) =>
  r.table.find((e) => e.service.key.kind === "address" && e.service.key.address === address)!;

describe("computeDesired: entries remembered per VirtualService", () => {
  it("the same objects give the same entries (identical), and the same content as a fresh computation", () => {
    const parts = base();
    const first = computeDesired(snapshot(parts), NODE);
    const again = computeDesired(snapshot(parts), NODE);
    for (const address of ["192.0.2.10", "192.0.2.11", "192.0.2.12"]) {
      expect(entry(again, address)).toBe(entry(first, address));
    }
    const fresh = computeDesired(snapshot(base()), NODE); // equal objects, not the same ones
    expect(entry(fresh, "192.0.2.11")).not.toBe(entry(first, "192.0.2.11"));
    expect(fresh.table).toEqual(first.table);
    expect(again.problems).toEqual(first.problems);
  });

  it("a new EndpointSlice object changes only the entry that reads it", () => {
    const parts = base();
    const first = computeDesired(snapshot(parts), NODE);
    const next = computeDesired(
      snapshot({
        ...parts,
        endpointSlices: [slice("api-1", "api", [{ address: "10.1.0.1" }, { address: "10.1.0.2" }], http)],
      }),
      NODE,
    );
    expect(entry(next, "192.0.2.10")).toBe(entry(first, "192.0.2.10"));
    expect(entry(next, "192.0.2.11")).not.toBe(entry(first, "192.0.2.11"));
    expect(summary(next)["TCP 192.0.2.11:80"]).toEqual(["10.1.0.1:8080 w=1 NAT", "10.1.0.2:8080 w=1 NAT"]);
  });

  it("a new RealServer, a removed one, and a health change each make a new entry", () => {
    const parts = base();
    const first = computeDesired(snapshot(parts), NODE);
    const added = computeDesired(
      snapshot({
        ...parts,
        realServers: [...parts.realServers, rs("web-b", { address: "198.51.100.2", port: 8080 })],
      }),
      NODE,
    );
    expect(summary(added)["TCP 192.0.2.10:80"]).toEqual([
      "198.51.100.1:8080 w=1 NAT",
      "198.51.100.2:8080 w=1 NAT",
    ]);
    const removed = computeDesired(snapshot({ ...parts, realServers: [parts.realServers[1]!] }), NODE);
    expect(summary(removed)["TCP 192.0.2.10:80"]).toEqual([]);
    expect(entry(removed, "192.0.2.12")).toBe(entry(first, "192.0.2.12"));

    const key = healthKey({ namespace: "edge", name: "checked" }, "198.51.100.3", 8080);
    const down = computeDesired(snapshot(parts), NODE, new Map([[key, false]]));
    expect(summary(down)["TCP 192.0.2.12:80"]).toEqual(["198.51.100.3:8080 w=0 NAT"]);
    const up = computeDesired(snapshot(parts), NODE, new Map([[key, true]]));
    expect(summary(up)["TCP 192.0.2.12:80"]).toEqual(["198.51.100.3:8080 w=1 NAT"]);
    expect(entry(up, "192.0.2.10")).toBe(entry(down, "192.0.2.10"));
  });
});
