/**
 * parseIpvsadmList: real ipvsadm 1.31 listings (test/model/fixtures/ipvsadm-1.31-listings, captured in
 * the VM) read back to the table `ipvsadm -Sn` shows, every column form, errors with line numbers, and
 * mutated listings that never make it throw.
 */
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseIpvsadmList } from "../../src/model/ipvsadm-list-parse.ts";
import { parseIpvsadmSave } from "../../src/model/ipvsadm-parse.ts";
import { FALLBACK_SERVICE_NAMES, parseEtcServices } from "../../src/model/service-names.ts";
import { sortTable } from "../../src/vocabulary/order.ts";
import type { IpvsTable } from "../../src/vocabulary/table.ts";
import { NO_FLAGS, NO_TUNNEL, serviceKeyString } from "../../src/vocabulary/table.ts";

const DIR = "test/model/fixtures/ipvsadm-1.31-listings";
const fixture = (name: string) => readFileSync(`${DIR}/${name}`, "utf8");
const servicePort = parseEtcServices(FALLBACK_SERVICE_NAMES);
const TITLE =
  "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
const THRESHOLDS_TITLE =
  "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n  -> RemoteAddress:Port\n";

/** The table of Sn.txt as a listing can show it: tunnels as ipip, thresholds as given. */
function expectedFromSave(thresholds: Record<string, [number, number]> = {}): IpvsTable {
  const saved = parseIpvsadmSave(fixture("Sn.txt"));
  // The bare "-b " ipvsadm -S prints for sh with flag 3 alone (the listing shows "sh ()").
  expect(saved.problems.map((p) => p.line)).toEqual([41]);
  return sortTable(
    saved.table.map((entry) => ({
      service:
        serviceKeyString(entry.service.key) === "UDP 192.0.2.50:53"
          ? {
              ...entry.service,
              config: { ...entry.service.config, flags: { ...NO_FLAGS, schedFlag3: true } },
            }
          : entry.service,
      destinations: entry.destinations.map((d) => {
        const [upper, lower] = thresholds[`${d.key.address}:${d.key.port}`] ?? [0, 0];
        const tunnel =
          d.config.forwarding === "Tunnel"
            ? { tunnelType: "IPIP" as const, tunnelPort: 0, tunnelChecksum: "None" as const }
            : NO_TUNNEL;
        return {
          key: d.key,
          config: { ...d.config, ...tunnel, upperThreshold: upper, lowerThreshold: lower },
        };
      }),
    })),
  );
}

const THRESHOLDS: Record<string, [number, number]> = {
  "198.51.100.200:80": [5, 2],
  "198.51.100.11:8080": [1000, 800],
  "198.51.100.102:80": [100, 0],
  "198.51.100.90:3868": [1000, 800],
};
/** Lines of Ln.txt (and L.txt) with a Tunnel destination: each gets a "tunnel type not shown" problem. */
const TUNNEL_LINES = [32, 34, 35, 36, 37, 38, 39, 59];

describe("parseIpvsadmList on real ipvsadm 1.31 listings", () => {
  it("reads ipvsadm -Ln back to the table ipvsadm -Sn shows (tunnels as ipip, reported)", () => {
    const parsed = parseIpvsadmList(fixture("Ln.txt"));
    expect(parsed.problems.map((p) => p.line)).toEqual(TUNNEL_LINES);
    expect(parsed.problems[0]!.message).toContain("does not show the tunnel type");
    expect(sortTable(parsed.table)).toEqual(expectedFromSave());
  });

  it("merges ipvsadm -Ln with -Ln --thresholds and -Ln --persistent-conn given in one input", () => {
    const ln = fixture("Ln.txt");
    const text = ln + fixture("Ln-thresholds.txt") + fixture("Ln-persistent-conn.txt");
    const parsed = parseIpvsadmList(text);
    expect(parsed.problems.map((p) => p.line)).toEqual(TUNNEL_LINES);
    expect(sortTable(parsed.table)).toEqual(expectedFromSave(THRESHOLDS));
  });

  it("reports every destination of a --thresholds listing alone (no Forward column) and keeps the services", () => {
    const parsed = parseIpvsadmList(fixture("Ln-thresholds.txt"));
    expect(parsed.problems.length).toBe(29);
    expect(parsed.problems.every((p) => p.message.includes("no Forward column"))).toBe(true);
    expect(parsed.table.length).toBe(29);
    expect(parsed.table.every((e) => e.destinations.length === 0)).toBe(true);
  });

  it("reads ipvsadm -L (names): ports through the services table, a host name reported with its real servers", () => {
    const parsed = parseIpvsadmList(fixture("L.txt") + fixture("L-thresholds.txt"), { servicePort });
    const lines = fixture("L.txt").split("\n").length - 1;
    expect(parsed.problems.map((p) => p.line)).toEqual([
      5,
      6,
      7,
      ...TUNNEL_LINES,
      lines + 5,
      lines + 6,
      lines + 7,
    ]);
    expect(parsed.problems[0]!.message).toMatch(/"localhost" is a host name/);
    expect(parsed.problems[1]!.message).toMatch(/service of line 5 was not imported/);
    const expected = expectedFromSave(THRESHOLDS).filter(
      (e) => serviceKeyString(e.service.key) !== "TCP 127.0.0.1:80",
    );
    expect(sortTable(parsed.table)).toEqual(expected);
  });

  it("reports port names when no services table is given", () => {
    const parsed = parseIpvsadmList("TCP  192.0.2.10:http rr\n");
    expect(parsed.problems).toEqual([
      { line: 1, message: 'virtual service: unknown tcp service name "http" (not in the services database)' },
    ]);
  });

  it("reads one service listed alone (no version line)", () => {
    const parsed = parseIpvsadmList(fixture("Ln-one-service.txt"));
    expect(parsed.problems).toEqual([]);
    expect(parsed.table.length).toBe(1);
    expect(parsed.table[0]!.destinations.map((d) => d.config.weight)).toEqual([1, 65535]);
  });

  it("imports nothing from --stats, --rate, -c and --timeout listings, saying so once", () => {
    for (const [name, pattern] of [
      ["Ln-stats.txt", /--stats listing shows counters/],
      ["Ln-rate.txt", /--rate listing shows counters/],
      ["Lnc.txt", /connection listing/],
      ["Ln-timeout.txt", /timeouts/],
    ] as const) {
      const parsed = parseIpvsadmList(fixture(name));
      expect(parsed.table).toEqual([]);
      expect(parsed.problems.length).toBe(1);
      expect(parsed.problems[0]!.message).toMatch(pattern);
    }
  });
});

describe("parseIpvsadmList column forms", () => {
  const one = (lines: string, title = TITLE) => parseIpvsadmList(title + lines);

  it("reads scheduler flags, persistence, mask, pe and ops", () => {
    const parsed = one(
      [
        "TCP  192.0.2.1:80 sh (sh-fallback,sh-port) persistent 600 mask 255.255.255.0",
        "TCP  192.0.2.2:80 mh (mh-port)",
        "TCP  192.0.2.3:80 rr (flag-1,flag-3)",
        "UDP  192.0.2.4:53 sh ()",
        "UDP  192.0.2.5:5060 rr persistent 60 pe sip ops",
        "TCP  [2001:db8::1]:443 wlc persistent 120 mask 64",
        "SCTP 192.0.2.6:3868 wrr",
        "TCP  192.0.2.7:0 lc persistent 300",
      ].join("\n"),
    );
    expect(parsed.problems).toEqual([]);
    const byKey = Object.fromEntries(
      parsed.table.map((e) => [serviceKeyString(e.service.key), e.service.config]),
    );
    expect(byKey["TCP 192.0.2.1:80"]).toEqual({
      scheduler: "sh",
      flags: { ...NO_FLAGS, persistent: true, schedFlag1: true, schedFlag2: true },
      timeout: 600,
      netmask: 0xffffff00,
      persistenceEngine: "",
    });
    expect(byKey["TCP 192.0.2.2:80"]!.flags).toEqual({ ...NO_FLAGS, schedFlag2: true });
    expect(byKey["TCP 192.0.2.3:80"]!.flags).toEqual({ ...NO_FLAGS, schedFlag1: true, schedFlag3: true });
    expect(byKey["UDP 192.0.2.4:53"]!.flags).toEqual({ ...NO_FLAGS, schedFlag3: true });
    expect(byKey["UDP 192.0.2.5:5060"]).toMatchObject({
      flags: { ...NO_FLAGS, persistent: true, onePacket: true },
      timeout: 60,
      persistenceEngine: "sip",
    });
    expect(byKey["TCP [2001:db8::1]:443"]).toMatchObject({ timeout: 120, netmask: 64 });
    expect(byKey["SCTP 192.0.2.6:3868"]).toMatchObject({ scheduler: "wrr", netmask: 0xffffffff });
    expect(byKey["TCP 192.0.2.7:0"]).toMatchObject({ timeout: 300 });
  });

  it("reads firewall-mark services: IPv4 with or without the family word, IPv6, negative marks", () => {
    const parsed = one(["FWM  7 lblc", "FWM  8 IPv6 sed", "FWM  9 IPv4 rr", "FWM  -1 rr"].join("\n"));
    expect(parsed.problems).toEqual([]);
    expect(parsed.table.map((e) => e.service.key)).toEqual([
      { kind: "fwmark", family: "IPv4", fwmark: 7 },
      { kind: "fwmark", family: "IPv6", fwmark: 8 },
      { kind: "fwmark", family: "IPv4", fwmark: 9 },
      { kind: "fwmark", family: "IPv4", fwmark: 4294967295 },
    ]);
    expect(parsed.table[1]!.service.config.netmask).toBe(128);
  });

  it("reads every forwarding column and weights including 0; Local is direct routing, as ipvsadm -S prints it", () => {
    const parsed = one(
      [
        "TCP  192.0.2.1:80 rr",
        "  -> 198.51.100.1:8080             Masq    0      0          0         ",
        "  -> 198.51.100.2:80               Route   65535  12         7         ",
        "  -> 198.51.100.3:80               Local   1      0          0         ",
        "  -> [2001:db8::3]:80              Tunnel  2      0          0         ",
      ].join("\n"),
    );
    expect(parsed.problems).toEqual([{ line: 7, message: expect.stringContaining("tunnel type") }]);
    expect(
      parsed.table[0]!.destinations.map((d) => [d.key.address, d.config.forwarding, d.config.weight]),
    ).toEqual([
      ["198.51.100.1", "NAT", 0],
      ["198.51.100.2", "DirectRouting", 65535],
      ["198.51.100.3", "DirectRouting", 1],
      ["2001:db8::3", "Tunnel", 2],
    ]);
  });

  it("reads a listing without title lines when the Forward column shows which columns they are", () => {
    const parsed = parseIpvsadmList("TCP  192.0.2.1:80 rr\n  -> 198.51.100.1:80  Route 3 0 0\n");
    expect(parsed.problems).toEqual([]);
    expect(parsed.table[0]!.destinations[0]!.config.weight).toBe(3);
    const numbers = parseIpvsadmList("TCP  192.0.2.1:80 rr\n  -> 198.51.100.1:80  5 2 0 0\n");
    expect(numbers.problems).toEqual([{ line: 2, message: expect.stringContaining("no column titles") }]);
  });

  it("reports what ipvsadm would never print, with line numbers, and imports the rest", () => {
    const text = [
      "IP Virtual Server version 1.2.1 (size=4096)", // 1
      "Prot LocalAddress:Port Scheduler Flags", // 2
      "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn", // 3
      "  -> 198.51.100.9:80               Route   1      0          0", // 4 no service yet
      "TCP  192.0.2.1:80 rr", // 5
      "  -> 198.51.100.1:80               (null)  1      0          0", // 6
      "  -> 198.51.100.2:80               Bounce  1      0          0", // 7
      "  -> 198.51.100.3:80               Route   -1     0          0", // 8
      "  -> 198.51.100.4:80               Route   1      0", // 9
      "  -> 198.51.100.5:80               Route   1      0          0", // 10 fine
      "  -> 198.51.100.5:80               Route   1      0          0", // 11 twice
      "  -> [2001:db8::5]:80              Route   1      0          0", // 12 family
      "garbage here", // 13
      "TCP  192.0.2.2:99999 rr", // 14
      "  -> 198.51.100.6:80               Route   1      0          0", // 15 under a rejected service
      "TCP  192.0.2.3:80 rr (sh-port)", // 16
      "TCP  192.0.2.4:80 rr persistent 0", // 17
      "TCP  192.0.2.5:80 rr ops extra", // 18
      "TCP  192.0.2.1:80 rr", // 19 twice in one listing
      "UDP  192.0.2.6:53 rr ()", // 20
      "FWM  0 rr", // 21
      "TCP  192.0.2.7:80", // 22
      "TCP  [192.0.2.8]:80 rr", // 23
      "TCP  192.0.2.9:80 rr persistent 10 mask 255.0.255.0", // 24 non-contiguous: read, the import reports it
    ].join("\n");
    const parsed = parseIpvsadmList(text);
    expect(parsed.problems.map((p) => p.line)).toEqual([
      4, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
    ]);
    const message = (line: number) => parsed.problems.find((p) => p.line === line)!.message;
    expect(message(6)).toMatch(/"\(null\)"/);
    expect(message(7)).toMatch(/unknown forwarding method "Bounce"/);
    expect(message(12)).toMatch(/only for tunneling/);
    expect(message(13)).toMatch(/not a line of an ipvsadm listing/);
    expect(message(15)).toMatch(/service of line 14 was not imported/);
    expect(parsed.table.map((e) => serviceKeyString(e.service.key))).toEqual([
      "TCP 192.0.2.1:80",
      "TCP 192.0.2.9:80",
    ]);
    expect(parsed.table[0]!.destinations.map((d) => d.key.address)).toEqual(["198.51.100.5"]);
  });

  it("reports a service listed with other settings in a second listing, and conflicting columns", () => {
    const text = `${TITLE}TCP  192.0.2.1:80 rr\n  -> 198.51.100.1:80  Route 1 0 0\n${TITLE}TCP  192.0.2.1:80 wlc\n  -> 198.51.100.1:80  Masq 2 0 0\n`;
    const parsed = parseIpvsadmList(text);
    expect(parsed.problems.map((p) => p.line)).toEqual([7, 8, 8]);
    expect(parsed.table[0]!.service.config.scheduler).toBe("rr");
    expect(parsed.table[0]!.destinations[0]!.config).toMatchObject({
      forwarding: "DirectRouting",
      weight: 1,
    });
  });

  it("reports names ipvsadm may have cut (33 characters for a service, 28 for a real server)", () => {
    const names = parseEtcServices("averyveryverylongname 80/tcp\n");
    const parsed = parseIpvsadmList(
      `${TITLE}TCP  192.0.2.100:averyveryverylongname rr\nTCP  192.0.2.1:80 rr\n  -> 198.51.100.100:averyveryverylo Route 1 0 0\n`,
      { servicePort: names },
    );
    expect(parsed.problems.map((p) => p.line)).toEqual([3, 5]);
    expect(parsed.problems[0]!.message).toMatch(/cuts this column at 33 characters/);
    expect(parsed.problems[1]!.message).toMatch(/cuts this column at 28 characters/);
  });

  it("reads thresholds and persistent-conn columns", () => {
    const text = `${TITLE}TCP  192.0.2.1:80 rr\n  -> 198.51.100.1:80  Masq 4 0 0\n${THRESHOLDS_TITLE}TCP  192.0.2.1:80 rr\n  -> 198.51.100.1:80  1000 800 0 0\n`;
    const parsed = parseIpvsadmList(text);
    expect(parsed.problems).toEqual([]);
    expect(parsed.table[0]!.destinations[0]!.config).toMatchObject({
      forwarding: "NAT",
      weight: 4,
      upperThreshold: 1000,
      lowerThreshold: 800,
    });
  });
});

describe("parseIpvsadmList never throws", () => {
  const base = [fixture("Ln.txt"), fixture("Ln-thresholds.txt"), fixture("L.txt")].join("").split("\n");

  it("on mutated real listings (lines dropped, duplicated, cut, characters changed)", () => {
    const mutation = fc.record({
      line: fc.nat(base.length - 1),
      kind: fc.constantFrom("drop", "dup", "cut", "char", "swap"),
      at: fc.nat(120),
      ch: fc.constantFrom(" ", ":", "[", "]", "(", ")", "-", "0", "9", "x", "\t", "\\", "#", "->", "."),
    });
    fc.assert(
      fc.property(fc.array(mutation, { maxLength: 12 }), (mutations) => {
        const lines = [...base];
        for (const m of mutations) {
          const i = m.line % Math.max(lines.length, 1);
          const line = lines[i] ?? "";
          const at = m.at % (line.length + 1);
          if (m.kind === "drop") lines.splice(i, 1);
          else if (m.kind === "dup") lines.splice(i, 0, line);
          else if (m.kind === "cut") lines[i] = line.slice(0, at);
          else if (m.kind === "char") lines[i] = line.slice(0, at) + m.ch + line.slice(at + 1);
          else lines.splice(i, 1, lines[(i + 1) % lines.length] ?? "", line);
        }
        const text = lines.join("\n");
        const parsed = parseIpvsadmList(text, { servicePort });
        const count = text.split("\n").length;
        for (const p of parsed.problems) {
          expect(p.line).toBeGreaterThanOrEqual(1);
          expect(p.line).toBeLessThanOrEqual(count);
        }
      }),
      { numRuns: 150 },
    );
  });

  it("on arbitrary text", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        parseIpvsadmList(text, { servicePort });
        parseIpvsadmList(`${TITLE}${text}`);
      }),
      { numRuns: 300 },
    );
  });
});
