import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { normalizeIpvsadmSave } from "../../src/model/ipvsadm-normalize.ts";
import { parseIpvsadmSave } from "../../src/model/ipvsadm-parse.ts";
import { compareServicesLikeIpvsadm, renderIpvsadmSave } from "../../src/model/ipvsadm-render.ts";
import { bytesToIp, canonicalIp } from "../../src/vocabulary/addresses.ts";
import type {
  DestinationConfig,
  Family,
  IpvsDestination,
  IpvsService,
  IpvsTable,
  Protocol,
  ServiceConfig,
  ServiceFlags,
  ServiceKey,
} from "../../src/vocabulary/table.ts";
import { IPVS_SCHEDULERS, NO_FLAGS, NO_TUNNEL, serviceKeyString } from "../../src/vocabulary/table.ts";

function svc(
  key: ServiceKey,
  config: Partial<ServiceConfig> = {},
  flags: Partial<ServiceFlags> = {},
): IpvsService {
  return {
    key,
    config: {
      scheduler: "wlc",
      timeout: 0,
      netmask: key.family === "IPv6" ? 128 : 0xffffffff,
      persistenceEngine: "",
      ...config,
      flags: { ...NO_FLAGS, ...flags },
    },
  };
}
const tcp = (address: string, port: number): ServiceKey => ({
  kind: "address",
  family: address.includes(":") ? "IPv6" : "IPv4",
  protocol: "TCP",
  address,
  port,
});
const udp = (address: string, port: number): ServiceKey =>
  ({ ...tcp(address, port), protocol: "UDP" }) as ServiceKey;
const sctp = (address: string, port: number): ServiceKey =>
  ({ ...tcp(address, port), protocol: "SCTP" }) as ServiceKey;
const fwm = (fwmark: number, family: Family = "IPv4"): ServiceKey => ({ kind: "fwmark", family, fwmark });
function dst(address: string, port: number, config: Partial<DestinationConfig> = {}): IpvsDestination {
  return {
    key: { family: address.includes(":") ? "IPv6" : "IPv4", address, port },
    config: { forwarding: "NAT", weight: 1, upperThreshold: 0, lowerThreshold: 0, ...NO_TUNNEL, ...config },
  };
}

describe("renderIpvsadmSave: one service, every option", () => {
  const cases: { name: string; service: IpvsService; want: string }[] = [
    { name: "plain tcp", service: svc(tcp("192.0.2.10", 80)), want: "-A -t 192.0.2.10:80 -s wlc" },
    {
      name: "udp",
      service: svc(udp("192.0.2.10", 53), { scheduler: "rr" }),
      want: "-A -u 192.0.2.10:53 -s rr",
    },
    {
      name: "sctp uses the long option",
      service: svc(sctp("192.0.2.10", 38412), { scheduler: "lc" }),
      want: "-A --sctp-service 192.0.2.10:38412 -s lc",
    },
    {
      name: "ipv6 in brackets",
      service: svc(tcp("2001:db8::10", 443), { scheduler: "wrr" }),
      want: "-A -t [2001:db8::10]:443 -s wrr",
    },
    {
      name: "port 0 persistent, /32 mask not printed",
      service: svc(tcp("192.0.2.10", 0), { timeout: 360 }, { persistent: true }),
      want: "-A -t 192.0.2.10:0 -s wlc -p 360",
    },
    {
      name: "persistence with netmask and sh flags",
      service: svc(
        tcp("192.0.2.10", 80),
        { scheduler: "sh", timeout: 600, netmask: 0xffffff00 },
        { persistent: true, schedFlag2: true },
      ),
      want: "-A -t 192.0.2.10:80 -s sh -p 600 -M 255.255.255.0 -b sh-port",
    },
    {
      name: "ipv6 persistence prefix",
      service: svc(tcp("2001:db8::10", 80), { timeout: 300, netmask: 64 }, { persistent: true }),
      want: "-A -t [2001:db8::10]:80 -s wlc -p 300 -M 64",
    },
    {
      name: "ipv6 prefix 128 not printed",
      service: svc(tcp("2001:db8::10", 80), { timeout: 300, netmask: 128 }, { persistent: true }),
      want: "-A -t [2001:db8::10]:80 -s wlc -p 300",
    },
    {
      name: "netmask ignored when not persistent",
      service: svc(tcp("192.0.2.10", 80), { netmask: 0xffff0000 }),
      want: "-A -t 192.0.2.10:80 -s wlc",
    },
    {
      name: "sip persistence engine",
      service: svc(
        udp("192.0.2.10", 5060),
        { scheduler: "rr", timeout: 60, persistenceEngine: "sip" },
        { persistent: true },
      ),
      want: "-A -u 192.0.2.10:5060 -s rr -p 60 --pe sip",
    },
    {
      name: "one-packet",
      service: svc(udp("192.0.2.10", 53), { scheduler: "rr" }, { onePacket: true }),
      want: "-A -u 192.0.2.10:53 -s rr -o",
    },
    {
      name: "sh both flags",
      service: svc(tcp("192.0.2.10", 80), { scheduler: "sh" }, { schedFlag1: true, schedFlag2: true }),
      want: "-A -t 192.0.2.10:80 -s sh -b sh-fallback,sh-port",
    },
    {
      name: "mh flags",
      service: svc(tcp("192.0.2.10", 80), { scheduler: "mh" }, { schedFlag1: true, schedFlag2: true }),
      want: "-A -t 192.0.2.10:80 -s mh -b mh-fallback,mh-port",
    },
    {
      name: "mh port only",
      service: svc(tcp("192.0.2.10", 80), { scheduler: "mh" }, { schedFlag2: true }),
      want: "-A -t 192.0.2.10:80 -s mh -b mh-port",
    },
    {
      name: "other scheduler: flag-n",
      service: svc(tcp("192.0.2.10", 80), { scheduler: "rr" }, { schedFlag1: true, schedFlag3: true }),
      want: "-A -t 192.0.2.10:80 -s rr -b flag-1,flag-3",
    },
    {
      name: "sh with only flag 3 prints an empty -b, as ipvsadm does",
      service: svc(tcp("192.0.2.10", 80), { scheduler: "sh" }, { schedFlag3: true }),
      want: "-A -t 192.0.2.10:80 -s sh -b ",
    },
    {
      name: "everything at once in ipvsadm's option order",
      service: svc(
        udp("192.0.2.10", 5060),
        { scheduler: "sh", timeout: 30, netmask: 0xfffffff0, persistenceEngine: "sip" },
        { persistent: true, onePacket: true, schedFlag1: true },
      ),
      want: "-A -u 192.0.2.10:5060 -s sh -p 30 -M 255.255.255.240 --pe sip -o -b sh-fallback",
    },
    { name: "fwmark v4", service: svc(fwm(7), { scheduler: "rr" }), want: "-A -f 7 -s rr" },
    {
      name: "fwmark v6 with prefix",
      service: svc(fwm(7, "IPv6"), { scheduler: "rr", timeout: 600, netmask: 64 }, { persistent: true }),
      want: "-A -f 7 -6 -s rr -p 600 -M 64",
    },
    {
      name: "fwmark >= 2^31 prints signed (%d)",
      service: svc(fwm(0x80000001)),
      want: "-A -f -2147483647 -s wlc",
    },
    {
      name: "every scheduler name passes through",
      service: svc(tcp("192.0.2.10", 80), { scheduler: "twos" }),
      want: "-A -t 192.0.2.10:80 -s twos",
    },
    {
      name: "IPv4-mapped v6",
      service: svc(tcp("::ffff:192.0.2.1", 80)),
      want: "-A -t [::ffff:192.0.2.1]:80 -s wlc",
    },
    {
      name: "IPv4-compatible v6 in glibc form",
      service: svc(tcp("::c000:201", 80)),
      want: "-A -t [::192.0.2.1]:80 -s wlc",
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(renderIpvsadmSave([{ service: c.service, destinations: [] }])).toBe(`${c.want}\n`);
    });
  }
});

describe("renderIpvsadmSave: destinations", () => {
  const s = svc(tcp("192.0.2.10", 80));
  const cases: { name: string; dest: IpvsDestination; want: string; service?: IpvsService }[] = [
    { name: "NAT", dest: dst("198.51.100.5", 8080), want: "-r 198.51.100.5:8080 -m -w 1" },
    {
      name: "weight 0",
      dest: dst("198.51.100.5", 8080, { weight: 0 }),
      want: "-r 198.51.100.5:8080 -m -w 0",
    },
    {
      name: "thresholds are not printed",
      dest: dst("198.51.100.5", 8080, { weight: 65535, upperThreshold: 100, lowerThreshold: 10 }),
      want: "-r 198.51.100.5:8080 -m -w 65535",
    },
    {
      name: "DR",
      dest: dst("198.51.100.5", 80, { forwarding: "DirectRouting" }),
      want: "-r 198.51.100.5:80 -g -w 1",
    },
    {
      name: "Local prints -g",
      dest: dst("198.51.100.5", 80, { forwarding: "Local" }),
      want: "-r 198.51.100.5:80 -g -w 1",
    },
    {
      name: "Bypass prints (null)",
      dest: dst("198.51.100.5", 80, { forwarding: "Bypass" }),
      want: "-r 198.51.100.5:80 (null) -w 1",
    },
    {
      name: "IPIP",
      dest: dst("198.51.100.5", 80, { forwarding: "Tunnel", weight: 3 }),
      want: "-r 198.51.100.5:80 -i -w 3 --tun-type ipip",
    },
    {
      name: "GUE",
      dest: dst("198.51.100.5", 80, { forwarding: "Tunnel", tunnelType: "GUE", tunnelPort: 6080 }),
      want: "-r 198.51.100.5:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum",
    },
    {
      name: "GUE checksum",
      dest: dst("198.51.100.5", 80, {
        forwarding: "Tunnel",
        tunnelType: "GUE",
        tunnelPort: 5555,
        tunnelChecksum: "Checksum",
      }),
      want: "-r 198.51.100.5:80 -i -w 1 --tun-type gue --tun-port 5555 --tun-csum",
    },
    {
      name: "GUE remote checksum",
      dest: dst("198.51.100.5", 80, {
        forwarding: "Tunnel",
        tunnelType: "GUE",
        tunnelPort: 5555,
        tunnelChecksum: "RemoteChecksum",
      }),
      want: "-r 198.51.100.5:80 -i -w 1 --tun-type gue --tun-port 5555 --tun-remcsum",
    },
    {
      name: "GRE",
      dest: dst("198.51.100.5", 80, { forwarding: "Tunnel", tunnelType: "GRE" }),
      want: "-r 198.51.100.5:80 -i -w 1 --tun-type gre --tun-nocsum",
    },
    {
      name: "GRE checksum",
      dest: dst("198.51.100.5", 80, { forwarding: "Tunnel", tunnelType: "GRE", tunnelChecksum: "Checksum" }),
      want: "-r 198.51.100.5:80 -i -w 1 --tun-type gre --tun-csum",
    },
    {
      name: "IPv6 destination tunnelled from an IPv4 service",
      dest: dst("2001:db8::5", 80, { forwarding: "Tunnel" }),
      want: "-r [2001:db8::5]:80 -i -w 1 --tun-type ipip",
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const service = c.service ?? s;
      expect(renderIpvsadmSave([{ service, destinations: [c.dest] }])).toBe(
        `-A -t 192.0.2.10:80 -s wlc\n-a -t 192.0.2.10:80 ${c.want}\n`,
      );
    });
  }
  it("fwmark destinations repeat the -f (and -6) part and keep port 0", () => {
    const table: IpvsTable = [
      {
        service: svc(fwm(7, "IPv6"), { scheduler: "rr" }),
        destinations: [dst("2001:db8::5", 0, { forwarding: "DirectRouting" })],
      },
    ];
    expect(renderIpvsadmSave(table)).toBe("-A -f 7 -6 -s rr\n-a -f 7 -6 -r [2001:db8::5]:0 -g -w 1\n");
  });
});

describe("renderIpvsadmSave: order is ipvsadm's qsort order, not the table's", () => {
  it("sorts by fwmark, family, protocol, address, port", () => {
    const table: IpvsTable = [
      { service: svc(fwm(2)), destinations: [] },
      { service: svc(fwm(1, "IPv6")), destinations: [] },
      { service: svc(fwm(1)), destinations: [] },
      { service: svc(udp("192.0.2.1", 53)), destinations: [] },
      { service: svc(tcp("2001:db8::1", 80)), destinations: [] },
      { service: svc(tcp("192.0.2.2", 80)), destinations: [] },
      { service: svc(tcp("192.0.2.1", 443)), destinations: [] },
      { service: svc(tcp("192.0.2.1", 80)), destinations: [] },
      { service: svc(sctp("192.0.2.1", 80)), destinations: [] },
    ];
    expect(renderIpvsadmSave(table)).toBe(
      [
        "-A -t 192.0.2.1:80 -s wlc",
        "-A -t 192.0.2.1:443 -s wlc",
        "-A -t 192.0.2.2:80 -s wlc",
        "-A -u 192.0.2.1:53 -s wlc",
        "-A --sctp-service 192.0.2.1:80 -s wlc",
        "-A -t [2001:db8::1]:80 -s wlc",
        "-A -f 1 -s wlc",
        "-A -f 1 -6 -s wlc",
        "-A -f 2 -s wlc",
        "",
      ].join("\n"),
    );
  });
  it("reproduces ipvsadm's signed wrap-around: 192.168.x sorts before 10.x", () => {
    const table: IpvsTable = [
      {
        service: svc(tcp("10.0.0.1", 80)),
        destinations: [dst("10.1.0.1", 80), dst("172.16.0.1", 80), dst("192.168.1.1", 80)],
      },
      { service: svc(tcp("192.168.0.1", 80)), destinations: [] },
    ];
    expect(renderIpvsadmSave(table)).toBe(
      [
        "-A -t 192.168.0.1:80 -s wlc",
        "-A -t 10.0.0.1:80 -s wlc",
        // Each pair differs by more or less than 2^31: 172.16 < 192.168 (ordinary), but both sort
        // before 10.1 because 172.16 - 10.1 and 192.168 - 10.1 exceed 2^31.
        "-a -t 10.0.0.1:80 -r 172.16.0.1:80 -m -w 1",
        "-a -t 10.0.0.1:80 -r 192.168.1.1:80 -m -w 1",
        "-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 1",
        "",
      ].join("\n"),
    );
    expect(compareServicesLikeIpvsadm(tcp("10.0.0.1", 80), tcp("192.168.0.1", 80))).toBeGreaterThan(0);
  });
  it("with a cycle (10.x < 100.x < 200.x < 10.x) follows the order destinations were added", () => {
    const added = [dst("10.0.0.1", 80), dst("100.0.0.1", 80), dst("200.0.0.1", 80)];
    const lines = (dests: IpvsDestination[]) =>
      renderIpvsadmSave([{ service: svc(tcp("192.0.2.1", 80)), destinations: dests }])
        .split("\n")
        .slice(1, 4)
        .map((l) => l.split(" ")[4]);
    // The kernel lists [200, 100, 10]; glibc's merge sort: [200] + sort([100, 10]) = [200] + [10, 100],
    // and 200 < 10 (wrap-around). The same as ipvsadm printed in the VM (fixtures/cyclic-save-output.txt).
    expect(lines(added)).toEqual(["200.0.0.1:80", "10.0.0.1:80", "100.0.0.1:80"]);
    // Added the other way round the kernel lists [10, 100, 200]: [10] + [100, 200].
    expect(lines([...added].reverse())).toEqual(["10.0.0.1:80", "100.0.0.1:80", "200.0.0.1:80"]);
  });
  it("does not depend on the order of the input table", () => {
    const entries = [
      {
        service: svc(tcp("192.0.2.3", 80)),
        destinations: [dst("198.51.100.2", 80), dst("198.51.100.1", 80)],
      },
      { service: svc(tcp("192.0.2.1", 80)), destinations: [] },
      { service: svc(fwm(9)), destinations: [] },
    ];
    expect(renderIpvsadmSave(entries)).toBe(renderIpvsadmSave([...entries].reverse()));
    expect(renderIpvsadmSave(entries).split("\n")[2]).toBe("-a -t 192.0.2.3:80 -r 198.51.100.1:80 -m -w 1");
  });
});

describe("parseIpvsadmSave", () => {
  it("reads realistic ipvsadm -Sn output", () => {
    const text = [
      "-A -t 192.0.2.10:80 -s wlc",
      "-a -t 192.0.2.10:80 -r 198.51.100.5:8080 -m -w 1",
      "-a -t 192.0.2.10:80 -r 198.51.100.6:8080 -m -w 0",
      "-A -t 192.0.2.11:443 -s sh -p 600 -M 255.255.255.0 -b sh-port",
      "-a -t 192.0.2.11:443 -r 198.51.100.7:443 -g -w 5",
      "-a -t 192.0.2.11:443 -r 198.51.100.8:443 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum",
      "-A -f 7 -6 -s rr -p 300 -M 64",
      "-a -f 7 -6 -r [2001:db8::5]:0 -g -w 1",
      "",
    ].join("\n");
    const { table, problems } = parseIpvsadmSave(text);
    expect(problems).toEqual([]);
    expect(table).toHaveLength(3);
    expect(table[1]!.service).toEqual(
      svc(
        tcp("192.0.2.11", 443),
        { scheduler: "sh", timeout: 600, netmask: 0xffffff00 },
        { persistent: true, schedFlag2: true },
      ),
    );
    expect(table[1]!.destinations[1]).toEqual(
      dst("198.51.100.8", 443, { forwarding: "Tunnel", tunnelType: "GUE", tunnelPort: 6080 }),
    );
    expect(table[2]!.service).toEqual(
      svc(fwm(7, "IPv6"), { scheduler: "rr", timeout: 300, netmask: 64 }, { persistent: true }),
    );
    expect(renderIpvsadmSave(table)).toBe(text);
  });

  it("applies ipvsadm's defaults: wlc, -p 360, -w 1, -g, destination port = service port", () => {
    const { table, problems } = parseIpvsadmSave(
      "ipvsadm -A -t 192.0.2.10:80 -p\nipvsadm -a -t 192.0.2.10:80 -r 198.51.100.5\n",
    );
    expect(problems).toEqual([]);
    expect(table).toEqual([
      {
        service: svc(tcp("192.0.2.10", 80), { scheduler: "wlc", timeout: 360 }, { persistent: true }),
        destinations: [dst("198.51.100.5", 80, { forwarding: "DirectRouting" })],
      },
    ]);
  });

  it("reads long options, --opt=value, comments and -S names", () => {
    const text = [
      "# saved by hand",
      "--add-service --udp-service 192.0.2.10:domain --scheduler=rr --persistent 60 --netmask 255.255.0.0 --ops --pe sip",
      "--add-server --udp-service 192.0.2.10:53 --real-server 198.51.100.5:5353 --masquerading --weight 3 -x 100 --l-threshold 10 # comment",
      "--add-service --fwmark-service 9 --ipv6 --sched-flags flag-2 -s lc",
      "--add-server -f 9 -6 --real-server 192.0.2.50 --ipip --tun-type gre --tun-csum",
    ].join("\n");
    const { table, problems } = parseIpvsadmSave(text);
    expect(problems).toEqual([]);
    expect(table[0]!.service).toEqual(
      svc(
        udp("192.0.2.10", 53),
        { scheduler: "rr", timeout: 60, netmask: 0xffff0000, persistenceEngine: "sip" },
        { persistent: true, onePacket: true },
      ),
    );
    expect(table[0]!.destinations).toEqual([
      dst("198.51.100.5", 5353, { weight: 3, upperThreshold: 100, lowerThreshold: 10 }),
    ]);
    expect(table[1]!.service).toEqual(svc(fwm(9, "IPv6"), { scheduler: "lc" }, { schedFlag2: true }));
    expect(table[1]!.destinations).toEqual([
      dst("192.0.2.50", 0, { forwarding: "Tunnel", tunnelType: "GRE", tunnelChecksum: "Checksum" }),
    ]);
  });

  it("applies -E, -e, -d, -D and -C in order", () => {
    const text = [
      "-A -t 192.0.2.10:80",
      "-a -t 192.0.2.10:80 -r 198.51.100.5:80 -m",
      "-a -t 192.0.2.10:80 -r 198.51.100.6:80 -m",
      "-E -t 192.0.2.10:80 -s rr",
      "-e -t 192.0.2.10:80 -r 198.51.100.5:80 -m -w 9",
      "-d -t 192.0.2.10:80 -r 198.51.100.6:80",
      "-A -t 192.0.2.11:80",
      "-D -t 192.0.2.11:80",
    ].join("\n");
    const { table, problems } = parseIpvsadmSave(text);
    expect(problems).toEqual([]);
    expect(renderIpvsadmSave(table)).toBe(
      "-A -t 192.0.2.10:80 -s rr\n-a -t 192.0.2.10:80 -r 198.51.100.5:80 -m -w 9\n",
    );
    expect(parseIpvsadmSave(`${text}\n-C\n`).table).toEqual([]);
  });

  const bad: { name: string; line: string; message: RegExp }[] = [
    { name: "unknown command", line: "-X -t 192.0.2.10:80", message: /unsupported command "-X"/ },
    {
      name: "unknown option",
      line: "-A -t 192.0.2.10:80 --frobnicate",
      message: /unknown option "--frobnicate"/,
    },
    { name: "host name", line: "-A -t www.example.com:80", message: /not an IP address/ },
    { name: "port out of range", line: "-A -t 192.0.2.10:70000", message: /unknown port "70000"/ },
    { name: "zero port without persistence", line: "-A -t 192.0.2.10:0", message: /zero port/ },
    { name: "one-packet on tcp", line: "-A -t 192.0.2.10:80 -o", message: /only for UDP/ },
    {
      name: "bad weight",
      line: "-a -t 192.0.2.10:80 -r 198.51.100.5 -w 70000",
      message: /illegal weight "70000"/,
    },
    { name: "weight on -A", line: "-A -t 192.0.2.10:80 -w 2", message: /option -w is not allowed with -A/ },
    {
      name: "sh flag with rr",
      line: "-A -t 192.0.2.10:80 -s rr -b sh-port",
      message: /incompatible scheduler flag/,
    },
    { name: "unknown flag", line: "-A -t 192.0.2.10:80 -b nope", message: /invalid scheduler flag "nope"/ },
    { name: "bad timeout", line: "-A -t 192.0.2.10:80 -p 0", message: /invalid timeout value "0"/ },
    {
      name: "bad v6 prefix",
      line: "-A -t [2001:db8::1]:80 -p 10 -M 129",
      message: /illegal ipv6 netmask "129"/,
    },
    { name: "-6 without -f", line: "-A -t 192.0.2.10:80 -6", message: /-6 used before -f/ },
    { name: "no service", line: "-A -s rr", message: /no service given/ },
    { name: "no real server", line: "-a -t 192.0.2.10:80 -m", message: /no real server given/ },
    {
      name: "mixed family without tunnel",
      line: "-a -t 192.0.2.10:80 -r [2001:db8::1]:80 -m",
      message: /different address family/,
    },
    {
      name: "tunnel option on NAT",
      line: "-a -t 192.0.2.10:80 -r 198.51.100.5 -m --tun-type gue",
      message: /conflict with forward/,
    },
    {
      name: "gue without port",
      line: "-a -t 192.0.2.10:80 -r 198.51.100.5 -i --tun-type gue",
      message: /needs --tun-port/,
    },
    {
      name: "remcsum with gre",
      line: "-a -t 192.0.2.10:80 -r 198.51.100.5 -i --tun-type gre --tun-remcsum",
      message: /illegal option --tun-remcsum with the gre/,
    },
    {
      name: "two checksums",
      line: "-a -t 192.0.2.10:80 -r 198.51.100.5 -i --tun-type gue --tun-port 1 --tun-csum --tun-nocsum",
      message: /conflicts with/,
    },
    { name: "missing value", line: "-A -t", message: /needs a value/ },
  ];
  for (const c of bad) {
    it(`reports a problem: ${c.name}`, () => {
      const { problems } = parseIpvsadmSave(`-A -t 192.0.2.10:80\n${c.line}\n`);
      expect(problems.length).toBeGreaterThan(0);
      expect(problems[0]!.line).toBe(2);
      expect(problems.map((p) => p.message).join("; ")).toMatch(c.message);
    });
  }

  it("reports duplicates and missing services without changing the table", () => {
    const { table, problems } = parseIpvsadmSave(
      [
        "-A -t 192.0.2.10:80",
        "-A -t 192.0.2.10:80 -s rr",
        "-a -t 192.0.2.99:80 -r 198.51.100.5",
        "-a -t 192.0.2.10:80 -r 198.51.100.5",
        "-a -t 192.0.2.10:80 -r 198.51.100.5 -w 7",
      ].join("\n"),
    );
    expect(problems).toEqual([
      { line: 2, message: "service TCP 192.0.2.10:80 already exists" },
      { line: 3, message: "service TCP 192.0.2.99:80 does not exist" },
      { line: 5, message: "real server 198.51.100.5:80 of TCP 192.0.2.10:80 already exists" },
    ]);
    expect(renderIpvsadmSave(table)).toBe(
      "-A -t 192.0.2.10:80 -s wlc\n-a -t 192.0.2.10:80 -r 198.51.100.5:80 -g -w 1\n",
    );
  });

  it("uses the service port for direct-routing real servers, as ipvsadm does, and says so", () => {
    const { table, problems } = parseIpvsadmSave(
      "-A -t 192.0.2.10:80\n-a -t 192.0.2.10:80 -r 198.51.100.5:8080 -g\n",
    );
    expect(table[0]!.destinations[0]!.key.port).toBe(80);
    expect(problems).toEqual([
      {
        line: 2,
        message: "ipvsadm uses the service port 80 for direct routing real servers; port 8080 ignored",
      },
    ]);
  });

  it("keeps a service whose -b ipvsadm printed empty, and says the flag is lost", () => {
    const { table, problems } = parseIpvsadmSave("-A -t 192.0.2.11:443 -s sh -b \n");
    expect(table).toEqual([{ service: svc(tcp("192.0.2.11", 443), { scheduler: "sh" }), destinations: [] }]);
    expect(problems).toEqual([{ line: 1, message: expect.stringMatching(/-b without flags.*lost/) }]);
  });

  it("reads back fwmarks that -S printed as negative numbers", () => {
    const table: IpvsTable = [{ service: svc(fwm(0xfffffffe)), destinations: [] }];
    const text = renderIpvsadmSave(table);
    expect(text).toBe("-A -f -2 -s wlc\n");
    expect(parseIpvsadmSave(text).table).toEqual(table);
  });
});

describe("normalizeIpvsadmSave", () => {
  it("sorts blocks and destination lines canonically and keeps each line's text", () => {
    const live = [
      "-A -t 192.168.0.1:80 -s rr",
      "-a -t 192.168.0.1:80 -r 10.0.0.2:80 -m -w 1",
      "-A -t 10.0.0.1:80 -s wlc",
      "-a -t 192.168.0.1:80 -r 10.0.0.1:80 -m -w 1",
      "-a -t 10.0.0.1:80 -r 192.168.5.5:80 -g -w 2",
      "-a -t 10.0.0.1:80 -r 10.9.9.9:80 -g -w 2",
      "",
    ].join("\n");
    expect(normalizeIpvsadmSave(live)).toBe(
      [
        "-A -t 10.0.0.1:80 -s wlc",
        "-a -t 10.0.0.1:80 -r 10.9.9.9:80 -g -w 2",
        "-a -t 10.0.0.1:80 -r 192.168.5.5:80 -g -w 2",
        "-A -t 192.168.0.1:80 -s rr",
        "-a -t 192.168.0.1:80 -r 10.0.0.1:80 -m -w 1",
        "-a -t 192.168.0.1:80 -r 10.0.0.2:80 -m -w 1",
        "",
      ].join("\n"),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Property: every table ipvsadm can express renders to text that parses back to the same table.

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join("."));
const ipv6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => bytesToIp(b, "IPv6"));
const address = (family: Family) => (family === "IPv4" ? ipv4 : ipv6);
const schedulers = IPVS_SCHEDULERS;

const serviceArb: fc.Arbitrary<IpvsService> = fc
  .record({
    family: fc.constantFrom<Family>("IPv4", "IPv6"),
    fwmark: fc.option(fc.integer({ min: 1, max: 0xffffffff }), { nil: undefined }),
    protocol: fc.constantFrom<Protocol>("TCP", "UDP", "SCTP"),
    port: fc.integer({ min: 0, max: 65535 }),
    scheduler: fc.constantFrom(...schedulers),
    persistent: fc.boolean(),
    timeout: fc.integer({ min: 1, max: 86400 * 31 }),
    mask4: fc.integer({ min: 0, max: 0xffffffff }),
    prefix6: fc.integer({ min: 1, max: 128 }),
    pe: fc.constantFrom("", "sip"),
    onePacket: fc.boolean(),
    f1: fc.boolean(),
    f2: fc.boolean(),
    f3: fc.boolean(),
    seed: fc.nat(),
  })
  .chain((r) =>
    address(r.family).map((addr): IpvsService => {
      const key: ServiceKey =
        r.fwmark !== undefined
          ? { kind: "fwmark", family: r.family, fwmark: r.fwmark }
          : { kind: "address", family: r.family, protocol: r.protocol, address: addr, port: r.port };
      const persistent = r.persistent || (key.kind === "address" && key.port === 0);
      const shOrMh = r.scheduler === "sh" || r.scheduler === "mh";
      return {
        key,
        config: {
          scheduler: r.scheduler,
          timeout: persistent ? r.timeout : 0,
          netmask: r.family === "IPv4" ? (persistent ? r.mask4 : 0xffffffff) : persistent ? r.prefix6 : 128,
          persistenceEngine: r.pe,
          flags: {
            persistent,
            onePacket: r.onePacket && (key.kind === "fwmark" || key.protocol === "UDP"),
            schedFlag1: r.f1,
            schedFlag2: r.f2,
            schedFlag3: r.f3 && !shOrMh,
          },
        },
      };
    }),
  );

function destArb(service: IpvsService): fc.Arbitrary<IpvsDestination> {
  return fc
    .record({
      method: fc.constantFrom("NAT", "DirectRouting", "Tunnel") as fc.Arbitrary<
        "NAT" | "DirectRouting" | "Tunnel"
      >,
      otherFamily: fc.boolean(),
      port: fc.integer({ min: 0, max: 65535 }),
      weight: fc.integer({ min: 0, max: 65535 }),
      tunnelType: fc.constantFrom("IPIP", "GUE", "GRE") as fc.Arbitrary<"IPIP" | "GUE" | "GRE">,
      tunnelPort: fc.integer({ min: 1, max: 65535 }),
      checksum: fc.constantFrom("None", "Checksum", "RemoteChecksum") as fc.Arbitrary<
        "None" | "Checksum" | "RemoteChecksum"
      >,
    })
    .chain((r) => {
      const family: Family =
        r.method === "Tunnel" && r.otherFamily
          ? service.key.family === "IPv4"
            ? "IPv6"
            : "IPv4"
          : service.key.family;
      const keepsPort = service.key.kind === "fwmark" || r.method === "NAT";
      const port = keepsPort ? r.port : service.key.kind === "address" ? service.key.port : 0;
      const tunnel =
        r.method !== "Tunnel" || r.tunnelType === "IPIP"
          ? NO_TUNNEL
          : {
              tunnelType: r.tunnelType,
              tunnelPort: r.tunnelType === "GUE" ? r.tunnelPort : 0,
              tunnelChecksum:
                r.tunnelType === "GRE" && r.checksum === "RemoteChecksum" ? "Checksum" : r.checksum,
            };
      return address(family).map(
        (addr): IpvsDestination => ({
          key: { family, address: addr, port },
          config: { forwarding: r.method, weight: r.weight, upperThreshold: 0, lowerThreshold: 0, ...tunnel },
        }),
      );
    });
}

const tableArb: fc.Arbitrary<IpvsTable> = fc
  .uniqueArray(serviceArb, { maxLength: 8, selector: (s) => JSON.stringify(s.key) })
  .chain((services) =>
    fc.tuple(
      ...services.map((service) =>
        fc
          .uniqueArray(destArb(service), {
            maxLength: 6,
            selector: (d) => `${d.key.family} ${d.key.address} ${d.key.port}`,
          })
          .map((destinations) => ({ service, destinations })),
      ),
    ),
  );

function sortedTable(table: IpvsTable): IpvsTable {
  const entries = table.map((e) => ({
    service: e.service,
    destinations: [...e.destinations].sort((a, b) =>
      JSON.stringify(a.key).localeCompare(JSON.stringify(b.key)),
    ),
  }));
  entries.sort((a, b) => JSON.stringify(a.service.key).localeCompare(JSON.stringify(b.service.key)));
  return entries;
}

describe("round trip", () => {
  it("parse(render(table)) is the table, with no problems", () => {
    fc.assert(
      fc.property(tableArb, (table) => {
        const text = renderIpvsadmSave(table);
        const parsed = parseIpvsadmSave(text);
        expect(parsed.problems).toEqual([]);
        expect(sortedTable(parsed.table)).toEqual(sortedTable(table));
        // Rendering is a fixed point up to the order of ipvsadm's comparator cycles (which depends on
        // the order destinations were added, as with real ipvsadm -R / -S).
        expect(normalizeIpvsadmSave(renderIpvsadmSave(parsed.table))).toBe(normalizeIpvsadmSave(text));
      }),
      { numRuns: 300 },
    );
  });
  it("normalize is idempotent and independent of line order within blocks", () => {
    fc.assert(
      fc.property(tableArb, (table) => {
        const text = renderIpvsadmSave(table);
        const normal = normalizeIpvsadmSave(text);
        expect(normalizeIpvsadmSave(normal)).toBe(normal);
        const reversed = `${text.trimEnd().split("\n").reverse().join("\n")}\n`;
        // Reversing puts -a lines before their -A line; normalize regroups them.
        expect(normalizeIpvsadmSave(reversed)).toBe(normal);
      }),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Against real ipvsadm 1.31 output recorded in a VM (see fixtures/ipvsadm-1.31/README.md).

const fixture = (name: string) =>
  readFileSync(new URL(`./fixtures/ipvsadm-1.31/${name}`, import.meta.url), "utf8");

describe("matches real ipvsadm 1.31 -Sn output", () => {
  it("byte for byte for a table covering every option (comparator consistent)", () => {
    const parsed = parseIpvsadmSave(fixture("restore-input.txt"));
    expect(parsed.problems).toEqual([]);
    expect(renderIpvsadmSave(parsed.table)).toBe(fixture("save-output.txt"));
  });
  it("after normalising, for a table where ipvsadm's comparator has cycles", () => {
    const parsed = parseIpvsadmSave(fixture("cyclic-restore-input.txt"));
    expect(parsed.problems).toEqual([]);
    expect(normalizeIpvsadmSave(renderIpvsadmSave(parsed.table))).toBe(
      normalizeIpvsadmSave(fixture("cyclic-save-output.txt")),
    );
  });
  it("byte for byte for the cyclic table too, given the kernel's dump order", () => {
    const table = parseIpvsadmSave(fixture("cyclic-restore-input.txt")).table;
    const byKey = new Map(table.map((e) => [serviceKeyString(e.service.key), e]));
    const dumpOrder = fixture("cyclic-kernel-dump-order.txt")
      .trimEnd()
      .split("\n")
      .map((line) => {
        const fwm = /^FWM\s+(-?\d+)( IPv6)?/.exec(line);
        if (fwm) return `FWM ${Number(fwm[1]) >>> 0} ${fwm[2] ? "IPv6" : "IPv4"}`;
        const m = /^(\w+)\s+\[?([^\]\s]+?)\]?:(\d+) /.exec(line)!;
        return `${m[1]} ${serviceKeyString(tcp(canonicalIp(m[2]!), Number(m[3]))).split(" ")[1]}`;
      });
    const inDumpOrder = dumpOrder.map((k) => {
      const entry = byKey.get(k);
      if (!entry) throw new Error(`no service ${k} in the restore input`);
      // The kernel lists destinations newest first.
      return { ...entry, destinations: [...entry.destinations].reverse() };
    });
    expect(inDumpOrder).toHaveLength(table.length);
    expect(renderIpvsadmSave(inDumpOrder, { tableOrder: "kernelDump" })).toBe(
      fixture("cyclic-save-output.txt"),
    );
  });
});
