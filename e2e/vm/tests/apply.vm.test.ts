/**
 * `ipvs-operator apply` against the real kernel: converge, idempotence, drift repair, foreign entries,
 * removal with the journal, and the error cases (missing scheduler module, an address the kernel rejects).
 * The "IPVS module missing" case needs a VM booted without ip_vs: e2e/vm/check-no-ipvs.sh.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../../test/cli/run-cli.ts";
import { ipvsadm, scratch, writeManifest } from "./vm-helpers.ts";

const NODE = ["--node", "vm", "--node-labels", "ipvs.dev/edge=true"];

describe("ipvs-operator apply on a real kernel", () => {
  let dir: string;
  let state: string;
  const apply = (...files: string[]) =>
    runCli(["apply", ...files.flatMap((f) => ["-f", f]), ...NODE, "--state-file", state]);

  beforeAll(() => {
    ipvsadm(["-C"]);
    dir = scratch("apply-");
    state = `${dir}/journal.json`;
    // A service someone else (keepalived, a person) manages on the same machine.
    ipvsadm(["-A", "-t", "203.0.113.50:80", "-s", "rr"]);
    ipvsadm(["-a", "-t", "203.0.113.50:80", "-r", "198.51.100.250:80", "-m", "-w", "7"]);
  });
  afterAll(() => ipvsadm(["-C"]));

  const foreignLines = () =>
    ipvsadm(["-Sn"])
      .split("\n")
      .filter((l) => l.includes("203.0.113.50"));

  it("converges to the plan and leaves the foreign service alone", async () => {
    const first = await apply("examples");
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/operations applied, 0 failed, 0 skipped; the kernel matches the plan/);
    expect(first.stdout).toContain("drift: Foreign TCP 203.0.113.50:80 (Ignored)");
    const planned = await runCli(["plan", "-f", "examples", ...NODE]);
    const live = ipvsadm(["-Sn"]);
    expect(
      live
        .split("\n")
        .filter((l) => !l.includes("203.0.113.50"))
        .join("\n"),
    ).toBe(planned.stdout);
    expect(foreignLines()).toEqual([
      "-A -t 203.0.113.50:80 -s rr",
      "-a -t 203.0.113.50:80 -r 198.51.100.250:80 -m -w 7",
    ]);
  });

  it("changes nothing on a second run", async () => {
    const before = ipvsadm(["-Sn"]);
    const second = await apply("examples");
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/^drift: Foreign TCP 203\.0\.113\.50:80 \(Ignored\)\n0 operations applied/);
    expect(ipvsadm(["-Sn"])).toBe(before);
  });

  it("repairs exactly what ipvsadm changed behind its back, and reports it", async () => {
    const before = ipvsadm(["-Sn"]);
    ipvsadm(["-d", "-t", "192.0.2.10:80", "-r", "198.51.100.10:8080"]);
    ipvsadm(["-e", "-t", "192.0.2.11:443", "-r", "198.51.100.20:443", "-g", "-w", "9"]);
    const repair = await apply("examples");
    expect(repair.code).toBe(0);
    const lines = repair.stdout.trim().split("\n");
    expect(lines).toEqual([
      "drift: Missing TCP 192.0.2.10:80 -> 198.51.100.10:8080 (Repaired)",
      "drift: Modified TCP 192.0.2.11:443 -> 198.51.100.20:443 weight: expected 3, found 9 (Repaired)",
      "drift: Foreign TCP 203.0.113.50:80 (Ignored)",
      "applied: add destination TCP 192.0.2.10:80 -> 198.51.100.10:8080 (weight 1)",
      "applied: update destination TCP 192.0.2.11:443 -> 198.51.100.20:443 (weight 3)",
      expect.stringMatching(/^2 operations applied, 0 failed, 0 skipped; the kernel matches the plan/),
    ]);
    expect(ipvsadm(["-Sn"])).toBe(before);
  });

  it("removes the services it owns when their manifests go, and only those", async () => {
    const removed = await apply("examples/nat-round-robin.yaml");
    expect(removed.code).toBe(0);
    const live = ipvsadm(["-Sn"]);
    expect(live).toBe(
      [
        "-A -t 192.0.2.10:80 -s rr",
        "-a -t 192.0.2.10:80 -r 198.51.100.10:8080 -m -w 1",
        "-a -t 192.0.2.10:80 -r 198.51.100.11:8080 -m -w 1",
        "-A -t 203.0.113.50:80 -s rr",
        "-a -t 203.0.113.50:80 -r 198.51.100.250:80 -m -w 7",
        "",
      ].join("\n"),
    );
  });

  it("reports a missing scheduler module and an address the kernel rejects, and applies the rest", async () => {
    const file = writeManifest(
      dir,
      "errors.yaml",
      `apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: two-choices, namespace: t}
spec: {address: 192.0.2.40, port: 80, scheduler: twos}
---
apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: two-choices-a, namespace: t}
spec: {virtualServiceRef: {name: two-choices}, address: 198.51.100.41, port: 80}
---
apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: fine, namespace: t}
spec: {address: 192.0.2.41, port: 80, scheduler: rr}
---
apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: multicast, namespace: t}
spec: {virtualServiceRef: {name: fine}, address: 224.0.0.5, port: 80}
---
apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: fine-a, namespace: t}
spec: {virtualServiceRef: {name: fine}, address: 198.51.100.42, port: 80}
`,
    );
    const run = await apply("examples/nat-round-robin.yaml", file);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(
      /failed: add service TCP 192\.0\.2\.40:80: addService TCP 192\.0\.2\.40:80 failed: ENOENT \(.*ip_vs_twos.*\)/,
    );
    expect(run.stdout).toMatch(/skipped: add destination TCP 192\.0\.2\.40:80 -> 198\.51\.100\.41:80/);
    expect(run.stdout).toMatch(/failed: add destination TCP 192\.0\.2\.41:80 -> 224\.0\.0\.5:80 .*EINVAL/);
    expect(run.stdout).toContain("the kernel does NOT match the plan");
    const live = ipvsadm(["-Sn"]);
    expect(live).toContain("-A -t 192.0.2.41:80 -s rr\n-a -t 192.0.2.41:80 -r 198.51.100.42:80 -m -w 1\n");
    expect(live).not.toContain("192.0.2.40");
    expect(live).toContain("-a -t 203.0.113.50:80 -r 198.51.100.250:80 -m -w 7");
  });

  it("an unknown-scheduler update fails alone: the real server removed in the same change still drains", async () => {
    const before = writeManifest(
      dir,
      "sched.yaml",
      `apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: sched, namespace: t}
spec: {address: 192.0.2.43, port: 80, scheduler: rr, drain: {timeoutSeconds: 0}}
---
apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: sched-a, namespace: t}
spec: {virtualServiceRef: {name: sched}, address: 198.51.100.43, port: 80}
---
apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: sched-b, namespace: t}
spec: {virtualServiceRef: {name: sched}, address: 198.51.100.44, port: 80}
`,
    );
    expect((await apply(before)).code).toBe(0);
    // The scheduler becomes one this kernel lacks, and sched-b goes in the same change.
    const after = writeManifest(
      dir,
      "sched.yaml",
      `apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: sched, namespace: t}
spec: {address: 192.0.2.43, port: 80, scheduler: twos, drain: {timeoutSeconds: 0}}
---
apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: sched-a, namespace: t}
spec: {virtualServiceRef: {name: sched}, address: 198.51.100.43, port: 80}
`,
    );
    const run = await apply(after);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/failed: update service TCP 192\.0\.2\.43:80: .*ENOENT/);
    expect(run.stdout).toContain("applied: delete destination TCP 192.0.2.43:80 -> 198.51.100.44:80");
    expect(ipvsadm(["-Sn"])).toContain(
      "-A -t 192.0.2.43:80 -s rr\n-a -t 192.0.2.43:80 -r 198.51.100.43:80 -m -w 1\n",
    );
    expect(ipvsadm(["-Sn"])).not.toContain("198.51.100.44");
  });

  it("a half-written manifest file removes nothing, still applies what loaded, and exits non-zero", async () => {
    const part = scratch("partial-");
    writeManifest(part, "a.yaml", readFileSync("examples/nat-round-robin.yaml", "utf8"));
    writeManifest(
      part,
      "b.yaml",
      `apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: half, namespace: t}
spec: {address: 192.0.2.44, port: 80, scheduler: rr}
`,
    );
    expect((await apply(part)).code).toBe(0);
    const whole = ipvsadm(["-Sn"]);
    expect(whole).toContain("192.0.2.44:80");
    // An editor is mid-save: b.yaml is cut off in the middle of a flow mapping; a.yaml gained a weight.
    writeManifest(
      part,
      "b.yaml",
      "apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: half, namesp",
    );
    writeManifest(
      part,
      "a.yaml",
      readFileSync("examples/nat-round-robin.yaml", "utf8").replace(
        "port: 8080\n---",
        "port: 8080\n  weight: 3\n---",
      ),
    );
    const run = await apply(part);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/error: .*b\.yaml: document 1/);
    expect(run.stdout).toMatch(
      /drift: Unexpected TCP 192\.0\.2\.44:80 \(Reported\): not removed: the input was read only in part/,
    );
    expect(run.stdout).toContain(
      "applied: update destination TCP 192.0.2.10:80 -> 198.51.100.10:8080 (weight 3)",
    );
    expect(ipvsadm(["-Sn"])).toContain("-A -t 192.0.2.44:80 -s rr");
    // Opting in deletes it.
    const forced = await runCli([
      "apply",
      "-f",
      part,
      ...NODE,
      "--state-file",
      state,
      "--delete-despite-errors",
    ]);
    expect(forced.code).toBe(3);
    expect(ipvsadm(["-Sn"])).not.toContain("192.0.2.44");
  });

  it("flush --owned deletes what it owns and leaves the foreign service", async () => {
    const flushed = await runCli(["flush", "--owned", "--state-file", state]);
    expect(flushed.code).toBe(0);
    expect(ipvsadm(["-Sn"])).toBe(
      "-A -t 203.0.113.50:80 -s rr\n-a -t 203.0.113.50:80 -r 198.51.100.250:80 -m -w 7\n",
    );
  });
});
