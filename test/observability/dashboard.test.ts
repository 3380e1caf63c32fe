/**
 * The chart's Grafana dashboard cannot go stale: every PromQL expression (panels and template variables)
 * names only metrics the agent registers (histograms with their _bucket/_sum/_count series) and only
 * labels its exposition carries (plus `le`, and `node` that the chart's monitors add by relabelling),
 * and the dashboard has the template variables and panels the README promises.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { AgentMetrics } from "../../src/observability/metrics.ts";
import { MemoryJournalStore } from "../../src/reconcile/ownership-journal.ts";
import { Reconciler } from "../../src/reconcile/reconciler.ts";
import { realServer, service, tcpKey } from "../support/desired-builders.ts";

const DASHBOARD = "charts/ipvs-operator/dashboards/ipvs-operator.json";

interface Target {
  expr?: string;
}
interface Panel {
  type: string;
  title: string;
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string | { query: string } }[] };
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as Dashboard;

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/** Every PromQL expression of the dashboard, where it is. */
function expressions(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const p of allPanels(dashboard.panels)) {
    for (const t of p.targets ?? []) if (t.expr) out.push({ where: `panel "${p.title}"`, expr: t.expr });
  }
  for (const v of dashboard.templating.list) {
    if (v.type !== "query") continue;
    const query = typeof v.query === "string" ? v.query : v.query.query;
    // label_values(<selector>, <label>): the selector is PromQL, the label must be one the metric has.
    const m = /^label_values\((.*),\s*([a-zA-Z_]\w*)\s*\)$/.exec(query);
    if (m) out.push({ where: `variable ${v.name}`, expr: `sum by (${m[2]}) (${m[1]})` });
    else out.push({ where: `variable ${v.name}`, expr: query });
  }
  return out;
}

const KEYWORDS = new Set([
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "bool",
  "and",
  "or",
  "unless",
  "offset",
  "inf",
  "nan",
]);

/** The metric names an expression reads and the label names it uses (matchers and grouping). */
function promqlNames(expr: string): { metrics: string[]; labels: string[] } {
  const labels: string[] = [];
  let rest = expr.replace(/\$\{?\w+\}?/g, "0"); // Grafana variables ($__rate_interval, $node)
  rest = rest.replace(/\{([^}]*)\}/g, (_, inner: string) => {
    const unquoted = inner.replace(/"(?:[^"\\]|\\.)*"/g, '""');
    for (const m of unquoted.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)) labels.push(m[1]!);
    return " ";
  });
  rest = rest.replace(/"(?:[^"\\]|\\.)*"/g, " ").replace(/\[[^\]]*\]/g, " ");
  rest = rest.replace(
    /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g,
    (_, _k, list: string) => {
      for (const l of list.split(",")) if (l.trim()) labels.push(l.trim());
      return " ";
    },
  );
  const metrics: string[] = [];
  for (const m of rest.matchAll(/([a-zA-Z_:][\w:]*)(\s*\()?/g)) {
    if (m[2] || KEYWORDS.has(m[1]!.toLowerCase())) continue; // a function or aggregation, a keyword
    if (/^\d/.test(m[1]!)) continue;
    metrics.push(m[1]!);
  }
  return { metrics, labels };
}

/** Names and labels of a populated agent's metrics: a synced table, a sync observed, one scrape. */
async function agentVocabulary(): Promise<{ names: Set<string>; labels: Set<string> }> {
  const kernel = new FakeIpvsKernel();
  const reconciler = new Reconciler({
    kernel,
    journal: new MemoryJournalStore(),
    scope: { managedCidrs: [], managedFwmarks: [] },
    bootId: "b",
  });
  const metrics = new AgentMetrics({
    ipvs: { planned: () => reconciler.planned(), readTable: () => kernel.readTable() },
  });
  const result = await reconciler.sync({
    desired: [service(tcpKey("192.0.2.10"), [realServer("198.51.100.1")], { name: "web" })],
    now: 0,
  });
  metrics.observeSync(result, { startedAt: 0, endedAt: 5, oldestRequestAt: 0 });
  const names = new Set<string>();
  for (const f of metrics.families()) {
    if (f.type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(f.name + s);
    else if (f.type === "summary") for (const s of ["", "_sum", "_count"]) names.add(f.name + s);
    else names.add(f.name);
  }
  const labels = new Set(["le", "node"]);
  for (const line of (await metrics.expose()).text.split("\n")) {
    const braces = /^[a-z_:][\w:]*\{(.*)\} /.exec(line);
    for (const m of braces?.[1]?.matchAll(/([a-zA-Z_]\w*)="/g) ?? []) labels.add(m[1]!);
  }
  return { names, labels };
}

describe("the Grafana dashboard", () => {
  it("reads only metrics the agent registers, with labels its exposition has", async () => {
    const { names, labels } = await agentVocabulary();
    expect(names).toContain("ipvs_operator_sync_duration_seconds_bucket");
    expect(names).toContain("ipvs_operator_service_connections_total");
    expect(labels).toContain("virtualservice");
    const exprs = expressions();
    expect(exprs.length).toBeGreaterThan(20);
    const unknown: string[] = [];
    for (const { where, expr } of exprs) {
      const used = promqlNames(expr);
      expect(used.metrics.length, `${where} reads no metric: ${expr}`).toBeGreaterThan(0);
      for (const m of used.metrics) if (!names.has(m)) unknown.push(`${where}: metric ${m}`);
      for (const l of used.labels) if (!labels.has(l)) unknown.push(`${where}: label ${l}`);
    }
    expect(unknown).toEqual([]);
  });

  it("its expression reader finds what a stale dashboard would name", () => {
    expect(
      promqlNames(
        'histogram_quantile(0.99, sum by (le, pod) (rate(ipvs_operator_sync_seconds_bucket{node=~"$node", ns="a{b}"}[$__rate_interval]))) / on (node) group_left up',
      ),
    ).toEqual({
      metrics: ["ipvs_operator_sync_seconds_bucket", "up"],
      labels: ["node", "ns", "le", "pod", "node"],
    });
  });

  it("has a Prometheus data source variable, node/namespace/virtualservice variables and the promised panels", () => {
    const variables = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
    expect(variables.datasource?.type).toBe("datasource");
    expect(variables.datasource?.query).toBe("prometheus");
    for (const v of ["node", "namespace", "virtualservice"]) expect(variables[v]?.type).toBe("query");
    const all = JSON.stringify(dashboard.panels);
    for (const metric of [
      "ipvs_operator_sync_duration_seconds_bucket",
      "ipvs_operator_network_programming_duration_seconds_bucket",
      "ipvs_operator_last_successful_sync_timestamp_seconds",
      "ipvs_operator_kernel_operations_total",
      "ipvs_operator_drift_items",
      "ipvs_operator_owned_entries",
      "ipvs_operator_draining_destinations",
      "ipvs_operator_service_connections_total",
      "ipvs_operator_service_bytes_total",
      "ipvs_operator_destination_active_connections",
      "ipvs_operator_backends",
    ])
      expect(all, metric).toContain(metric);
    const datasource = ["$", "{datasource}"].join(""); // Grafana's syntax, not a template string
    for (const p of allPanels(dashboard.panels).filter((p) => p.type !== "row")) {
      expect((p as { datasource?: { uid?: string } }).datasource?.uid, p.title).toBe(datasource);
    }
  });
});
