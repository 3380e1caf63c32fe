import { describe, expect, it } from "vitest";
import { IPVS_NODE_LIMITS } from "../../src/api/v1alpha1/ipvs-node.ts";
import type { DriftItem } from "../../src/model/diff.ts";
import { buildNodeStatus, type NodeSyncFacts } from "../../src/model/node-status.ts";

const facts = (over: Partial<NodeSyncFacts> = {}): NodeSyncFacts => ({
  ok: true,
  errors: [],
  applied: 3,
  failed: 0,
  failures: [],
  drift: [],
  services: 1,
  destinations: 2,
  programmed: ["demo/web"],
  problems: [],
  durationMs: 12,
  ...over,
});
const t = (s: number) => new Date(Date.UTC(2026, 11, 1, 12, 0, s));

describe("buildNodeStatus", () => {
  it("counts the probed real servers and says how many the bounded list leaves out (healthy ones first)", () => {
    const probes = Array.from({ length: IPVS_NODE_LIMITS.backends + 7 }, (_, i) => ({
      virtualService: "demo/web",
      address: `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`,
      port: 80,
      healthy: i % 1000 !== 0,
      message: i % 1000 === 0 ? "timeout" : "",
    }));
    const status = buildNodeStatus(undefined, facts({ probes }), t(0));
    const unhealthy = probes.filter((p) => !p.healthy).length;
    expect(status.backendCounts).toEqual({ probed: probes.length, unhealthy, unlisted: 7 });
    expect(status.backends).toHaveLength(IPVS_NODE_LIMITS.backends);
    expect(status.backends!.filter((b) => !b.healthy)).toHaveLength(unhealthy); // none of them left out
    const few = buildNodeStatus(undefined, facts({ probes: probes.slice(0, 3) }), t(0));
    expect(few.backendCounts).toEqual({ probed: 3, unhealthy: 1, unlisted: 0 });
    expect(buildNodeStatus(undefined, facts(), t(0)).backendCounts).toBeUndefined();
  });

  it("reports a successful sync and stays byte-identical on idle resyncs (no writes on resync)", () => {
    const first = buildNodeStatus(undefined, facts(), t(0), 1);
    expect(first.conditions?.map((c) => [c.type, c.status, c.reason, c.observedGeneration])).toEqual([
      ["Synced", "True", "Synced", 1],
      ["Drifted", "False", "NoDrift", 1],
      ["Ready", "True", "Ready", 1],
    ]);
    expect(first.lastSync).toEqual({
      time: "2026-12-01T12:00:00Z",
      durationMilliseconds: 12,
      result: "Success",
      operations: 3,
    });
    expect(first.virtualServices).toBeUndefined();
    expect(first.programmedVirtualServices).toEqual([{ namespace: "demo", names: ["web"] }]);
    expect(first.virtualServiceCounts).toEqual({ total: 1, programmed: 1, unlisted: 0 });
    const idle = buildNodeStatus(first, facts({ applied: 0, durationMs: 40 }), t(30), 1);
    expect(JSON.stringify(idle)).toBe(JSON.stringify(first));
  });

  it("moves lastTransitionTime only when a condition's status changes", () => {
    const ok = buildNodeStatus(undefined, facts(), t(0));
    const failed = buildNodeStatus(
      ok,
      facts({
        applied: 1,
        failed: 1,
        failures: [{ virtualService: "demo/web", message: "addDestination failed: EINVAL" }],
      }),
      t(10),
    );
    const synced = failed.conditions!.find((c) => c.type === "Synced")!;
    expect(synced).toMatchObject({
      status: "False",
      reason: "OperationsFailed",
      lastTransitionTime: "2026-12-01T12:00:10Z",
    });
    expect(failed.virtualServices).toEqual([
      { name: "demo/web", programmed: false, message: "addDestination failed: EINVAL" },
    ]);
    const again = buildNodeStatus(
      failed,
      facts({ applied: 0, failed: 1, failures: [{ message: "x" }] }),
      t(20),
    );
    expect(again.conditions!.find((c) => c.type === "Synced")!.lastTransitionTime).toBe(
      "2026-12-01T12:00:10Z",
    );
    const errored = buildNodeStatus(
      again,
      facts({ errors: [{ kind: "Lock", message: "held by apply" }] }),
      t(30),
    );
    expect(errored.conditions!.find((c) => c.type === "Ready")).toMatchObject({
      status: "False",
      reason: "LockError",
      message: "held by apply",
    });
    expect(errored.lastSync).toMatchObject({ result: "Failure", message: "held by apply" });
  });

  it("keeps a drift entry's detectedAt while it lasts, bounds the list and puts Foreign last", () => {
    const reported: DriftItem = {
      kind: "Modified",
      service: "TCP 192.0.2.1:80",
      destination: "198.51.100.1:80",
      field: "weight",
      expected: "1",
      actual: "0",
      action: "Reported",
    };
    const foreign: DriftItem = { kind: "Foreign", service: "TCP 203.0.113.1:80", action: "Ignored" };
    const first = buildNodeStatus(undefined, facts({ drift: [foreign, reported] }), t(0));
    expect(first.drift?.map((d) => d.kind)).toEqual(["Modified", "Foreign"]);
    expect(first.conditions!.find((c) => c.type === "Drifted")).toMatchObject({
      status: "True",
      reason: "DriftReported",
    });
    const later = buildNodeStatus(first, facts({ drift: [reported, foreign], applied: 0 }), t(50));
    expect(later.drift?.[0]?.detectedAt).toBe("2026-12-01T12:00:00Z");
    const many: DriftItem[] = Array.from({ length: 70 }, (_, i) => ({
      kind: "Missing",
      service: `TCP 192.0.2.${i}:80`,
      action: "Repaired",
    }));
    expect(buildNodeStatus(undefined, facts({ drift: [foreign, ...many] }), t(0)).drift).toHaveLength(50);
  });

  it("lists invalid VirtualServices as not programmed with the problem", () => {
    const status = buildNodeStatus(
      undefined,
      facts({
        problems: [
          {
            kind: "Invalid",
            object: { kind: "VirtualService", namespace: "demo", name: "bad" },
            field: "spec.port",
            message: "must be 1..65535",
          },
        ],
      }),
      t(0),
    );
    expect(status.virtualServices).toEqual([
      {
        name: "demo/bad",
        programmed: false,
        message: "Invalid: VirtualService demo/bad spec.port: must be 1..65535",
      },
    ]);
    expect(status.programmedVirtualServices).toEqual([{ namespace: "demo", names: ["web"] }]);
    expect(status.virtualServiceCounts).toEqual({ total: 2, programmed: 1, unlisted: 0 });
  });
});
