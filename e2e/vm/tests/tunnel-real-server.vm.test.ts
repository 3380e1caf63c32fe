/**
 * The real-server role behind an IPVS Tunnel director, on the real kernel, with real traffic (IPv4 in
 * IPv4 and IPv6 in IPv6), for both tunnel types the role covers: IPIP (`ipvsadm -i`) and GRE
 * (`ipvsadm -i --tun-type gre`), one after the other, each with its own addresses, bridge and
 * namespaces. The VM's own network namespace is the real server: the agent runs in this process with
 * --dr-real-server, and an HTTP server there listens on every address. A director namespace runs IPVS
 * (the VIPs on its lo, tunnelled to the real server's address) and a client namespace routes the VIPs
 * through it; all three share one bridge (one L2 segment), so the real server answers the client
 * directly, from the VIP. Strict reverse-path filtering is on (net.ipv4.conf.all.rp_filter=1), as on
 * many hosts.
 *
 * A request through the VIP fails while the real server lacks the VIP: the encapsulated packet is
 * dropped (no ipip / ip_gre module, or the device down, or no local VIP). Once the agent holds the VIP
 * on the tunnel kind's fallback device (IPIP: tunl0 for IPv4, ip6tnl0 for IPv6; GRE: gre0, ip6gre0; the
 * module loaded by the agent), with the IPv4 device's rp_filter loose (2), the client is answered, and
 * the real server sees the client's own address on the VIP. Out-of-band changes are shown to break
 * traffic (the agent's node-edge sync is held back meanwhile, so the failure is deterministic) and
 * then repaired: the IPv4 device's rp_filter back at 0 or 1 (strict wins: the IPv4 request is dropped,
 * the kernel counts it in IPReversePathFilter, IPv6 still works), the VIPs deleted, both devices set
 * down. The VIPs leave the tunnel devices with the RealServers. The services select director nodes
 * only, so the agent programs no IPVS here.
 */
import { type ChildProcess, execFile, execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NetlinkRtLink } from "../../../src/node-edge/netlink-rt-link.ts";
import {
  NodeEdge,
  type NodeEdgeDesired,
  type NodeEdgeDrift,
  type NodeEdgeReport,
} from "../../../src/node-edge/node-edge-report.ts";
import { TUNNEL_CARRIES, TUNNEL_DEVICE, TUNNEL_KINDS } from "../../../src/node-edge/rt-link.ts";
import { SysctlAsserter } from "../../../src/node-edge/sysctl-asserter.ts";
import { ProcSysctlStore } from "../../../src/node-edge/sysctl-store.ts";
import { VipBinder } from "../../../src/node-edge/vip-binder.ts";
import { type InProcessAgent, ipvsadm, scratch, startDirectoryAgent, writeManifest } from "./vm-helpers.ts";

/** One tunnel type the role covers, and how this test sets it up and recognises it. */
interface TunnelCase {
  type: "IPIP" | "GRE";
  /** The fallback devices that receive it: IPv4 in IPv4, IPv6 in IPv6. */
  device4: string;
  device6: string;
  /** `ip -d addr show dev ...`: the device kind's details line (IPv4 device, IPv6 device). */
  details4: RegExp;
  details6: RegExp;
  /** The director's flags for the real server (`ipvsadm -a ... -r RS ...`), and how `ipvsadm -S` saves them. */
  director: string[];
  saved: string;
  /** The VirtualServices' spec.forwarding. */
  forwarding: string;
  /** Second byte of the IPv4 addresses (10.N.0.0/24) and group of the IPv6 ones (2001:db8:N::/64): one segment per type. */
  net: number;
}

const CASES: TunnelCase[] = [
  {
    type: "IPIP",
    device4: "tunl0",
    device6: "ip6tnl0",
    details4: /^\s+ipip any remote any local any /m,
    details6: /^\s+ip6tnl ip6ip6 remote any local any /m,
    director: ["-i"],
    saved: "-i -w 1 --tun-type ipip",
    forwarding: "{method: Tunnel}",
    net: 97,
  },
  {
    type: "GRE",
    device4: "gre0",
    device6: "ip6gre0",
    details4: /^\s+gre remote any local any /m,
    details6: /^\s+ip6gre remote any local any /m,
    director: ["-i", "--tun-type", "gre"],
    saved: "-i -w 1 --tun-type gre --tun-nocsum",
    forwarding: "{method: Tunnel, tunnel: {type: GRE}}",
    net: 94,
  },
];
/** IFA_PROTO of the agent's addresses (Debian 12's iproute2 neither prints nor sets it). */
const AGENT_PROTO = 73;

function sh(command: string, ...args: string[]): string {
  return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

const sysctl = (key: string) => sh("sysctl", "-n", key).trim();

/** Whether a link exists, without `ip ... dev NAME`: that asks the kernel to load netdev-NAME (ipip for tunl0). */
const linkExists = (name: string) => existsSync(`/sys/class/net/${name}`);
const linkUp = (name: string) =>
  linkExists(name) && (Number.parseInt(readFileSync(`/sys/class/net/${name}/flags`, "utf8"), 16) & 1) === 1;

/** The kernel's strict reverse-path drops so far (TcpExt IPReversePathFilter in /proc/net/netstat). */
function reversePathDrops(): number {
  const lines = readFileSync("/proc/net/netstat", "utf8").split("\n");
  const names = lines.find((l) => l.startsWith("TcpExt:"))!.split(" ");
  const values = lines.filter((l) => l.startsWith("TcpExt:"))[1]!.split(" ");
  return Number(values[names.indexOf("IPReversePathFilter")]);
}

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  limitMs = 60_000,
): Promise<number> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > limitMs) throw new Error(`gave up waiting for ${what}`);
    await sleep(200);
  }
  return Date.now() - start;
}

/**
 * The agent's NodeEdge, recording the drift of every sync; `hold()` keeps the next syncs from running
 * (and waits for one in flight), so a test can break something and see traffic fail before the repair.
 */
class HeldNodeEdge extends NodeEdge {
  readonly drift: NodeEdgeDrift[] = [];
  last: NodeEdgeReport | undefined;
  syncs = 0;
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;
  #inFlight: Promise<unknown> = Promise.resolve();

  override async sync(desired: NodeEdgeDesired): Promise<NodeEdgeReport> {
    while (this.#gate) await this.#gate;
    const run = super.sync(desired);
    this.#inFlight = run.catch(() => undefined);
    const report = await run;
    this.syncs++;
    this.last = report;
    this.drift.push(...report.drift);
    return report;
  }

  async hold(): Promise<void> {
    this.#gate = new Promise((resolve) => {
      this.#open = resolve;
    });
    await this.#inFlight;
  }

  release(): void {
    this.#gate = undefined;
    this.#open?.();
  }
}

describe.each(
  CASES,
)("the real-server role behind an IPVS Tunnel ($type) director (real kernel, real traffic)", (c) => {
  const BRIDGE = `br-tun${c.net}`;
  const RS = `10.${c.net}.0.1`; // the real server: this (root) namespace, on the bridge
  const DIRECTOR = `10.${c.net}.0.2`;
  const CLIENT = `10.${c.net}.0.10`;
  const VIP = `10.${c.net}.9.9`;
  const RS6 = `2001:db8:${c.net}::1`;
  const DIRECTOR6 = `2001:db8:${c.net}::2`;
  const CLIENT6 = `2001:db8:${c.net}::10`;
  const VIP6 = `2001:db8:${c.net}:9::9`;
  const DEV4 = c.device4; // tunl0 or gre0
  const DEV6 = c.device6; // ip6tnl0 or ip6gre0
  const RP_FILTER = `net.ipv4.conf.${DEV4}.rp_filter`;
  const LOG = `[tunnel-rs ${c.type}]`;

  /** One VirtualService per family (web: IPv4, web6: IPv6) on director nodes only, and its real server here. */
  const virtualService = (name: string, address: string) => `apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: ${name}, namespace: shop}
spec:
  address: ${address}
  port: 80
  scheduler: rr
  forwarding: ${c.forwarding}
  nodeSelector: {matchLabels: {role: tunnel-director}}
`;
  const realServer = (name: string, address: string) => `apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: ${name}-rs, namespace: shop}
spec: {virtualServiceRef: {name: ${name}}, address: ${address}, port: 80}
`;
  const virtualServices = `${virtualService("web", VIP)}---\n${virtualService("web6", VIP6)}`;
  const realServers = `---\n${realServer("web", RS)}---\n${realServer("web6", RS6)}`;

  const holders: ChildProcess[] = [];
  let server: ChildProcess | undefined;
  let clientNs = "";
  let dir = "";
  let agent: InProcessAgent | undefined;
  const link = new NetlinkRtLink();
  const reader = new NetlinkRtLink(); // the test's own view of the kernel's address dump
  const edge = new HeldNodeEdge({
    loopback: new VipBinder(link, { interfaceName: "lo", existingLink: true }),
    tunnels: TUNNEL_KINDS.map((tunnel) => new VipBinder(link, { tunnel })),
    sysctls: new SysctlAsserter(new ProcSysctlStore()),
  });
  const savedSysctls = new Map<string, string>();
  const before = { dev4: { exists: false, up: false, rpFilter: "" }, dev6: { exists: false, up: false } };
  const figures: string[] = [];

  /** One HTTP request from the client namespace on a new connection: the body, or "error: curl exit N ...". */
  function request(host: string): Promise<string> {
    const url = host.includes(":") ? `http://[${host}]/` : `http://${host}/`;
    return new Promise((resolve) => {
      execFile(
        "nsenter",
        [`--net=${clientNs}`, "curl", "-sS", "-m", "2", url],
        { encoding: "utf8" },
        (error, stdout, stderr) =>
          resolve(error ? `error: curl exit ${error.code} ${stderr.trim()}` : stdout),
      );
    });
  }
  const both = () => Promise.all([request(VIP), request(VIP6)]);
  const answer = (client: string, vip: string) => `rs saw ${client} on ${vip}`;
  const answered = [answer(CLIENT, VIP), answer(CLIENT6, VIP6)];
  const noAnswer = /^error: curl exit (7|28) /; // refused (an ICMP error relayed by IPVS) or timed out

  /** The addresses on a link with their IFA_PROTO, from the kernel's dump ([] without the link). */
  async function held(name: string): Promise<string[]> {
    const l = await reader.getLink(name);
    if (!l) return [];
    return (await reader.listAddresses(l.index))
      .filter((a) => !a.address.startsWith("fe80:"))
      .map((a) => `${a.address}/${a.prefixLength} proto ${a.protocol}`);
  }
  const vipsHeld = async () => [...(await held(DEV4)), ...(await held(DEV6))];
  /** The agent's last report of this type's devices (the other type's may exist from its own block, or a module loaded before). */
  const ourTunnels = () => edge.last?.tunnels.filter((t) => t.interface === DEV4 || t.interface === DEV6);
  const wantedVips = [`${VIP}/32 proto ${AGENT_PROTO}`, `${VIP6}/128 proto ${AGENT_PROTO}`];

  /** What the agent holds as the role: both VIPs on up tunnel devices, the IPv4 one loose, ARP settings on the bridge. */
  async function roleInPlace(): Promise<boolean> {
    return (
      linkUp(DEV4) &&
      linkUp(DEV6) &&
      JSON.stringify(await vipsHeld()) === JSON.stringify(wantedVips) &&
      sysctl(RP_FILTER) === "2" &&
      sysctl(`net.ipv4.conf.${BRIDGE}.arp_ignore`) === "1" &&
      sysctl(`net.ipv4.conf.${BRIDGE}.arp_announce`) === "2"
    );
  }

  /** This namespace's IPVS table mentions neither VIP (the services select director nodes only). */
  const noIpvsHere = () => {
    const table = ipvsadm(["-Sn"]);
    return !table.includes(VIP) && !table.includes(VIP6);
  };

  beforeAll(async () => {
    // The product's devices for this type are the ones this test looks at.
    expect(
      TUNNEL_KINDS.filter((k) => TUNNEL_CARRIES[k].type === c.type).map((k) => TUNNEL_DEVICE[k]),
    ).toEqual([DEV4, DEV6]);
    before.dev4 = { exists: linkExists(DEV4), up: linkUp(DEV4), rpFilter: "" };
    before.dev6 = { exists: linkExists(DEV6), up: linkUp(DEV6) };
    if (before.dev4.exists) before.dev4.rpFilter = sysctl(RP_FILTER);
    for (const key of [
      "net.ipv4.conf.all.rp_filter",
      "net.ipv4.ip_forward",
      "net.ipv6.conf.all.forwarding",
    ]) {
      savedSysctls.set(key, sysctl(key));
    }
    expect(noIpvsHere()).toBe(true);

    for (let i = 0; i < 2; i++)
      holders.push(spawn("unshare", ["--net", "sleep", "3600"], { stdio: "ignore" }));
    await sleep(300);
    const [director, client] = holders as [ChildProcess, ChildProcess];
    clientNs = `/proc/${client.pid}/ns/net`;
    const inNs = (ns: ChildProcess, ...args: string[]) =>
      sh("nsenter", `--net=/proc/${ns.pid}/ns/net`, ...args);

    // The shared segment, with the real server's addresses.
    sh("ip", "link", "add", BRIDGE, "type", "bridge");
    sh("ip", "addr", "add", `${RS}/24`, "dev", BRIDGE);
    sh("ip", "addr", "add", `${RS6}/64`, "dev", BRIDGE, "nodad");
    sh("ip", "link", "set", BRIDGE, "up");
    const plug = (ns: ChildProcess, name: string, v4: string, v6: string) => {
      sh("ip", "link", "add", `${name}-h`, "type", "veth", "peer", "name", `${name}-n`);
      sh("ip", "link", "set", `${name}-n`, "netns", String(ns.pid));
      sh("ip", "link", "set", `${name}-h`, "master", BRIDGE, "up");
      inNs(ns, "ip", "addr", "add", `${v4}/24`, "dev", `${name}-n`);
      inNs(ns, "ip", "addr", "add", `${v6}/64`, "dev", `${name}-n`, "nodad");
      inNs(ns, "ip", "link", "set", `${name}-n`, "up");
      inNs(ns, "ip", "link", "set", "lo", "up");
    };
    plug(director, `t${c.net}d`, DIRECTOR, DIRECTOR6);
    plug(client, `t${c.net}c`, CLIENT, CLIENT6);

    // The director: the VIPs are its own (IPVS takes them at LOCAL_IN), tunnelled to the real server.
    inNs(director, "ip", "addr", "add", `${VIP}/32`, "dev", "lo");
    inNs(director, "ip", "addr", "add", `${VIP6}/128`, "dev", "lo", "nodad");
    inNs(director, "ipvsadm", "-A", "-t", `${VIP}:80`, "-s", "rr");
    inNs(director, "ipvsadm", "-a", "-t", `${VIP}:80`, "-r", `${RS}:80`, ...c.director);
    inNs(director, "ipvsadm", "-A", "-t", `[${VIP6}]:80`, "-s", "rr");
    inNs(director, "ipvsadm", "-a", "-t", `[${VIP6}]:80`, "-r", `[${RS6}]:80`, ...c.director);
    const saved = inNs(director, "ipvsadm", "-Sn").split("\n");
    expect(saved).toContain(`-a -t ${VIP}:80 -r ${RS}:80 ${c.saved}`);
    expect(saved).toContain(`-a -t [${VIP6}]:80 -r [${RS6}]:80 ${c.saved}`);
    // The client reaches the VIPs through the director; the answers come straight from the real server.
    inNs(client, "ip", "route", "add", `${VIP}/32`, "via", DIRECTOR);
    inNs(client, "ip", "-6", "route", "add", `${VIP6}/128`, "via", DIRECTOR6);

    // Strict reverse-path filtering on the real server (set after the namespaces were made, which
    // inherit this namespace's IPv4 settings).
    sh("sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1");

    server = spawn(
      process.execPath,
      [
        "-e",
        `const plain = (a) => a.replace(/^::ffff:/, "");
        require("node:http").createServer((q, s) => s.end("rs saw " + plain(q.socket.remoteAddress) + " on " + plain(q.socket.localAddress))).listen(80, "::", () => console.log("up"));`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve, reject) => {
      server!.stdout!.once("data", () => resolve());
      server!.once("exit", (code) => reject(new Error(`the real server's HTTP server exited (${code})`)));
    });
    dir = scratch("tunnel-real-server-");
  }, 60_000);

  afterAll(async () => {
    edge.release();
    await agent?.stop();
    server?.kill("SIGKILL");
    for (const h of holders) h.kill("SIGKILL");
    for (const name of [BRIDGE, `t${c.net}d-h`, `t${c.net}c-h`]) spawnSync("ip", ["link", "del", name]);
    // The fallback devices cannot be deleted: our addresses off, down again unless they were up.
    for (const [name, vip, was] of [
      [DEV4, `${VIP}/32`, before.dev4],
      [DEV6, `${VIP6}/128`, before.dev6],
    ] as const) {
      if (!linkExists(name)) continue;
      spawnSync("ip", ["addr", "del", vip, "dev", name]);
      if (!was.up) spawnSync("ip", ["link", "set", name, "down"]);
    }
    if (linkExists(DEV4)) {
      // A tunl0 / gre0 the module made during the test had the `default` value.
      const value = before.dev4.exists ? before.dev4.rpFilter : sysctl("net.ipv4.conf.default.rp_filter");
      spawnSync("sysctl", ["-qw", `${RP_FILTER}=${value}`]);
    }
    for (const [key, value] of savedSysctls) spawnSync("sysctl", ["-qw", `${key}=${value}`]);
    await link.close();
    await reader.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (figures.length > 0) console.info(`${LOG} ${figures.join("; ")}`);
  });

  it("without the role a request through the director gets no answer", async () => {
    expect(sh("ip", "-o", "addr", "show", "to", `${VIP}/32`).trim()).toBe("");
    expect(sh("ip", "-o", "-6", "addr", "show", "to", `${VIP6}/128`).trim()).toBe("");
    const [v4, v6] = await both();
    console.log(`${LOG} before the role: IPv4 ${v4.trim()} | IPv6 ${v6.trim()}`);
    expect(v4).toMatch(noAnswer);
    expect(v6).toMatch(noAnswer);
  });

  it(`the agent holds the VIPs on ${DEV4} / ${DEV6} (${DEV4} loose) and the real server answers from them`, async () => {
    writeManifest(dir, "web.yaml", virtualServices + realServers);
    const t0 = Date.now();
    agent = await startDirectoryAgent(
      dir,
      "vm",
      { drRealServer: "true", vipInterface: "", resyncInterval: "1s" },
      edge,
    );
    const startMs = Date.now() - t0;
    await until(
      `the role in place (VIPs on ${DEV4} and ${DEV6}, rp_filter, ARP settings)`,
      roleInPlace,
      120_000,
    );
    const placedMs = Date.now() - t0;
    let answers: string[] = [];
    await until("both families answered through the director", async () => {
      answers = await both();
      return JSON.stringify(answers) === JSON.stringify(answered);
    });
    const answeredMs = Date.now() - t0;
    figures.push(`agent start ${startMs} ms, role in place ${placedMs} ms, first answers ${answeredMs} ms`);
    console.log(`${LOG} with the role: ${answers.join(" | ")}`);

    // What `ip` sees: up tunnel devices of the tunnel kinds, the VIPs as host addresses.
    const shown4 = sh("ip", "-d", "addr", "show", "dev", DEV4);
    expect(shown4).toMatch(/<NOARP,UP,LOWER_UP>/);
    expect(shown4).toMatch(c.details4);
    expect(shown4).toMatch(new RegExp(`inet ${VIP.replaceAll(".", "\\.")}/32 scope global ${DEV4}`));
    const shown6 = sh("ip", "-d", "addr", "show", "dev", DEV6);
    expect(shown6).toMatch(/<NOARP,UP,LOWER_UP>/);
    expect(shown6).toMatch(c.details6);
    expect(shown6).toContain(`inet6 ${VIP6}/128 scope global nodad`);
    expect(ourTunnels()).toEqual([
      { interface: DEV4, up: true, addresses: [VIP] },
      { interface: DEV6, up: true, addresses: [VIP6] },
    ]);
    expect(edge.last?.loopback).toEqual({ interface: "lo", addresses: [] });
    expect(edge.last?.errors).toEqual([]);
    expect(edge.drift).toEqual([]);

    // Every request is answered, from the VIP, and the real server sees the client itself (no NAT).
    for (let i = 0; i < 3; i++) expect(await both()).toEqual(answered);
    // The services select director nodes: this node programs no IPVS for them.
    expect(noIpvsHere()).toBe(true);
  }, 240_000);

  it("out-of-band changes break traffic and are repaired: rp_filter, deleted VIPs, devices down", async () => {
    await edge.hold();
    // tunl0 / gre0 not loose (0, what a new device has, or 1): all=1 wins and the IPv4 request is
    // dropped by the reverse-path check (the client is routed via the bridge, not the tunnel device);
    // IPv6 has no rp_filter.
    const strictDrops: string[] = [];
    for (const value of ["0", "1"]) {
      sh("sysctl", "-qw", `${RP_FILTER}=${value}`);
      const drops = reversePathDrops();
      const [v4, v6] = await both();
      expect(v4).toMatch(/^error: curl exit 28 /);
      expect(v6).toBe(answer(CLIENT6, VIP6));
      expect(reversePathDrops()).toBeGreaterThan(drops);
      strictDrops.push(`${value}: +${reversePathDrops() - drops}`);
    }
    figures.push(`${DEV4} rp_filter under all=1 -> IPReversePathFilter ${strictDrops.join(", ")}`);
    sh("ip", "addr", "del", `${VIP}/32`, "dev", DEV4);
    sh("ip", "addr", "del", `${VIP6}/128`, "dev", DEV6);
    for (const answer of await both()) expect(answer).toMatch(noAnswer);
    const drifted = edge.drift.length;
    let t0 = Date.now();
    edge.release();
    await until(`the VIPs and ${DEV4}'s rp_filter repaired`, roleInPlace, 30_000);
    await until(
      "both families answered again",
      async () => JSON.stringify(await both()) === JSON.stringify(answered),
    );
    const repairMs = Date.now() - t0;
    expect(edge.drift.slice(drifted)).toEqual(
      expect.arrayContaining([
        { area: "TunnelVIP", kind: "AddressMissing", object: `${VIP}/32`, action: "Repaired" },
        { area: "TunnelVIP", kind: "AddressMissing", object: `${VIP6}/128`, action: "Repaired" },
        {
          area: "Sysctl",
          kind: "Modified",
          object: RP_FILTER,
          expected: "2",
          found: "1",
          action: "Repaired",
        },
      ]),
    );

    // Both devices down (the kernel drops the IPv6 device's addresses with it): both families fail.
    await edge.hold();
    sh("ip", "link", "set", DEV4, "down");
    sh("ip", "link", "set", DEV6, "down");
    for (const answer of await both()) expect(answer).toMatch(noAnswer);
    const downDrifted = edge.drift.length;
    t0 = Date.now();
    edge.release();
    await until(`${DEV4} and ${DEV6} up with their VIPs`, roleInPlace, 30_000);
    await until(
      "both families answered again",
      async () => JSON.stringify(await both()) === JSON.stringify(answered),
    );
    const upMs = Date.now() - t0;
    expect(edge.drift.slice(downDrifted)).toEqual(
      expect.arrayContaining([
        { area: "TunnelVIP", kind: "InterfaceDown", object: DEV4, action: "Repaired" },
        { area: "TunnelVIP", kind: "InterfaceDown", object: DEV6, action: "Repaired" },
      ]),
    );
    expect(edge.last?.errors).toEqual([]);
    figures.push(`VIPs + rp_filter repaired and answered ${repairMs} ms after release`);
    figures.push(`devices down repaired and answered ${upMs} ms after release`);
  }, 180_000);

  it(`the VIPs leave ${DEV4} and ${DEV6} with the RealServers, and requests fail again`, async () => {
    const t0 = Date.now();
    writeManifest(dir, "web.yaml", virtualServices);
    await until("the VIPs gone from the tunnel devices", async () => (await vipsHeld()).length === 0, 30_000);
    const goneMs = Date.now() - t0;
    figures.push(`VIPs gone ${goneMs} ms after the RealServers left, ${edge.syncs} node-edge syncs in all`);
    for (const answer of await both()) expect(answer).toMatch(noAnswer);
    expect(ourTunnels()).toEqual([
      { interface: DEV4, up: true, addresses: [] },
      { interface: DEV6, up: true, addresses: [] },
    ]);
    expect(edge.last?.errors).toEqual([]);
    expect(noIpvsHere()).toBe(true);
  }, 60_000);
});
