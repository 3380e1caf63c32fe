/**
 * `ipvsadm` changing the table while the agent syncs (real kernel): the agent resyncs every second over
 * 100 VirtualServices x 3 real servers, and for 30 s edits reach its table two ways.
 * - Inside a sync, between its read and its write: the agent's kernel handle runs `ipvsadm` after the
 *   reconciler's table dump has returned and before the reconciler gets it, so the agent plans and writes
 *   from a stale view. Some of these edits undo exactly the drift the agent is about to repair (its
 *   operation then fails: the destination it adds is already there, the one it re-weights or deletes is
 *   gone, or its whole service is gone); the others change entries the agent believes are fine.
 * - Between syncs: a shell loop deletes and re-weights the agent's destinations, deletes whole services
 *   of the agent's, slips in destinations, and edits a foreign service.
 * The agent never stops; every sync with a failed operation reports itself failed; when the edits end it
 * repairs its services to exactly the manifest, and the foreign service is exactly as the loop left it.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OperationResult, ReadTableOptions } from "../../../src/kernel/ipvs-kernel.ts";
import { NetlinkIpvsKernel } from "../../../src/kernel/netlink-kernel.ts";
import type { RunnerHealth } from "../../../src/reconcile/runner.ts";
import { type Operation, operationServiceKey } from "../../../src/vocabulary/operations.ts";
import {
  destinationKeyString,
  type KernelSnapshot,
  serviceKeyString,
} from "../../../src/vocabulary/table.ts";
import { type InProcessAgent, ipvsadm, scratch, startDirectoryAgent, writeManifest } from "./vm-helpers.ts";

const COUNT = 100;
const vip = (i: number) => `172.21.0.${i + 1}`;
const real = (i: number, j: number) => `10.70.${j}.${i + 1}`;

function manifest(): string {
  const docs: string[] = [];
  for (let i = 0; i < COUNT; i++) {
    docs.push(
      `apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: vs-${i}, namespace: edits}\nspec: {address: ${vip(i)}, port: 80, scheduler: rr, drain: {timeoutSeconds: 0}}`,
      ...[0, 1, 2].map(
        (j) =>
          `apiVersion: ipvs.dev/v1alpha1\nkind: RealServer\nmetadata: {name: vs-${i}-${j}, namespace: edits}\nspec: {virtualServiceRef: {name: vs-${i}}, address: ${real(i, j)}, port: 8080}`,
      ),
    );
  }
  return `${docs.join("\n---\n")}\n`;
}

/** The loop: every step edits the agent's table at random and the foreign service; ends in a known state. */
const EDITS = `
end=$(( $(date +%s) + 30 )); n=0
while [ "$(date +%s)" -lt "$end" ]; do
  i=$(( RANDOM % ${COUNT} + 1 )); j=$(( RANDOM % 3 ))
  case $(( RANDOM % 4 )) in
    0) ipvsadm -d -t 172.21.0.$i:80 -r 10.70.$j.$i:8080 ;;
    1) ipvsadm -e -t 172.21.0.$i:80 -r 10.70.$j.$i:8080 -m -w $(( RANDOM % 50 + 2 )) ;;
    2) ipvsadm -D -t 172.21.0.$i:80 ;;
    3) ipvsadm -a -t 172.21.0.$i:80 -r 10.71.0.$i:8080 -m -w 3 ;;
  esac
  ipvsadm -a -t 10.99.1.1:80 -r 10.98.1.$(( n % 200 + 1 )):80 -m -w $(( n % 7 + 1 ))
  [ $(( n % 3 )) -eq 0 ] && ipvsadm -d -t 10.99.1.1:80 -r 10.98.1.$(( (n - 5) % 200 + 1 )):80
  ipvsadm -E -t 10.99.1.1:80 -s $( [ $(( n % 2 )) -eq 0 ] && echo wlc || echo rr )
  n=$(( n + 1 ))
done 2>/dev/null
ipvsadm -E -t 10.99.1.1:80 -s sh
echo "$n"
`;

/**
 * One ipvsadm edit made between a sync's read and its write. `collides`: the key (service, or service and
 * destination, as serviceKeyString / destinationKeyString) whose planned operation the edit makes fail.
 */
interface Edit {
  args: string[];
  collides?: string;
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

/**
 * The edits to make after the agent read `snapshot`: up to 2 that undo drift it is about to repair (when
 * `collide`; each on its own service) and 1 on a service it reads as exactly the manifest. A service the
 * read lacks is left alone: the only edit its addService could meet is re-creating the service, and
 * then (EEXIST) the agent no longer journals the key and leaves it alone as foreign, so the manifest
 * could not be reached.
 */
function editsAfterRead(snapshot: KernelSnapshot, collide: boolean): Edit[] {
  const read = new Map<number, Map<string, number>>(); // VirtualService -> destination -> weight
  for (const entry of snapshot.table) {
    const key = entry.service.key;
    if (key.kind !== "address" || !key.address.startsWith("172.21.0.")) continue;
    const i = Number(key.address.split(".")[3]) - 1;
    read.set(i, new Map(entry.destinations.map((d) => [destinationKeyString(d.key), d.config.weight])));
  }
  const collisions: Edit[] = [];
  const fine: number[] = [];
  for (const [i, destinations] of read) {
    const service = `TCP ${vip(i)}:80`;
    const dest = (d: string): Edit["args"] => ["-t", `${vip(i)}:80`, "-r", d];
    const options: Edit[] = [];
    const wanted = [0, 1, 2].map((j) => `${real(i, j)}:8080`);
    for (const d of wanted) {
      const weight = destinations.get(d);
      if (weight === undefined)
        options.push({ args: ["-a", ...dest(d), "-m", "-w", "9"], collides: `${service} ${d}` }); // it adds d
      else if (weight !== 1) options.push({ args: ["-d", ...dest(d)], collides: `${service} ${d}` }); // re-weights
    }
    for (const d of destinations.keys()) {
      if (!wanted.includes(d)) options.push({ args: ["-d", ...dest(d)], collides: `${service} ${d}` }); // deletes d
    }
    if (options.length === 0) {
      fine.push(i);
      continue;
    }
    options.push({ args: ["-D", "-t", `${vip(i)}:80`], collides: service }); // every operation on it fails
    collisions.push(pick(options));
  }
  const edits: Edit[] = [];
  while (collide && edits.length < 2 && collisions.length > 0)
    edits.push(collisions.splice(Math.floor(Math.random() * collisions.length), 1)[0]!);
  if (fine.length > 0) {
    const i = pick(fine);
    const d = `${real(i, Math.floor(Math.random() * 3))}:8080`;
    edits.push({
      args: pick([
        ["-d", "-t", `${vip(i)}:80`, "-r", d],
        ["-e", "-t", `${vip(i)}:80`, "-r", d, "-m", "-w", String(2 + Math.floor(Math.random() * 48))],
        ["-D", "-t", `${vip(i)}:80`],
        ["-a", "-t", `${vip(i)}:80`, "-r", `10.72.0.${i + 1}:8080`, "-m", "-w", "5"],
      ]),
    });
  }
  return edits;
}

/**
 * The agent's kernel handle: the real one, but while `edit` is set, the table the reconciler reads
 * (`stats: false`; the metrics and the restart-health reads take counters) is stale by the time the
 * reconciler gets it: `ipvsadm` edits it synchronously first. Counts what that did to the writes.
 */
class EditingKernel extends NetlinkIpvsKernel {
  edit: ((snapshot: KernelSnapshot) => Edit[]) | undefined;
  /** The agent's runner health (sync counter, last result). */
  runner: () => RunnerHealth | undefined = () => undefined;
  readonly figures = {
    injected: 0,
    collisions: 0,
    /** Collisions whose planned operation failed in the write that followed. */
    collisionsMet: 0,
    /** Syncs whose read was followed by at least one edit. */
    syncsAffected: 0,
    injectingMs: 0,
    failedOperations: 0,
    failedByKind: new Map<string, number>(),
    /** Sync number -> operations of it that failed. */
    failedBySync: new Map<number, number>(),
    /** Results checked against the failed operations of their sync, and those that did not report them. */
    resultsChecked: 0,
    unreported: [] as string[],
  };
  #expected = new Set<string>();

  override async readTable(options?: ReadTableOptions): Promise<KernelSnapshot> {
    const snapshot = await super.readTable(options);
    if (options?.stats !== false) return snapshot;
    this.#checkLastResult();
    this.#expected.clear();
    const edits = this.edit?.(snapshot) ?? [];
    const started = Date.now();
    let made = 0;
    for (const edit of edits) {
      try {
        execFileSync("ipvsadm", edit.args, { stdio: "ignore" });
      } catch {
        continue; // the loop changed that entry meanwhile
      }
      made++;
      if (edit.collides) {
        this.figures.collisions++;
        this.#expected.add(edit.collides);
      }
    }
    this.figures.injected += made;
    this.figures.injectingMs += Date.now() - started;
    if (made > 0) this.figures.syncsAffected++;
    return snapshot;
  }

  override async apply(operations: readonly Operation[]): Promise<OperationResult[]> {
    const results = await super.apply(operations);
    const sync = this.runner()?.syncs ?? 0;
    results.forEach((result, i) => {
      if (result.ok) return;
      const op = operations[i]!;
      const f = this.figures;
      f.failedOperations++;
      const kind = `${op.op} ${result.error.errno}`;
      f.failedByKind.set(kind, (f.failedByKind.get(kind) ?? 0) + 1);
      f.failedBySync.set(sync, (f.failedBySync.get(sync) ?? 0) + 1);
      const service = serviceKeyString(operationServiceKey(op));
      const d = op.op === "deleteDestination" ? op.key : "destination" in op ? op.destination.key : undefined;
      const destination = d ? `${service} ${destinationKeyString(d)}` : undefined;
      if ((destination && this.#expected.delete(destination)) || this.#expected.delete(service))
        f.collisionsMet++;
    });
    return results;
  }

  /** At a sync's read, the sync before it has ended: its result must count the operations that failed. */
  #checkLastResult(): void {
    const health = this.runner();
    if (!health) return;
    const failed = this.figures.failedBySync.get(health.syncs - 1);
    if (failed === undefined) return;
    this.figures.resultsChecked++;
    const result = health.lastResult;
    if (!result || result.ok || result.failed < failed)
      this.figures.unreported.push(
        `sync ${health.syncs - 1}: ${failed} operations failed, its result says ok=${result?.ok} failed=${result?.failed}`,
      );
  }
}

describe("ipvsadm edits the table while the agent resyncs, and between its read and write (real kernel)", () => {
  let director: InProcessAgent | undefined;
  let loop: ChildProcess | undefined;
  const kernel = new EditingKernel();

  beforeAll(async () => {
    ipvsadm(["-C"]);
    ipvsadm(["-A", "-t", "10.99.1.1:80", "-s", "rr"]);
    const dir = scratch("edits-");
    writeManifest(dir, "edits.yaml", manifest());
    director = await startDirectoryAgent(dir, "vm", { resyncInterval: "1s" }, undefined, { kernel });
    kernel.runner = () => director?.agent.health();
  });
  afterAll(async () => {
    kernel.edit = undefined;
    loop?.kill("SIGKILL");
    await director?.stop();
    ipvsadm(["-C"]);
  });

  const ours = () =>
    ipvsadm(["-Sn"])
      .split("\n")
      .filter((l) => l.includes("172.21.0."))
      .sort();
  const foreign = () =>
    ipvsadm(["-Sn"])
      .split("\n")
      .filter((l) => l.includes("10.99.1.1:80"))
      .sort();
  const wanted = Array.from({ length: COUNT }, (_, i) => [
    `-A -t ${vip(i)}:80 -s rr`,
    ...[0, 1, 2].map((j) => `-a -t ${vip(i)}:80 -r ${real(i, j)}:8080 -m -w 1`),
  ])
    .flat()
    .sort();

  it("repairs its own services to the manifest and leaves the foreign one as the edits left it", async () => {
    const started = Date.now();
    while (ours().join("\n") !== wanted.join("\n")) {
      if (Date.now() - started > 180_000) throw new Error("the agent never programmed its table");
      await sleep(500);
    }
    const syncsBefore = director!.agent.health().syncs;
    // Collide only after a successful sync: back to back failures would back the retries off (1 s, 2 s,
    // 4 s, ...) and leave few syncs in the 30 s; the edit elsewhere comes at every read.
    kernel.edit = (snapshot) => editsAfterRead(snapshot, director!.agent.health().consecutiveFailures === 0);
    loop = spawn("bash", ["-c", EDITS], { stdio: ["ignore", "pipe", "inherit"] });
    let edits = "";
    loop.stdout!.on("data", (d) => {
      edits += d;
    });
    await new Promise((r) => loop!.once("exit", r));
    kernel.edit = undefined;
    const afterEdits = foreign();
    const syncsDuring = director!.agent.health().syncs - syncsBefore;

    const f = kernel.figures;
    const figures = () =>
      `${f.injected} edits injected between a sync's read and its write (${f.collisions} undoing drift it was about to repair, ` +
      `${f.injectingMs} ms) in ${f.syncsAffected} syncs; ${f.collisionsMet} of those collisions met by a failed operation; ` +
      `${f.failedOperations} kernel operations failed in ${f.failedBySync.size} syncs (${[...f.failedByKind].map(([k, n]) => `${k} x${n}`).join(", ")}), ` +
      `${f.resultsChecked} of their results checked, ${f.unreported.length} not reporting them`;
    const end = Date.now();
    while (ours().join("\n") !== wanted.join("\n")) {
      if (Date.now() - end > 120_000) {
        const have = new Set(ours());
        throw new Error(
          `not repaired: missing ${wanted.filter((l) => !have.has(l)).slice(0, 5)}; extra ${[...have].filter((l) => !wanted.includes(l)).slice(0, 5)}; ${figures()}`,
        );
      }
      await sleep(500);
    }
    const repairedMs = Date.now() - end;
    // Some more resyncs: the foreign service stays exactly as the loop left it.
    const syncs = director!.agent.health().syncs;
    while (director!.agent.health().syncs < syncs + 3) await sleep(200);
    console.info(
      `concurrent edits: ${edits.trim()} rounds of ipvsadm edits in 30 s over ${syncsDuring} agent syncs; ${figures()}; ` +
        `repaired to the manifest ${repairedMs} ms after the edits stopped; the foreign service (${afterEdits.length - 1} destinations) unchanged over 3 more syncs`,
    );
    expect(f.unreported).toEqual([]);
    expect(f.injected).toBeGreaterThan(0);
    expect(f.syncsAffected).toBeGreaterThanOrEqual(10);
    // The stale view was acted on: writes planned from it hit what the edits had changed.
    expect(f.collisionsMet).toBeGreaterThanOrEqual(5);
    expect(f.resultsChecked).toBeGreaterThan(0);
    expect(foreign()).toEqual(afterEdits);
    expect(afterEdits[0]).toBe("-A -t 10.99.1.1:80 -s sh");
    expect(director!.agent.health().stopped).toBe(false);
  }, 420_000);
});
