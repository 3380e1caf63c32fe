import { describe, expect, it } from "vitest";
import {
  API_GROUP,
  API_VERSION,
  checkRealServerAgainstService,
  isApiIp,
  type RealServerSpec,
  type ValidationResult,
  type VirtualServiceSpec,
  validateIPVSNode,
  validateRealServer,
  validateVirtualService,
  validateVirtualServiceUpdate,
} from "../../src/api/v1alpha1/index.ts";
import { type Case, CORPUS } from "./corpus.ts";

const meta = { name: "web", namespace: "edge" };
const wrap = (kind: Case["kind"], body: Record<string, unknown>) => ({
  apiVersion: `${API_GROUP}/${API_VERSION}`,
  kind,
  metadata: kind === "IPVSNode" ? { name: "worker-1" } : meta,
  ...(kind === "IPVSNode" ? { status: body } : { spec: body }),
});

function validateCase(c: Case): ValidationResult<unknown> {
  const obj = wrap(c.kind, c.body);
  if (c.old) return validateVirtualServiceUpdate(wrap(c.kind, c.old), obj);
  if (c.kind === "VirtualService") return validateVirtualService(obj);
  if (c.kind === "RealServer") return validateRealServer(obj);
  return validateIPVSNode(obj);
}

function vsSpec(spec: Record<string, unknown>): VirtualServiceSpec {
  const r = validateVirtualService(wrap("VirtualService", spec));
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.value.spec;
}
function rsSpec(spec: Record<string, unknown>): RealServerSpec {
  const r = validateRealServer(wrap("RealServer", { virtualServiceRef: { name: "web" }, ...spec }));
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.value.spec;
}

describe("corpus: runtime validation", () => {
  it.each(CORPUS.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const r = validateCase(c);
    if (c.invalidAt === undefined) {
      expect(r.ok ? [] : r.issues).toEqual([]);
    } else {
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.issues.map((i) => i.path)).toContain(c.invalidAt);
    }
  });
});

describe("defaults", () => {
  it("fills every defaulted VirtualService field", () => {
    expect(vsSpec({ address: "192.0.2.10", port: 80 })).toEqual({
      address: "192.0.2.10",
      port: 80,
      protocol: "TCP",
      family: "IPv4",
      scheduler: "wlc",
      onePacket: false,
      forwarding: { method: "NAT" },
      bindAddress: true,
      drain: { timeoutSeconds: 300 },
      driftPolicy: "Repair",
    });
  });

  it("fills nested defaults of persistence, health check, backends and tunnel", () => {
    const s = vsSpec({
      address: "192.0.2.10",
      port: 80,
      persistence: {},
      healthCheck: { type: "TCP" },
      backends: { serviceRef: { name: "web" } },
      forwarding: { method: "Tunnel", tunnel: {} },
    });
    expect(s.persistence).toEqual({ timeoutSeconds: 360, netmask: "255.255.255.255" });
    expect(s.healthCheck).toEqual({
      type: "TCP",
      intervalSeconds: 10,
      timeoutSeconds: 5,
      riseCount: 2,
      fallCount: 3,
      initialState: "Unhealthy",
      slowStartSeconds: 0,
      onFailure: "Quiesce",
    });
    expect(s.backends).toEqual({ serviceRef: { name: "web" }, weight: 1, source: "EndpointSlice" });
    expect(s.forwarding).toEqual({ method: "Tunnel", tunnel: { type: "IPIP", checksum: "None" } });
  });

  it("uses prefixLength 128 for IPv6 and family-based masks for fwmark services", () => {
    expect(vsSpec({ address: "2001:db8::1", port: 80, persistence: {} }).persistence).toEqual({
      timeoutSeconds: 360,
      prefixLength: 128,
    });
    const fw = vsSpec({ firewallMark: 3, family: "IPv6", persistence: {} });
    expect(fw.persistence?.prefixLength).toBe(128);
    expect(fw.protocol).toBeUndefined();
    expect(vsSpec({ firewallMark: 3, family: "IPv4", persistence: {} }).persistence?.netmask).toBe(
      "255.255.255.255",
    );
  });

  it("keeps given values instead of defaults", () => {
    const s = vsSpec({
      address: "192.0.2.10",
      port: 80,
      protocol: "UDP",
      persistence: { netmask: "255.255.0.0" },
    });
    expect(s.protocol).toBe("UDP");
    expect(s.persistence?.netmask).toBe("255.255.0.0");
  });

  it("fills RealServer defaults", () => {
    expect(rsSpec({ address: "198.51.100.5" })).toEqual({
      virtualServiceRef: { name: "web" },
      address: "198.51.100.5",
      weight: 1,
      upperThreshold: 0,
      lowerThreshold: 0,
      enabled: true,
    });
  });
});

describe("object envelope", () => {
  const spec = { address: "192.0.2.10", port: 80 };
  it.each([
    ["apiVersion", { apiVersion: "ipvs.dev/v1", kind: "VirtualService", metadata: meta, spec }],
    ["kind", { apiVersion: "ipvs.dev/v1alpha1", kind: "RealServer", metadata: meta, spec }],
    ["metadata.name", { apiVersion: "ipvs.dev/v1alpha1", kind: "VirtualService", metadata: {}, spec }],
    ["spec", { apiVersion: "ipvs.dev/v1alpha1", kind: "VirtualService", metadata: meta }],
  ])("rejects a bad or missing %s", (path, obj) => {
    const r = validateVirtualService(obj);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.map((i) => i.path)).toContain(path);
  });

  it("accepts a missing namespace and keeps unknown metadata", () => {
    const r = validateVirtualService({
      apiVersion: "ipvs.dev/v1alpha1",
      kind: "VirtualService",
      metadata: { name: "web", uid: "u1", generation: 2 },
      spec,
    });
    expect(r.ok && r.value.metadata).toEqual({ name: "web", uid: "u1", generation: 2 });
  });

  it("names an unknown spec field, as kubectl's strict field validation does", () => {
    const r = validateVirtualService(wrap("VirtualService", { ...spec, shceduler: "rr" }));
    expect(r).toEqual({ ok: false, issues: [{ path: "spec.shceduler", message: "unknown field" }] });
    const rs = validateRealServer(
      wrap("RealServer", {
        virtualServiceRef: { name: "web" },
        address: "198.51.100.5",
        forwarding: { mode: "NAT" },
      }),
    );
    expect(rs).toEqual({ ok: false, issues: [{ path: "spec.forwarding.mode", message: "unknown field" }] });
  });

  it("rejects an unknown top-level field and keeps unknown status fields out of the way", () => {
    const r = validateVirtualService({ ...wrap("VirtualService", spec), data: {} });
    expect(r).toEqual({ ok: false, issues: [{ path: "data", message: "unknown field" }] });
    const s = validateVirtualService({ ...wrap("VirtualService", spec), status: { future: 1 } });
    expect(s.ok).toBe(true);
  });

  it("treats null like an absent field, then defaults it, as the apiserver does", () => {
    expect(vsSpec({ ...spec, scheduler: null, persistence: null, sorryServer: null, drain: null })).toEqual(
      vsSpec(spec),
    );
    expect(rsSpec({ address: "198.51.100.5", port: null, weight: null })).toEqual(
      rsSpec({ address: "198.51.100.5" }),
    );
    const upd = validateVirtualServiceUpdate(
      wrap("VirtualService", { ...spec, protocol: "TCP" }),
      wrap("VirtualService", { ...spec, protocol: null }),
    );
    expect(upd.ok).toBe(true);
  });

  it("rejects non-objects without throwing", () => {
    for (const bad of [null, undefined, 42, "x", []]) expect(validateVirtualService(bad).ok).toBe(false);
  });
});

describe("isApiIp", () => {
  it.each([
    ["192.0.2.1", true],
    ["2001:db8::1", true],
    ["::", true],
    ["64:ff9b::1.2.3.4", true],
    ["::ffff:1.2.3.4", false],
    ["::ffff:0102:0304", false],
    ["0:0:0:0:0:ffff:102:304", false],
    ["fe80::1%eth0", false],
    ["1.2.3.04", false],
    ["1.2.3", false],
    ["", false],
  ])("%s -> %s", (text, ok) => expect(isApiIp(text)).toBe(ok));
});

describe("checkRealServerAgainstService (cross-object rules for the engine)", () => {
  const dr = vsSpec({ address: "192.0.2.10", port: 80, forwarding: { method: "DirectRouting" } });
  const nat = vsSpec({ address: "192.0.2.10", port: 80 });
  it.each([
    ["DR same port", dr, { address: "198.51.100.5", port: 80 }, []],
    ["DR port omitted", dr, { address: "198.51.100.5" }, []],
    ["DR other port", dr, { address: "198.51.100.5", port: 8080 }, ["spec.port"]],
    ["NAT remaps port", nat, { address: "198.51.100.5", port: 8080 }, []],
    [
      "RS override to Tunnel, other port",
      nat,
      { address: "198.51.100.5", port: 81, forwarding: { method: "Tunnel" } },
      ["spec.port"],
    ],
    ["family mismatch", nat, { address: "2001:db8::5", port: 80 }, ["spec.address"]],
    ["Tunnel may mix families", nat, { address: "2001:db8::5", forwarding: { method: "Tunnel" } }, []],
  ] as const)("%s", (_n, vs, rs, paths) => {
    expect(checkRealServerAgainstService(vs, rsSpec(rs)).map((i) => i.path)).toEqual(paths);
  });
});
