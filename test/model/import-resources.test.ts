import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import {
  checkRealServerAgainstService,
  validateRealServer,
  validateVirtualService,
} from "../../src/api/v1alpha1/index.ts";
import { importResources, renderResourcesYaml } from "../../src/model/import-resources.ts";
import { parseIpvsadmSave } from "../../src/model/ipvsadm-parse.ts";
import type { IpvsTable } from "../../src/vocabulary/table.ts";

function imported(text: string, opts = {}) {
  const parsed = parseIpvsadmSave(text);
  expect(parsed.problems).toEqual([]);
  return importResources(parsed.table, opts);
}

/** Every object passes the API's own validation, and every RealServer fits its VirtualService. */
function expectValid(objects: Record<string, unknown>[]) {
  const services = new Map<string, unknown>();
  for (const o of objects) {
    if (o.kind === "VirtualService") {
      const r = validateVirtualService(o);
      if (!r.ok) throw new Error(`${JSON.stringify(o)}: ${JSON.stringify(r.issues)}`);
      services.set(r.value.metadata.name, r.value.spec);
    } else {
      const r = validateRealServer(o);
      if (!r.ok) throw new Error(`${JSON.stringify(o)}: ${JSON.stringify(r.issues)}`);
      const vs = services.get(r.value.spec.virtualServiceRef.name);
      expect(vs, `VirtualService of ${r.value.metadata.name}`).toBeDefined();
      // biome-ignore lint/suspicious/noExplicitAny: the validated spec type
      expect(checkRealServerAgainstService(vs as any, r.value.spec)).toEqual([]);
    }
  }
}

describe("importResources", () => {
  it("turns a NAT service into a VirtualService and RealServers", () => {
    const { objects, problems } = imported(
      [
        "-A -t 192.0.2.10:80 -s wlc",
        "-a -t 192.0.2.10:80 -r 198.51.100.6:8080 -m -w 0 -x 100 -y 10",
        "-a -t 192.0.2.10:80 -r 198.51.100.5:8080 -m -w 1",
      ].join("\n"),
      { namespace: "edge" },
    );
    expect(problems).toEqual([]);
    expect(objects).toEqual([
      {
        apiVersion: "ipvs.dev/v1alpha1",
        kind: "VirtualService",
        metadata: { name: "tcp-192-0-2-10-80", namespace: "edge" },
        spec: {
          address: "192.0.2.10",
          port: 80,
          protocol: "TCP",
          scheduler: "wlc",
          forwarding: { method: "NAT" },
        },
      },
      {
        apiVersion: "ipvs.dev/v1alpha1",
        kind: "RealServer",
        metadata: { name: "tcp-192-0-2-10-80-198-51-100-5-8080", namespace: "edge" },
        spec: {
          virtualServiceRef: { name: "tcp-192-0-2-10-80" },
          address: "198.51.100.5",
          port: 8080,
          weight: 1,
        },
      },
      {
        apiVersion: "ipvs.dev/v1alpha1",
        kind: "RealServer",
        metadata: { name: "tcp-192-0-2-10-80-198-51-100-6-8080", namespace: "edge" },
        spec: {
          virtualServiceRef: { name: "tcp-192-0-2-10-80" },
          address: "198.51.100.6",
          port: 8080,
          weight: 0,
          upperThreshold: 100,
          lowerThreshold: 10,
        },
      },
    ]);
    expectValid(objects);
  });

  it("maps persistence, scheduler flags, one-packet and the sip engine", () => {
    const { objects, problems } = imported(
      [
        "-A -t 192.0.2.11:443 -s sh -p 600 -M 255.255.255.0 -b sh-fallback,sh-port",
        "-A -u 192.0.2.12:5060 -s rr -p 60 --pe sip -o",
        "-A -t [2001:db8::10]:80 -s mh -p 300 -M 64 -b mh-port",
        "-A -f 7 -6 -s rr -p 360",
        "-A -f 8 -s lc",
      ].join("\n"),
    );
    expect(problems).toEqual([]);
    expect(objects.map((o) => [(o.metadata as { name: string }).name, o.spec])).toEqual([
      [
        "tcp-192-0-2-11-443",
        {
          address: "192.0.2.11",
          port: 443,
          protocol: "TCP",
          scheduler: "sh",
          schedulerFlags: ["sh-fallback", "sh-port"],
          persistence: { timeoutSeconds: 600, netmask: "255.255.255.0" },
        },
      ],
      [
        "udp-192-0-2-12-5060",
        {
          address: "192.0.2.12",
          port: 5060,
          protocol: "UDP",
          scheduler: "rr",
          persistence: { timeoutSeconds: 60, engine: "sip" },
          onePacket: true,
        },
      ],
      // The one canonical order (src/vocabulary/order.ts): IPv4 before IPv6, then addresses before marks.
      ["fwm-8", { firewallMark: 8, family: "IPv4", scheduler: "lc" }],
      [
        "tcp-2001-db8--10-80",
        {
          address: "2001:db8::10",
          port: 80,
          protocol: "TCP",
          scheduler: "mh",
          schedulerFlags: ["mh-port"],
          persistence: { timeoutSeconds: 300, prefixLength: 64 },
        },
      ],
      [
        "fwm-7-ipv6",
        { firewallMark: 7, family: "IPv6", scheduler: "rr", persistence: { timeoutSeconds: 360 } },
      ],
    ]);
    expectValid(objects);
  });

  it("sets the service forwarding to the most common method and overrides the others per real server", () => {
    const { objects, problems } = imported(
      [
        "-A -t 192.0.2.10:80 -s rr",
        "-a -t 192.0.2.10:80 -r 198.51.100.1 -g",
        "-a -t 192.0.2.10:80 -r 198.51.100.2 -g",
        "-a -t 192.0.2.10:80 -r 198.51.100.3 -i --tun-type gue --tun-port 6080 --tun-csum",
        "-a -t 192.0.2.10:80 -r 198.51.100.4:8080 -m",
        "-a -t 192.0.2.10:80 -r 2001:db8::9 -i --tun-type gre",
        "-a -t 192.0.2.10:80 -r 198.51.100.5 -i",
      ].join("\n"),
    );
    expect(problems).toEqual([]);
    const [vs, ...rs] = objects;
    expect((vs!.spec as { forwarding: unknown }).forwarding).toEqual({ method: "DirectRouting" });
    expect(rs.map((o) => o.spec)).toEqual([
      { virtualServiceRef: { name: "tcp-192-0-2-10-80" }, address: "198.51.100.1", weight: 1 },
      { virtualServiceRef: { name: "tcp-192-0-2-10-80" }, address: "198.51.100.2", weight: 1 },
      {
        virtualServiceRef: { name: "tcp-192-0-2-10-80" },
        address: "198.51.100.3",
        weight: 1,
        forwarding: { method: "Tunnel", tunnel: { type: "GUE", port: 6080, checksum: "Checksum" } },
      },
      {
        virtualServiceRef: { name: "tcp-192-0-2-10-80" },
        address: "198.51.100.4",
        port: 8080,
        weight: 1,
        forwarding: { method: "NAT" },
      },
      {
        virtualServiceRef: { name: "tcp-192-0-2-10-80" },
        address: "198.51.100.5",
        weight: 1,
        forwarding: { method: "Tunnel" },
      },
      {
        virtualServiceRef: { name: "tcp-192-0-2-10-80" },
        address: "2001:db8::9",
        weight: 1,
        forwarding: { method: "Tunnel", tunnel: { type: "GRE" } },
      },
    ]);
    expect((rs[5]!.metadata as { name: string }).name).toBe("tcp-192-0-2-10-80-2001-db8--9-80");
    expectValid(objects);
  });

  it("breaks a tie between methods towards NAT", () => {
    const { objects } = imported(
      [
        "-A -t 192.0.2.10:80",
        "-a -t 192.0.2.10:80 -r 198.51.100.1 -g",
        "-a -t 192.0.2.10:80 -r 198.51.100.2 -m",
      ].join("\n"),
    );
    expect((objects[0]!.spec as { forwarding: unknown }).forwarding).toEqual({ method: "NAT" });
  });

  it("omits the port of fwmark real servers on port 0 and keeps other ports", () => {
    const { objects } = imported(
      ["-A -f 7 -s rr", "-a -f 7 -r 198.51.100.5 -g", "-a -f 7 -r 198.51.100.6:8080 -g"].join("\n"),
    );
    expect(
      objects
        .slice(1)
        .map((o) => [(o.metadata as { name: string }).name, (o.spec as { port?: number }).port]),
    ).toEqual([
      ["fwm-7-198-51-100-5-0", undefined],
      ["fwm-7-198-51-100-6-8080", 8080],
    ]);
    expectValid(objects);
  });

  it("applies a name prefix and cuts long names with a stable hash suffix", () => {
    const text =
      "-A -t [2001:db8:1234:5678:9abc:def0:1234:5678]:443\n-a -t [2001:db8:1234:5678:9abc:def0:1234:5678]:443 -r [2001:db8:1234:5678:9abc:def0:1234:5679]:8443 -m\n";
    const first = imported(text, { namePrefix: "Edge_" }).objects;
    const names = first.map((o) => (o.metadata as { name: string }).name);
    expect(names[0]).toBe("edge-tcp-2001-db8-1234-5678-9abc-def0-1234-5678-443");
    expect(names[1]!.length).toBe(63);
    expect(names[1]).toMatch(/^edge-tcp-2001-db8-1234-5678-9abc-def0-1234-5678-443-20-[0-9a-f]{8}$/);
    expect(imported(text, { namePrefix: "Edge_" }).objects).toEqual(first);
    for (const n of names) expect(n).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expectValid(first);
  });

  it("reports what the API cannot express and leaves it out", () => {
    const table: IpvsTable = parseIpvsadmSave(
      [
        "-A -t 192.0.2.10:80 -s rr -b flag-1",
        "-A -t 192.0.2.11:80 -s wlc -p 60 -M 255.0.255.0",
        "-A -t 192.0.2.12:80 -s wlc",
        "-a -t 192.0.2.12:80 -r 198.51.100.5:80 -m -x 5 -y 10",
        "-a -t 192.0.2.12:80 -r 198.51.100.6:80 -m",
      ].join("\n"),
    ).table;
    table[2]!.destinations.push({
      key: { family: "IPv4", address: "198.51.100.7", port: 80 },
      config: { ...table[2]!.destinations[1]!.config, forwarding: "Local" },
    });
    table[2]!.destinations.push({
      key: { family: "IPv4", address: "198.51.100.8", port: 80 },
      config: { ...table[2]!.destinations[1]!.config, weight: 100000 },
    });
    // A DR real server on another port: the kernel takes it from netlink, ipvsadm would not.
    table[2]!.destinations.push({
      key: { family: "IPv4", address: "198.51.100.9", port: 8080 },
      config: { ...table[2]!.destinations[1]!.config, forwarding: "DirectRouting" },
    });
    const { objects, problems } = importResources(table);
    expect(problems).toEqual([
      { subject: "TCP 192.0.2.10:80", message: expect.stringMatching(/flag-1\.\.3.*not imported/) },
      { subject: "TCP 192.0.2.11:80", message: expect.stringMatching(/255\.0\.255\.0 is not contiguous/) },
      {
        subject: "TCP 192.0.2.12:80 -> 198.51.100.5:80",
        message: expect.stringMatching(/lowerThreshold 10 exceeds/),
      },
      {
        subject: "TCP 192.0.2.12:80 -> 198.51.100.7:80",
        message: expect.stringMatching(/Local has no API field/),
      },
      { subject: "TCP 192.0.2.12:80 -> 198.51.100.8:80", message: expect.stringMatching(/weight 100000/) },
      {
        subject: "TCP 192.0.2.12:80 -> 198.51.100.9:8080",
        message: expect.stringMatching(/uses the service port/),
      },
    ]);
    expect(objects.map((o) => (o.metadata as { name: string }).name)).toEqual([
      "tcp-192-0-2-12-80",
      "tcp-192-0-2-12-80-198-51-100-6-80",
      "tcp-192-0-2-12-80-198-51-100-9-8080",
    ]);
    expect(objects[2]!.spec).toEqual({
      virtualServiceRef: { name: "tcp-192-0-2-12-80" },
      address: "198.51.100.9",
      weight: 1,
      forwarding: { method: "DirectRouting" },
    });
    expectValid(objects);
  });

  it("validates every object it writes and leaves out (and reports) what plan would reject", () => {
    const parsed = parseIpvsadmSave(
      [
        "-A -t 10.0.0.1:80 -s foo",
        "-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m",
        "-A -t [::ffff:1.2.3.4]:80 -s rr",
        "-A -t 10.0.0.5:80 -s rr",
        "-a -t 10.0.0.5:80 -r 10.1.0.1:80 -m -w 1 -x 0 -y 5",
        "-A -t [2001:db8::1]:80 -s rr",
        "-a -t [2001:db8::1]:80 -r [::ffff:1.2.3.4]:0 -m",
        "-a -t [2001:db8::1]:80 -r [::ffff:1.2.3.4]:80 -m",
        "-a -t [2001:db8::1]:80 -r [2001:db8::9]:80 -m",
      ].join("\n"),
    );
    expect(parsed.problems).toEqual([]);
    // A NAT real server of the other family: netlink takes it, ipvsadm would not write it.
    parsed.table[3]!.destinations.push({
      key: { family: "IPv4", address: "10.1.0.9", port: 80 },
      config: { ...parsed.table[3]!.destinations[0]!.config },
    });
    const { objects, problems } = importResources(parsed.table);
    expect(problems).toEqual([
      {
        subject: "TCP 10.0.0.1:80",
        message: expect.stringMatching(/^spec\.scheduler: .*; service not imported$/),
      },
      {
        subject: "TCP 10.0.0.1:80 -> 10.1.0.1:80",
        message: "its service is not imported, so neither is this real server",
      },
      {
        subject: "TCP 10.0.0.5:80 -> 10.1.0.1:80",
        message: expect.stringMatching(/lowerThreshold 5 exceeds upperThreshold 0/),
      },
      {
        subject: "TCP [::ffff:1.2.3.4]:80",
        message: expect.stringMatching(/^spec\.address: .*IPv4-mapped.*; service not imported$/),
      },
      {
        subject: "TCP [2001:db8::1]:80 -> [::ffff:1.2.3.4]:0",
        message: expect.stringMatching(/port 0 .*not imported/),
      },
      {
        subject: "TCP [2001:db8::1]:80 -> 10.1.0.9:80",
        message: expect.stringMatching(/^spec\.address: address must be IPv6 .*; real server not imported$/),
      },
      {
        subject: "TCP [2001:db8::1]:80 -> [::ffff:1.2.3.4]:80",
        message: expect.stringMatching(/^spec\.address: .*IPv4-mapped.*; real server not imported$/),
      },
    ]);
    expect(objects.map((o) => `${o.kind}/${(o.metadata as { name: string }).name}`)).toEqual([
      "VirtualService/tcp-10-0-0-5-80",
      "VirtualService/tcp-2001-db8--1-80",
      "RealServer/tcp-2001-db8--1-80-2001-db8--9-80",
    ]);
    expectValid(objects);
  });

  it("leaves out a lower threshold without an upper one, which the kernel rejects (ERANGE)", () => {
    const { objects, problems } = imported(
      [
        "-A -t 10.0.0.5:80 -s rr",
        "-a -t 10.0.0.5:80 -r 10.1.0.1:80 -m -w 1 -x 0 -y 5",
        "-a -t 10.0.0.5:80 -r 10.1.0.2:80 -m -w 1 -x 5 -y 5",
      ].join("\n"),
    );
    expect(problems).toEqual([
      {
        subject: "TCP 10.0.0.5:80 -> 10.1.0.1:80",
        message: expect.stringMatching(/lowerThreshold 5 exceeds upperThreshold 0/),
      },
    ]);
    expect(objects.map((o) => (o.metadata as { name: string }).name)).toEqual([
      "tcp-10-0-0-5-80",
      "tcp-10-0-0-5-80-10-1-0-2-80",
    ]);
    expectValid(objects);
  });

  it("every table ipvsadm can express imports into valid objects, one per service and real server", () => {
    const ipv4 = fc
      .tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 254 }))
      .map((b) => b.join("."));
    const line = fc.record({
      proto: fc.constantFrom("-t", "-u", "--sctp-service"),
      vip: ipv4,
      port: fc.integer({ min: 1, max: 65535 }),
      sched: fc.constantFrom("rr", "wlc", "sh", "mh"),
      persist: fc.option(fc.integer({ min: 1, max: 86400 }), { nil: undefined }),
      mask: fc.integer({ min: 0, max: 32 }),
      dests: fc.uniqueArray(
        fc.record({
          ip: ipv4,
          fwd: fc.constantFrom(
            "-m",
            "-g",
            "-i",
            "-i --tun-type gue --tun-port 6080",
            "-i --tun-type gre --tun-csum",
          ),
          w: fc.integer({ min: 0, max: 65535 }),
        }),
        { maxLength: 5, selector: (d) => d.ip },
      ),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(line, { maxLength: 5, selector: (l) => `${l.proto} ${l.vip}:${l.port}` }),
        (lines) => {
          const text = lines
            .flatMap((l) => {
              const svc = `${l.proto} ${l.vip}:${l.port}`;
              const mask = [24, 16, 8, 0].map((s) => ((0xffffffff << (32 - l.mask)) >>> s) & 0xff).join(".");
              const p = l.persist ? ` -p ${l.persist} -M ${l.mask === 0 ? "0.0.0.0" : mask}` : "";
              return [
                `-A ${svc} -s ${l.sched}${p}`,
                ...l.dests.map((d) => `-a ${svc} -r ${d.ip} ${d.fwd} -w ${d.w}`),
              ];
            })
            .join("\n");
          const parsed = parseIpvsadmSave(text);
          expect(parsed.problems).toEqual([]);
          const { objects, problems } = importResources(parsed.table, { namespace: "ns" });
          expect(problems).toEqual([]);
          expect(objects).toHaveLength(lines.length + lines.reduce((n, l) => n + l.dests.length, 0));
          expect(new Set(objects.map((o) => `${o.kind}/${(o.metadata as { name: string }).name}`)).size).toBe(
            objects.length,
          );
          expectValid(objects);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("importResources on any ipvsadm text", () => {
  /** Mostly absent (so most lines parse), sometimes one of `values`. */
  const rarely = <T>(...values: T[]) =>
    fc.oneof(
      { arbitrary: fc.constant(undefined), weight: 3 },
      { arbitrary: fc.constantFrom(...values), weight: 1 },
    );
  const v4 = fc.constantFrom("10.0.0.1", "10.0.0.2", "192.0.2.10", "0.0.0.0", "255.255.255.255");
  const v6 = fc.constantFrom(
    "2001:db8::1",
    "2001:db8::2",
    "::ffff:1.2.3.4",
    "64:ff9b::1.2.3.4",
    "fe80::1",
    "::",
  );
  const port = fc.oneof(fc.constantFrom(0, 80, 8080, 65535), fc.integer({ min: 0, max: 65535 }));
  const hostPort = (six: boolean) =>
    fc
      .tuple(six ? v6 : v4, fc.option(port, { nil: undefined }))
      .map(([a, p]) => (p === undefined ? a : six ? `[${a}]:${p}` : `${a}:${p}`));
  const service = fc.oneof(
    fc
      .tuple(fc.constantFrom("-t", "-u", "--sctp-service"), fc.boolean())
      .chain(([o, six]) => hostPort(six).map((hp) => ({ text: `${o} ${hp}`, six }))),
    fc
      .tuple(fc.constantFrom(0, 1, 7, 4294967295), fc.boolean())
      .map(([m, six]) => ({ text: `-f ${m}${six ? " -6" : ""}`, six })),
  );
  const serviceOptions = fc
    .record({
      s: rarely("rr", "wlc", "sh", "mh", "lblc", "foo", "twos"),
      p: rarely("", "0", "1", "360", "2147483", "2147484"),
      M: rarely("255.255.255.0", "255.0.255.0", "0.0.0.0", "64", "128", "0"),
      pe: rarely("sip", "ftp"),
      o: rarely(true),
      b: rarely("sh-fallback", "sh-port,sh-fallback", "mh-port", "mh-fallback,flag-3", "flag-1", "flag-2"),
    })
    .map((r) =>
      [
        r.s === undefined ? "" : ` -s ${r.s}`,
        r.p === undefined ? "" : ` -p ${r.p}`.trimEnd(),
        r.M === undefined ? "" : ` -M ${r.M}`,
        r.pe === undefined ? "" : ` --pe ${r.pe}`,
        r.o ? " -o" : "",
        r.b === undefined ? "" : ` -b ${r.b}`,
      ].join(""),
    );
  const destOptions = fc
    .record({
      fwd: fc.constantFrom(
        "-m",
        "-g",
        "-i",
        "-i --tun-type gue --tun-port 6080",
        "-i --tun-type gre --tun-csum",
        "",
      ),
      w: rarely(0, 1, 65535, 65536),
      x: rarely(0, 5, 100),
      y: rarely(0, 5, 100),
    })
    .map(
      (r) =>
        `${r.fwd}${r.w === undefined ? "" : ` -w ${r.w}`}${r.x === undefined ? "" : ` -x ${r.x}`}${r.y === undefined ? "" : ` -y ${r.y}`}`,
    );
  const block = service.chain((svc) =>
    fc.record({
      svc: fc.constant(svc.text),
      opts: serviceOptions,
      // Mostly the service's family; the other one is only allowed (by ipvsadm) for tunnels.
      dests: fc.array(
        fc.tuple(fc.oneof({ arbitrary: hostPort(svc.six), weight: 4 }, hostPort(!svc.six)), destOptions),
        { maxLength: 4 },
      ),
    }),
  );

  it("emits only objects that validate, and accounts for every service and real server", () => {
    const seen = { VirtualService: 0, RealServer: 0, problems: 0 };
    fc.assert(
      fc.property(fc.array(block, { maxLength: 6 }), (blocks) => {
        const text = blocks
          .flatMap((b) => [`-A ${b.svc}${b.opts}`, ...b.dests.map(([hp, o]) => `-a ${b.svc} -r ${hp} ${o}`)])
          .join("\n");
        const { table } = parseIpvsadmSave(text); // lines the parser rejects are not in the table
        const { objects, problems } = importResources(table, { namespace: "ns" });
        expectValid(objects);
        const leftOut = (destination: boolean, message: RegExp) =>
          new Set(
            problems
              .filter((p) => p.subject.includes(" -> ") === destination && message.test(p.message))
              .map((p) => p.subject),
          ).size;
        const kinds = objects.map((o) => o.kind);
        expect(kinds.filter((k) => k === "VirtualService").length).toBe(
          table.length - leftOut(false, /service not imported$/),
        );
        const destinations = table.reduce((n, e) => n + e.destinations.length, 0);
        expect(kinds.filter((k) => k === "RealServer").length).toBe(
          destinations - leftOut(true, /not imported|neither is this real server/),
        );
        for (const k of kinds) seen[k as "VirtualService" | "RealServer"]++;
        seen.problems += problems.length;
      }),
      { numRuns: 300 },
    );
    // The generator reaches both sides: objects written and objects left out.
    expect(seen.VirtualService).toBeGreaterThan(100);
    expect(seen.RealServer).toBeGreaterThan(100);
    expect(seen.problems).toBeGreaterThan(100);
  });
});

describe("renderResourcesYaml", () => {
  it("writes one YAML document per object that reads back to the same objects", () => {
    const { objects } = imported("-A -t 192.0.2.10:80\n-a -t 192.0.2.10:80 -r 198.51.100.5:8080 -m -w 3\n", {
      namespace: "edge",
    });
    const text = renderResourcesYaml(objects);
    expect(text).toBe(
      [
        "apiVersion: ipvs.dev/v1alpha1",
        "kind: VirtualService",
        "metadata:",
        "  name: tcp-192-0-2-10-80",
        "  namespace: edge",
        "spec:",
        "  address: 192.0.2.10",
        "  port: 80",
        "  protocol: TCP",
        "  scheduler: wlc",
        "  forwarding:",
        "    method: NAT",
        "---",
        "apiVersion: ipvs.dev/v1alpha1",
        "kind: RealServer",
        "metadata:",
        "  name: tcp-192-0-2-10-80-198-51-100-5-8080",
        "  namespace: edge",
        "spec:",
        "  virtualServiceRef:",
        "    name: tcp-192-0-2-10-80",
        "  address: 198.51.100.5",
        "  port: 8080",
        "  weight: 3",
        "",
      ].join("\n"),
    );
    expect(parseAllDocuments(text).map((d) => d.toJS())).toEqual(objects);
  });
  it("quotes what YAML would misread and writes nothing for no objects", () => {
    const { objects } = imported("-A -t [2001:db8::10]:80\n");
    expect(parseAllDocuments(renderResourcesYaml(objects)).map((d) => d.toJS())).toEqual(objects);
    expect(renderResourcesYaml([])).toBe("");
  });
});
