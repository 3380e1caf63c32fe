/**
 * Cross-check with ipvsadm, both ways, on the real kernel:
 * - what our netlink code programs, `ipvsadm -Sn` shows exactly as `plan --output ipvsadm` predicted;
 * - what ipvsadm programs (the whole feature set, thresholds included), our dump decodes to the same table.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NetlinkIpvsKernel } from "../../../src/kernel/netlink-kernel.ts";
import { readKernelTable } from "../../../src/kernel/read-kernel-table.ts";
import { parseIpvsadmSave } from "../../../src/model/ipvsadm-parse.ts";
import { runCli } from "../../../test/cli/run-cli.ts";
import { ipvsadm, plainTable, scratch } from "./vm-helpers.ts";

const NODE = ["--node", "vm", "--node-labels", "ipvs.dev/edge=true"];

describe("ipvsadm cross-check", () => {
  let kernel: NetlinkIpvsKernel;
  beforeAll(() => {
    ipvsadm(["-C"]); // the VM is throwaway: start from an empty table
    kernel = new NetlinkIpvsKernel();
  });
  afterAll(async () => {
    await kernel.close();
    ipvsadm(["-C"]);
  });

  it("ipvsadm -Sn shows exactly what plan predicted, after our code programmed every example", async () => {
    const planned = await runCli(["plan", "-f", "examples", ...NODE]);
    expect(planned.code).toBe(0);
    const state = `${scratch("xcheck-")}/journal.json`;
    const applied = await runCli(["apply", "-f", "examples", ...NODE, "--state-file", state]);
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);
    expect(ipvsadm(["-Sn"])).toBe(planned.stdout);
    ipvsadm(["-C"]);
  });

  it("our dump decodes what ipvsadm -R programmed (every feature, thresholds included)", async () => {
    const script = readFileSync("test/golden/crosscheck/ipvsadm-restore.txt", "utf8");
    const expected = parseIpvsadmSave(script);
    expect(expected.problems).toEqual([]);
    ipvsadm(["-R"], script);
    const dumped = await readKernelTable(kernel);
    expect(plainTable(dumped)).toEqual(plainTable(expected.table));
    // And the thresholds, which -Sn does not print, are what ipvsadm -Ln --thresholds reports.
    const thresholds = ipvsadm(["-Ln", "--thresholds"]);
    expect(thresholds).toMatch(/198\.51\.100\.11:8080\s+1000\s+800/);
    ipvsadm(["-C"]);
  });

  it("imports ipvsadm -R scripts and shell scripts of ipvsadm commands: plan -f of the import prints what they programmed", async () => {
    const dir = scratch("script-import-");
    for (const file of [
      "test/golden/crosscheck/ipvsadm-restore.txt",
      "test/golden/import/feature-set.ipvsadm",
    ]) {
      const script = readFileSync(file, "utf8");
      // The same commands as a shell script, one of them continued over two lines.
      const lines = script
        .trim()
        .split("\n")
        .map((line) => `ipvsadm ${line}`);
      lines[1] = lines[1]!.replace(/ -r /, " \\\n  -r ");
      const shell = `#!/bin/sh\n${lines.join("\n")}\n`;
      for (const [form, text, program] of [
        ["ipvsadm -R script", script, () => ipvsadm(["-R"], script)],
        ["shell script", shell, () => execFileSync("sh", ["-e", `${dir}/commands.sh`])],
      ] as const) {
        ipvsadm(["-C"]);
        writeFileSync(`${dir}/commands.sh`, shell);
        program();
        writeFileSync(`${dir}/input`, text);
        const imported = await runCli(["import", `${dir}/input`, "--from", "ipvsadm-save"]);
        expect(imported.stderr, `${file} as ${form}`).toBe("");
        writeFileSync(`${dir}/lb.yaml`, imported.stdout);
        const planned = await runCli(["plan", "-f", `${dir}/lb.yaml`, "--node", "vm"]);
        expect(planned.stdout, `${file} as ${form}`).toBe(ipvsadm(["-Sn"]));
      }
    }
    ipvsadm(["-C"]);
  });

  it("adopts a table ipvsadm built: import, then apply inside a managed range changes nothing", async () => {
    const script = readFileSync("test/golden/import/feature-set.ipvsadm", "utf8");
    ipvsadm(["-R"], script);
    const dir = scratch("adopt-");
    const save = `${dir}/save.txt`;
    writeFileSync(save, ipvsadm(["-Sn"]));
    const imported = await runCli(["import", save, "--namespace", "adopted"]);
    expect(imported.code).toBe(0);
    writeFileSync(`${dir}/lb.yaml`, imported.stdout);
    const adopt = ["apply", "-f", `${dir}/lb.yaml`, "--state-file", `${dir}/j.json`, "--node", "vm"];
    const scope = [
      "--managed-cidr",
      "192.0.2.0/24",
      "--managed-cidr",
      "2001:db8::/64",
      "--managed-fwmarks",
      "1-100",
    ];
    // Without a managed range the entries are foreign: reported, untouched.
    const foreign = await runCli(adopt);
    expect(foreign.code).toBe(0);
    expect(foreign.stdout).toMatch(/^0 operations applied/m);
    expect(foreign.stdout).toContain("(Ignored): desired by adopted/");
    const adopted = await runCli([...adopt, ...scope]);
    expect(adopted.code).toBe(0);
    expect(adopted.stdout).toMatch(
      /^0 operations applied, 0 failed, 0 skipped; the kernel matches the plan/m,
    );
    expect(ipvsadm(["-Sn"])).toBe(script);
    ipvsadm(["-C"]);
  });
});
