/** computeDesired never throws, whatever the snapshot holds, and its output does not depend on input order. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { computeDesired } from "../../src/model/desired.ts";
import { diff } from "../../src/model/diff.ts";
import type { Snapshot } from "../../src/model/snapshot.ts";
import { serviceKeyString } from "../../src/vocabulary/table.ts";
import { simulate } from "../support/simulate.ts";
import { NODE, rs, service, slice, vs } from "./desired-fixtures.ts";

const junk = fc.anything({ maxDepth: 3 });

// Objects that are mostly valid, with fields drawn from small pools so that keys collide.
const vsArb = fc
  .record({
    name: fc.constantFrom("web", "api", "dns", "x"),
    address: fc.constantFrom("192.0.2.10", "192.0.2.11", "2001:db8::1", "bogus"),
    port: fc.constantFrom(0, 80, 443),
    method: fc.constantFrom("NAT", "DirectRouting", "Tunnel"),
    created: fc.constantFrom(undefined, "2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z", "not a date"),
    persistence: fc.boolean(),
    backends: fc.boolean(),
    sorry: fc.boolean(),
    health: fc.constantFrom(undefined, "TCP", "None"),
  })
  .map((v) =>
    vs(
      v.name,
      {
        address: v.address,
        port: v.port,
        forwarding: { method: v.method },
        ...(v.persistence ? { persistence: {} } : {}),
        ...(v.backends ? { backends: { serviceRef: { name: "api", port: "http" } } } : {}),
        ...(v.sorry ? { sorryServer: { address: "198.51.100.99" } } : {}),
        ...(v.health ? { healthCheck: { type: v.health } } : {}),
      },
      v.created ? { creationTimestamp: v.created } : {},
    ),
  );

const rsArb = fc
  .record({
    name: fc.constantFrom("a", "b", "c", "d"),
    vs: fc.constantFrom("web", "api", "dns", "missing"),
    address: fc.constantFrom("198.51.100.5", "198.51.100.6", "2001:db8::5"),
    port: fc.constantFrom(undefined, 80, 8080),
    enabled: fc.boolean(),
  })
  .map((r) =>
    rs(r.name, {
      virtualServiceRef: { name: r.vs },
      address: r.address,
      ...(r.port ? { port: r.port } : {}),
      enabled: r.enabled,
    }),
  );

const sliceArb = fc
  .array(
    fc.record({
      address: fc.constantFrom("198.51.100.5", "198.51.100.20", "198.51.100.21", "2001:db8::20", "junk"),
      ready: fc.constantFrom(undefined, true, false),
      serving: fc.constantFrom(undefined, true, false),
      terminating: fc.constantFrom(undefined, true, false),
    }),
    { maxLength: 4 },
  )
  .chain((endpoints) =>
    fc
      .record({ name: fc.constantFrom("s1", "s2"), port: fc.constantFrom(80, 8080) })
      .map((s) => slice(s.name, "api", endpoints, [{ name: "http", port: s.port }])),
  );

// Services, slices and Endpoints that are found by the VirtualServices (right namespace, name, label)
// but whose content is junk at every level.
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.oneof(arb, junk);
const portJunkArb = maybe(
  fc.record(
    {
      name: maybe(fc.constantFrom("http", "")),
      port: maybe(fc.constantFrom(80, 8080, 0, 70000, 1.5)),
      protocol: maybe(fc.constantFrom("TCP", "UDP", "tcp")),
    },
    { requiredKeys: [] },
  ),
);
const junkServiceArb = fc
  .record({ spec: maybe(fc.record({ ports: maybe(fc.array(portJunkArb, { maxLength: 3 })) })) })
  .map((x) => ({ metadata: { name: "api", namespace: "edge" }, ...x }));
const junkSliceArb = fc
  .record(
    {
      addressType: maybe(fc.constantFrom("IPv4", "IPv6")),
      ports: maybe(fc.array(portJunkArb, { maxLength: 3 })),
      endpoints: maybe(
        fc.array(
          maybe(
            fc.record(
              {
                addresses: maybe(
                  fc.array(maybe(fc.constantFrom("198.51.100.20", "2001:db8::20", "010.1.0.7", "")), {
                    maxLength: 2,
                  }),
                ),
                conditions: maybe(
                  fc.record({ ready: junk, serving: junk, terminating: junk }, { requiredKeys: [] }),
                ),
              },
              { requiredKeys: [] },
            ),
          ),
          { maxLength: 3 },
        ),
      ),
    },
    { requiredKeys: [] },
  )
  .chain((x) =>
    fc.constantFrom("s1", "s2").map((name) => ({
      metadata: { name, namespace: "edge", labels: { "kubernetes.io/service-name": "api" } },
      ...x,
    })),
  );
const junkEndpointsArb = fc
  .record({
    subsets: maybe(
      fc.array(
        maybe(
          fc.record(
            {
              addresses: maybe(
                fc.array(maybe(fc.record({ ip: maybe(fc.constantFrom("198.51.100.30", "x")) }))),
              ),
              ports: maybe(fc.array(portJunkArb, { maxLength: 2 })),
            },
            { requiredKeys: [] },
          ),
        ),
        { maxLength: 2 },
      ),
    ),
  })
  .map((x) => ({ metadata: { name: "api", namespace: "edge" }, ...x }));
const backendsVsArb = fc
  .record({
    name: fc.constantFrom("web", "api"),
    source: fc.constantFrom("EndpointSlice", "Endpoints"),
    port: fc.constantFrom(undefined, 80, "http"),
    protocol: fc.constantFrom("TCP", "UDP"),
    family: fc.constantFrom("192.0.2.10", "2001:db8::1"),
  })
  .map((v) =>
    vs(v.name, {
      address: v.family,
      port: 80,
      protocol: v.protocol,
      backends: {
        serviceRef: { name: "api", ...(v.port === undefined ? {} : { port: v.port }) },
        source: v.source,
      },
    }),
  );

describe("computeDesired properties", () => {
  it("never throws and reports no Internal problem on arbitrary objects", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(junk, vsArb), { maxLength: 5 }),
        fc.array(fc.oneof(junk, rsArb), { maxLength: 5 }),
        fc.array(junk, { maxLength: 3 }),
        (virtualServices, realServers, other) => {
          const snapshot = {
            virtualServices,
            realServers,
            endpointSlices: other,
            endpoints: other,
            services: other,
          } as unknown as Snapshot;
          const r = computeDesired(snapshot, NODE);
          expect(Array.isArray(r.table)).toBe(true);
          for (const p of r.problems) expect(p.message.length).toBeGreaterThan(0);
          expect(r.problems.filter((p) => p.kind === "Internal")).toEqual([]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("gives the same result for any order of the snapshot's lists", () => {
    fc.assert(
      fc.property(
        fc.array(vsArb, { maxLength: 5 }),
        fc.array(rsArb, { maxLength: 6 }),
        fc.array(sliceArb, { maxLength: 2 }),
        fc.boolean(),
        (virtualServices, realServers, endpointSlices, healthy) => {
          const services = [service("api", [{ name: "http", port: 80, protocol: "TCP" }])];
          const health = new Map([["edge/web|198.51.100.5|80", healthy]]);
          const a = computeDesired(
            { virtualServices, realServers, endpointSlices, endpoints: [], services },
            NODE,
            health,
          );
          const b = computeDesired(
            {
              virtualServices: [...virtualServices].reverse(),
              realServers: [...realServers].reverse(),
              endpointSlices: [...endpointSlices].reverse(),
              endpoints: [],
              services,
            },
            NODE,
            health,
          );
          expect(b).toEqual(a);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("plans only what the kernel accepts, and converges in one plan from an empty table", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(vsArb, { maxLength: 5 }),
        fc.array(rsArb, { maxLength: 6 }),
        fc.array(sliceArb, { maxLength: 2 }),
        async (virtualServices, realServers, endpointSlices) => {
          const services = [service("api", [{ name: "http", port: 80, protocol: "TCP" }])];
          const { table } = computeDesired(
            { virtualServices, realServers, endpointSlices, endpoints: [], services },
            NODE,
          );
          const scope = { managedCidrs: [], managedFwmarks: [], journal: [] };
          const plan = diff(table, [], scope, [], 0);
          const applied = await simulate([], plan.operations);
          expect(applied.results.filter((r) => !r.ok)).toEqual([]);
          // The caller journals what it creates (sync-once.ts); then the agent owns it and has nothing to do.
          const journal = plan.operations.flatMap((o) =>
            o.op === "addService" ? [serviceKeyString(o.service.key)] : [],
          );
          const second = diff(table, applied.table, { ...scope, journal }, [], 0);
          expect(second.operations).toEqual([]);
          expect(second.drift).toEqual([]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("reads junk Services, EndpointSlices and Endpoints per object: problems on them, never Internal", () => {
    fc.assert(
      fc.property(
        fc.array(backendsVsArb, { minLength: 1, maxLength: 3 }),
        fc.array(maybe(junkServiceArb), { maxLength: 2 }),
        fc.array(maybe(junkSliceArb), { maxLength: 3 }),
        fc.array(maybe(junkEndpointsArb), { maxLength: 2 }),
        (virtualServices, services, endpointSlices, endpoints) => {
          const snapshot = {
            virtualServices,
            realServers: [rs("a", { address: "198.51.100.5", virtualServiceRef: { name: "api" } })],
            services,
            endpointSlices,
            endpoints,
          } as unknown as Snapshot;
          const r = computeDesired(snapshot, NODE);
          expect(r.problems.filter((p) => p.kind === "Internal")).toEqual([]);
          // The VirtualService is planned and keeps its RealServer, whatever junk its backends hold.
          const api = r.table.find((e) => e.service.source.name === "api");
          if (api?.service.key.family === "IPv4") {
            expect(api.destinations.map((d) => d.source.kind)).toContain("RealServer");
          }
          for (const p of r.problems) {
            if (p.object.kind !== "VirtualService" && p.object.kind !== "RealServer") {
              expect(p.kind).toBe("Invalid");
              expect(p.field).toBeTruthy();
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
