/**
 * Runs every target of the dashboard's panels as a Prometheus range query, the way Grafana would with
 * the variables set to one node and all namespaces and VirtualServices, and writes the answers as JSON
 * for e2e/dashboard/render.ts. Runs in the VM at the end of e2e/dashboard/in-vm.sh.
 * Usage: node e2e/dashboard/query.ts <prometheus url> <start unix s> <end unix s> <out.json>
 * Variables: $node -> vm, $namespace and $virtualservice -> .* (Grafana's "All"), $__rate_interval ->
 * RATE_INTERVAL (default 15s), step STEP seconds (default 2).
 */
import { readFileSync, writeFileSync } from "node:fs";

export interface DashboardTarget {
  refId: string;
  expr: string;
  legendFormat?: string;
}
export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  fieldConfig?: { defaults?: { unit?: string } };
  targets?: DashboardTarget[];
}
export interface RangeSeries {
  metric: Record<string, string>;
  values: [number, string][];
}
export interface TargetAnswer {
  panelId: number;
  refId: string;
  expr: string;
  status: string;
  error?: string;
  series: RangeSeries[];
}
export interface QueryResults {
  start: number;
  end: number;
  step: number;
  rateInterval: string;
  answers: TargetAnswer[];
  /** Prometheus's own series of the target, to tell a gap in the panels from a failed scrape. */
  scrapes: { up: RangeSeries[]; durationSeconds: RangeSeries[] };
}

export const DASHBOARD = new URL("../../charts/ipvs-operator/dashboards/ipvs-operator.json", import.meta.url);

export function readPanels(file: URL | string = DASHBOARD): DashboardPanel[] {
  return (JSON.parse(readFileSync(file, "utf8")) as { panels: DashboardPanel[] }).panels;
}

/** The expression with the dashboard variables replaced; throws on a variable it does not know. */
export function substitute(expr: string, rateInterval: string): string {
  const values: Record<string, string> = {
    node: "vm",
    namespace: ".*",
    virtualservice: ".*",
    __rate_interval: rateInterval,
  };
  return expr.replace(/\$\{?(\w+)\}?/g, (whole, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`unknown dashboard variable ${whole} in ${expr}`);
    return value;
  });
}

async function main(): Promise<void> {
  const [url, start, end, out] = process.argv.slice(2);
  if (!url || !start || !end || !out)
    throw new Error("usage: query.ts <prometheus url> <start> <end> <out.json>");
  const rateInterval = process.env.RATE_INTERVAL ?? "15s";
  const step = Number(process.env.STEP ?? 2);
  const queryRange = async (expr: string) => {
    const body = new URLSearchParams({ query: expr, start, end, step: String(step) });
    const response = await fetch(`${url}/api/v1/query_range`, { method: "POST", body });
    return (await response.json()) as { status: string; error?: string; data?: { result: RangeSeries[] } };
  };
  const answers: TargetAnswer[] = [];
  for (const panel of readPanels()) {
    for (const target of panel.targets ?? []) {
      const expr = substitute(target.expr, rateInterval);
      const answer = await queryRange(expr);
      answers.push({
        panelId: panel.id,
        refId: target.refId,
        expr,
        status: answer.status,
        ...(answer.error === undefined ? {} : { error: answer.error }),
        series: answer.data?.result ?? [],
      });
      console.log(
        `panel ${panel.id} ${target.refId}: ${answer.status}, ${answer.data?.result.length ?? 0} series`,
      );
    }
  }
  const scrapes = {
    up: (await queryRange('up{node="vm"}')).data?.result ?? [],
    durationSeconds: (await queryRange('scrape_duration_seconds{node="vm"}')).data?.result ?? [],
  };
  const results: QueryResults = {
    start: Number(start),
    end: Number(end),
    step,
    rateInterval,
    answers,
    scrapes,
  };
  writeFileSync(out, `${JSON.stringify(results)}\n`);
}

if (import.meta.main) await main();
