/** parseIpvsadmSave: scripts with continued lines, and port names through a services table (/etc/services). */
import { describe, expect, it } from "vitest";
import { parseIpvsadmSave } from "../../src/model/ipvsadm-parse.ts";
import { FALLBACK_SERVICE_NAMES, parseEtcServices } from "../../src/model/service-names.ts";
import { serviceKeyString } from "../../src/vocabulary/table.ts";

describe("parseIpvsadmSave continued lines", () => {
  it("joins lines ending in a backslash, as a shell script of ipvsadm commands writes them", () => {
    const script = [
      "#!/bin/sh",
      "ipvsadm -A -t 192.0.2.1:80 \\",
      "  -s rr -p 60 \\",
      "  -M 255.255.255.0",
      "ipvsadm -a -t 192.0.2.1:80 -r 198.51.100.1:8080 \\",
      "  -m -w 0",
      "# a comment ending in a backslash does not continue \\",
      "-a -t 192.0.2.1:80 -r 198.51.100.2:8080 -m -w 3 \\",
    ].join("\n");
    const parsed = parseIpvsadmSave(script);
    expect(parsed.problems).toEqual([]);
    expect(parsed.table[0]!.service.config).toMatchObject({
      scheduler: "rr",
      timeout: 60,
      netmask: 0xffffff00,
    });
    expect(parsed.table[0]!.destinations.map((d) => [d.key.port, d.config.weight])).toEqual([
      [8080, 0],
      [8080, 3],
    ]);
  });

  it("names the first line of a continued command in its problem", () => {
    const parsed = parseIpvsadmSave(
      "-A -t 192.0.2.1:80 \\\n -s rr\n-a -t 192.0.2.9:80 \\\n  -r 198.51.100.1 -w x\n",
    );
    expect(parsed.problems.map((p) => p.line)).toEqual([3]);
    expect(parsed.problems[0]!.message).toMatch(/illegal weight/);
  });
});

describe("port names", () => {
  const services = parseEtcServices(
    "# /etc/services\nhttp\t\t80/tcp\t\twww\t# WorldWideWeb\nsyslog 514/udp\nsip 5060/tcp\nsip 5060/udp\namqp 5672/sctp\nbad line\nhuge 99999/tcp\n",
  );

  it("reads /etc/services per protocol, aliases too", () => {
    expect(services("http", "tcp")).toBe(80);
    expect(services("www", "tcp")).toBe(80);
    expect(services("http", "udp")).toBeUndefined();
    expect(services("syslog", "udp")).toBe(514);
    expect(services("amqp", "sctp")).toBe(5672);
    expect(services("huge", "tcp")).toBeUndefined();
    expect(parseEtcServices(FALLBACK_SERVICE_NAMES)("http-alt", "tcp")).toBe(8080);
  });

  it("resolves ipvsadm -S names with the services table, per protocol (SCTP included)", () => {
    const parsed = parseIpvsadmSave(
      "-A -u 192.0.2.1:syslog -s rr\n-A --sctp-service 192.0.2.2:amqp -s rr\n-A -u 192.0.2.3:www -s rr\n",
      { servicePort: services },
    );
    expect(parsed.table.map((e) => serviceKeyString(e.service.key))).toEqual([
      "UDP 192.0.2.1:514",
      "SCTP 192.0.2.2:5672",
    ]);
    expect(parsed.problems).toEqual([{ line: 3, message: expect.stringContaining('unknown port "www"') }]);
  });
});
