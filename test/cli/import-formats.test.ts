/**
 * `import` of every ipvsadm text form: format detection and --from, listings (-Ln, -Ln --thresholds,
 * -L with names) that plan back to the table `ipvsadm -Sn` printed, and exit statuses.
 * The listings are real ipvsadm 1.31 output (test/model/fixtures/ipvsadm-1.31-listings).
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { detectImportFormat } from "../../src/cli/import-command.ts";
import { runCli } from "./run-cli.ts";

const DIR = "test/model/fixtures/ipvsadm-1.31-listings";
const fixture = (name: string) => readFileSync(join(DIR, name), "utf8");
const tmp = mkdtempSync(join(tmpdir(), "import-formats-"));
const write = (name: string, text: string) => {
  const file = join(tmp, name);
  writeFileSync(file, text);
  return file;
};

/** ipvsadm -Sn of the fixture table as an import of a listing can give it back (see the problems). */
function importableSave(): string {
  return fixture("Sn.txt")
    .split("\n")
    .filter((l) => !l.startsWith("-A -t 192.0.2.51:22 ") && !l.startsWith("-A -u 192.0.2.50:53 "))
    .map((l) => l.replace(/ --tun-type \S+( --tun-port \d+)?( --tun-\w+)?$/, " --tun-type ipip"))
    .join("\n");
}

async function importAndPlan(file: string, extra: string[] = []) {
  const imported = await runCli(["import", file, ...extra]);
  const manifest = write(`${file.split("/").pop()}.yaml`, imported.stdout);
  const planned = await runCli(["plan", "-f", manifest]);
  expect(planned.stderr).toBe("");
  return { imported, plan: planned.stdout };
}

describe("import of ipvsadm listings", () => {
  it("plans ipvsadm -Ln plus -Ln --thresholds back to ipvsadm -Sn (tunnel types and two flag-only services reported)", async () => {
    const file = write("ln.txt", fixture("Ln.txt") + fixture("Ln-thresholds.txt"));
    const { imported, plan } = await importAndPlan(file);
    expect(imported.code).toBe(3);
    const problems = imported.stderr.trim().split("\n");
    expect(problems.filter((p) => p.includes("does not show the tunnel type")).length).toBe(8);
    expect(problems.filter((p) => !p.includes("tunnel type"))).toEqual([
      "problem: TCP 192.0.2.51:22: scheduler flags (flag-1..3) for scheduler rr have no API field; service not imported",
      "problem: UDP 192.0.2.50:53: scheduler flag 3 has no meaning for sh and no API field; service not imported",
    ]);
    expect(plan).toBe(importableSave());
    expect(imported.stdout).toContain("upperThreshold: 1000");
  });

  it("reads ipvsadm -L (names) with /etc/services and reports the host name", async () => {
    const file = write("l.txt", fixture("L.txt"));
    const { imported, plan } = await importAndPlan(file);
    expect(imported.code).toBe(3);
    expect(imported.stderr).toContain(
      'problem: line 5: virtual service: "localhost" is a host name, not an IP address: names are not resolved',
    );
    const withoutLocalhost = importableSave()
      .split("\n")
      .filter((l) => !l.includes("-t 127.0.0.1:80"))
      .join("\n");
    expect(plan).toBe(withoutLocalhost);
  });

  it("imports a listing with nothing to report with exit 0", async () => {
    const file = write("one.txt", fixture("Ln-one-service.txt"));
    const { imported, plan } = await importAndPlan(file);
    expect(imported.stderr).toBe("");
    expect(imported.code).toBe(0);
    expect(plan).toBe(
      "-A -t 192.0.2.10:80 -s rr\n-a -t 192.0.2.10:80 -r 198.51.100.10:8080 -m -w 1\n-a -t 192.0.2.10:80 -r 198.51.100.11:8080 -m -w 65535\n",
    );
  });

  it("reports a forwarding method ipvsadm does not know, with its line, and imports the rest", async () => {
    const text = fixture("Ln-one-service.txt").replace("Masq    1 ", "(null)  1 ");
    const imported = await runCli(["import", write("null.txt", text)]);
    expect(imported.code).toBe(3);
    expect(imported.stderr).toBe(
      'problem: line 4: real server 198.51.100.10:8080: forwarding method "(null)" (not one ipvsadm knows: a kernel with another method?): left out\n',
    );
    expect(imported.stdout).toContain("198.51.100.11");
    expect(imported.stdout).not.toContain("198.51.100.10\n");
  });

  it("says a --stats listing has nothing to import (exit 3)", async () => {
    const imported = await runCli(["import", write("stats.txt", fixture("Ln-stats.txt"))]);
    expect(imported.code).toBe(3);
    expect(imported.stderr).toMatch(/^problem: line 2: a --stats listing shows counters/);
  });
});

describe("import --from and format detection", () => {
  it("detects listings and ipvsadm command text", () => {
    expect(detectImportFormat(fixture("Ln.txt"))).toBe("ipvsadm-list");
    expect(detectImportFormat(fixture("Ln-one-service.txt"))).toBe("ipvsadm-list");
    expect(detectImportFormat(fixture("Lnc.txt"))).toBe("ipvsadm-list");
    expect(detectImportFormat(fixture("Sn.txt"))).toBe("ipvsadm-save");
    expect(detectImportFormat("#!/bin/sh\nipvsadm -A -t 192.0.2.1:80 \\\n  -s rr\n")).toBe("ipvsadm-save");
    expect(detectImportFormat("")).toBe("ipvsadm-save");
    expect(detectImportFormat(`${fixture("Sn.txt")}${fixture("Ln.txt")}`)).toEqual({
      error: expect.stringContaining("(line 59) and ipvsadm command lines (line 1)"),
    });
  });

  it("takes --from ipvsadm-list / ipvsadm-save, rejects other names and mixed input (exit 2)", async () => {
    const listing = write("listing.txt", fixture("Ln-one-service.txt"));
    expect((await runCli(["import", listing, "--from", "ipvsadm-list"])).code).toBe(0);
    const asSave = await runCli(["import", listing, "--from", "ipvsadm-save"]);
    expect(asSave.code).toBe(3);
    expect(asSave.stderr).toMatch(/^problem: line 1: unsupported command "Prot"/);
    const bogus = await runCli(["import", listing, "--from", "haproxy"]);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toBe(
      'error: import: --from must be one of ipvsadm-save, ipvsadm-list, ldirectord, keepalived, not "haproxy"\n',
    );
    const mixed = await runCli(["import", write("mixed.txt", fixture("Sn.txt") + fixture("Ln.txt"))]);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toMatch(/give --from ipvsadm-list or --from ipvsadm-save/);
  });

  it("reads ipvsadm -S (names) through /etc/services, sip and syslog included", async () => {
    const { imported, plan } = await importAndPlan(write("s.txt", fixture("S.txt")));
    expect(imported.stderr).toContain('problem: line 2: illegal virtual server address[:port]: "localhost"');
    // ipvsadm -S prints sh with flag 3 alone as a bare "-b ": read as no flags, with a problem.
    expect(imported.stderr).toContain("problem: line 41: -b without flags");
    expect(plan).toBe(
      fixture("Sn.txt")
        .replace("-s sh -b \n", "-s sh\n")
        .split("\n")
        .filter((l) => !l.includes("-t 127.0.0.1:80") && !l.startsWith("-A -t 192.0.2.51:22 "))
        .join("\n"),
    );
  });

  it("documents the formats, --from and the exit statuses in --help", async () => {
    const help = await runCli(["import", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--from FORMAT");
    expect(help.stdout).toMatch(/ipvsadm-save +ipvsadm -Sn/);
    expect(help.stdout).toMatch(/ipvsadm-list +ipvsadm -Ln/);
    expect(help.stdout).toContain("Exit status");
  });
});
