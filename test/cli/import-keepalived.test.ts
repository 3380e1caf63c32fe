/** `import --from keepalived`: keepalived.conf (with an include) through the command, planned back. */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "./run-cli.ts";

const tmp = mkdtempSync(join(tmpdir(), "import-keepalived-"));
const write = (name: string, text: string) => {
  const file = join(tmp, name);
  writeFileSync(file, text);
  return file;
};

const MAIN = `! keepalived.conf
global_defs { router_id lb1 }
include conf.d/*.conf
virtual_server 192.0.2.10 80 {
  delay_loop 6
  lb_algo wrr
  lb_kind NAT
  protocol TCP
  real_server 198.51.100.10 8080 {
    weight 2
    TCP_CHECK { connect_timeout 3 }
  }
}
`;
const INCLUDED = `virtual_server fwmark 7 {
  lb_algo rr
  lb_kind DR
  real_server 198.51.100.20 0 { weight 1 }
}
`;

describe("import --from keepalived", () => {
  it("follows includes, writes YAML that plans to keepalived's table, notes on stderr, exit 0", async () => {
    mkdirSync(join(tmp, "conf.d"), { recursive: true });
    write("conf.d/fwmark.conf", INCLUDED);
    const file = write("keepalived.conf", MAIN);
    const imported = await runCli(["import", "--from", "keepalived", file, "--namespace", "edge"]);
    expect(imported.stderr).toContain(`note: ${file}:2: global_defs`);
    expect(imported.stderr).not.toContain("problem");
    expect(imported.code).toBe(0);
    expect(imported.stdout).toContain("namespace: edge");
    expect(imported.stdout).toContain("type: TCP");
    const planned = await runCli(["plan", "-f", write("imported.yaml", imported.stdout)]);
    expect(planned.stderr).not.toContain("problem");
    expect(planned.stdout).toBe(
      [
        "-A -t 192.0.2.10:80 -s wrr",
        "-a -t 192.0.2.10:80 -r 198.51.100.10:8080 -m -w 2",
        "-A -f 7 -s rr",
        "-a -f 7 -r 198.51.100.20:0 -g -w 1",
        "",
      ].join("\n"),
    );
  });

  it("reports invalid input as problem: FILE:LINE and exits 3, writing the rest", async () => {
    const file = write("bad.conf", `${MAIN}virtual_server 192.0.2.300 80 {\n  lb_kind NAT\n}\n`);
    const imported = await runCli(["import", "--from", "keepalived", file]);
    expect(imported.code).toBe(3);
    expect(imported.stderr).toMatch(new RegExp(`problem: ${file}:14: `));
    expect(imported.stdout).toContain("address: 192.0.2.10");
  });
});
