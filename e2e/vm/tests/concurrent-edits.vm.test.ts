/**
 * `ipvsadm` changing the table while the agent syncs (real kernel): the agent resyncs every second over
 * 100 VirtualServices x 3 real servers while a shell loop, for 30 s, deletes and re-weights the agent's
 * destinations, deletes whole services of the agent's, and edits a foreign service of its own. The agent
 * never stops or crashes; when the loop ends it repairs its services to exactly the manifest, and the
 * foreign service is exactly as the loop left it (never touched by the agent).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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

describe("ipvsadm edits the table while the agent resyncs (real kernel)", () => {
  let director: InProcessAgent | undefined;
  let loop: ChildProcess | undefined;

  beforeAll(async () => {
    ipvsadm(["-C"]);
    ipvsadm(["-A", "-t", "10.99.1.1:80", "-s", "rr"]);
    const dir = scratch("edits-");
    writeManifest(dir, "edits.yaml", manifest());
    director = await startDirectoryAgent(dir, "vm", { resyncInterval: "1s" });
  });
  afterAll(async () => {
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
    loop = spawn("bash", ["-c", EDITS], { stdio: ["ignore", "pipe", "inherit"] });
    let edits = "";
    loop.stdout!.on("data", (d) => {
      edits += d;
    });
    await new Promise((r) => loop!.once("exit", r));
    const afterEdits = foreign();
    const syncsDuring = director!.agent.health().syncs - syncsBefore;

    const end = Date.now();
    while (ours().join("\n") !== wanted.join("\n")) {
      if (Date.now() - end > 120_000) {
        const have = new Set(ours());
        throw new Error(
          `not repaired: missing ${wanted.filter((l) => !have.has(l)).slice(0, 5)}; extra ${[...have].filter((l) => !wanted.includes(l)).slice(0, 5)}`,
        );
      }
      await sleep(500);
    }
    const repairedMs = Date.now() - end;
    // Some more resyncs: the foreign service stays exactly as the loop left it.
    const syncs = director!.agent.health().syncs;
    while (director!.agent.health().syncs < syncs + 3) await sleep(200);
    expect(foreign()).toEqual(afterEdits);
    expect(afterEdits[0]).toBe("-A -t 10.99.1.1:80 -s sh");
    expect(director!.agent.health().stopped).toBe(false);
    console.info(
      `concurrent edits: ${edits.trim()} rounds of ipvsadm edits in 30 s over ${syncsDuring} agent syncs; repaired to the manifest ${repairedMs} ms after they stopped; the foreign service (${afterEdits.length - 1} destinations) unchanged over 3 more syncs`,
    );
  }, 420_000);
});
