/**
 * FakeRtLink: links and addresses in memory with the kernel's semantics and errnos, for tests of
 * the VIP binder. It passes the RtLink contract (test/node-edge/rt-link-contract.ts) that
 * NetlinkRtLink passes on a real kernel; where the two disagree, the kernel is right.
 *
 * Kernel behaviour kept here: a new dummy link is down; setting it up adds an fe80::/64 address of the
 * kernel's own; IPv6 addresses are dropped when a link goes
 * down (keep_addr_on_down=0) and IPv4 ones are kept; deleting a link deletes its addresses; a kernel
 * before 5.18 (`keepsProtocol: false`) accepts IFA_PROTO and forgets it.
 * Test hooks stand for what someone else does behind the agent's back (`ip link set down`,
 * `ip addr add/del`, `ip link del`).
 */
import { canonicalIp, ipFamily } from "../vocabulary/addresses.ts";
import {
  type NewAddress,
  type RtAddress,
  type RtErrnoName,
  type RtLink,
  RtLinkError,
  type RtLinkInfo,
  TUNNEL_DEVICE,
  TUNNEL_KINDS,
  type TunnelKind,
} from "./rt-link.ts";

export interface FakeRtLinkOptions {
  /** Whether addresses keep IFA_PROTO (Linux >= 5.18; default true). */
  keepsProtocol?: boolean;
  /** Tunnel modules the kernel can load (default all): ensureTunnelDevice of another is EOPNOTSUPP. */
  tunnelModules?: readonly TunnelKind[];
}

interface FakeLink {
  info: RtLinkInfo;
  addresses: RtAddress[];
}

export class FakeRtLink implements RtLink {
  readonly #links = new Map<string, FakeLink>();
  readonly #keepsProtocol: boolean;
  readonly #tunnelModules: ReadonlySet<TunnelKind>;
  readonly #faults: { operation: string; errno: RtErrnoName }[] = [];
  #nextIndex = 2; // 1 is lo
  #closed = false;
  /** Requests made (for figures in tests: one diff per sync). */
  requests = 0;

  constructor(options: FakeRtLinkOptions = {}) {
    this.#keepsProtocol = options.keepsProtocol ?? true;
    this.#tunnelModules = new Set(options.tunnelModules ?? TUNNEL_KINDS);
    this.#links.set("lo", { info: { index: 1, name: "lo", kind: undefined, up: true }, addresses: [] });
  }

  // ------------------------------------------------------------------ test hooks (out-of-band changes)

  /** Another link kind, e.g. a veth that happens to carry the wanted name. */
  addForeignLink(name: string, kind: string | undefined, up = true): RtLinkInfo {
    const info = { index: this.#nextIndex++, name, kind, up };
    this.#links.set(name, { info, addresses: [] });
    return { ...info };
  }

  /** `ip link del NAME`. */
  deleteLink(name: string): void {
    this.#links.delete(name);
  }

  /** `ip link set NAME down`: IPv6 addresses go with it. */
  setDown(name: string): void {
    const link = this.#links.get(name);
    if (!link) throw new Error(`no link ${name}`);
    link.info.up = false;
    link.addresses = link.addresses.filter((a) => a.family === "IPv4");
  }

  /** Make the next call of `operation` (an RtLink method name) fail with `errno`. */
  failNext(operation: keyof RtLink, errno: RtErrnoName): void {
    this.#faults.push({ operation, errno });
  }

  // ------------------------------------------------------------------ RtLink

  async getLink(name: string): Promise<RtLinkInfo | undefined> {
    this.#enter("getLink", name);
    const link = this.#links.get(name);
    return link ? { ...link.info } : undefined;
  }

  async createDummy(name: string): Promise<RtLinkInfo> {
    this.#enter("createDummy", name);
    if (name === "" || name.length > 15 || /[\s/:]/.test(name))
      throw new RtLinkError("createDummy", name, "EINVAL");
    if (this.#links.has(name)) throw new RtLinkError("createDummy", name, "EEXIST");
    const info = { index: this.#nextIndex++, name, kind: "dummy", up: false };
    this.#links.set(name, { info, addresses: [] });
    return { ...info };
  }

  async ensureTunnelDevice(kind: TunnelKind): Promise<RtLinkInfo> {
    const name = TUNNEL_DEVICE[kind];
    this.#enter("ensureTunnelDevice", name);
    const present = this.#links.get(name);
    if (present) return { ...present.info };
    if (!this.#tunnelModules.has(kind)) throw new RtLinkError("ensureTunnelDevice", name, "EOPNOTSUPP");
    const info = { index: this.#nextIndex++, name, kind, up: false };
    this.#links.set(name, { info, addresses: [] });
    return { ...info };
  }

  async setUp(index: number): Promise<void> {
    const link = this.#byIndex("setUp", index);
    if (link.info.up) return;
    link.info.up = true;
    // addrconf gives an up link an fe80:: address of its own (EUI-64 of the random MAC).
    if (link.info.kind !== undefined && !link.addresses.some((a) => a.address.startsWith("fe80:"))) {
      const id = link.info.index.toString(16);
      link.addresses.push({
        family: "IPv6",
        address: `fe80::${id}:ff:fe00:${id}`,
        prefixLength: 64,
        protocol: 0,
        noDad: false,
      });
    }
  }

  async listAddresses(index: number): Promise<RtAddress[]> {
    this.#enter("listAddresses", `link ${index}`);
    // The kernel's dump (without strict checking) does not filter: a missing link has no addresses.
    const link = [...this.#links.values()].find((l) => l.info.index === index);
    if (!link) return [];
    const v4 = link.addresses.filter((a) => a.family === "IPv4");
    // The kernel lists IPv6 addresses newest first.
    const v6 = link.addresses.filter((a) => a.family === "IPv6").reverse();
    return [...v4, ...v6].map((a) => ({ ...a }));
  }

  async addAddress(index: number, address: NewAddress): Promise<void> {
    const object = `${address.address}/${address.prefixLength} on link ${index}`;
    const link = this.#byIndex("addAddress", index, object);
    const family = ipFamily(address.address);
    if (!family) throw new RtLinkError("addAddress", object, "EINVAL");
    const max = family === "IPv4" ? 32 : 128;
    if (!Number.isInteger(address.prefixLength) || address.prefixLength < 0 || address.prefixLength > max) {
      throw new RtLinkError("addAddress", object, "EINVAL");
    }
    const text = canonicalIp(address.address);
    // IPv4 keys an address by (address, prefix length); IPv6 by the address alone.
    const same = link.addresses.some(
      (a) =>
        a.family === family &&
        a.address === text &&
        (family === "IPv6" || a.prefixLength === address.prefixLength),
    );
    if (same) throw new RtLinkError("addAddress", object, "EEXIST");
    link.addresses.push({
      family,
      address: text,
      prefixLength: address.prefixLength,
      protocol: this.#keepsProtocol ? address.protocol : 0,
      noDad: family === "IPv6" && address.noDad,
    });
  }

  async deleteAddress(index: number, address: { address: string; prefixLength: number }): Promise<void> {
    const object = `${address.address}/${address.prefixLength} on link ${index}`;
    const link = this.#byIndex("deleteAddress", index, object);
    const family = ipFamily(address.address);
    if (!family) throw new RtLinkError("deleteAddress", object, "EINVAL");
    const text = canonicalIp(address.address);
    const i = link.addresses.findIndex(
      (a) => a.family === family && a.address === text && a.prefixLength === address.prefixLength,
    );
    if (i < 0) throw new RtLinkError("deleteAddress", object, "EADDRNOTAVAIL");
    link.addresses.splice(i, 1);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  // ------------------------------------------------------------------ test hooks on addresses

  /** `ip addr add ADDRESS/PREFIX dev NAME [proto N]` by someone else. */
  addForeignAddress(name: string, address: string, prefixLength: number, protocol = 0): void {
    const link = this.#links.get(name);
    if (!link) throw new Error(`no link ${name}`);
    const family = ipFamily(address);
    if (!family) throw new Error(`not an address: ${address}`);
    link.addresses.push({ family, address: canonicalIp(address), prefixLength, protocol, noDad: false });
  }

  /** `ip addr del ADDRESS/PREFIX dev NAME` by someone else. */
  removeAddress(name: string, address: string, prefixLength: number): void {
    const link = this.#links.get(name);
    if (!link) throw new Error(`no link ${name}`);
    const text = canonicalIp(address);
    link.addresses = link.addresses.filter((a) => !(a.address === text && a.prefixLength === prefixLength));
  }

  // ------------------------------------------------------------------ internals

  #enter(operation: string, object: string): void {
    this.requests++;
    if (this.#closed) throw new RtLinkError(operation, object, "EIO", "rtnetlink handle is closed");
    const i = this.#faults.findIndex((f) => f.operation === operation);
    if (i >= 0) {
      const [fault] = this.#faults.splice(i, 1);
      throw new RtLinkError(operation, object, fault!.errno, "injected");
    }
  }

  #byIndex(operation: string, index: number, object = `link ${index}`): FakeLink {
    this.#enter(operation, object);
    for (const link of this.#links.values()) if (link.info.index === index) return link;
    throw new RtLinkError(operation, object, "ENODEV");
  }
}
