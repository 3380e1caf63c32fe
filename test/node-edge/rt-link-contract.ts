/**
 * The RtLink and VipBinder contract: one suite that FakeRtLink (test/node-edge/rt-link.test.ts) and
 * NetlinkRtLink on a real kernel (e2e/vm/tests/node-edge.vm.test.ts) both pass. Where they disagree
 * the real kernel is right.
 *
 * Every test works on its own dummy link with a unique name and deletes it afterwards, so it never
 * disturbs dummy0 (192.0.2.1/24, 2001:db8::1/64) of the other VM tests. Addresses: 198.18.0.0/15
 * (benchmarking range) and 2001:db8:ed9e::/48.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type NewAddress, type RtLink, TUNNEL_DEVICE, type TunnelKind } from "../../src/node-edge/rt-link.ts";
import { VipBinder } from "../../src/node-edge/vip-binder.ts";
import { VIP_ADDRESS_PROTOCOL } from "../../src/node-edge/vip-plan.ts";

/** What someone else does behind the agent's back (`ip link ...`, `ip addr ...`). */
export interface OutOfBand {
  setDown(name: string): Promise<void> | void;
  deleteLink(name: string): Promise<void> | void;
  /** `ip addr add CIDR dev NAME` (no IFA_PROTO: Debian 12's iproute2 6.1 cannot set one). */
  addAddress(name: string, cidr: string): Promise<void> | void;
  /** `ip addr del CIDR dev NAME`. */
  removeAddress(name: string, cidr: string): Promise<void> | void;
  /** A link of another kind (veth) under that name. */
  addNonDummyLink(name: string): Promise<void> | void;
  /** Deletes the link if it exists (cleanup). */
  cleanup(name: string): Promise<void> | void;
}

/** A host address as the binder adds it: /32, or /128 with NODAD, marked with protocol 73. */
function host(address: string): NewAddress {
  const v6 = address.includes(":");
  return { address, prefixLength: v6 ? 128 : 32, protocol: 73, noDad: v6 };
}

let counter = 0;
/** A link name no other test uses (<= 15 characters). */
export function uniqueLinkName(): string {
  counter++;
  return `ne${process.pid.toString(36)}${counter.toString(36)}`.slice(0, 15);
}

/** A fresh handle and link name per call; after each test the links are deleted and the handles closed. */
function freshLinks(make: () => RtLink, oob: OutOfBand): () => { link: RtLink; name: string } {
  const names: string[] = [];
  const links: RtLink[] = [];
  afterEach(async () => {
    for (const n of names.splice(0)) await oob.cleanup(n);
    for (const l of links.splice(0)) await l.close();
  });
  return () => {
    const link = make();
    links.push(link);
    const name = uniqueLinkName();
    names.push(name);
    return { link, name };
  };
}

export function defineRtLinkContract(label: string, make: () => RtLink, oob: OutOfBand): void {
  describe(`RtLink contract (${label})`, () => {
    const fresh = freshLinks(make, oob);

    it("finds no link of a name nobody uses, and creates a dummy link down", async () => {
      const { link, name } = fresh();
      expect(await link.getLink(name)).toBeUndefined();
      const created = await link.createDummy(name);
      expect(created).toMatchObject({ name, kind: "dummy", up: false });
      expect(await link.getLink(name)).toEqual(created);
      await expect(link.createDummy(name)).rejects.toMatchObject({
        errno: "EEXIST",
        operation: "createDummy",
      });
    });

    it("sets a link up, and answers ENODEV for an index that does not exist", async () => {
      const { link, name } = fresh();
      const created = await link.createDummy(name);
      await link.setUp(created.index);
      expect(await link.getLink(name)).toMatchObject({ up: true });
      await expect(link.setUp(0x7ffffff0)).rejects.toMatchObject({ errno: "ENODEV" });
    });

    it("adds IPv4 /32 and IPv6 /128 addresses with the protocol marker and NODAD, then deletes them", async () => {
      const { link, name } = fresh();
      const { index } = await link.createDummy(name);
      await link.setUp(index);
      await link.addAddress(index, host("198.18.0.1"));
      await link.addAddress(index, host("2001:DB8:ED9E::1"));
      const listed = await link.listAddresses(index);
      expect(listed.filter((a) => a.family === "IPv4")).toEqual([
        { family: "IPv4", address: "198.18.0.1", prefixLength: 32, protocol: 73, noDad: false },
      ]);
      // The kernel adds an fe80:: address of its own to the up link: look at ours only.
      expect(listed.filter((a) => a.address === "2001:db8:ed9e::1")).toEqual([
        { family: "IPv6", address: "2001:db8:ed9e::1", prefixLength: 128, protocol: 73, noDad: true },
      ]);
      await expect(link.addAddress(index, host("198.18.0.1"))).rejects.toMatchObject({
        errno: "EEXIST",
        operation: "addAddress",
      });
      await expect(link.addAddress(index, host("2001:db8:ed9e::1"))).rejects.toMatchObject({
        errno: "EEXIST",
      });
      await link.deleteAddress(index, { address: "198.18.0.1", prefixLength: 32 });
      await link.deleteAddress(index, { address: "2001:db8:ed9e::1", prefixLength: 128 });
      const left = await link.listAddresses(index);
      expect(left.filter((a) => a.address === "198.18.0.1" || a.address === "2001:db8:ed9e::1")).toEqual([]);
      await expect(
        link.deleteAddress(index, { address: "198.18.0.1", prefixLength: 32 }),
      ).rejects.toMatchObject({
        errno: "EADDRNOTAVAIL",
      });
    });

    it("shows an address added by someone else (no IFA_PROTO) with protocol 0", async () => {
      const { link, name } = fresh();
      const { index } = await link.createDummy(name);
      await oob.addAddress(name, "198.18.0.7/24");
      await oob.addAddress(name, "2001:db8:ed9e::7/64");
      const listed = await link.listAddresses(index);
      expect(listed.map((a) => [a.address, a.prefixLength, a.protocol])).toEqual([
        ["198.18.0.7", 24, 0],
        ["2001:db8:ed9e::7", 64, 0],
      ]);
    });

    it("drops IPv6 addresses when the link goes down and keeps IPv4 ones", async () => {
      const { link, name } = fresh();
      const { index } = await link.createDummy(name);
      await link.setUp(index);
      await link.addAddress(index, host("198.18.0.2"));
      await link.addAddress(index, host("2001:db8:ed9e::2"));
      await oob.setDown(name);
      const listed = await link.listAddresses(index);
      expect(listed.map((a) => a.address)).toEqual(["198.18.0.2"]);
    });

    it("brings the tunnel modules' fallback devices (tunl0, ip6tnl0, gre0, ip6gre0) into being and finds them again", async () => {
      const { link } = fresh();
      for (const [kind, name] of Object.entries(TUNNEL_DEVICE) as [TunnelKind, string][]) {
        const device = await link.ensureTunnelDevice(kind);
        expect(device).toMatchObject({ name, kind });
        expect(await link.getLink(name)).toMatchObject({ index: device.index, kind });
        expect((await link.ensureTunnelDevice(kind)).index).toBe(device.index);
      }
    });

    it("lists no addresses for a link that is gone", async () => {
      const { link, name } = fresh();
      const { index } = await link.createDummy(name);
      await link.addAddress(index, host("198.18.0.3"));
      await oob.deleteLink(name);
      expect(await link.getLink(name)).toBeUndefined();
      expect(await link.listAddresses(index)).toEqual([]);
      await expect(link.addAddress(index, host("198.18.0.3"))).rejects.toMatchObject({ errno: "ENODEV" });
    });
  });

  describe(`VipBinder on RtLink (${label})`, () => {
    const freshLink = freshLinks(make, oob);
    const fresh = () => {
      const { link, name } = freshLink();
      return { link, name, binder: new VipBinder(link, { interfaceName: name }) };
    };
    const ours = async (link: RtLink, name: string) => {
      const info = await link.getLink(name);
      if (!info) return [];
      return (await link.listAddresses(info.index))
        .filter((a) => a.protocol === VIP_ADDRESS_PROTOCOL)
        .map((a) => `${a.address}/${a.prefixLength}`)
        .sort();
    };

    it("creates the interface, binds exactly the wanted addresses, and does nothing on a second sync", async () => {
      const { link, name, binder } = fresh();
      const first = await binder.sync(["198.18.1.1", "2001:db8:ed9e::1:1", "198.18.1.2"]);
      expect(first).toMatchObject({
        interface: name,
        present: true,
        up: true,
        owned: ["198.18.1.1", "198.18.1.2", "2001:db8:ed9e::1:1"],
        added: ["198.18.1.1", "198.18.1.2", "2001:db8:ed9e::1:1"],
        removed: [],
        drift: [],
        errors: [],
      });
      expect(await link.getLink(name)).toMatchObject({ kind: "dummy", up: true });
      expect(await ours(link, name)).toEqual(["198.18.1.1/32", "198.18.1.2/32", "2001:db8:ed9e::1:1/128"]);
      const second = await binder.sync(["2001:db8:ed9e::1:1", "198.18.1.2", "198.18.1.1"]);
      expect(second).toMatchObject({ added: [], removed: [], drift: [], errors: [] });
      expect(second.owned).toEqual(first.owned);
    });

    it("removes the addresses it added that are no longer wanted, and never a foreign one", async () => {
      const { link, name, binder } = fresh();
      await binder.sync(["198.18.2.1", "198.18.2.2", "2001:db8:ed9e::2:1"]);
      await oob.addAddress(name, "198.18.2.200/32");
      await oob.addAddress(name, "2001:db8:ed9e::2:200/64");
      const next = await binder.sync(["198.18.2.2"]);
      expect(next.removed).toEqual(["198.18.2.1/32", "2001:db8:ed9e::2:1/128"]);
      expect(next.owned).toEqual(["198.18.2.2"]);
      expect(next.foreign).toEqual(["198.18.2.200/32", "2001:db8:ed9e::2:200/64"]);
      expect(next.drift).toEqual([
        { kind: "Foreign", object: "198.18.2.200/32", action: "Ignored" },
        { kind: "Foreign", object: "2001:db8:ed9e::2:200/64", action: "Ignored" },
      ]);
      const empty = await binder.sync([]);
      expect(empty.removed).toEqual(["198.18.2.2/32"]);
      const info = await link.getLink(name);
      const left = (await link.listAddresses(info!.index)).map((a) => `${a.address}/${a.prefixLength}`);
      expect(left).toContain("198.18.2.200/32");
      expect(left).toContain("2001:db8:ed9e::2:200/64");
      expect(left).not.toContain("198.18.2.2/32");
    });

    it("recognises its addresses after a restart (a new binder, no state) by the kernel-kept marker", async () => {
      const { link, name, binder } = fresh();
      await binder.sync(["198.18.2.11", "2001:db8:ed9e::2:11"]);
      await oob.addAddress(name, "198.18.2.211/32");
      const restarted = new VipBinder(link, { interfaceName: name });
      const r = await restarted.sync(["2001:db8:ed9e::2:11"]);
      expect(r).toMatchObject({
        added: [],
        removed: ["198.18.2.11/32"],
        owned: ["2001:db8:ed9e::2:11"],
        foreign: ["198.18.2.211/32"],
        errors: [],
      });
    });

    it("leaves a wanted address alone when someone else holds it, and reports it", async () => {
      const { link, name, binder } = fresh();
      await binder.sync([]);
      await oob.addAddress(name, "198.18.3.1/32");
      const r = await binder.sync(["198.18.3.1"]);
      expect(r).toMatchObject({ added: [], owned: [], foreign: ["198.18.3.1/32"], errors: [] });
      expect(r.drift).toEqual([
        {
          kind: "Foreign",
          object: "198.18.3.1/32",
          message: "a wanted address, held by an address the agent did not add: left as it is",
          action: "Ignored",
        },
      ]);
      expect(await ours(link, name)).toEqual([]);
      await binder.sync([]);
      const info = await link.getLink(name);
      const left = await link.listAddresses(info!.index);
      expect(left.filter((a) => !a.address.startsWith("fe80:")).map((a) => a.address)).toEqual([
        "198.18.3.1",
      ]);
    });

    // Drift made behind the binder's back, each repaired by the next sync of the same wanted set.
    const driftCases: {
      title: string;
      n: number;
      breakIt: (name: string) => Promise<void>;
      drift: (name: string) => unknown[];
      added: string[];
    }[] = [
      {
        title: "repairs addresses deleted out of band and reports them as drift",
        n: 4,
        breakIt: async (name) => {
          await oob.removeAddress(name, "198.18.4.1/32");
          await oob.removeAddress(name, "2001:db8:ed9e::4:1/128");
        },
        drift: () => [
          { kind: "AddressMissing", object: "198.18.4.1/32", action: "Repaired" },
          { kind: "AddressMissing", object: "2001:db8:ed9e::4:1/128", action: "Repaired" },
        ],
        added: ["198.18.4.1", "2001:db8:ed9e::4:1"],
      },
      {
        title:
          "sets the interface up again when it was set down, restoring the IPv6 addresses the kernel dropped",
        n: 5,
        breakIt: async (name) => oob.setDown(name),
        drift: (name) => [{ kind: "InterfaceDown", object: name, action: "Repaired" }],
        added: ["2001:db8:ed9e::5:1"],
      },
      {
        title: "recreates the interface when it was deleted",
        n: 6,
        breakIt: async (name) => oob.deleteLink(name),
        drift: (name) => [{ kind: "InterfaceMissing", object: name, action: "Repaired" }],
        added: ["198.18.6.1", "2001:db8:ed9e::6:1"],
      },
    ];
    for (const c of driftCases) {
      it(c.title, async () => {
        const { link, name, binder } = fresh();
        const wanted = [`198.18.${c.n}.1`, `2001:db8:ed9e::${c.n}:1`];
        await binder.sync(wanted);
        await c.breakIt(name);
        const r = await binder.sync(wanted);
        expect(r.drift).toEqual(c.drift(name));
        expect(r).toMatchObject({ present: true, up: true, added: c.added, removed: [], errors: [] });
        expect(await link.getLink(name)).toMatchObject({ up: true });
        expect(await ours(link, name)).toEqual([`198.18.${c.n}.1/32`, `2001:db8:ed9e::${c.n}:1/128`]);
      });
    }

    it("refuses to bind on a link of that name that is not a dummy", async () => {
      const { link, name, binder } = fresh();
      await oob.addNonDummyLink(name);
      const r = await binder.sync(["198.18.7.1"]);
      expect(r.added).toEqual([]);
      expect(r.errors).toEqual([
        expect.stringMatching(new RegExp(`^${name} exists and is a veth link, not a dummy`)),
      ]);
      expect(await ours(link, name)).toEqual([]);
    });

    it("leaves the kernel's own IPv6 link-local address out: neither reported nor removed", async () => {
      const { link, name, binder } = fresh();
      const r = await binder.sync(["198.18.8.2"]);
      const info = await link.getLink(name);
      const linkLocal = (await link.listAddresses(info!.index)).filter((a) => a.address.startsWith("fe80:"));
      expect(linkLocal).toHaveLength(1);
      expect(linkLocal[0]).toMatchObject({ family: "IPv6", prefixLength: 64 });
      expect(r).toMatchObject({ foreign: [], drift: [], errors: [] });
      const empty = await binder.sync([]);
      expect(empty).toMatchObject({ removed: ["198.18.8.2/32"], foreign: [], errors: [] });
      expect(
        (await link.listAddresses(info!.index)).filter((a) => a.address.startsWith("fe80:")),
      ).toHaveLength(1);
    });

    it("on the loopback (existingLink, the DR real-server role): binds and unbinds only its VIPs, never reports the loopback's own addresses, never creates a missing link", async () => {
      const link = make();
      try {
        const lo = (await link.getLink("lo"))!;
        const before = (await link.listAddresses(lo.index)).filter((a) => a.protocol !== 73);
        const binder = new VipBinder(link, { interfaceName: "lo", existingLink: true });
        const r = await binder.sync(["198.18.9.1", "2001:db8:ed9e::9"]);
        expect(r).toMatchObject({ present: true, added: ["198.18.9.1", "2001:db8:ed9e::9"], drift: [] });
        expect(r.errors).toEqual([]);
        expect(await ours(link, "lo")).toEqual(["198.18.9.1/32", "2001:db8:ed9e::9/128"]);
        const again = await binder.sync(["198.18.9.1", "2001:db8:ed9e::9"]);
        expect(again).toMatchObject({ added: [], removed: [], drift: [], errors: [] });
        const empty = await binder.sync([]);
        expect(empty.removed).toEqual(["198.18.9.1/32", "2001:db8:ed9e::9/128"]);
        expect((await link.listAddresses(lo.index)).filter((a) => a.protocol !== 73)).toEqual(before);
        const name = uniqueLinkName();
        const missing = await new VipBinder(link, { interfaceName: name, existingLink: true }).sync([
          "198.18.9.2",
        ]);
        expect(missing.errors).toEqual([`${name} is missing: no address bound`]);
        expect(await link.getLink(name)).toBeUndefined();
      } finally {
        await link.close();
      }
    });

    it("reports without changing anything on observe()", async () => {
      const { link, name, binder } = fresh();
      const r = await binder.observe(["198.18.8.1"]);
      expect(r).toMatchObject({ present: false, added: [], owned: [] });
      expect(await link.getLink(name)).toBeUndefined();
    });
  });
}
