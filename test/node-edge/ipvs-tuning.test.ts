/** IPVS timeouts and sync daemons: the pure planner and IpvsTuner over FakeIpvsKernel. */
import { describe, expect, it } from "vitest";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { IpvsTuner, planTuning } from "../../src/node-edge/ipvs-tuning.ts";

const DEFAULTS = { tcp: 900, tcpFin: 120, udp: 300 };

describe("planTuning", () => {
  it("sets only the timeouts that differ; 0 and absent leave a timeout unchanged", () => {
    const plan = planTuning(
      { timeouts: { tcp: 600, tcpFin: 0, udp: 300 } },
      { timeouts: DEFAULTS, daemons: [] },
    );
    expect(plan.calls).toEqual([{ kind: "setTimeouts", timeouts: { tcp: 600 } }]);
    expect(plan.drift).toEqual([]);
    expect(planTuning({ timeouts: { tcp: 900 } }, { timeouts: DEFAULTS, daemons: [] }).calls).toEqual([]);
    expect(planTuning({}, { timeouts: DEFAULTS, daemons: [] }).calls).toEqual([]);
  });

  it("reports a timeout that changed after it was in place as drift", () => {
    const plan = planTuning(
      { timeouts: { tcp: 600 } },
      { timeouts: DEFAULTS, daemons: [] },
      new Set(["timeout tcp"]),
    );
    expect(plan.drift).toEqual([
      { object: "timeout tcp", expected: "600", found: "900", action: "Repaired" },
    ]);
  });

  it("rejects a timeout that is not a whole number of seconds", () => {
    const plan = planTuning({ timeouts: { udp: 1.5, tcp: -1 } }, { timeouts: DEFAULTS, daemons: [] });
    expect(plan.calls).toEqual([]);
    expect(plan.problems).toHaveLength(2);
  });

  it("starts a missing daemon, restarts one whose settings differ, stops one set to Stopped, leaves others alone", () => {
    const observed = {
      timeouts: DEFAULTS,
      daemons: [
        {
          state: "Master" as const,
          interface: "eth0",
          syncId: 1,
          maxLength: 1472,
          group: "224.0.0.81",
          port: 8848,
          ttl: 1,
        },
      ],
    };
    expect(planTuning({ daemons: { Backup: { interface: "eth0", syncId: 1 } } }, observed).calls).toEqual([
      { kind: "startDaemon", config: { state: "Backup", interface: "eth0", syncId: 1 } },
    ]);
    expect(
      planTuning({ daemons: { Master: { interface: "eth0", syncId: 1, ttl: 1 } } }, observed).calls,
    ).toEqual([]);
    expect(planTuning({ daemons: { Master: { interface: "eth0", syncId: 2 } } }, observed).calls).toEqual([
      { kind: "stopDaemon", state: "Master" },
      { kind: "startDaemon", config: { state: "Master", interface: "eth0", syncId: 2 } },
    ]);
    expect(planTuning({ daemons: { Master: "Stopped", Backup: "Stopped" } }, observed).calls).toEqual([
      { kind: "stopDaemon", state: "Master" },
    ]);
    expect(planTuning({}, observed).calls).toEqual([]);
  });
});

describe("IpvsTuner on FakeIpvsKernel", () => {
  it("applies, reports current values, is quiet on the next sync, and repairs drift", async () => {
    const kernel = new FakeIpvsKernel({ interfaces: ["lo", "eth0"] });
    const tuner = new IpvsTuner(kernel);
    const config = { timeouts: { tcp: 600, udp: 60 }, daemons: { Master: { interface: "eth0", syncId: 7 } } };
    const first = await tuner.sync(config);
    expect(first).toMatchObject({
      timeouts: { tcp: 600, tcpFin: 120, udp: 60 },
      daemons: [{ state: "Master", interface: "eth0", syncId: 7 }],
      applied: ["set timeouts tcp 600 tcpfin 0 udp 60", "start sync daemon Master on eth0, syncid 7"],
      drift: [],
      errors: [],
    });
    expect((await tuner.sync(config)).applied).toEqual([]);
    await kernel.setTimeouts({ tcp: 900 });
    await kernel.stopDaemon("Master");
    const repaired = await tuner.sync(config);
    expect(repaired.drift).toEqual([
      { object: "timeout tcp", expected: "600", found: "900", action: "Repaired" },
      { object: "daemon Master", expected: "on eth0, syncid 7", found: "stopped", action: "Repaired" },
    ]);
    expect(await kernel.getTimeouts()).toEqual({ tcp: 600, tcpFin: 120, udp: 60 });
  });

  it("reports a daemon the kernel refuses (no such interface) and still sets the timeouts", async () => {
    const kernel = new FakeIpvsKernel({ interfaces: ["lo"] });
    const r = await new IpvsTuner(kernel).sync({
      timeouts: { tcpFin: 30 },
      daemons: { Backup: { interface: "eth9", syncId: 1 } },
    });
    expect(r.errors).toEqual([
      expect.stringMatching(/^start sync daemon Backup on eth9, syncid 1: .*ENODEV/),
    ]);
    expect(r.timeouts).toEqual({ tcp: 900, tcpFin: 30, udp: 300 });
    expect(r.daemons).toEqual([]);
  });

  it("reports a failed read and changes nothing", async () => {
    const kernel = new FakeIpvsKernel();
    kernel.failNext("getTimeouts", "EPERM");
    const r = await new IpvsTuner(kernel).sync({ timeouts: { tcp: 1 } });
    expect(r.timeouts).toBeNull();
    expect(r.errors).toEqual([expect.stringMatching(/^reading IPVS timeouts and sync daemons: .*EPERM/)]);
    expect(await kernel.getTimeouts()).toEqual(DEFAULTS);
  });

  it("observe() changes nothing and says what a sync would do", async () => {
    const kernel = new FakeIpvsKernel();
    const r = await new IpvsTuner(kernel).observe({ timeouts: { tcp: 1 } });
    expect(r.applied).toEqual(["would set timeouts tcp 1 tcpfin 0 udp 0"]);
    expect(await kernel.getTimeouts()).toEqual(DEFAULTS);
  });
});
