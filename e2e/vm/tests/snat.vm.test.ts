/**
 * SNAT for one-arm NAT on the real kernel (Linux 6.1, nft 1.0.6): the load balancer, a client and a
 * real server share one L2 segment (a bridge in the VM's root namespace holding the LB's address,
 * the client and the real server in their own network namespaces on it). The real server's route
 * to the client is direct (same subnet), not via the LB, so an IPVS NAT answer bypasses the LB and
 * the client drops it: a request through the VIP fails until SnatManager puts the service's rule in
 * the operator's table (`inet ipvs_operator`); then the real server sees the LB's address as the
 * source and answers through it. The same for IPv6 and for a firewall-mark service (the mark set
 * by a user's own table), and for UDP and SCTP services (IPv4 and IPv6: a datagram answered with the
 * source it came from; an SCTP association through socat). Out-of-band `nft delete table` and `nft flush chain` are reported as drift
 * and repaired; the user's tables stay byte for byte the same throughout; removing the last service
 * removes the operator's table.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExecNft } from "../../../src/node-edge/nftables.ts";
import { SnatManager } from "../../../src/node-edge/snat.ts";
import type { SnatService } from "../../../src/node-edge/snat-plan.ts";
import { canonicalIp } from "../../../src/vocabulary/addresses.ts";
import { ipvsadm } from "./vm-helpers.ts";

const LB = "10.99.0.1";
const CLIENT = "10.99.0.10";
const RS = "10.99.0.20";
const VIP = "10.99.9.9";
const VIP_MARK = "10.99.9.10";
const LB6 = "2001:db8:99::1";
const CLIENT6 = "2001:db8:99::10";
const RS6 = "2001:db8:99::20";
const VIP6 = "2001:db8:99:9::9";
const MARK = 7;

const WEB: SnatService = {
  owner: "shop/web",
  family: "IPv4",
  match: { kind: "address", protocol: "TCP", address: VIP, port: 80 },
  realServers: [RS],
};
const WEB6: SnatService = {
  owner: "shop/web6",
  family: "IPv6",
  match: { kind: "address", protocol: "TCP", address: VIP6, port: 80 },
  realServers: [RS6],
};
/** UDP and SCTP services on the VIPs' port 80, to the real server's port 8080 of that protocol. */
const OTHER_PROTOCOLS: SnatService[] = (["UDP", "SCTP"] as const).flatMap((protocol) => [
  {
    owner: `shop/${protocol.toLowerCase()}`,
    family: "IPv4" as const,
    match: { kind: "address" as const, protocol, address: VIP, port: 80 },
    realServers: [RS],
  },
  {
    owner: `shop/${protocol.toLowerCase()}6`,
    family: "IPv6" as const,
    match: { kind: "address" as const, protocol, address: VIP6, port: 80 },
    realServers: [RS6],
  },
]);

const MARKED: SnatService = {
  owner: "shop/marked",
  family: "IPv4",
  match: { kind: "fwmark", fwmark: MARK },
  realServers: [RS],
};

/** The user's own nftables tables, which the operator must never read or change. */
const USER_TABLES = `
table ip usernat {
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    ip daddr 203.0.113.5 masquerade comment "the user's rule"
  }
}
table ip usermark {
  chain pre {
    type filter hook prerouting priority mangle; policy accept;
    ip daddr ${VIP_MARK} tcp dport 80 meta mark set ${MARK}
  }
}
`;

function sh(command: string, ...args: string[]): string {
  return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function nft(...args: string[]): string {
  return sh("nft", ...args);
}

/** `nft list table ...`, or undefined when there is no such table. */
function listTable(family: string, name: string): string | undefined {
  const r = spawnSync("nft", ["list", "table", family, name], { encoding: "utf8" });
  return r.status === 0 ? r.stdout : undefined;
}

function userTables(): string {
  return `${listTable("ip", "usernat")}${listTable("ip", "usermark")}`;
}

describe("SNAT for one-arm NAT (real kernel, nft)", () => {
  const holders: ChildProcess[] = [];
  let server: ChildProcess | undefined;
  const sctpServers: ChildProcess[] = [];
  let client: ChildProcess;
  const sysctls = ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding", "net.ipv4.vs.conntrack"];
  const saved = new Map<string, string>();
  const manager = new SnatManager(new ExecNft());
  let userBefore = "";

  const inNs = (holder: ChildProcess, ...args: string[]) =>
    sh("nsenter", `--net=/proc/${holder.pid}/ns/net`, ...args);

  /** One HTTP request from the client namespace on a new connection: the body, or "error: ...". */
  function request(host: string): string {
    const url = host.includes(":") ? `http://[${host}]/` : `http://${host}/`;
    const r = spawnSync("nsenter", [`--net=/proc/${client.pid}/ns/net`, "curl", "-sS", "-m", "2", url], {
      encoding: "utf8",
    });
    return r.status === 0 ? r.stdout : `error: curl exit ${r.status} ${r.stderr.trim()}`;
  }

  /**
   * One UDP datagram from the client namespace on a new connected socket (a new connection; like a
   * DNS client, it takes answers from the address it sent to only): the answer, or "error: ...".
   */
  function datagram(host: string): string {
    const script = `const s = require("node:dgram").createSocket("${host.includes(":") ? "udp6" : "udp4"}");
      setTimeout(() => { console.log("error: no answer in 2 s"); process.exit(0); }, 2000);
      s.on("message", (m) => { console.log(String(m)); process.exit(0); });
      s.connect(80, "${host}", () => s.send("ping"));`;
    return sh("nsenter", `--net=/proc/${client.pid}/ns/net`, process.execPath, "-e", script).trim();
  }

  /** One SCTP association from the client namespace (socat): what the server wrote, or "error: ...". */
  function association(host: string): string {
    const to = host.includes(":") ? `SCTP6-CONNECT:[${host}]:80` : `SCTP4-CONNECT:${host}:80`;
    const r = spawnSync(
      "nsenter",
      [`--net=/proc/${client.pid}/ns/net`, "socat", "-T", "2", "-u", `${to},connect-timeout=2`, "STDOUT"],
      { encoding: "utf8", timeout: 5000 },
    );
    const out = r.stdout.trim();
    return r.status === 0 && out !== ""
      ? out
      : `error: socat exit ${r.status ?? r.signal} ${r.stderr.trim()}`;
  }

  async function holder(): Promise<ChildProcess> {
    const child = spawn("unshare", ["--net", "sleep", "3600"], { stdio: "ignore" });
    holders.push(child);
    await sleep(200);
    return child;
  }

  /** A veth pair with one end on the bridge, the other in the namespace with these addresses. */
  function plug(ns: ChildProcess, name: string, v4: string, v6: string): void {
    sh("ip", "link", "add", `${name}-h`, "type", "veth", "peer", "name", `${name}-n`);
    sh("ip", "link", "set", `${name}-n`, "netns", String(ns.pid));
    sh("ip", "link", "set", `${name}-h`, "master", "br-snat", "up");
    inNs(ns, "ip", "addr", "add", `${v4}/24`, "dev", `${name}-n`);
    inNs(ns, "ip", "addr", "add", `${v6}/64`, "dev", `${name}-n`, "nodad");
    inNs(ns, "ip", "link", "set", `${name}-n`, "up");
    inNs(ns, "ip", "link", "set", "lo", "up");
  }

  beforeAll(async () => {
    ipvsadm(["-C"]);
    for (const key of sysctls) saved.set(key, sh("sysctl", "-n", key).trim());
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv4.vs.conntrack=1");
    // The shared segment, with the LB's addresses; the VIPs on a dummy link of their own.
    sh("ip", "link", "add", "br-snat", "type", "bridge");
    sh("ip", "addr", "add", `${LB}/24`, "dev", "br-snat");
    sh("ip", "addr", "add", `${LB6}/64`, "dev", "br-snat", "nodad");
    sh("ip", "link", "set", "br-snat", "up");
    sh("ip", "link", "add", "snat-vip", "type", "dummy");
    for (const a of [`${VIP}/32`, `${VIP_MARK}/32`]) sh("ip", "addr", "add", a, "dev", "snat-vip");
    sh("ip", "addr", "add", `${VIP6}/128`, "dev", "snat-vip", "nodad");
    sh("ip", "link", "set", "snat-vip", "up");

    client = await holder();
    plug(client, "snc", CLIENT, CLIENT6);
    // The client reaches the VIPs through the LB; the real server has no route via the LB at all.
    inNs(client, "ip", "route", "add", `${VIP}/32`, "via", LB);
    inNs(client, "ip", "route", "add", `${VIP_MARK}/32`, "via", LB);
    inNs(client, "ip", "-6", "route", "add", `${VIP6}/128`, "via", LB6);
    const rs = await holder();
    plug(rs, "sns", RS, RS6);

    // The real server answers with the source address it sees.
    server = spawn(
      "nsenter",
      [
        `--net=/proc/${rs.pid}/ns/net`,
        process.execPath,
        "-e",
        `const from = (a) => "from " + a.replace(/^::ffff:/, "");
        for (const type of ["udp4", "udp6"]) {
          const u = require("node:dgram").createSocket({ type, ipv6Only: type === "udp6" });
          u.on("message", (m, r) => u.send(from(r.address), r.port, r.address));
          u.bind(8080);
        }
        require("node:http").createServer((q, s) => s.end(from(q.socket.remoteAddress))).listen(8080, "::", () => console.log("up"));`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve, reject) => {
      server!.stdout!.once("data", () => resolve());
      server!.once("exit", (code) => reject(new Error(`the real server exited (${code})`)));
    });

    // SCTP: socat writes the peer's address on each association (SOCAT_PEERADDR) and closes it.
    for (const listen of [
      "SCTP4-LISTEN:8080,fork,reuseaddr",
      "SCTP6-LISTEN:8080,fork,reuseaddr,ipv6only=1",
    ]) {
      sctpServers.push(
        spawn(
          "nsenter",
          [`--net=/proc/${rs.pid}/ns/net`, "socat", listen, "SYSTEM:echo from $SOCAT_PEERADDR"],
          { stdio: "ignore" },
        ),
      );
    }

    ipvsadm(["-A", "-t", `${VIP}:80`, "-s", "rr"]);
    ipvsadm(["-a", "-t", `${VIP}:80`, "-r", `${RS}:8080`, "-m"]);
    ipvsadm(["-A", "-t", `[${VIP6}]:80`, "-s", "rr"]);
    ipvsadm(["-a", "-t", `[${VIP6}]:80`, "-r", `[${RS6}]:8080`, "-m"]);
    for (const [flag, vip, rs] of [
      ["-u", `${VIP}:80`, `${RS}:8080`],
      ["-u", `[${VIP6}]:80`, `[${RS6}]:8080`],
      ["--sctp-service", `${VIP}:80`, `${RS}:8080`],
      ["--sctp-service", `[${VIP6}]:80`, `[${RS6}]:8080`],
    ] as const) {
      ipvsadm(["-A", flag, vip, "-s", "rr"]);
      ipvsadm(["-a", flag, vip, "-r", rs, "-m"]);
    }
    ipvsadm(["-A", "-f", String(MARK), "-s", "rr"]);
    ipvsadm(["-a", "-f", String(MARK), "-r", `${RS}:8080`, "-m"]);

    execFileSync("nft", ["-f", "-"], { input: USER_TABLES });
    userBefore = userTables();
    expect(userBefore).toContain("table ip usernat");
    expect(userBefore).toContain("table ip usermark");
  });

  afterAll(() => {
    server?.kill("SIGKILL");
    for (const child of sctpServers) child.kill("SIGKILL");
    for (const h of holders) h.kill("SIGKILL");
    for (const args of [
      ["delete", "table", "inet", "ipvs_operator"],
      ["delete", "table", "ip", "usernat"],
      ["delete", "table", "ip", "usermark"],
    ])
      spawnSync("nft", args);
    for (const link of ["br-snat", "snat-vip"]) spawnSync("ip", ["link", "del", link]);
    ipvsadm(["-C"]);
    for (const [key, value] of saved) spawnSync("sysctl", ["-qw", `${key}=${value}`]);
  });

  it("one-arm NAT fails without SNAT (IPv4, IPv6, firewall mark)", () => {
    expect(listTable("inet", "ipvs_operator")).toBeUndefined();
    expect(request(VIP)).toMatch(/^error: curl exit 28/);
    expect(request(VIP6)).toMatch(/^error: curl exit 28/);
    expect(request(VIP_MARK)).toMatch(/^error: curl exit 28/);
  });

  it("works once SnatManager programs the services' rules: the real server sees the LB's address", async () => {
    const report = await manager.sync([WEB, WEB6, MARKED]);
    expect(report).toEqual({
      table: "inet ipvs_operator",
      present: true,
      services: ["shop/marked", "shop/web", "shop/web6"],
      applied: true,
      drift: [],
      errors: [],
    });
    const table = listTable("inet", "ipvs_operator")!;
    expect(table).toContain(
      `meta l4proto tcp ct original ip daddr ${VIP} ct original proto-dst 80 ip daddr ${RS} masquerade comment "shop/web"`,
    );
    expect(table).toContain(`meta mark 0x00000007 ip daddr ${RS} masquerade comment "shop/marked"`);
    expect(request(VIP)).toBe(`from ${LB}`);
    expect(request(VIP6)).toBe(`from ${LB6}`);
    expect(request(VIP_MARK)).toBe(`from ${LB}`);
    expect(userTables()).toBe(userBefore);

    // Nothing changed: the next sync only lists the table.
    expect(await manager.sync([WEB, WEB6, MARKED])).toMatchObject({ applied: false, drift: [], errors: [] });
  });

  it("a table deleted out of band is reported and repaired", async () => {
    const good = listTable("inet", "ipvs_operator");
    nft("delete", "table", "inet", "ipvs_operator");
    expect(request(VIP)).toMatch(/^error: /);
    const report = await manager.sync([WEB, WEB6, MARKED]);
    expect(report).toMatchObject({
      applied: true,
      present: true,
      drift: [{ kind: "TableMissing", object: "inet ipvs_operator", action: "Repaired" }],
      errors: [],
    });
    expect(listTable("inet", "ipvs_operator")).toBe(good);
    expect(request(VIP)).toBe(`from ${LB}`);
    expect(userTables()).toBe(userBefore);
  });

  it("a flushed chain and a foreign rule in our chain are reported and repaired", async () => {
    const good = listTable("inet", "ipvs_operator");
    nft("flush", "chain", "inet", "ipvs_operator", "postrouting");
    expect(request(VIP)).toMatch(/^error: /);
    expect(await manager.observe([WEB, WEB6, MARKED])).toMatchObject({
      applied: false,
      drift: [{ kind: "RulesModified", action: "Reported" }],
    });
    const flushed = await manager.sync([WEB, WEB6, MARKED]);
    expect(flushed).toMatchObject({
      applied: true,
      drift: [{ kind: "RulesModified", action: "Repaired" }],
      errors: [],
    });
    expect(listTable("inet", "ipvs_operator")).toBe(good);
    expect(request(VIP)).toBe(`from ${LB}`);

    nft("insert", "rule", "inet", "ipvs_operator", "postrouting", "ip", "daddr", RS, "accept");
    expect(request(VIP)).toMatch(/^error: /); // accepted before our rule: no SNAT
    const edited = await manager.sync([WEB, WEB6, MARKED]);
    expect(edited).toMatchObject({ applied: true, drift: [{ kind: "RulesModified", action: "Repaired" }] });
    expect(listTable("inet", "ipvs_operator")).toBe(good);
    expect(request(VIP)).toBe(`from ${LB}`);
    expect(userTables()).toBe(userBefore);
  });

  it("UDP and SCTP through the VIPs: no answer without their rules, the LB's address as the source with them", async () => {
    const udp = () => [datagram(VIP), datagram(VIP6)];
    // socat writes IPv6 addresses in brackets and in full: the canonical text to compare.
    const sctp = () =>
      [association(VIP), association(VIP6)].map((a) =>
        a.replace(/^from \[?([^\]]+)\]?$/, (_, ip) => `from ${canonicalIp(ip)}`),
      );
    expect(udp()).toEqual(["error: no answer in 2 s", "error: no answer in 2 s"]);
    for (const answer of sctp()) expect(answer).toMatch(/^error: /);

    const report = await manager.sync([WEB, WEB6, MARKED, ...OTHER_PROTOCOLS]);
    expect(report).toMatchObject({ applied: true, drift: [], errors: [] });
    const table = listTable("inet", "ipvs_operator")!;
    for (const protocol of ["udp", "sctp"]) {
      expect(table).toContain(
        `meta l4proto ${protocol} ct original ip daddr ${VIP} ct original proto-dst 80 ip daddr ${RS} masquerade comment "shop/${protocol}"`,
      );
    }
    expect(udp()).toEqual([`from ${LB}`, `from ${LB6}`]);
    expect(sctp()).toEqual([`from ${LB}`, `from ${LB6}`]);
    // Rules are per protocol: without the UDP ones, UDP fails again while SCTP still works.
    await manager.sync([
      WEB,
      WEB6,
      MARKED,
      ...OTHER_PROTOCOLS.filter((o) => !o.owner.startsWith("shop/udp")),
    ]);
    expect(udp()).toEqual(["error: no answer in 2 s", "error: no answer in 2 s"]);
    expect(sctp()).toEqual([`from ${LB}`, `from ${LB6}`]);
    await manager.sync([WEB, WEB6, MARKED]);
    expect(userTables()).toBe(userBefore);
  });

  it("a service leaving SNAT loses its rule; the last one gone removes the table, the user's stay", async () => {
    const fewer = await manager.sync([WEB6, MARKED]);
    expect(fewer).toMatchObject({ applied: true, drift: [], services: ["shop/marked", "shop/web6"] });
    expect(request(VIP)).toMatch(/^error: /);
    expect(request(VIP6)).toBe(`from ${LB6}`);

    const none = await manager.sync([]);
    expect(none).toMatchObject({ applied: true, present: false, services: [], drift: [], errors: [] });
    expect(listTable("inet", "ipvs_operator")).toBeUndefined();
    expect(request(VIP6)).toMatch(/^error: /);
    expect(request(VIP_MARK)).toMatch(/^error: /);
    expect(userTables()).toBe(userBefore);
    expect(await manager.sync([])).toMatchObject({ applied: false, present: false, drift: [], errors: [] });
  });
});
