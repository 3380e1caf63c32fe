/** `apply` against the fake kernel: exit statuses, reports, dry run, the journal file. */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { applyCommand } from "../../src/cli/apply-command.ts";
import { CliError } from "../../src/cli/cli-error.ts";
import { flushCommand } from "../../src/cli/flush-command.ts";
import { IpvsDecodeError, IpvsUnavailableError } from "../../src/kernel/errors.ts";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { readKernelTable } from "../../src/kernel/read-kernel-table.ts";
import { renderIpvsadmSave } from "../../src/model/ipvsadm-render.ts";
import { NO_FLAGS } from "../../src/vocabulary/table.ts";
import { captureOutput } from "./run-cli.ts";

type Command = typeof applyCommand;

async function run(args: string[], kernel: FakeIpvsKernel, command: Command = applyCommand) {
  // The fake is reused across runs of one test, so apply's close() must not end it.
  kernel.close = async () => {};
  let usageError = "";
  const result = await captureOutput(async () => {
    try {
      return await command(args, {
        makeKernel: () => kernel,
        now: () => 1_000,
        bootId: async () => "boot-1",
      });
    } catch (error) {
      // What main() does with usage and input errors.
      if (!(error instanceof CliError)) throw error;
      usageError = `error: ${error.message}\n`;
      return error.exitCode;
    }
  });
  return { ...result, stderr: result.stderr + usageError };
}

const dir = () => mkdtempSync(join(tmpdir(), "apply-"));

describe("apply (fake kernel)", () => {
  it("programs the examples, records them in the journal, and a second run does nothing", async () => {
    const kernel = new FakeIpvsKernel();
    const state = join(dir(), "journal.json");
    const args = ["-f", "examples", "--node", "n", "--state-file", state];
    const first = await run(args, kernel);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(
      /\n\d+ operations applied, 0 failed, 0 skipped; the kernel matches the plan/,
    );
    const live = renderIpvsadmSave(await readKernelTable(kernel));
    expect(live).toBe(
      readFileSync("test/golden/plan/all-examples.ipvsadm", "utf8").replace(/.*192\.0\.2\.31.*\n/g, ""),
    );
    const journal = JSON.parse(readFileSync(state, "utf8"));
    expect(journal.version).toBe(2);
    expect(journal.bootId).toBe("boot-1");
    expect(journal.owners["TCP 192.0.2.10:80"]).toMatch(/^[a-z0-9-]+\/[a-z0-9-]+$/);
    expect(journal.services).toContain("TCP 192.0.2.10:80");
    const second = await run(args, kernel);
    expect(second.stdout).toMatch(/^0 operations applied, 0 failed, 0 skipped; the kernel matches the plan/);
  });

  it("changes nothing with --dry-run and prints the plan", async () => {
    const kernel = new FakeIpvsKernel();
    const state = join(dir(), "journal.json");
    const result = await run(
      ["-f", "examples/nat-round-robin.yaml", "--state-file", state, "--dry-run"],
      kernel,
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("planned: add service TCP 192.0.2.10:80");
    expect(result.stdout).toContain("3 operations planned (dry run, nothing changed)");
    expect(kernel.serviceCount).toBe(0);
    expect(() => readFileSync(state)).toThrow();
  });

  it("exits 1 when the kernel refuses something, 3 for invalid objects, and reports JSON", async () => {
    const kernel = new FakeIpvsKernel({ schedulers: ["wlc"] });
    const state = join(dir(), "journal.json");
    const failed = await run(
      ["-f", "examples/nat-round-robin.yaml", "--state-file", state, "-o", "json"],
      kernel,
    );
    expect(failed.code).toBe(1);
    const report = JSON.parse(failed.stdout);
    expect(report.ok).toBe(false);
    expect(report.operations[0]).toMatchObject({
      description: "add service TCP 192.0.2.10:80",
      result: "failed",
    });
    expect(report.operations[0].reason).toContain("ip_vs_rr");

    const bad = join(dir(), "bad.yaml");
    writeFileSync(
      bad,
      "apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: x, namespace: t}\nspec: {address: 192.0.2.9, port: 0}\n",
    );
    const invalid = await run(["-f", bad, "--state-file", state], new FakeIpvsKernel());
    expect(invalid.code).toBe(3);
    expect(invalid.stderr).toContain("problem: Invalid: VirtualService t/x spec.port");
  });

  it("exits 4 with the kernel's message when IPVS is not available", async () => {
    const kernel = new FakeIpvsKernel();
    kernel.listServices = async () => {
      throw new IpvsUnavailableError("listServices", "", "ENOENT", "IPVS is not available in this kernel");
    };
    const result = await run(
      ["-f", "examples/nat-round-robin.yaml", "--state-file", join(dir(), "j.json")],
      kernel,
    );
    expect(result.code).toBe(4);
    expect(result.stderr).toContain("IPVS is not available in this kernel");
  });

  it("turns a reply it cannot decode into a clear error", async () => {
    const kernel = new FakeIpvsKernel();
    kernel.listServices = async () => {
      throw new IpvsDecodeError("service attribute ADDR has 3 bytes");
    };
    const result = await run(
      ["-f", "examples/nat-round-robin.yaml", "--state-file", join(dir(), "j.json")],
      kernel,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      "error: the kernel sent a reply this version cannot decode: service attribute ADDR has 3 bytes\n",
    );
  });

  it("rejects a bad managed CIDR and a corrupt journal with clear errors", async () => {
    const kernel = new FakeIpvsKernel();
    const bad = await run(["-f", "examples", "--managed-cidr", "10.0.0.0/99"], kernel);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("10.0.0.0/99");
    const state = join(dir(), "journal.json");
    writeFileSync(state, "{not json");
    const corrupt = await run(["-f", "examples/nat-round-robin.yaml", "--state-file", state], kernel);
    expect(corrupt.code).not.toBe(0);
    expect(corrupt.stderr).toContain(`the state file is not usable: ${state}: not JSON`);
    expect(kernel.serviceCount).toBe(0);
    const unwritable = await run(
      ["-f", "examples/nat-round-robin.yaml", "--state-file", "/proc/journal.json"],
      kernel,
    );
    expect(unwritable.code).toBe(1);
    expect(unwritable.stderr).toMatch(/cannot use the state file \/proc\/journal\.json: E[A-Z]+/);
    expect(kernel.serviceCount).toBe(0);
  });
});

describe("apply on partial or invalid input (fake kernel)", () => {
  const vs = (name: string, address: string, port = "80") =>
    `apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: ${name}, namespace: t}\nspec: {address: ${address}, port: ${port}, scheduler: rr}\n`;

  it("removes nothing when a file does not parse, applies what loaded, exits 3; --delete-despite-errors opts in", async () => {
    const kernel = new FakeIpvsKernel();
    const d = dir();
    const state = join(dir(), "journal.json");
    writeFileSync(join(d, "a.yaml"), vs("a", "192.0.2.1"));
    writeFileSync(join(d, "b.yaml"), vs("b", "192.0.2.2"));
    const args = ["-f", d, "--node", "n", "--state-file", state];
    expect((await run(args, kernel)).code).toBe(0);
    writeFileSync(
      join(d, "b.yaml"),
      "apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: b, nam",
    );
    writeFileSync(join(d, "c.yaml"), vs("c", "192.0.2.3"));
    const partial = await run(args, kernel);
    expect(partial.code).toBe(3);
    expect(partial.stderr).toMatch(/error: .*b\.yaml: document 1: /);
    expect(partial.stdout).toContain(
      "drift: Unexpected TCP 192.0.2.2:80 (Reported): not removed: the input was read only in part (1 manifest files or documents could not be read)",
    );
    expect(partial.stdout).toContain("applied: add service TCP 192.0.2.3:80");
    expect(kernel.serviceCount).toBe(3);
    const forced = await run([...args, "--delete-despite-errors"], kernel);
    expect(forced.code).toBe(3);
    expect(forced.stdout).toContain("applied: delete service TCP 192.0.2.2:80");
    expect(kernel.serviceCount).toBe(2);
  });

  it("keeps the last valid state of a VirtualService an edit made invalid, and reports the problem", async () => {
    const kernel = new FakeIpvsKernel();
    const d = dir();
    const state = join(dir(), "journal.json");
    writeFileSync(join(d, "a.yaml"), vs("a", "192.0.2.1"));
    const args = ["-f", d, "--node", "n", "--state-file", state];
    expect((await run(args, kernel)).code).toBe(0);
    writeFileSync(join(d, "a.yaml"), vs("a", "192.0.2.1", "99999"));
    const invalid = await run(args, kernel);
    expect(invalid.code).toBe(3);
    expect(invalid.stderr).toMatch(/problem: Invalid: VirtualService t\/a spec\.port: /);
    expect(invalid.stdout).toMatch(
      /drift: Unexpected TCP 192\.0\.2\.1:80 \(Reported\): VirtualService t\/a is invalid/,
    );
    expect(kernel.serviceCount).toBe(1);
    // Deleting the object is how the service goes.
    writeFileSync(join(d, "a.yaml"), "");
    const gone = await run(args, kernel);
    expect(gone.stdout).toContain("applied: delete service TCP 192.0.2.1:80");
  });
});

describe("flush --owned (fake kernel)", () => {
  it("deletes what it owns, drains what has connections, and never touches a foreign service", async () => {
    const kernel = new FakeIpvsKernel();
    const foreign = {
      kind: "address",
      family: "IPv4",
      protocol: "TCP",
      address: "203.0.113.5",
      port: 80,
    } as const;
    await kernel.addService({
      key: foreign,
      config: { scheduler: "rr", flags: NO_FLAGS, timeout: 0, netmask: 0xffffffff, persistenceEngine: "" },
    });
    const state = join(dir(), "journal.json");
    expect((await run(["-f", "examples/nat-round-robin.yaml", "--state-file", state], kernel)).code).toBe(0);
    const vip = { ...foreign, address: "192.0.2.10" };
    kernel.setConnections(vip, { family: "IPv4", address: "198.51.100.10", port: 8080 }, { active: 2 });

    expect((await run(["--state-file", state], kernel, flushCommand)).stderr).toContain("only --owned");
    const draining = await run(["--owned", "--state-file", state], kernel, flushCommand);
    expect(draining.code).toBe(0);
    expect(draining.stdout).toContain("1 destinations draining");
    expect(kernel.serviceCount).toBe(2);

    const now = await run(["--owned", "--no-drain", "--state-file", state], kernel, flushCommand);
    expect(now.code).toBe(0);
    expect(now.stdout).toContain("applied: delete service TCP 192.0.2.10:80");
    const left = await readKernelTable(kernel);
    expect(left.map((e) => e.service.key)).toEqual([foreign]);
    expect(JSON.parse(readFileSync(state, "utf8")).services).toEqual([]);
  });
});
