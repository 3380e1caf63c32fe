/**
 * The container image's own file tree as the agent, against the real kernel. e2e/image/build.sh builds
 * the image from the Dockerfile and exports its file tree to .cache/image/rootfs and its config to
 * .cache/image/image.json; this test chroots into that tree (proc, sys, dev and a tmpfs /tmp mounted, as
 * a container runtime would) and runs the image's ENTRYPOINT with `agent --from-dir`: its Node, its
 * bundle, its netlink addon. It waits for the table, repairs a deleted destination, answers /readyz,
 * binds the VIP on its dummy interface ipvs0 (again after an out-of-band delete), keeps a SNAT rule in
 * its nftables table with the image's own nft, asserts a sysctl and the IPVS timeouts, runs the
 * connection sync daemon it is configured with (all repaired after out-of-band changes), and on
 * SIGTERM exits
 * leaving the table as it is (the agent never flushes).
 * Without the exported tree the test fails: run e2e/image/build.sh first (npm test does, before the
 * VM suite).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ipvsadm, scratch } from "./vm-helpers.ts";

const project = new URL("../../..", import.meta.url).pathname;
const imageDir = join(project, ".cache/image");
const HTTP = "127.0.0.1:9797";
/** A one-arm NAT service with spec.snat: the agent keeps its rule in the table inet ipvs_operator. */
const SNAT_MANIFEST = `apiVersion: ipvs.dev/v1alpha1
kind: VirtualService
metadata: {name: web-snat, namespace: demo}
spec: {address: 192.0.2.78, port: 80, snat: {}}
---
apiVersion: ipvs.dev/v1alpha1
kind: RealServer
metadata: {name: web-snat-a, namespace: demo}
spec: {virtualServiceRef: {name: web-snat}, address: 198.51.100.78, port: 8080}
`;
/** examples/nat-round-robin.yaml and SNAT_MANIFEST, as ipvsadm -Sn prints them (lines sorted). */
const EXPECTED = [
  "-A -t 192.0.2.10:80 -s rr",
  "-a -t 192.0.2.10:80 -r 198.51.100.10:8080 -m -w 1",
  "-a -t 192.0.2.10:80 -r 198.51.100.11:8080 -m -w 1",
  "-A -t 192.0.2.78:80 -s wlc",
  "-a -t 192.0.2.78:80 -r 198.51.100.78:8080 -m -w 1",
].sort();
/** The agent's node plumbing flags, and what they make of the node. */
const EDGE_FLAGS = [
  "--sysctl",
  "net.ipv4.vs.expire_nodest_conn=1",
  "--ipvs-timeouts",
  "901,121,301",
  "--sync-daemon",
  "master:dummy0:42", // dummy0: the test bed's interface (e2e/vm/guest-init.sh)
];
const sh = (command: string, ...args: string[]) =>
  execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const snatTable = () => {
  try {
    return sh("nft", "list", "table", "inet", "ipvs_operator");
  } catch {
    return ""; // no table
  }
};
const nodeEdgeAsConfigured = () =>
  /ct original ip daddr 192\.0\.2\.78 ct original proto-dst 80 ip daddr 198\.51\.100\.78 masquerade/.test(
    snatTable(),
  ) &&
  sh("sysctl", "-n", "net.ipv4.vs.conntrack").trim() === "1" &&
  sh("sysctl", "-n", "net.ipv4.vs.expire_nodest_conn").trim() === "1" &&
  ipvsadm(["-L", "--timeout"]).includes("(tcp tcpfin udp): 901 121 301") &&
  /master sync daemon \(mcast=dummy0, syncid=42[,)]/.test(ipvsadm(["-L", "--daemon"]));

interface ImageConfig {
  id: string;
  name: string;
  entrypoint: string[];
  env: string[];
}

const sortedTable = () => ipvsadm(["-Sn"]).trim().split("\n").filter(Boolean).sort();

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 90_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await sleep(250);
  }
}

describe("the image's file tree as the agent on a real kernel", () => {
  let image: ImageConfig;
  let root: string;
  let agent: ChildProcess | undefined;
  let output = "";
  let exited: Promise<number | null>;
  const mounted: string[] = [];
  const mount = (...args: string[]) => {
    execFileSync("mount", args);
    mounted.unshift(args.at(-1)!);
  };

  beforeAll(() => {
    const config = join(imageDir, "image.json");
    if (
      !existsSync(config) ||
      !existsSync(join(imageDir, "rootfs/opt/ipvs-operator/dist/ipvs-operator.mjs"))
    ) {
      throw new Error(
        `no exported image in ${imageDir} (image.json and rootfs/): run e2e/image/build.sh first ` +
          "(it builds the image from the Dockerfile with podman and exports its file tree; npm test runs it before the VM suite)",
      );
    }
    image = JSON.parse(readFileSync(config, "utf8")) as ImageConfig;
    ipvsadm(["-C"]);
    // The guest's view of the project is read-only: a bind mount of the tree under /tmp, with the
    // kernel file systems and a writable /tmp on top, like a container's.
    root = join(scratch("image-agent-"), "root");
    mkdirSync(root);
    mount("--bind", join(imageDir, "rootfs"), root);
    mount("-t", "proc", "proc", join(root, "proc"));
    mount("-t", "sysfs", "sysfs", join(root, "sys"));
    mount("--bind", "/dev", join(root, "dev"));
    mount("-t", "tmpfs", "tmpfs", join(root, "tmp"));
    mkdirSync(join(root, "tmp/manifests"));
    mkdirSync(join(root, "tmp/state"));
    copyFileSync(
      join(project, "examples/nat-round-robin.yaml"),
      join(root, "tmp/manifests/nat-round-robin.yaml"),
    );
    writeFileSync(join(root, "tmp/manifests/snat.yaml"), SNAT_MANIFEST);
  });

  afterAll(async () => {
    if (agent && agent.exitCode === null && agent.signalCode === null) {
      agent.kill("SIGKILL");
      await exited;
    }
    for (const target of mounted) execFileSync("umount", [target]);
    ipvsadm(["-C"]);
    try {
      execFileSync("ip", ["link", "del", "ipvs0"]); // the agent's interface: gone with the test
    } catch {}
    try {
      execFileSync("nft", ["delete", "table", "inet", "ipvs_operator"]); // its SNAT table too
    } catch {}
    try {
      ipvsadm(["--stop-daemon", "master"]); // and the sync daemon it started
    } catch {}
  });

  it("runs the image's entrypoint as the agent and programs the table", async () => {
    agent = spawn(
      "/usr/sbin/chroot",
      [
        root,
        ...image.entrypoint,
        "agent",
        "--node-name",
        "vm",
        "--from-dir",
        "/tmp/manifests",
        "--state-file",
        "/tmp/state/journal.json",
        "--resync-interval",
        "2s",
        "--http-address",
        HTTP,
        ...EDGE_FLAGS,
      ],
      { env: Object.fromEntries([...image.env, "HOME=/root"].map((kv) => kv.split(/=(.*)/s, 2))) },
    );
    agent.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    agent.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const child = agent;
    exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
    child.once("exit", (code, signal) => {
      if (code !== 0) output += `\n[exited: code ${code}, signal ${signal}]`;
    });

    await until(
      `ipvsadm -Ln to show 192.0.2.10:80 and its real servers (agent output so far:\n${output})`,
      () => {
        if (child.exitCode !== null) throw new Error(`the agent exited early:\n${output}`);
        const listing = ipvsadm(["-Ln"]);
        return (
          /TCP {2}192\.0\.2\.10:80 rr/.test(listing) &&
          /-> 198\.51\.100\.10:8080 +Masq +1 /.test(listing) &&
          /-> 198\.51\.100\.11:8080 +Masq +1 /.test(listing)
        );
      },
    );
    expect(sortedTable()).toEqual(EXPECTED);
    // It is the image's tree that runs: the process's root is the chroot.
    expect(readlinkSync(`/proc/${child.pid}/root`)).toBe(root);
    expect(existsSync(join(root, "tmp/state/journal.json"))).toBe(true);
    await until(`/readyz to answer 200 (agent output:\n${output})`, async () => {
      const response = await fetch(`http://${HTTP}/readyz`).catch(() => undefined);
      return response?.status === 200;
    });
  });

  it("puts back a destination deleted behind its back", async () => {
    ipvsadm(["-d", "-t", "192.0.2.10:80", "-r", "198.51.100.11:8080"]);
    await until(`the periodic resync to repair the table (agent output:\n${output})`, () =>
      ipvsadm(["-Sn"]).includes("-r 198.51.100.11:8080"),
    );
    expect(sortedTable()).toEqual(EXPECTED);
  });

  it("binds the VIP on its dummy interface ipvs0 and binds it again when someone deletes it", async () => {
    const bound = () => {
      try {
        return execFileSync("ip", ["-o", "-4", "addr", "show", "dev", "ipvs0"], {
          encoding: "utf8",
        }).includes("inet 192.0.2.10/32");
      } catch {
        return false; // no ipvs0 yet
      }
    };
    await until(`192.0.2.10/32 on ipvs0 (agent output:\n${output})`, bound);
    execFileSync("ip", ["addr", "del", "192.0.2.10/32", "dev", "ipvs0"]);
    await until(`the periodic resync to bind 192.0.2.10 again (agent output:\n${output})`, bound);
  });

  it("keeps the SNAT table (with the image's nft), the sysctls, the IPVS timeouts and the sync daemon, and repairs them after out-of-band changes", async () => {
    await until(`the node plumbing as configured (agent output:\n${output})`, nodeEdgeAsConfigured);
    // A resync (every 2 s) may land between these changes or right after them, so the proof of
    // repair is the agent's own report of each area, not a check that the change was still visible.
    const mark = output.length;
    sh("nft", "delete", "table", "inet", "ipvs_operator");
    sh("sysctl", "-qw", "net.ipv4.vs.expire_nodest_conn=0");
    ipvsadm(["--set", "100", "100", "100"]);
    ipvsadm(["--stop-daemon", "master"]);
    const repaired = (area: string) =>
      output
        .slice(mark)
        .split("\n")
        .some((line) => line.includes("Node plumbing repaired") && line.includes(`"area":"${area}"`));
    await until(
      `the periodic resync to repair the plumbing (agent output:\n${output})`,
      () => ["SNAT", "Sysctl", "Timeout", "SyncDaemon"].every(repaired) && nodeEdgeAsConfigured(),
    );
  });

  it("stops on SIGTERM and leaves the table (and the sync daemon) as it is", async () => {
    const before = ipvsadm(["-Sn"]);
    agent!.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(output).toContain("Stopping; the IPVS table is left as it is");
    expect(ipvsadm(["-Sn"])).toBe(before);
    expect(sortedTable()).toEqual(EXPECTED);
    expect(ipvsadm(["-L", "--daemon"])).toMatch(/master sync daemon \(mcast=dummy0, syncid=42[,)]/); // left running too
  });
});
