import { describe, expect, it } from "vitest";
import { IpvsError, IpvsTimeoutError } from "../../src/kernel/errors.ts";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import type { Operation } from "../../src/vocabulary/operations.ts";
import type { IpvsService, ServiceKey } from "../../src/vocabulary/table.ts";
import { NO_FLAGS, NO_TUNNEL } from "../../src/vocabulary/table.ts";
import { defineKernelContract, KERNEL_6_1_SCHEDULERS } from "./contract.ts";

defineKernelContract("FakeIpvsKernel", async () => new FakeIpvsKernel({ schedulers: KERNEL_6_1_SCHEDULERS }));

const key: ServiceKey = { kind: "address", family: "IPv4", protocol: "TCP", address: "192.0.2.1", port: 80 };
const service: IpvsService = {
  key,
  config: { scheduler: "rr", flags: { ...NO_FLAGS }, timeout: 0, netmask: 0xffffffff, persistenceEngine: "" },
};
const dest = {
  key: { family: "IPv4" as const, address: "198.51.100.1", port: 80 },
  config: { forwarding: "NAT" as const, weight: 0, upperThreshold: 0, lowerThreshold: 0, ...NO_TUNNEL },
};

describe("FakeIpvsKernel test hooks", () => {
  it("fails the next matching call with the injected errno and changes nothing", async () => {
    const k = new FakeIpvsKernel();
    k.failNext("addService", "EPERM");
    const error = await k.addService(service).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IpvsError);
    expect((error as IpvsError).errno).toBe("EPERM");
    expect((error as IpvsError).message).toContain("CAP_NET_ADMIN");
    expect(k.serviceCount).toBe(0);
    await k.addService(service);
    expect(k.serviceCount).toBe(1);
  });

  it("injects faults into apply() operations and list calls", async () => {
    const k = new FakeIpvsKernel();
    k.failNext("addDestination", "ENOMEM", 2);
    const results = await k.apply([
      { op: "addService", service },
      { op: "addDestination", service: key, destination: dest },
      { op: "addDestination", service: key, destination: dest },
      { op: "addDestination", service: key, destination: dest },
    ]);
    expect(results.map((r) => (r.ok ? "ok" : r.error.errno))).toEqual(["ok", "ENOMEM", "ENOMEM", "ok"]);
    k.failNext("listServices", "EIO");
    await expect(k.listServices()).rejects.toMatchObject({ errno: "EIO", operation: "listServices" });
    expect(await k.listServices()).toHaveLength(1);
  });

  it("sets connection counters on a weight-0 destination for drain tests", async () => {
    const k = new FakeIpvsKernel();
    await k.addService(service);
    await k.addDestination(key, dest);
    k.setConnections(key, dest.key, { active: 3, inactive: 2 });
    const [d] = await k.listDestinations(key);
    expect(d).toMatchObject({ activeConnections: 3, inactiveConnections: 2, persistentConnections: 0 });
    expect(() => k.setConnections(key, { ...dest.key, port: 81 }, { active: 1 })).toThrow(/198.51.100.1:81/);
  });

  it("simulates a scheduler module that is missing, then appears", async () => {
    const k = new FakeIpvsKernel({ schedulers: ["rr"] });
    const mh = { ...service, config: { ...service.config, scheduler: "mh" } };
    await expect(k.addService(mh)).rejects.toMatchObject({ errno: "ENOENT" });
    k.setSchedulerAvailable("mh", true);
    await k.addService(mh);
    expect((await k.listServices())[0]?.config.scheduler).toBe("mh");
  });

  it("returns copies: mutating a listed value does not change the table", async () => {
    const k = new FakeIpvsKernel();
    await k.addService(service);
    const [listed] = await k.listServices();
    listed!.config.scheduler = "wlc";
    expect((await k.listServices())[0]?.config.scheduler).toBe("rr");
  });

  describe("a transport failure in the middle of apply()", () => {
    const ops = (n: number): Operation[] =>
      Array.from({ length: n }, (_, i) => ({
        op: "addService",
        service: { ...service, key: { ...key, port: 1000 + i } },
      }));
    const text = (r: { ok: boolean; error?: IpvsError; unknown?: boolean }) =>
      r.ok ? "ok" : `${r.error!.errno}${r.unknown ? "?" : ""}`;
    const ports = async (k: FakeIpvsKernel) =>
      (await k.listServices()).map((s) => (s.key.kind === "address" ? s.key.port : 0)).sort();

    it("runs the first operations, reports the next unknown (applied by default) and sends none of the rest", async () => {
      const k = new FakeIpvsKernel();
      k.failTransport({ after: 2, unknown: 2 });
      const results = await k.apply(ops(6));
      expect(results.map(text)).toEqual(["ok", "ok", "ETIMEDOUT?", "ETIMEDOUT?", "ETIMEDOUT", "ETIMEDOUT"]);
      expect(results[2]!.ok === false && results[2]!.error).toBeInstanceOf(IpvsTimeoutError);
      expect(results[2]!.ok === false && results[2]!.error.object).toBe("TCP 192.0.2.1:1002");
      expect(await ports(k)).toEqual([1000, 1001, 1002, 1003]);
      // only the next apply() is hit
      expect((await k.apply(ops(6).slice(4))).map(text)).toEqual(["ok", "ok"]);
    });

    it("lets a test choose which unknown operations the kernel applied, and the errno", async () => {
      const k = new FakeIpvsKernel();
      k.failTransport({ after: 1, unknown: 3, unknownApplied: (i) => i === 2, errno: "ENOBUFS" });
      expect((await k.apply(ops(5))).map(text)).toEqual([
        "ok",
        "ENOBUFS?",
        "ENOBUFS?",
        "ENOBUFS?",
        "ENOBUFS",
      ]);
      expect(await ports(k)).toEqual([1000, 1002]);
      k.failTransport({ after: 0, unknown: 1, unknownApplied: false });
      expect((await k.apply(ops(7).slice(6))).map(text)).toEqual(["ETIMEDOUT?"]);
      expect(await ports(k)).toEqual([1000, 1002]);
    });
  });

  describe("undecodable entries", () => {
    const other: ServiceKey = { ...key, port: 81 };

    it("reports an unreadable service: its key is taken (EEXIST), delete removes it", async () => {
      const k = new FakeIpvsKernel();
      const entry = {
        service: "TCP 192.0.2.1:81",
        key: other,
        reason: "service FLAGS has 6 bytes, expected 8",
      };
      k.injectUndecodable(entry);
      await k.addService(service);
      expect(await k.readTable()).toEqual({
        table: [{ service: expect.objectContaining({ key }), destinations: [] }],
        undecodable: [entry],
      });
      expect((await k.listServices()).map((s) => s.key)).toEqual([key]);
      const [result] = await k.apply([{ op: "addService", service: { ...service, key: other } }]);
      expect(result?.ok === false && result.error.errno).toBe("EEXIST");
      await k.deleteService(other);
      expect((await k.readTable()).undecodable).toEqual([]);
      await k.addService({ ...service, key: other });
    });

    it("an unreadable destination leaves its whole service out of readTable", async () => {
      const k = new FakeIpvsKernel();
      await k.addService(service);
      await k.addDestination(key, dest);
      const entry = {
        service: "TCP 192.0.2.1:80",
        key,
        destination: "198.51.100.9:80",
        reason: "destination FWD_METHOD 5 is not known",
      };
      k.injectUndecodable(entry);
      expect(await k.readTable()).toEqual({ table: [], undecodable: [entry] });
      expect(await k.listServices()).toHaveLength(1);
      expect(await k.listDestinations(key)).toHaveLength(1);
      await expect(k.addService(service)).rejects.toMatchObject({ errno: "EEXIST" });
    });

    it("an entry without a key blocks nothing; reboot() empties everything", async () => {
      const k = new FakeIpvsKernel();
      k.injectUndecodable({
        service: "protocol 99 192.0.2.1:80",
        reason: "service PROTOCOL 99 is not TCP, UDP or SCTP",
      });
      await k.addService(service);
      expect((await k.readTable()).undecodable).toHaveLength(1);
      await k.startDaemon({ state: "Backup", interface: "lo", syncId: 1 });
      await k.setTimeouts({ tcp: 5 });
      k.reboot();
      expect(await k.readTable()).toEqual({ table: [], undecodable: [] });
      expect(await k.getDaemons()).toEqual([]);
      expect((await k.getTimeouts()).tcp).toBe(900);
    });
  });

  it("refuses calls after close", async () => {
    const k = new FakeIpvsKernel();
    await k.close();
    await expect(k.listServices()).rejects.toBeInstanceOf(IpvsError);
  });
});
