/**
 * The import round trip from ipvsadm listings, on the real kernel: a table ipvsadm built (TCP, UDP,
 * SCTP, firewall marks, IPv6, persistence with masks, pe sip, ops, sh/mh flags, thresholds, weights
 * 0 and 65535, NAT / DR / ipip tunnels) is listed with `ipvsadm -Ln`, `-Ln --thresholds` and `-L`
 * (names); each listing is imported and `plan -f` of the result must print exactly `ipvsadm -Sn` of
 * the original table. The thresholds (which -Sn never prints) are proven by applying the import of
 * `-Ln` + `-Ln --thresholds` to the emptied kernel: `ipvsadm -Ln --thresholds` is then the same again.
 */
import { writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../../test/cli/run-cli.ts";
import { ipvsadm, scratch } from "./vm-helpers.ts";

const TABLE = `-A -t 192.0.2.10:80 -s rr
-a -t 192.0.2.10:80 -r 198.51.100.10:8080 -m -w 1
-a -t 192.0.2.10:80 -r 198.51.100.11:8080 -m -w 0 -x 1000 -y 800
-A -t 192.0.2.11:443 -s wlc -p 600 -M 255.255.255.0
-a -t 192.0.2.11:443 -r 198.51.100.20:443 -g -w 3
-a -t 192.0.2.11:443 -r 198.51.100.21:443 -i -w 2 -x 50
-A -t 192.0.2.13:8443 -s sh -b sh-fallback,sh-port
-a -t 192.0.2.13:8443 -r 198.51.100.40:8443 -m -w 65535
-A -t 192.0.2.14:0 -s lc -p 300
-a -t 192.0.2.14:0 -r 198.51.100.50:0 -g -w 1
-A -u 192.0.2.12:53 -s wrr -o
-a -u 192.0.2.12:53 -r 198.51.100.30:53 -g -w 1
-A -u 192.0.2.16:5060 -s rr -p 60 --pe sip
-a -u 192.0.2.16:5060 -r 198.51.100.80:5060 -m -w 1
-A --sctp-service 192.0.2.17:3868 -s wrr
-a --sctp-service 192.0.2.17:3868 -r 198.51.100.90:3868 -m -w 1 -x 10 -y 5
-A -t [2001:db8::10]:80 -s mh -p 120 -M 64 -b mh-fallback,mh-port
-a -t [2001:db8::10]:80 -r [2001:db8:1::10]:8080 -m -w 1
-a -t [2001:db8::10]:80 -r [2001:db8:1::11]:80 -g -w 0
-A -u [2001:db8::11]:53 -s rr -o
-a -u [2001:db8::11]:53 -r [2001:db8:1::12]:53 -i -w 4
-A -f 7 -s lblc -p 360
-a -f 7 -r 198.51.100.60:0 -g -w 1
-a -f 7 -r 198.51.100.61:0 -i -w 1
-A -f 8 -6 -s sed -p 30 -M 48
-a -f 8 -6 -r [2001:db8:1::20]:0 -m -w 1
`;
/** Tunnel destinations: a listing does not show the tunnel type, so import reports each one. */
const TUNNELS = 3;
const DESTINATIONS = 15;

describe("import round trip from ipvsadm listings", () => {
  const dir = scratch("import-listing-");
  let save = "";
  const listings: Record<string, string> = {};

  beforeAll(() => {
    ipvsadm(["-C"]);
    ipvsadm(["-R"], TABLE);
    save = ipvsadm(["-Sn"]);
    for (const [name, args] of [
      ["Ln", ["-Ln"]],
      ["Ln-thresholds", ["-Ln", "--thresholds"]],
      ["L", ["-L"]],
      ["L-thresholds", ["-L", "--thresholds"]],
    ] as const) {
      listings[name] = ipvsadm([...args]);
    }
    ipvsadm(["-C"]);
  });
  afterAll(() => {
    ipvsadm(["-C"]);
  });

  async function importListing(name: string, text: string) {
    const file = `${dir}/${name}.txt`;
    writeFileSync(file, text);
    const imported = await runCli(["import", file, "--namespace", "lb"]);
    const manifest = `${dir}/${name}.yaml`;
    writeFileSync(manifest, imported.stdout);
    const planned = await runCli(["plan", "-f", manifest]);
    expect(planned.stderr).toBe("");
    expect(planned.code).toBe(0);
    return { imported, manifest, plan: planned.stdout };
  }

  const onlyTunnelProblems = (stderr: string) => {
    const lines = stderr.trim().split("\n");
    expect(lines.length).toBe(TUNNELS);
    for (const line of lines)
      expect(line).toMatch(/^problem: line \d+: real server .* does not show the tunnel type/);
  };

  it("the listings are what the parser expects (names in -L: http, domain, sip)", () => {
    expect(save.split("\n").filter((l) => l.startsWith("-a")).length).toBe(DESTINATIONS);
    expect(listings.Ln).toMatch(/^IP Virtual Server version /);
    expect(listings.L).toContain("TCP  192.0.2.10:http rr");
    expect(listings.L).toContain("UDP  192.0.2.16:sip rr persistent 60 pe sip");
  });

  for (const name of ["Ln", "L"]) {
    it(`ipvsadm -${name}: import, plan -f prints ipvsadm -Sn of the original table`, async () => {
      const { imported, plan } = await importListing(name, listings[name]!);
      onlyTunnelProblems(imported.stderr);
      expect(imported.code).toBe(3);
      expect(plan).toBe(save);
    });
  }

  it("ipvsadm -Ln --thresholds alone: the services come back, every real server is reported (no Forward column)", async () => {
    const { imported, plan } = await importListing("Ln-thresholds", listings["Ln-thresholds"]!);
    expect(imported.code).toBe(3);
    const problems = imported.stderr.trim().split("\n");
    expect(problems.length).toBe(DESTINATIONS);
    for (const p of problems) expect(p).toContain("no Forward column");
    expect(plan).toBe(
      save
        .split("\n")
        .filter((l) => !l.startsWith("-a"))
        .join("\n"),
    );
  });

  for (const [name, a, b] of [
    ["Ln+thresholds", "Ln", "Ln-thresholds"],
    ["L+thresholds", "L", "L-thresholds"],
  ] as const) {
    it(`ipvsadm -${a} and -${b.replace("-thresholds", "")} --thresholds in one input: plan is -Sn, and applied to the kernel the thresholds are back`, async () => {
      const { imported, manifest, plan } = await importListing(name, listings[a]! + listings[b]!);
      onlyTunnelProblems(imported.stderr);
      expect(plan).toBe(save);
      ipvsadm(["-C"]);
      const applied = await runCli([
        "apply",
        "-f",
        manifest,
        "--node",
        "vm",
        "--state-file",
        `${dir}/${name}.json`,
      ]);
      expect(applied.stderr).toBe("");
      expect(applied.code).toBe(0);
      expect(ipvsadm(["-Sn"])).toBe(save);
      expect(ipvsadm(["-Ln", "--thresholds"])).toBe(listings["Ln-thresholds"]);
      ipvsadm(["-C"]);
    });
  }
});
