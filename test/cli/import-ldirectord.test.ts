/** `import --from ldirectord`: ldirectord.cf through the command, planned back to the table it programs. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "./run-cli.ts";

const tmp = mkdtempSync(join(tmpdir(), "import-ldirectord-"));
const write = (name: string, text: string) => {
  const file = join(tmp, name);
  writeFileSync(file, text);
  return file;
};

const CONFIG = `checkinterval=5
checktimeout=3
logfile="local0"
virtual=192.0.2.10:http
\treal=198.51.100.10:80 gate
\treal=198.51.100.11:80 gate 3
\tservice=http
\trequest="healthz"
\treceive="ok"
\tscheduler=wlc
\tfallback=127.0.0.1:80

virtual=8
\treal=198.51.100.20 ipip
\tchecktype=on
`;

describe("import --from ldirectord", () => {
  it("writes YAML that plans to the table ldirectord programs, notes on stderr, exit 0", async () => {
    const file = write("ok.cf", CONFIG);
    const imported = await runCli(["import", "--from", "ldirectord", file, "--namespace", "edge"]);
    expect(imported.stderr).toBe(
      `note: ${file}:3: logfile has no equivalent (the agent logs to stderr); ignored\n`,
    );
    expect(imported.code).toBe(0);
    expect(imported.stdout).toContain("namespace: edge");
    expect(imported.stdout).toContain("path: /healthz");
    expect(imported.stdout).toContain("sorryServer:\n    address: 127.0.0.1");
    const planned = await runCli(["plan", "-f", write("ok.yaml", imported.stdout)]);
    expect(planned.stderr).not.toContain("problem");
    expect(planned.code).toBe(0);
    expect(planned.stdout).toBe(
      [
        "-A -t 192.0.2.10:80 -s wlc",
        "-a -t 192.0.2.10:80 -r 198.51.100.10:80 -g -w 1",
        "-a -t 192.0.2.10:80 -r 198.51.100.11:80 -g -w 3",
        "-A -f 8 -s wrr",
        "-a -f 8 -r 198.51.100.20:0 -i -w 1 --tun-type ipip",
        "",
      ].join("\n"),
    );
  });

  it("reports invalid lines as problem: FILE:LINE and exits 3, writing the rest", async () => {
    const file = write("bad.cf", `${CONFIG}\treal=198.51.100.30 tunnel\nvirtual=192.0.2.300:80\n`);
    const imported = await runCli(["import", "--from", "ldirectord", file]);
    expect(imported.code).toBe(3);
    expect(imported.stderr).toContain(`problem: ${file}:17: virtual=192.0.2.300:80`);
    expect(imported.stderr).toContain(`problem: ${file}:16: forwarding must be gate, masq or ipip`);
    expect(imported.stdout).toContain("name: fwm-8");
  });

  it("is listed in --help and never detected", async () => {
    const help = await runCli(["import", "--help"]);
    expect(help.stdout).toMatch(/^ {2}ldirectord +ldirectord\.cf/m);
    const detected = await runCli(["import", write("auto.cf", CONFIG)]);
    expect(detected.code).toBe(3);
    expect(detected.stdout).toBe("");
  });
});
