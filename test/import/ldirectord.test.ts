import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  checkRealServerAgainstService,
  validateRealServer,
  validateVirtualService,
} from "../../src/api/v1alpha1/index.ts";
import { importLdirectord, type LdirectordImportOptions } from "../../src/import/ldirectord.ts";

const FILE = "/etc/ha.d/ldirectord.cf";

/** Every emitted object passes the API's validation, each RealServer also against its VirtualService. */
function expectAllValid(objects: Record<string, unknown>[]): void {
  const services = new Map<string, unknown>();
  for (const obj of objects) {
    const name = (obj.metadata as { name: string }).name;
    if (obj.kind === "VirtualService") {
      const r = validateVirtualService(obj);
      expect(r.ok ? [] : r.issues).toEqual([]);
      if (r.ok) services.set(name, r.value.spec);
    } else {
      const r = validateRealServer(obj);
      expect(r.ok ? [] : r.issues).toEqual([]);
      const vs = services.get((obj.spec as { virtualServiceRef: { name: string } }).virtualServiceRef.name);
      expect(vs).toBeDefined();
      if (r.ok && vs) expect(checkRealServerAgainstService(vs as never, r.value.spec)).toEqual([]);
    }
  }
}

function run(text: string, opts: Partial<LdirectordImportOptions> = {}) {
  const result = importLdirectord(text, { file: FILE, ...opts });
  expectAllValid(result.objects);
  return result;
}

const spec = (objects: Record<string, unknown>[], name: string) =>
  objects.find((o) => (o.metadata as { name: string }).name === name)?.spec as
    | Record<string, unknown>
    | undefined;
const messages = (notes: { line: number; message: string }[]) => notes.map((n) => `${n.line}: ${n.message}`);

describe("importLdirectord: a realistic configuration", () => {
  const CONFIG = `# Global Directives
checktimeout=3
checkinterval=5
autoreload=yes
logfile="/var/log/ldirectord.log"
quiescent=yes
emailalert="admin@example.com"

# A sample virtual with a fallback that will override the global setting
virtual=192.168.6.240:80
\treal=192.168.6.2:80 gate
\treal=192.168.6.3:80 gate 5
\treal=192.168.6.6:80 gate 2 "/other.html", "ok"
\tfallback=127.0.0.1:80 gate
\tservice=http
\trequest="index.html"
\treceive="Test Page"
\tvirtualhost=some.domain.com.au
\tscheduler=rr
\t#persistent=600
\tprotocol=tcp
\tchecktype=negotiate
`;

  it("writes the virtual, its real servers, the HTTP check, the fallback and the per-real check", () => {
    const r = run(CONFIG);
    expect(r.errors).toEqual([]);
    expect(r.objects.map((o) => (o.metadata as { name: string }).name)).toEqual([
      "tcp-192-168-6-240-80",
      "tcp-192-168-6-240-80-192-168-6-2-80",
      "tcp-192-168-6-240-80-192-168-6-3-80",
      "tcp-192-168-6-240-80-192-168-6-6-80",
    ]);
    expect(spec(r.objects, "tcp-192-168-6-240-80")).toEqual({
      address: "192.168.6.240",
      port: 80,
      protocol: "TCP",
      scheduler: "rr",
      forwarding: { method: "DirectRouting" },
      healthCheck: {
        type: "HTTP",
        path: "/index.html",
        expectBody: "Test Page",
        expectStatus: ["200-299"],
        host: "some.domain.com.au",
        intervalSeconds: 5,
        timeoutSeconds: 3,
        riseCount: 1,
        fallCount: 1,
        initialState: "Unhealthy",
        onFailure: "Quiesce",
      },
      sorryServer: { address: "127.0.0.1" },
    });
    expect(spec(r.objects, "tcp-192-168-6-240-80-192-168-6-3-80")).toEqual({
      virtualServiceRef: { name: "tcp-192-168-6-240-80" },
      address: "192.168.6.3",
      weight: 5,
    });
    const own = spec(r.objects, "tcp-192-168-6-240-80-192-168-6-6-80")?.healthCheck as Record<
      string,
      unknown
    >;
    expect(own).toMatchObject({ type: "HTTP", path: "/other.html", expectBody: "ok" });
  });

  it("reports the global settings without an equivalent with their lines", () => {
    const r = run(CONFIG);
    expect(messages(r.report)).toEqual([
      "4: autoreload has no equivalent (the operator follows its objects); ignored",
      "5: logfile has no equivalent (the agent logs to stderr); ignored",
      "7: emailalert has no equivalent (the operator reports through conditions, events and metrics); ignored",
    ]);
    expect(r.report.every((n) => n.file === FILE)).toBe(true);
  });

  it("uses namespace and name prefix as the ipvsadm import does", () => {
    const r = run(CONFIG, { namespace: "edge", namePrefix: "lb" });
    expect(r.objects[0]?.metadata).toEqual({ name: "lb-tcp-192-168-6-240-80", namespace: "edge" });
    expect(spec(r.objects, "lb-tcp-192-168-6-240-80-192-168-6-2-80")?.virtualServiceRef).toEqual({
      name: "lb-tcp-192-168-6-240-80",
    });
  });
});

describe("importLdirectord: virtual forms", () => {
  it("reads a fwmark virtual with persistence, netmask, schedflags and a checkport", () => {
    const r = run(`virtual=1
\treal=10.0.0.2 gate
\treal=10.0.0.3 gate
\tchecktype=connect
\tcheckport=443
\tscheduler=sh
\tschedflags=sh-port
\tpersistent=300
\tnetmask=255.255.255.0
`);
    expect(r.errors).toEqual([]);
    expect(spec(r.objects, "fwm-1")).toMatchObject({
      firewallMark: 1,
      family: "IPv4",
      scheduler: "sh",
      schedulerFlags: ["sh-port"],
      persistence: { timeoutSeconds: 300, netmask: "255.255.255.0" },
      forwarding: { method: "DirectRouting" },
      healthCheck: { type: "TCP", port: 443, intervalSeconds: 10, timeoutSeconds: 5, onFailure: "Remove" },
    });
    expect(r.objects.length).toBe(3);
  });

  it("reads IPv6 virtual6/real6/fallback6 and a udp default for port 53 with ops", () => {
    const r = run(`virtual6=[2001:db8::10]:53
    real6=[2001:db8::1]:53 masq 3
    real6=[2001:db8::2]:domain masq
    fallback6=[2001:db8::99]:5353 masq
    checktype=connect
    ops=yes
    persistent=60
    netmask=64
`);
    expect(r.errors).toEqual([]);
    expect(spec(r.objects, "udp-2001-db8--10-53")).toMatchObject({
      address: "2001:db8::10",
      protocol: "UDP",
      onePacket: true,
      persistence: { timeoutSeconds: 60, prefixLength: 64 },
      healthCheck: { type: "UDP" },
      sorryServer: { address: "2001:db8::99", port: 5353 },
    });
    expect(r.objects.filter((o) => o.kind === "RealServer").length).toBe(2);
    expect(messages(r.report)).toEqual([
      "5: checktype connect of a udp virtual is an ICMP ping in ldirectord; it becomes a UDP check (a datagram, no ICMP error expected)",
    ]);
  });

  it("reads port names, real ranges, thresholds, and the global fallback", () => {
    const r = run(`fallback=192.0.2.250 masq
virtual=10.1.1.1:smtp
\treal=10.2.2.1->10.2.2.3:25 masq 3 l:10 u:100
\tchecktype=connect
`);
    expect(r.errors).toEqual([]);
    expect(spec(r.objects, "tcp-10-1-1-1-25")).toMatchObject({
      port: 25,
      forwarding: { method: "NAT" },
      sorryServer: { address: "192.0.2.250" },
    });
    expect(spec(r.objects, "tcp-10-1-1-1-25-10-2-2-2-25")).toEqual({
      virtualServiceRef: { name: "tcp-10-1-1-1-25" },
      address: "10.2.2.2",
      weight: 3,
      upperThreshold: 100,
      lowerThreshold: 10,
    });
  });

  it("ends a block at an empty line: a real= after it is an error with its line", () => {
    const r = run(`virtual=192.0.2.1:80
\treal=10.0.0.1:80 masq
\tchecktype=on

\treal=10.0.0.2:80 masq
`);
    expect(messages(r.errors)).toEqual([
      '5: an indented "real" outside a virtual block (an empty or unindented line ends a block); ignored',
    ]);
    expect(r.objects.length).toBe(2);
    expect(spec(r.objects, "tcp-192-0-2-1-80")?.healthCheck).toEqual({ type: "None" });
  });
});

describe("importLdirectord: checks", () => {
  const check = (lines: string, port = "80", protocol = "") => {
    const r = run(
      `virtual=192.0.2.1:${port}\n    real=10.0.0.1:${port} masq\n${protocol ? `    protocol=${protocol}\n` : ""}${lines
        .split("\n")
        .map((l) => `    ${l}`)
        .join("\n")}\n`,
    );
    const vs = r.objects.find((o) => o.kind === "VirtualService")?.spec as Record<string, unknown>;
    return { r, hc: vs.healthCheck as Record<string, unknown> | undefined };
  };

  it.each([
    ["checktype=negotiate\nservice=http", "80", "", "HTTP"],
    ["service=https", "443", "", "HTTPS"],
    ["checktype=negotiate", "443", "", "HTTPS"],
    ["checktype=negotiate", "8080", "", "None"],
    ["service=none", "80", "", "None"],
    ["checktype=on", "80", "", "None"],
    ["checktype=connect", "80", "", "TCP"],
    ["checktype=connect", "80", "udp", "UDP"],
    ["checktype=ping", "80", "", "TCP"],
    ["service=dns", "53", "", "UDP"],
    ["service=dns\nprotocol=tcp", "53", "", "TCP"],
    ["service=smtp", "25", "", "TCP"],
    ["service=mysql", "3306", "", "TCP"],
    ['service=simpletcp\nrequest="PING"\nreceive="PONG"', "6379", "", "TCP"],
    ["service=http_proxy", "3128", "", "TCP"],
    ["service=sip", "5060", "udp", "UDP"],
    ["service=radius", "1812", "udp", "UDP"],
    ["checktype=3\nservice=http", "80", "", "HTTP"],
    ["checktype=external", "80", "", "Exec"],
    ["checktype=external-perl", "80", "", "Exec"],
  ])("%j on port %s %s -> %s", (lines, port, protocol, type) => {
    const { r, hc } = check(lines, port, protocol);
    expect(r.errors).toEqual([]);
    expect(hc?.type).toBe(type);
  });

  it("reports what a mapped check does not do", () => {
    expect(messages(check("service=smtp", "25").r.report)).toEqual([
      "1: negotiatetimeout 30 s becomes the check interval 10 s (the API's limit: the timeout is at most the interval)",
      "3: service smtp becomes a TCP check: the smtp dialogue is not checked",
    ]);
    expect(messages(check("checktype=ping").r.report)).toEqual([
      "3: checktype ping: ICMP echo has no equivalent; it becomes a TCP check of the real server's port",
    ]);
    expect(messages(check("checktype=2").r.report)).toContain(
      "3: checktype 2 (connect checks, a negotiate check every 2): every probe is the HTTP check",
    );
  });

  it("gives external checks ldirectord's four arguments", () => {
    const { hc } = check('checktype=external\ncheckcommand="/usr/local/bin/check web"\nchecktimeout=4');
    expect(hc).toMatchObject({
      type: "Exec",
      command: [
        "/bin/sh",
        "-c",
        `exec '/usr/local/bin/check web' 192.0.2.1 80 "$IPVS_RS_ADDRESS" "$IPVS_RS_PORT"`,
      ],
      timeoutSeconds: 4,
    });
  });

  it("uses negotiatetimeout for negotiate checks, clamped to the interval (reported)", () => {
    const { r, hc } = check("service=http");
    expect(hc).toMatchObject({ intervalSeconds: 10, timeoutSeconds: 10 });
    expect(messages(r.report)).toEqual([
      "1: negotiatetimeout 30 s becomes the check interval 10 s (the API's limit: the timeout is at most the interval)",
    ]);
  });

  it("takes failurecount, quiescent and the timeouts from the virtual over the globals", () => {
    const r = run(`checkinterval=20
failurecount=2
quiescent=yes
negotiatetimeout=8
virtual=192.0.2.1:80
    real=10.0.0.1:80 masq
    failurecount=4
    quiescent=no
    httpmethod=HEAD
    checkinterval=3
`);
    const hc = spec(r.objects, "tcp-192-0-2-1-80")?.healthCheck;
    expect(hc).toMatchObject({ intervalSeconds: 20, timeoutSeconds: 8, fallCount: 4, onFailure: "Remove" });
    expect(messages(r.report)).toEqual([
      "9: httpmethod HEAD has no equivalent: the check sends GET",
      "10: checkinterval in a virtual is ignored by ldirectord unless fork = yes; the global value is used",
    ]);
  });

  it("imports checktype off as disabled real servers without a fallback (reported)", () => {
    const r = run(`virtual=192.0.2.1:80
    real=10.0.0.1:80 masq
    fallback=127.0.0.1:80
    checktype=off
`);
    expect(spec(r.objects, "tcp-192-0-2-1-80")?.sorryServer).toBeUndefined();
    expect(spec(r.objects, "tcp-192-0-2-1-80-10-0-0-1-80")?.enabled).toBe(false);
    expect(r.report.map((n) => n.line)).toEqual([4]);
  });

  it("reports the virtual settings without an equivalent", () => {
    const r = run(`virtual=192.0.2.1:3306
    real=10.0.0.1:3306 masq
    service=mysql
    login="app"
    passwd="secret"
    database="db"
    emailalert="ops@example.com"
    fallbackcommand="/bin/notify"
    checkcount=3
`);
    expect(r.errors).toEqual([]);
    expect(r.report.map((n) => n.line)).toEqual([1, 3, 4, 5, 6, 7, 8, 9]);
    expect(r.report.map((n) => n.message).join("\n")).not.toContain("secret");
  });
});

describe("importLdirectord: errors", () => {
  it("reports invalid input with file:line and still imports what parses", () => {
    const r = run(`virtual=192.0.2.1:80
    real=10.0.0.1:80 masq
    real=10.0.0.300:80 masq
    real=10.0.0.2:80 tunnel
    real=web1.example.com:80 masq
    real6=[2001:db8::1]:80 masq
    scheduler=fastest
virtual=192.0.2.2:80
    real=10.0.0.3:80 gate
    protocol=sctp
virtual=[2001:db8::1]:80
virtual6=192.0.2.3:80
virtual=192.0.2.4:80
    real=10.0.0.4:80 gate
    checktype=sometimes
    service=gopher
virtual=192.0.2.4:80
real=10.0.0.9:80 gate
bogus=1
`);
    expect(r.errors.map((e) => `${e.file}:${e.line}`)).toEqual(
      [3, 4, 5, 6, 7, 10, 11, 12, 15, 16, 17, 18, 19].map((l) => `${FILE}:${l}`),
    );
    expect(r.objects.map((o) => (o.metadata as { name: string }).name)).toEqual([
      "tcp-192-0-2-4-80",
      "tcp-192-0-2-4-80-10-0-0-4-80",
    ]);
  });

  it("never throws and every object validates, on mutated configurations", () => {
    const base = `checkinterval=5
quiescent=no
fallback=127.0.0.1:80
virtual=192.0.2.1:80
\treal=10.0.0.1:80 masq 2 "/a", "b" l:1 u:5
\treal=10.0.0.2->10.0.0.4 gate
\tservice=http
\tpersistent=30
\tnetmask=255.255.0.0
\tscheduler=mh
\tschedflags=mh-port,mh-fallback
virtual=7
\treal=10.0.0.5 ipip
\tchecktype=external
virtual6=[2001:db8::1]:443
\treal6=[2001:db8::2]:443 masq
\tfallback6=[2001:db8::3]
`;
    const lines = base.split("\n");
    const pieces = [
      "=",
      " ",
      "\t",
      "#",
      '"',
      ":",
      "->",
      "[",
      "]",
      "0",
      "99999999999",
      "-1",
      "gate",
      "udp",
      "virtual=",
      "real=",
      "\n",
      "\r",
      "virtual6=[::]:0",
      "checktype=9",
      'receive=""',
      'request="a b"',
    ];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(lines.length - 1), fc.nat(80), fc.constantFrom(...pieces), fc.boolean()), {
          maxLength: 8,
        }),
        (edits) => {
          const copy = [...lines];
          for (const [i, at, piece, replace] of edits) {
            const l = copy[i] as string;
            copy[i] = replace
              ? l.slice(0, at) + piece + l.slice(at + piece.length)
              : l.slice(0, at) + piece + l.slice(at);
          }
          run(copy.join("\n"));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("never throws on arbitrary text", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        run(text);
        run(`virtual=192.0.2.1:80\n    ${text}`);
      }),
      { numRuns: 300 },
    );
  });
});
