/**
 * Prints the functions with the most self time in a V8 .cpuprofile (from `node --cpu-prof`), so a
 * profile taken in the test-bed VM (whose /tmp is lost at power-off) can be read from its stdout:
 *   e2e/vm/run-in-vm.sh -- bash -c 'node --cpu-prof --cpu-prof-dir=/tmp/prof bench/kernel-apply.ts &&
 *     node bench/cpu-profile-summary.ts /tmp/prof/*.cpuprofile'
 * Usage: node bench/cpu-profile-summary.ts <file.cpuprofile> [top=40]
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write("usage: node bench/cpu-profile-summary.ts <file.cpuprofile> [top]\n");
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const top = Number(topArg ?? 40);

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const label = (n: ProfileNode) => {
  const { functionName, url, lineNumber } = n.callFrame;
  const where = url ? `${url.replace(/^.*\/(node_modules|src|bench)\//, "$1/")}:${lineNumber + 1}` : "";
  return `${functionName || "(anonymous)"} ${where}`.trim();
};

const self = new Map<string, number>();
const total = new Map<string, number>();
let sum = 0;
profile.samples.forEach((id, i) => {
  const us = profile.timeDeltas[i] ?? 0;
  sum += us;
  const node = byId.get(id);
  if (!node) return;
  self.set(label(node), (self.get(label(node)) ?? 0) + us);
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const l = label(byId.get(cur)!);
    if (seen.has(l)) continue;
    seen.add(l);
    total.set(l, (total.get(l) ?? 0) + us);
  }
});

const print = (title: string, map: Map<string, number>) => {
  process.stdout.write(`${title} (of ${(sum / 1000).toFixed(0)} ms sampled)\n`);
  for (const [l, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(
      `${(us / 1000).toFixed(0).padStart(8)} ms ${((us / sum) * 100).toFixed(1).padStart(5)}%  ${l}\n`,
    );
  }
};
print("self time", self);
print("total time (inclusive)", total);
