import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "./run-cli.ts";

function manifest(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "plan-")), "m.yaml");
  writeFileSync(file, text);
  return file;
}

const GOOD = `apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: good, namespace: t}
spec: {address: 192.0.2.1, port: 80, scheduler: rr}
---
apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: good-a, namespace: t}
spec: {virtualServiceRef: {name: good}, address: 198.51.100.1, port: 8080}
`;

describe("plan with bad input", () => {
  it("reports an invalid object by name and field and still plans the rest (exit 3)", async () => {
    const file = manifest(`${GOOD}---
apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: bad-port-zero, namespace: t}
spec: {address: 192.0.2.2, port: 0}
`);
    const run = await runCli(["plan", "-f", file, "--node", "n"]);
    expect(run.code).toBe(3);
    expect(run.stdout).toBe("-A -t 192.0.2.1:80 -s rr\n-a -t 192.0.2.1:80 -r 198.51.100.1:8080 -m -w 1\n");
    expect(run.stderr).toMatch(
      /problem: Invalid: VirtualService t\/bad-port-zero spec\.port: port 0 \(all ports\) requires persistence/,
    );
  });

  it("keeps the older of two VirtualServices with the same key and reports the other", async () => {
    const file = manifest(`apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: younger, namespace: t, creationTimestamp: "2026-02-01T00:00:00Z"}
spec: {address: 192.0.2.1, port: 80, scheduler: wlc}
---
${GOOD.replace("{name: good, namespace: t}", '{name: good, namespace: t, creationTimestamp: "2026-01-01T00:00:00Z"}')}`);
    const run = await runCli(["plan", "-f", file, "--node", "n"]);
    expect(run.code).toBe(3);
    expect(run.stdout).toContain("-A -t 192.0.2.1:80 -s rr\n");
    expect(run.stderr).toMatch(/problem: Conflict: VirtualService t\/younger/);
  });

  it("notes unknown kinds and YAML errors, and plans what it can", async () => {
    const file = manifest(`${GOOD}---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
---
kind: [broken
`);
    const run = await runCli(["plan", "-f", file, "--node", "n"]);
    expect(run.code).toBe(3);
    expect(run.stdout).toContain("-A -t 192.0.2.1:80 -s rr");
    expect(run.stderr).toContain("note: ");
    expect(run.stderr).toContain('ignored apps/v1 Deployment "web"');
    expect(run.stderr).toMatch(/error: .*m\.yaml: document 4: /);
  });

  it("prints JSON and YAML with the object sources", async () => {
    const json = await runCli(["plan", "-f", manifest(GOOD), "--node", "n", "-o", "json"]);
    const doc = JSON.parse(json.stdout);
    expect(doc.node).toEqual({ name: "n", labels: {} });
    expect(doc.services[0].key).toEqual({
      kind: "address",
      family: "IPv4",
      protocol: "TCP",
      address: "192.0.2.1",
      port: 80,
    });
    expect(doc.services[0].source).toEqual({ namespace: "t", name: "good" });
    expect(doc.services[0].destinations[0].source).toEqual({
      kind: "RealServer",
      namespace: "t",
      name: "good-a",
    });
    const yaml = await runCli(["plan", "-f", manifest(GOOD), "--node", "n", "-o", "yaml"]);
    expect(yaml.stdout).toContain("scheduler: rr");
  });

  it("rejects usage errors with exit 2", async () => {
    expect((await runCli(["plan"])).code).toBe(2);
    expect((await runCli(["plan", "-f", "x", "-o", "xml"])).stderr).toContain("--output must be");
    expect((await runCli(["plan", "--bogus"])).code).toBe(2);
    expect((await runCli(["frobnicate"])).stderr).toContain('unknown command "frobnicate"');
  });
});

describe("plan and health checks", () => {
  const CHECKED = GOOD.replace(
    "spec: {address: 192.0.2.1, port: 80, scheduler: rr}",
    "spec: {address: 192.0.2.1, port: 80, scheduler: rr, healthCheck: {type: TCP}, sorryServer: {address: 198.51.100.99, port: 80}}",
  );

  it("takes backends with a health check as healthy by default, and says so", async () => {
    const run = await runCli(["plan", "-f", manifest(CHECKED), "--node", "n"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe("-A -t 192.0.2.1:80 -s rr\n-a -t 192.0.2.1:80 -r 198.51.100.1:8080 -m -w 1\n");
    expect(run.stderr).toContain("note: health checks are not run by plan/apply");
  });

  it("plans the initialState (Unhealthy by default: quiesced, sorry server) with --health initial", async () => {
    const run = await runCli(["plan", "-f", manifest(CHECKED), "--node", "n", "--health", "initial"]);
    expect(run.code).toBe(0);
    // The quiesced real server stays at weight 0 next to the sorry server (as keepalived keeps it).
    expect(run.stdout).toBe(
      "-A -t 192.0.2.1:80 -s rr\n-a -t 192.0.2.1:80 -r 198.51.100.1:8080 -m -w 0\n-a -t 192.0.2.1:80 -r 198.51.100.99:80 -m -w 1\n",
    );
    expect(run.stderr).toBe("");
    expect((await runCli(["plan", "-f", manifest(CHECKED), "--health", "maybe"])).code).toBe(2);
  });
});
