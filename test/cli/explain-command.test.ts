import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { explainCommand } from "../../src/cli/explain-command.ts";
import { captureOutput, runCli } from "./run-cli.ts";

const MANIFESTS = `apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: web, namespace: edge}
spec:
  address: 192.0.2.10
  port: 80
  scheduler: wlc
  nodeSelector: {matchLabels: {ipvs.dev/edge: "true"}}
---
apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: web-a, namespace: edge}
spec: {virtualServiceRef: {name: web}, address: 198.51.100.5, port: 8080, weight: 5}
`;

function files(): { manifest: string; journal: string } {
  const dir = mkdtempSync(join(tmpdir(), "explain-"));
  const manifest = join(dir, "m.yaml");
  writeFileSync(manifest, MANIFESTS);
  const journal = join(dir, "journal.json");
  writeFileSync(
    journal,
    JSON.stringify({
      version: 2,
      bootId: "boot-1",
      services: ["TCP 192.0.2.10:80"],
      owners: { "TCP 192.0.2.10:80": "edge/web" },
      drains: [],
    }),
  );
  return { manifest, journal };
}

describe("ipvs-operator explain", () => {
  it("exits 0 with the reasons when the VIP is in the table", async () => {
    const { manifest } = files();
    const run = await runCli([
      "explain",
      "192.0.2.10",
      "-f",
      manifest,
      "--node",
      "n1",
      "--node-labels",
      "ipvs.dev/edge=true",
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      "192.0.2.10 is in node n1's table: TCP 192.0.2.10:80 (scheduler wlc, 1 real server)",
    );
    expect(run.stdout).toContain("- real server 198.51.100.5:8080 weight 5 NAT (RealServer edge/web-a).");
  });

  it("exits 1 and names the nodeSelector when the node is not selected", async () => {
    const { manifest } = files();
    const run = await runCli(["explain", "198.51.100.5:8080", "-f", manifest, "--node", "n2"]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("198.51.100.5:8080 is NOT in node n2's table.");
    expect(run.stdout).toContain(
      "its nodeSelector does not select node n2: matchLabels wants ipvs.dev/edge=true, the node has no label ipvs.dev/edge",
    );
  });

  it("reads ownership from the state file, as of this boot", async () => {
    const { manifest, journal } = files();
    const args = ["tcp/192.0.2.10:80", "-f", manifest, "--node", "n1", "--node-labels", "ipvs.dev/edge=true"];
    const deps = (bootId: string) => ({ now: () => 0, bootId: async () => bootId });
    const same = await captureOutput(() =>
      explainCommand([...args, "--state-file", journal], deps("boot-1")),
    );
    expect(same.code).toBe(0);
    expect(same.stdout).toContain(
      "the journal records it: this tool programmed it (for VirtualService edge/web)",
    );
    const other = await captureOutput(() =>
      explainCommand([...args, "--state-file", journal], deps("boot-2")),
    );
    expect(other.stdout).toContain("the journal was written in another boot (boot-1)");
  });

  it("exits 2 on usage errors", async () => {
    const { manifest } = files();
    expect((await runCli(["explain", "-f", manifest])).code).toBe(2);
    const bad = await runCli(["explain", "web.example", "-f", manifest]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('"web.example" is not an address');
    expect((await runCli(["explain", "192.0.2.10"])).stderr).toContain("no manifests given");
    expect((await runCli(["explain", "192.0.2.10", "-f", manifest, "--managed-cidr", "nope"])).code).toBe(2);
  });
});
