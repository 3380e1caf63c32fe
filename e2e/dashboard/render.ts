/**
 * Draws the dashboard's panels from the range queries of a real run (e2e/dashboard/in-vm.sh) with gnuplot:
 * one PNG laid out like the dashboard's grid (24 columns, rows in the dashboard's order), panel titles
 * and legends from the dashboard JSON, stat panels as their last value over a sparkline, the run's
 * changes as numbered dotted lines. Not Grafana's look: the caption says so. Prints a summary: series
 * per panel and target, and every panel whose queries returned nothing.
 * Usage: node e2e/dashboard/render.ts <run folder with queries.json and events.tsv> <out.png>
 * Exits 1 when a query failed or gnuplot failed; panels without data are reported, not an error.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type DashboardPanel, type QueryResults, type RangeSeries, readPanels } from "./query.ts";

const WIDTH = 1600;
const UNIT_HEIGHT = 34; // pixels per grid row of the dashboard
const HEADER = 58;
const FOOTER = 64;

/** gnuplot y-axis format per Grafana unit (%s%c: mantissa and SI prefix). */
const AXIS_FORMAT: Record<string, string> = {
  s: "%.1s%cs",
  ops: "%g/s",
  cps: "%g/s",
  pps: "%g/s",
  Bps: "%.1s%cB/s",
  short: "%g",
};

interface Series {
  name: string;
  points: [number, number][];
}

/** Grafana's legend: {{label}} replaced by the series' label values. */
function legend(format: string | undefined, metric: Record<string, string>): string {
  if (format === undefined) return JSON.stringify(metric);
  return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name: string) => metric[name] ?? "").trim();
}

function quote(text: string): string {
  return `"${text.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** The last value as a stat panel shows it. */
function statValue(value: number, unit: string | undefined): string {
  if (!Number.isFinite(value)) return String(value);
  if (unit === "s") return value < 1 ? `${(value * 1000).toFixed(0)} ms` : `${value.toFixed(1)} s`;
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

/**
 * A datablock: one "t value short" line per point, a blank line where the series has a gap; short is 1
 * for points of a run of at most 3 steps (a series that exists briefly, e.g. drift), which get a marker
 * since a line that short is hard to see.
 */
function datablock(name: string, points: [number, number][], step: number): string {
  const runs: [number, number][][] = [];
  for (const point of points) {
    const run = runs.at(-1);
    if (run && point[0] - run.at(-1)![0] <= step * 1.5) run.push(point);
    else runs.push([point]);
  }
  const lines = runs.map((run) => run.map(([t, v]) => `${t} ${v} ${run.length <= 3 ? 1 : 0}`).join("\n"));
  return `$${name} << EOD\n${lines.join("\n\n")}\nEOD\n`;
}

export function render(
  runDir: string,
  png: string,
): { script: string; summary: string[]; failed: string[]; emptyTargets: string[] } {
  const results = JSON.parse(readFileSync(join(runDir, "queries.json"), "utf8")) as QueryResults;
  const events = readFileSync(join(runDir, "events.tsv"), "utf8")
    .split("\n")
    .filter((line) => line.includes("\t"))
    .map((line) => {
      const [at, label] = line.split("\t") as [string, string];
      return { t: Number(at) - results.start, label };
    })
    .filter(
      (e) =>
        e.t >= 0 && !["agent started", "agent ready", "traffic started", "traffic stopped"].includes(e.label),
    );
  const panels = readPanels();
  const gridRows = Math.max(...panels.map((p) => p.gridPos.y + p.gridPos.h));
  const height = HEADER + gridRows * UNIT_HEIGHT + FOOTER;
  const span = results.end - results.start;
  const data: string[] = [];
  const plots: string[] = [];
  const summary: string[] = [];
  const failed: string[] = [];
  const emptyTargets: string[] = [];

  // screen coordinates (0..1, origin bottom left) of a grid rectangle
  const box = (p: DashboardPanel["gridPos"]) => ({
    x: p.x / 24,
    y: (FOOTER + (gridRows - p.y - p.h) * UNIT_HEIGHT) / height,
    w: p.w / 24,
    h: (p.h * UNIT_HEIGHT) / height,
  });

  for (const panel of panels) {
    const b = box(panel.gridPos);
    if (panel.type === "row") {
      plots.push(
        "reset",
        `set label 1 ${quote(panel.title)} at screen 0.006, screen ${b.y + b.h / 2} left font ",13" tc rgb "#1f2937"`,
        `set object 1 rect from screen 0, screen ${b.y + 0.1 * b.h} to screen 1, screen ${b.y + 0.9 * b.h} fc rgb "#e5e7eb" fs solid noborder behind`,
        "unset border; unset tics; unset key; unset title; set xrange [0:1]; set yrange [0:1]",
        `set origin ${b.x}, ${b.y}; set size ${b.w}, ${b.h}`,
        "plot NaN notitle",
        "unset label 1; unset object 1; set border; set tics",
      );
      continue;
    }
    const unit = panel.fieldConfig?.defaults?.unit;
    const series: Series[] = [];
    const counts: string[] = [];
    for (const target of panel.targets ?? []) {
      const answer = results.answers.find((a) => a.panelId === panel.id && a.refId === target.refId);
      if (!answer || answer.status !== "success") {
        failed.push(`panel ${panel.id} "${panel.title}" ${target.refId}: ${answer?.error ?? "no answer"}`);
        counts.push(`${target.refId} error`);
        continue;
      }
      counts.push(`${target.refId} ${answer.series.length}`);
      if (answer.series.length === 0)
        emptyTargets.push(`panel ${panel.id} "${panel.title}" ${target.refId}: ${answer.expr}`);
      for (const s of answer.series as RangeSeries[]) {
        series.push({
          name: legend(target.legendFormat, s.metric),
          points: s.values
            .map(([t, v]) => [t - results.start, Number(v)] as [number, number])
            .filter(([, v]) => Number.isFinite(v)),
        });
      }
    }
    const empty = series.every((s) => s.points.length === 0);
    summary.push(
      `${empty ? "NO DATA " : ""}panel ${panel.id} ${panel.type} "${panel.title}": ${series.length} series (${counts.join(", ")})`,
    );
    series.sort((a, b) => a.name.localeCompare(b.name));
    const names = series.map((s, i) => {
      const name = `p${panel.id}_${i}`;
      data.push(datablock(name, s.points, results.step));
      return name;
    });

    const setup = [
      "reset",
      `set origin ${b.x}, ${b.y}; set size ${b.w}, ${b.h}`,
      `set object 1 rect from screen ${b.x + 0.002}, screen ${b.y + 0.002} to screen ${b.x + b.w - 0.002}, screen ${b.y + b.h - 0.002} fc rgb "#fafafa" fs solid border lc rgb "#d1d5db" behind`,
      `set title ${quote(panel.title)} font ",11" offset 0, -0.4`,
      `set xrange [0:${span}]`,
    ];
    if (panel.type === "stat") {
      const last = series.flatMap((s) => s.points).at(-1)?.[1];
      plots.push(
        ...setup,
        "unset border; unset tics; unset key; set lmargin 1; set rmargin 1; set bmargin 0.5; set tmargin 2",
        `set label 2 ${quote(last === undefined ? "No data" : statValue(last, unit))} at graph 0.5, graph 0.55 center font ",26" front tc rgb "${last === undefined ? "#9ca3af" : "#15803d"}"`,
        series.length && !empty
          ? `plot ${names.map((n) => `$${n} using 1:2 with filledcurves y1=0 fc rgb "#bbf7d0" notitle`).join(", ")}`
          : "set yrange [0:1]; plot NaN notitle",
      );
      continue;
    }
    const keyBelow = series.length > 4;
    const timeseries = [
      ...setup,
      `set format y ${quote(AXIS_FORMAT[unit ?? "short"] ?? "%g")}`,
      'set format x "%M:%S" timedate; set xtics 30 font ",8"; set ytics font ",8"; set mxtics 3',
      'set grid xtics ytics lc rgb "#e5e7eb"; set border 3 lc rgb "#6b7280"; set tics nomirror',
      "set lmargin 10; set rmargin 2; set tmargin 2",
      keyBelow
        ? 'set key below left horizontal Left reverse font ",8" samplen 1.5 spacing 0.85 width -2 maxrows 9'
        : 'set key inside top left horizontal Left reverse font ",8" samplen 1.5 opaque box lc rgb "#e5e7eb"',
      "set offsets 0, 0, graph 0.12, 0",
      ...events.flatMap((e, i) => [
        `set arrow ${i + 10} from ${e.t}, graph 0 to ${e.t}, graph 1 nohead dt 3 lc rgb "#9ca3af" back`,
        `set label ${i + 10} "${i + 1}" at ${e.t}, graph ${0.95 - 0.07 * (i % 2)} offset 0.3, 0 font ",7" tc rgb "#6b7280"`,
      ]),
    ];
    if (empty) {
      plots.push(
        ...timeseries,
        "unset key; set yrange [0:1]; unset ytics",
        'set label 2 "No data" at graph 0.5, graph 0.5 center font ",16" tc rgb "#9ca3af"',
        "plot NaN notitle",
      );
    } else {
      plots.push(
        ...timeseries,
        "set yrange [0:*]",
        `plot ${names
          .map((n, i) => {
            const lt = `lt ${(i % 8) + 1}`;
            return `$${n} using 1:2 with lines lw 1.6 ${lt} dt ${Math.floor(i / 8) + 1} title ${quote(series[i]!.name)}, $${n} using 1:($3 > 0 ? $2 : NaN) with points pt 7 ps 0.6 ${lt} notitle`;
          })
          .join(", ")}`,
      );
    }
  }

  const first = new Date(results.start * 1000).toISOString().replace("T", " ").slice(0, 19);
  const eventTexts = events.map(
    (e, i) => `${i + 1} ${Math.floor(e.t / 60)}:${String(Math.floor(e.t % 60)).padStart(2, "0")} ${e.label}`,
  );
  const footer = [
    "Time axis: minutes:seconds since the agent was ready (its first successful sync). Changes during the run (numbered dotted lines):",
    eventTexts.slice(0, 4).join(";   "),
    eventTexts.slice(4).join(";   "),
  ];
  const script = [
    `set terminal pngcairo size ${WIDTH},${height} font "DejaVu Sans,9" background rgb "white" noenhanced`,
    `set output ${quote(png)}`,
    'set datafile missing "NaN"',
    "set linetype 1 lc rgb '#2563eb'; set linetype 2 lc rgb '#16a34a'; set linetype 3 lc rgb '#ea580c'",
    "set linetype 4 lc rgb '#9333ea'; set linetype 5 lc rgb '#dc2626'; set linetype 6 lc rgb '#0891b2'",
    "set linetype 7 lc rgb '#ca8a04'; set linetype 8 lc rgb '#db2777'",
    ...data,
    "set multiplot",
    `set label 100 ${quote(`ipvs-operator dashboard: every panel's queries over a real run of the agent in the test VM (${first} UTC)`)} at screen 0.006, screen ${1 - 20 / height} left font ",12"`,
    `set label 101 ${quote(`Drawn with gnuplot by e2e/dashboard/run.sh from Prometheus range queries (node=vm, all namespaces and VirtualServices, $__rate_interval=${results.rateInterval}, step ${results.step} s). Laid out like the dashboard; not Grafana's look.`)} at screen 0.006, screen ${1 - 42 / height} left font ",9" tc rgb "#4b5563"`,
    ...footer.map(
      (line, i) =>
        `set label ${102 + i} ${quote(line)} at screen 0.006, screen ${(50 - 17 * i) / height} left font ",9" tc rgb "#374151"`,
    ),
    "set origin 0, 0; set size 1, 1; unset border; unset tics; unset key; set xrange [0:1]; set yrange [0:1]",
    "plot NaN notitle",
    "unset label 100; unset label 101; unset label 102; unset label 103; unset label 104",
    ...plots,
    "unset multiplot",
    "",
  ].join("\n");
  if (results.scrapes) {
    const up = results.scrapes.up.flatMap((series) => series.values);
    const down = up.filter(([, v]) => v === "0").length;
    const slowest = Math.max(
      ...results.scrapes.durationSeconds.flatMap((series) => series.values.map(([, v]) => Number(v))),
    );
    summary.push(
      `scrapes (up{node="vm"} at each ${results.step} s step): ${down} of ${up.length} steps down; slowest scrape ${slowest.toFixed(2)} s`,
    );
  }
  return { script, summary, failed, emptyTargets };
}

if (import.meta.main) {
  const [runDir, png] = process.argv.slice(2);
  if (!runDir || !png) throw new Error("usage: render.ts <run folder> <out.png>");
  const { script, summary, failed, emptyTargets } = render(runDir, png);
  const scriptFile = join(runDir, "dashboard.gp");
  writeFileSync(scriptFile, script);
  execFileSync("gnuplot", [scriptFile], { stdio: "inherit" });
  console.log(`rendered ${png} (gnuplot script ${scriptFile})`);
  for (const line of summary) console.log(line);
  const panelLines = summary.filter((line) => / panel \d+ |^panel /.test(line));
  const noData = summary.filter((line) => line.startsWith("NO DATA"));
  console.log(
    `${panelLines.length} panels, ${panelLines.length - noData.length} with data, ${noData.length} without${noData.length ? ":" : ""}`,
  );
  for (const line of noData) console.log(`  ${line}`);
  if (emptyTargets.length) console.log(`queries that returned no series (${emptyTargets.length}):`);
  for (const line of emptyTargets) console.log(`  ${line}`);
  for (const line of failed) console.error(`query FAILED: ${line}`);
  if (failed.length) process.exitCode = 1;
}
