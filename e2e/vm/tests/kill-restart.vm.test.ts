/**
 * Killed at random points, on the real kernel. `ipvs-operator apply` (the bundle, as users run it) is
 * SIGKILLed many times in the middle of large changes between two tables (750 operations each way) at a
 * random point of its kernel phase (after it wrote the journal that precedes the operations); after
 * every kill the ownership journal parses, journals every service of ours that is in the kernel (nothing
 * leaks to "foreign"), and the foreign services are byte-identical; a final run converges to exactly
 * the manifest (no destination lost or doubled) and a run after it has nothing to do.
 * Then the agent (the bundle, a manifest directory, HTTP health checks with initialState Unhealthy and a
 * sorry server) is SIGKILLed and started again while requests flow through its VIP: not one request
 * fails or reaches the sorry server, and the real servers' weights never change.
 * KILL_ROUNDS and KILL_SEED choose the number of kills and the random points (printed for a replay).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, rmSync, statSync } from "node:fs";
import { get } from "node:http";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NetlinkIpvsKernel } from "../../../src/kernel/netlink-kernel.ts";
import { readKernelTable } from "../../../src/kernel/read-kernel-table.ts";
import { parseJournal } from "../../../src/reconcile/ownership-journal.ts";
import { serviceKeyString } from "../../../src/vocabulary/table.ts";
import { seededRandom } from "../../../test/support/seeded-random.ts";
import {
  type BackendNamespace,
  backendNamespace,
  httpGet,
  ipvsadm,
  scratch,
  webManifest,
  writeManifest,
} from "./vm-helpers.ts";

const project = resolve(import.meta.dirname, "../../..");
const ROUNDS = Number(process.env.KILL_ROUNDS ?? 4);
const AGENT_ROUNDS = Number(process.env.KILL_AGENT_ROUNDS ?? 1);
const SEED = Number(process.env.KILL_SEED ?? Date.now() % 100_000);

const vip = (i: number) => `172.20.${i >> 8}.${i & 255}`;
/** Variant A: services 0-149; B: 0-99 (two of five real servers replaced) and 150-199. */
function variant(which: "A" | "B"): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const indexes = which === "A" ? range(0, 150) : [...range(0, 100), ...range(150, 200)];
  for (const i of indexes) {
    out.set(
      vip(i),
      range(0, 5).map((j) => `10.${(which === "B" && j >= 3 ? 60 : 50) + j}.${i >> 8}.${i & 255}`),
    );
  }
  return out;
}
function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, k) => from + k);
}
function manifest(services: Map<string, string[]>): string {
  const docs: string[] = [];
  for (const [address, servers] of services) {
    const name = `vs-${address.replaceAll(".", "-")}`;
    docs.push(
      `apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: ${name}, namespace: kill}\nspec: {address: ${address}, port: 80, scheduler: wrr, forwarding: {method: NAT}}`,
      ...servers.map(
        (rs) =>
          `apiVersion: ipvs.dev/v1alpha1\nkind: RealServer\nmetadata: {name: ${name}-${rs.replaceAll(".", "-")}, namespace: kill}\nspec: {virtualServiceRef: {name: ${name}}, address: ${rs}, port: 8080}`,
      ),
    );
  }
  return `${docs.join("\n---\n")}\n`;
}

const FOREIGN = [
  "-A -t 10.99.0.1:80 -s rr",
  "-a -t 10.99.0.1:80 -r 10.98.0.1:80 -m -w 1",
  "-a -t 10.99.0.1:80 -r 10.98.0.2:80 -m -w 3",
  "-A -u 10.99.0.2:53 -s wlc",
  "-a -u 10.99.0.2:53 -r 10.98.0.3:53 -g -w 1",
  "-A -f 77 -s sh",
];
const foreignLines = () =>
  ipvsadm(["-Sn"])
    .split("\n")
    .filter((l) => l.includes("10.99.0.") || l.includes("10.98.0.") || l.startsWith("-A -f 77"));

describe("apply SIGKILLed at random points of large changes (real kernel)", () => {
  const kernel = new NetlinkIpvsKernel();
  const dir = scratch("kill-manifests-");
  const state = join(scratch("kill-state-"), "journal.json");
  const children: ChildProcess[] = [];

  function apply(): {
    child: ChildProcess;
    done: Promise<{ code: number | null; signal: string | null; out: string }>;
  } {
    const child = spawn(
      join(project, "bin/ipvs-operator"),
      ["apply", "-f", dir, "--node", "vm", "--state-file", state, "-o", "json", "--lock-timeout", "60"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    children.push(child);
    let out = "";
    child.stdout!.on("data", (d) => {
      out += d;
    });
    child.stderr!.on("data", (d) => {
      out += d;
    });
    const done = new Promise<{ code: number | null; signal: string | null; out: string }>((r) =>
      child.once("exit", (code, signal) => r({ code, signal, out })),
    );
    return { child, done };
  }

  const mtime = () => {
    try {
      return statSync(state).mtimeMs;
    } catch {
      return 0;
    }
  };

  /** The kernel's services of ours (not foreign), as journal keys, and destinations per VIP. */
  async function ours(): Promise<{ keys: string[]; destinations: Map<string, string[]> }> {
    const table = await readKernelTable(kernel);
    const keys: string[] = [];
    const destinations = new Map<string, string[]>();
    for (const { service, destinations: ds } of table) {
      if (service.key.kind !== "address" || !service.key.address.startsWith("172.20.")) continue;
      keys.push(serviceKeyString(service.key));
      destinations.set(
        service.key.address,
        ds.map((d) => d.key.address),
      );
    }
    return { keys, destinations };
  }

  beforeAll(() => {
    ipvsadm(["-C"]);
    ipvsadm(["-R"], `${FOREIGN.join("\n")}\n`);
  });
  afterAll(async () => {
    for (const c of children) c.kill("SIGKILL");
    await kernel.close();
    ipvsadm(["-C"]);
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    `converges after ${ROUNDS} SIGKILLs at random points, the journal never corrupt, foreign entries untouched`,
    async () => {
      const foreign = foreignLines();
      expect(foreign).toHaveLength(FOREIGN.length);
      writeManifest(dir, "kill.yaml", manifest(variant("A")));
      const first = Date.now();
      const full = await apply().done;
      const fullMs = Date.now() - first;
      expect(full.code).toBe(0);
      expect((await ours()).keys).toHaveLength(150);
      const kernelMs = (JSON.parse(full.out) as { milliseconds: number }).milliseconds;

      const next = seededRandom(SEED);
      let partial = 0;
      let completed = 0;
      let target: "A" | "B" = "A";
      const delays: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        target = target === "A" ? "B" : "A";
        writeManifest(dir, "kill.yaml", manifest(variant(target)));
        // The sync's operations take the later part of its time (the dump and the plan come first).
        const delay = Math.round(kernelMs * 0.6 * next());
        delays.push(delay);
        const journalAt = mtime();
        const run = apply();
        let timer: NodeJS.Timeout | undefined;
        const watch = setInterval(() => {
          if (mtime() === journalAt) return;
          clearInterval(watch);
          timer = setTimeout(() => run.child.kill("SIGKILL"), delay);
        }, 20);
        const end = await run.done;
        clearInterval(watch);
        clearTimeout(timer);
        if (end.signal !== "SIGKILL") completed++;

        // The journal is whole (or not written yet) and owns every service of ours in the kernel.
        const text = (() => {
          try {
            return readFileSync(state, "utf8");
          } catch {
            return undefined;
          }
        })();
        expect(text, `round ${round}: the journal exists`).toBeDefined();
        const journal = parseJournal(text!, state);
        const now = await ours();
        const journaled = new Set(journal.services);
        expect(now.keys.filter((k) => !journaled.has(k))).toEqual([]);
        expect(foreignLines()).toEqual(foreign);
        const a = variant("A");
        const b = variant("B");
        const whole = (v: Map<string, string[]>) =>
          now.destinations.size === v.size &&
          [...v].every(
            ([k, rs]) =>
              JSON.stringify([...(now.destinations.get(k) ?? [])].sort()) === JSON.stringify([...rs].sort()),
          );
        if (!whole(a) && !whole(b)) partial++;
      }

      // One run to the end converges; a second finds nothing to do.
      writeManifest(dir, "kill.yaml", manifest(variant(target)));
      const last = await apply().done;
      expect(last.code).toBe(0);
      const wanted = variant(target);
      const now = await ours();
      expect([...now.destinations.keys()].sort()).toEqual([...wanted.keys()].sort());
      for (const [address, servers] of wanted) {
        expect([...(now.destinations.get(address) ?? [])].sort(), address).toEqual([...servers].sort());
      }
      const again = await apply().done;
      expect(again.code).toBe(0);
      expect((JSON.parse(again.out) as { operations: unknown[] }).operations).toEqual([]);
      expect(foreignLines()).toEqual(foreign);
      console.info(
        `kill-restart: ${ROUNDS} SIGKILLs (seed ${SEED}) into the kernel phase (first apply: ${fullMs} ms, of which the sync ${kernelMs} ms), ` +
          `at ${delays.join(",")} ms after the journal was written; ` +
          `${partial} left the table between the two states, ${completed} ran to the end before the kill; ` +
          "every time: journal parsed, every service of ours journaled, foreign entries byte-identical; converged after the last",
      );
    },
    300_000 + ROUNDS * 120_000,
  );
});

describe("the agent SIGKILLed and restarted while traffic flows through its VIP (real kernel)", () => {
  const VIP = "192.0.2.74";
  const A = "198.51.112.2";
  const B = "198.51.112.3";
  const SORRY = "198.51.112.9";
  const HTTP = "127.0.0.1:9474";
  const dir = scratch("kill-agent-");
  const state = join(scratch("kill-agent-state-"), "journal.json");
  const next = seededRandom(SEED + 1);
  let agent: ChildProcess | undefined;
  let backends: BackendNamespace | undefined;

  const startAgent = () =>
    spawn(
      join(project, "bin/ipvs-operator"),
      [
        "agent",
        "--from-dir",
        dir,
        "--node-name",
        "vm",
        "--state-file",
        state,
        "--http-address",
        HTTP,
        "--resync-interval",
        "5s",
      ],
      { stdio: "ignore" },
    );
  const ready = () =>
    new Promise<boolean>((done) => {
      const req = get(
        { host: "127.0.0.1", port: 9474, path: "/readyz", agent: false, timeout: 2_000 },
        (res) => {
          res.resume();
          done(res.statusCode === 200);
        },
      );
      req.on("timeout", () => req.destroy());
      req.on("error", () => done(false));
    });
  const request = () => httpGet(VIP);
  const weights = () =>
    [...ipvsadm(["-Sn"]).matchAll(new RegExp(`-a -t ${VIP}:80 -r (\\S+):8080 -m -w (\\d+)`, "g"))]
      .map((m) => `${m[1]}=${m[2]}`)
      .sort()
      .join(" ");
  async function waitFor(
    what: string,
    check: () => Promise<boolean> | boolean,
    limitMs = 240_000,
  ): Promise<number> {
    const start = Date.now();
    while (!(await check())) {
      if (Date.now() - start > limitMs) throw new Error(`gave up waiting for ${what}: ${weights()}`);
      await sleep(250);
    }
    return Date.now() - start;
  }
  async function kill(child: ChildProcess): Promise<void> {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
  }

  beforeAll(async () => {
    ipvsadm(["-C"]);
    backends = await backendNamespace("vkr", "198.51.112.1/24", [A, B, SORRY]);
    for (const address of [A, B, SORRY]) await backends.serve(address);
    writeManifest(
      dir,
      "web.yaml",
      webManifest(
        VIP,
        [
          "healthCheck: {type: HTTP, path: /, intervalSeconds: 2, timeoutSeconds: 1, riseCount: 2, fallCount: 2, initialState: Unhealthy}",
          `sorryServer: {address: ${SORRY}, port: 8080}`,
        ],
        [{ address: A }, { address: B }],
      ),
    );
  });
  afterAll(async () => {
    if (agent) await kill(agent);
    backends?.close();
    ipvsadm(["-C"]);
  });

  it(
    "answers every request from the real servers across SIGKILLs and restarts",
    async () => {
      agent = startAgent();
      const healthy = `${A}=1 ${B}=1`;
      await waitFor("both real servers healthy, no sorry server", () => weights() === healthy);
      const answers: Record<string, number> = {};
      let flowing = true;
      const client = (async () => {
        while (flowing) {
          const who = await request();
          answers[who] = (answers[who] ?? 0) + 1;
          await sleep(50);
        }
      })();
      const seen = new Set<string>();
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          seen.add(weights());
          await sleep(500);
        }
      })();
      const kills = AGENT_ROUNDS;
      const points: number[] = [];
      for (let round = 0; round < kills; round++) {
        // At a random point of the agent's life: in its start-up, its first sync or its probing.
        const at = Math.round(30_000 * next());
        points.push(at);
        await sleep(at);
        await kill(agent);
        agent = startAgent();
        await waitFor("the restarted agent ready", ready);
        await sleep(6_000); // a few probe intervals of the new agent
      }
      flowing = false;
      sampling = false;
      await Promise.all([client, sampler]);
      const total = Object.values(answers).reduce((a, b) => a + b, 0);
      console.info(
        `agent kill-restart under traffic: ${kills} SIGKILLs at ${points.join(",")} ms, ${total} requests: ${JSON.stringify(answers)}; weights seen ${[...seen].join(" | ")}`,
      );
      expect(Object.keys(answers).sort()).toEqual([`answer from ${A}`, `answer from ${B}`]);
      expect([...seen]).toEqual([healthy]);
    },
    300_000 + AGENT_ROUNDS * 240_000,
  );
});
