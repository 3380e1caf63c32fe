import { describe, expect, it } from "vitest";
import { IpvsError } from "../../src/kernel/errors.ts";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import type { IpvsService, ServiceKey } from "../../src/model/table.ts";
import { NO_FLAGS, NO_TUNNEL } from "../../src/model/table.ts";
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

  it("refuses calls after close", async () => {
    const k = new FakeIpvsKernel();
    await k.close();
    await expect(k.listServices()).rejects.toBeInstanceOf(IpvsError);
  });
});
