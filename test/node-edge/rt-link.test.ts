/**
 * FakeRtLink passes the RtLink / VipBinder contract (the VM runs the same suite on NetlinkRtLink),
 * plus what only the fake can show: injected failures and a kernel that forgets IFA_PROTO.
 */
import { describe, expect, it } from "vitest";
import { FakeRtLink } from "../../src/node-edge/fake-rt-link.ts";
import { VipBinder } from "../../src/node-edge/vip-binder.ts";
import { defineRtLinkContract } from "./rt-link-contract.ts";

// One fake kernel shared by the handles a test opens, as the real one is.
let kernel = new FakeRtLink();
defineRtLinkContract(
  "fake",
  () => {
    kernel = new FakeRtLink();
    return kernel;
  },
  {
    setDown: (name) => kernel.setDown(name),
    deleteLink: (name) => kernel.deleteLink(name),
    addAddress: (name, cidr) => {
      const [address = "", prefix = ""] = cidr.split("/");
      kernel.addForeignAddress(name, address, Number(prefix));
    },
    removeAddress: (name, cidr) => {
      const [address = "", prefix = ""] = cidr.split("/");
      kernel.removeAddress(name, address, Number(prefix));
    },
    addNonDummyLink: (name) => {
      kernel.addForeignLink(name, "veth");
    },
    cleanup: (name) => kernel.deleteLink(name),
  },
);

describe("VipBinder failures (fake only)", () => {
  it("reports a failed add as an error, keeps the rest, and retries on the next sync", async () => {
    const link = new FakeRtLink();
    const binder = new VipBinder(link);
    link.failNext("addAddress", "EACCES");
    const first = await binder.sync(["192.0.2.10", "192.0.2.11"]);
    expect(first.errors).toEqual([
      "adding 192.0.2.10/32 to ipvs0: addAddress 192.0.2.10/32 on link 2 failed: EACCES (injected)",
    ]);
    expect(first.owned).toEqual(["192.0.2.11"]);
    const second = await binder.sync(["192.0.2.10", "192.0.2.11"]);
    expect(second).toMatchObject({ added: ["192.0.2.10"], errors: [], drift: [] });
  });

  it("stops at a failed link creation with one error, and reports no address", async () => {
    const link = new FakeRtLink();
    link.failNext("createDummy", "EPERM");
    const r = await new VipBinder(link).sync(["192.0.2.10"]);
    expect(r).toMatchObject({ present: false, up: false, added: [], owned: [] });
    expect(r.errors).toEqual(["creating dummy interface ipvs0: createDummy ipvs0 failed: EPERM (injected)"]);
  });

  it("a tunnel binder leaves the kernel alone while no VIP is wanted, then loads the module, sets tunl0 up and binds", async () => {
    const link = new FakeRtLink();
    const binder = new VipBinder(link, { tunnel: "ipip" });
    expect(await binder.sync([])).toMatchObject({
      interface: "tunl0",
      present: false,
      added: [],
      errors: [],
    });
    expect(await link.getLink("tunl0")).toBeUndefined(); // the module was not loaded
    const bound = await binder.sync(["192.0.2.10"]);
    expect(bound).toMatchObject({ present: true, up: true, added: ["192.0.2.10"], owned: ["192.0.2.10"] });
    expect(bound.errors).toEqual([]);
    expect(await link.getLink("tunl0")).toMatchObject({ kind: "ipip", up: true });
    const left = await binder.sync([]);
    expect(left).toMatchObject({
      removed: ["192.0.2.10/32"],
      owned: [],
      present: true,
      up: true,
      errors: [],
    });
  });

  it("a tunnel device that is down stays down while nothing is wanted on it, and comes up for a VIP", async () => {
    const link = new FakeRtLink();
    await link.ensureTunnelDevice("ip6tnl"); // someone loaded ip6_tunnel
    const binder = new VipBinder(link, { tunnel: "ip6tnl" });
    expect(await binder.sync([])).toMatchObject({
      interface: "ip6tnl0",
      present: true,
      up: false,
      drift: [],
    });
    expect(await link.getLink("ip6tnl0")).toMatchObject({ up: false });
    expect(await binder.sync(["2001:db8::10"])).toMatchObject({
      up: true,
      owned: ["2001:db8::10"],
      errors: [],
      drift: [], // brought up for its first VIP: a change, not a repair
    });
    // Shared with others: an address someone else put there is listed, not drift.
    link.addForeignAddress("ip6tnl0", "2001:db8::99", 128);
    expect(await binder.sync(["2001:db8::10"])).toMatchObject({ foreign: ["2001:db8::99/128"], drift: [] });
  });

  it("a kernel without the tunnel module: one error naming the module, nothing bound", async () => {
    const link = new FakeRtLink({ tunnelModules: [] });
    const r = await new VipBinder(link, { tunnel: "ipip" }).sync(["192.0.2.10"]);
    expect(r).toMatchObject({ present: false, owned: [] });
    expect(r.errors).toEqual([
      "loading the ipip module for tunl0: ensureTunnelDevice tunl0 failed: EOPNOTSUPP",
    ]);
  });

  it("a tunnel binder refuses a device of that name and another kind", async () => {
    const link = new FakeRtLink();
    link.addForeignLink("tunl0", "dummy");
    const r = await new VipBinder(link, { tunnel: "ipip" }).sync(["192.0.2.10"]);
    expect(r.errors).toEqual(["tunl0 exists and is a dummy link, not an ipip: no address bound"]);
    expect(r.owned).toEqual([]);
  });

  it("reports a failed read and changes nothing", async () => {
    const link = new FakeRtLink();
    const binder = new VipBinder(link);
    link.failNext("getLink", "EIO");
    const r = await binder.sync(["192.0.2.10"]);
    expect(r.errors).toEqual(["reading ipvs0: getLink ipvs0 failed: EIO (injected)"]);
    expect(await link.getLink("ipvs0")).toBeUndefined();
  });

  it("marks an unrepaired drift when the repair fails", async () => {
    const link = new FakeRtLink();
    const binder = new VipBinder(link);
    await binder.sync(["192.0.2.10"]);
    link.removeAddress("ipvs0", "192.0.2.10", 32);
    link.failNext("addAddress", "ENOMEM");
    const r = await binder.sync(["192.0.2.10"]);
    expect(r.drift).toEqual([
      {
        kind: "AddressMissing",
        object: "192.0.2.10/32",
        action: "Ignored",
        message: "repair failed (see errors)",
      },
    ]);
    expect(r.owned).toEqual([]);
  });

  it("on a kernel that forgets IFA_PROTO, says so and treats its own address as foreign (never removed)", async () => {
    const link = new FakeRtLink({ keepsProtocol: false });
    const binder = new VipBinder(link);
    await binder.sync(["192.0.2.10"]);
    const r = await binder.sync([]);
    expect(r.removed).toEqual([]);
    expect(r.foreign).toEqual(["192.0.2.10/32"]);
    expect(r.errors).toEqual([
      expect.stringMatching(/^192\.0\.2\.10 was bound by the agent but carries no IFA_PROTO/),
    ]);
  });

  it("with the journal ownership (older kernels) owns what the journal lists, and hands back the new journal", async () => {
    const link = new FakeRtLink({ keepsProtocol: false });
    const first = await new VipBinder(link, { ownership: "journal" }).sync(["192.0.2.10", "2001:db8::10"]);
    expect(first.owned).toEqual(["192.0.2.10", "2001:db8::10"]);
    link.addForeignAddress("ipvs0", "192.0.2.99", 32);
    // A restarted agent: a new binder from the persisted journal.
    const restarted = new VipBinder(link, { ownership: "journal", journal: first.owned });
    const r = await restarted.sync(["2001:db8::10"]);
    expect(r).toMatchObject({
      removed: ["192.0.2.10/32"],
      owned: ["2001:db8::10"],
      foreign: ["192.0.2.99/32"],
    });
    expect(r.errors).toEqual([]);
  });

  it("syncs 1,000 VIPs in one diff: one request per address, none on the next sync", async () => {
    const link = new FakeRtLink();
    const binder = new VipBinder(link);
    const wanted = Array.from({ length: 1000 }, (_, i) => `198.18.${i >> 8}.${i & 255}`);
    const first = await binder.sync(wanted);
    expect(first.added).toHaveLength(1000);
    const before = link.requests;
    const second = await binder.sync(wanted);
    expect(second.added).toEqual([]);
    expect(link.requests - before).toBe(2); // getLink + listAddresses
  });
});
