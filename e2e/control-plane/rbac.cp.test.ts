/**
 * Least privilege, proven on the real API server rather than claimed. The agent's Kubernetes side
 * (the source's informers, the IPVSNode status writer, the Event recorder and the status aggregator
 * with its Lease) runs as a ServiceAccount bound to exactly the rules that the chart renders for its
 * own ServiceAccount, through a proxy that records every request and the API server's answer.
 * - With every rule: nothing is forbidden, and every permission granted is used.
 * - With each permission taken away in turn: the API server forbids exactly that permission, and the
 *   test prints what the agent had not done by two seconds after the first refusal ("not done": a
 *   picture of the consequences, not asserted, since some only need more time).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { loadKubeConfig } from "../../src/kube/kubernetes-source.ts";
import { StatusAggregator } from "../../src/kube/status-aggregator.ts";
import { type ForwardedRequest, startFaultProxy } from "./fault-proxy.ts";
import { testAgent } from "./test-agent.ts";
import { useControlPlane } from "./use-control-plane.ts";

const cp = useControlPlane();

/** One RBAC permission: a verb on a resource (with subresource) of an API group. */
interface Permission {
  group: string;
  resource: string;
  verb: string;
  /** The rule's resourceNames, kept when the permission is granted again. */
  names?: string[];
}
const show = (p: Permission) => `${p.verb} ${p.group === "" ? "core" : p.group}/${p.resource}`;
const same = (a: Permission, b: Permission) =>
  a.verb === b.verb && a.group === b.group && a.resource === b.resource;

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: Rule[];
  roleRef?: { kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
}

function expand(rules: readonly Rule[]): Permission[] {
  return rules.flatMap((r) =>
    r.apiGroups.flatMap((group) =>
      r.resources.flatMap((resource) =>
        r.verbs.map((verb) => ({
          group,
          resource,
          verb,
          ...(r.resourceNames ? { names: r.resourceNames } : {}),
        })),
      ),
    ),
  );
}

const asRules = (permissions: readonly Permission[]): Rule[] =>
  permissions.map((p) => ({
    apiGroups: [p.group],
    resources: [p.resource],
    verbs: [p.verb],
    ...(p.names ? { resourceNames: p.names } : {}),
  }));

/** The permissions a request that the API server authorized stands for (RequestInfo's rules). */
function usedBy(r: ForwardedRequest): Permission[] {
  const url = new URL(r.url, "https://api.invalid");
  const parts = url.pathname.split("/").filter((p) => p !== "");
  const group = parts[0] === "api" ? "" : (parts[1] ?? "");
  let rest = parts.slice(parts[0] === "api" ? 2 : 3);
  if (rest[0] === "namespaces" && rest.length >= 3) rest = rest.slice(2);
  const [resource = "", name, sub] = rest;
  const full = sub ? `${resource}/${sub}` : resource;
  const watch = /^(true|1)$/.test(url.searchParams.get("watch") ?? "");
  const verbs: string[] = [];
  switch (r.method) {
    case "GET":
      verbs.push(name ? "get" : watch ? "watch" : "list");
      break;
    case "POST":
      verbs.push("create");
      break;
    case "PUT":
      verbs.push("update");
      break;
    case "PATCH":
      // An apply that creates the object (201) was authorized for create as well.
      verbs.push("patch", ...(r.status === 201 ? ["create"] : []));
      break;
    case "DELETE":
      verbs.push(name ? "delete" : "deletecollection");
      break;
  }
  return verbs.map((verb) => ({ group, resource: full, verb }));
}

/** What the API server refused, from its metav1.Status message ("cannot patch resource ..."). */
function forbidden(r: ForwardedRequest): Permission | undefined {
  const m = /cannot (\S+) resource \\?"([^"\\]+)\\?" in API group \\?"([^"\\]*)\\?"/.exec(r.message ?? "");
  return m ? { verb: m[1]!, resource: m[2]!, group: m[3]! } : undefined;
}

/** What the agent managed to do in one run, read from the requests that succeeded. */
const CAPABILITIES: Record<string, (r: ForwardedRequest) => boolean> = {
  "IPVSNode status": (r) => r.method === "PATCH" && /\/ipvsnodes\/[^/?]+\/status/.test(r.url),
  "VirtualService status": (r) => r.method === "PATCH" && /\/virtualservices\/[^/?]+\/status/.test(r.url),
  "RealServer status": (r) => r.method === "PATCH" && /\/realservers\/[^/?]+\/status/.test(r.url),
  Events: (r) => r.method === "POST" && /\/events(\?|$)/.test(r.url),
  "Event series": (r) => r.method === "PUT" && /\/events\//.test(r.url),
  Lease: (r) => (r.method === "POST" || r.method === "PUT") && /\/leases/.test(r.url),
};

const VIP = "192.0.2.231";
let objectsNs = "";
let chart: { serviceAccount: string; permissions: Permission[] };
const dir = mkdtempSync(join(tmpdir(), "rbac-"));

/** The rules of every Role and ClusterRole that the chart binds to its own ServiceAccount. */
async function chartPermissions(): Promise<{ serviceAccount: string; permissions: Permission[] }> {
  const text = await cp.helmOk(["template", "rbac", "charts/ipvs-operator", "--namespace", "ipvs-operator"]);
  const docs = parseAllDocuments(text)
    .map((d) => d.toJS() as Manifest | null)
    .filter((d): d is Manifest => d !== null);
  const accounts = docs.filter((d) => d.kind === "ServiceAccount");
  expect(accounts.map((a) => a.metadata.name)).toHaveLength(1);
  const sa = accounts[0]!.metadata.name;
  const bindings = docs.filter(
    (d) =>
      (d.kind === "ClusterRoleBinding" || d.kind === "RoleBinding") &&
      d.subjects?.some((s) => s.kind === "ServiceAccount" && s.name === sa),
  );
  expect(bindings.length).toBeGreaterThan(0);
  const permissions = bindings.flatMap((b) => {
    const role = docs.find((d) => d.kind === b.roleRef?.kind && d.metadata.name === b.roleRef?.name);
    if (!role)
      throw new Error(
        `${b.kind} ${b.metadata.name} refers to ${b.roleRef?.kind} ${b.roleRef?.name}, not in the chart`,
      );
    return expand(role.rules ?? []);
  });
  return { serviceAccount: sa, permissions };
}

/**
 * A ServiceAccount in a namespace of its own, bound to `permissions` (the cluster-wide part through a
 * ClusterRole, the Lease part through a Role in that namespace, as the chart does); returns its token.
 */
async function accountWith(
  tag: string,
  permissions: readonly Permission[],
): Promise<{ ns: string; token: string }> {
  const ns = await cp.newNamespace(`rbac-${tag}`);
  const name = `ipvs-operator-${ns}`;
  const leases = permissions.filter((p) => p.resource === "leases");
  const cluster = permissions.filter((p) => p.resource !== "leases");
  const subject = [{ kind: "ServiceAccount", name: "agent", namespace: ns }];
  const objects = [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "agent", namespace: ns } },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name },
      rules: asRules(cluster),
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
      subjects: subject,
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: "agent", namespace: ns },
      rules: asRules(leases),
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "agent", namespace: ns },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "agent" },
      subjects: subject,
    },
  ];
  await cp.kubectlOk(["apply", "-f", "-"], { input: objects.map((o) => JSON.stringify(o)).join("\n") });
  const token = (await cp.kubectlOk(["create", "token", "agent", "-n", ns, "--duration=1h"])).trim();
  return { ns, token };
}

interface Run {
  log: ForwardedRequest[];
  synced: boolean;
}

/**
 * The agent's Kubernetes side for one node, as the account `token`, until `done(log)` or `timeoutMs`.
 * Meanwhile a destination of the test's VirtualService is deleted from the node's (fake) kernel every
 * 1.5 s, so the agent repairs drift and records the same Event again (an Event series).
 */
async function runAgentAs(
  account: { ns: string; token: string },
  done: (log: readonly ForwardedRequest[]) => boolean,
  timeoutMs: number,
): Promise<Run> {
  const proxy = await startFaultProxy(cp, mkdtempSync(join(dir, "proxy-")), { token: account.token });
  const kubeConfig = loadKubeConfig(proxy.kubeconfig);
  const node = `node-${account.ns}`;
  tokens.push(account.token);
  const a = testAgent({
    kubeConfig,
    node,
    events: true,
    resyncInterval: "1s",
    maxBackoffMs: 500,
    addressPolicy: true,
    logger,
  });
  const aggregator = new StatusAggregator({
    kubeConfig,
    identity: node,
    leaseNamespace: account.ns,
    renewMs: 300,
    minIntervalMs: 100,
    logger,
  });
  aggregator.start();
  void a.agent.start().catch(() => undefined);
  const drift = setInterval(() => {
    void (async () => {
      const service = (await a.kernel.listServices()).find(
        (s) => s.key.kind === "address" && s.key.address === VIP,
      );
      if (!service) return;
      const [destination] = await a.kernel.listDestinations(service.key);
      if (destination) await a.kernel.deleteDestination(service.key, destination.key);
    })().catch(() => undefined);
  }, 1500);
  const started = Date.now();
  try {
    while (!done(proxy.log) && Date.now() - started < timeoutMs) await new Promise((r) => setTimeout(r, 100));
  } finally {
    clearInterval(drift);
    await aggregator.stop().catch(() => undefined);
    await a.agent.stop().catch(() => undefined);
    await proxy.close();
  }
  return { log: [...proxy.log], synced: a.reports.length > 0 };
}

/** Every run's agent and aggregator log, at debug level, and every token they ran with. */
let logText = "";
const logger = pino(
  { level: "debug" },
  new Writable({
    write(chunk, _encoding, done) {
      logText += String(chunk);
      done();
    },
  }),
);
const tokens: string[] = [];

const authorized = (r: ForwardedRequest) => r.status !== 401 && r.status !== 403;

beforeAll(async () => {
  await cp.installCrds();
  chart = await chartPermissions();
  objectsNs = await cp.newNamespace("rbac-objects");
  const ns = objectsNs;
  // Everything the agent reads: a VirtualService with a RealServer, one with real servers from an
  // EndpointSlice of a Service, and one from the legacy Endpoints (which starts that informer).
  const yaml = [
    `apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: web, namespace: ${ns}}\nspec: {address: ${VIP}, port: 80, scheduler: rr}`,
    `apiVersion: ipvs.dev/v1alpha1\nkind: RealServer\nmetadata: {name: web-a, namespace: ${ns}}\nspec: {virtualServiceRef: {name: web}, address: 198.51.100.231, port: 8080}`,
    `apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: ${ns}}\nspec: {ports: [{name: http, port: 80, targetPort: 8080}]}`,
    `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: api-1, namespace: ${ns}, labels: {kubernetes.io/service-name: api}}\naddressType: IPv4\nports: [{name: http, port: 8080, protocol: TCP}]\nendpoints: [{addresses: [198.51.100.232], conditions: {ready: true}}]`,
    `apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: api, namespace: ${ns}}\nspec: {address: 192.0.2.232, port: 80, scheduler: rr, backends: {serviceRef: {name: api, port: http}}}`,
    `apiVersion: v1\nkind: Service\nmetadata: {name: legacy, namespace: ${ns}}\nspec: {ports: [{name: http, port: 80, targetPort: 8080}]}`,
    `apiVersion: v1\nkind: Endpoints\nmetadata: {name: legacy, namespace: ${ns}}\nsubsets: [{addresses: [{ip: 198.51.100.233}], ports: [{name: http, port: 8080}]}]`,
    `apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: legacy, namespace: ${ns}}\nspec: {address: 192.0.2.233, port: 80, scheduler: rr, backends: {serviceRef: {name: legacy, port: http}, source: Endpoints}}`,
    // The agent runs with --address-policy Enforce (as the chart sets it): a policy lets these in.
    `apiVersion: ipvs.dev/v1alpha1\nkind: IPVSAddressPolicy\nmetadata: {name: ${ns}}\nspec: {namespaces: [${ns}], cidrs: [192.0.2.0/24]}`,
  ].join("\n---\n");
  await cp.kubectlOk(["apply", "--server-side", "--field-manager=test", "-f", "-"], { input: yaml });
});

afterAll(async () => {
  // The cluster-scoped roles are named after their namespaces; remove them with the namespaces.
  const roles = await cp.kubectlOk(["get", "clusterroles,clusterrolebindings", "-o", "name"]);
  const ours = roles.split("\n").filter((n) => /\/ipvs-operator-rbac-/.test(n));
  if (ours.length > 0) await cp.kubectlOk(["delete", "--wait=false", ...ours]);
  // The objects and the runs' IPVSNodes too: later files' agents program and count what is left.
  const nodes = (await cp.kubectlOk(["get", "ipvsnodes", "-o", "name"]))
    .split("\n")
    .filter((n) => n.startsWith("ipvsnode.ipvs.dev/node-rbac-"));
  if (nodes.length > 0) await cp.kubectlOk(["delete", "--wait=false", ...nodes]);
  if (objectsNs) await cp.kubectlOk(["delete", "ipvsaddresspolicy", objectsNs, "--ignore-not-found"]);
  await cp.kubectlOk(["delete", "namespace", objectsNs, "--timeout=120s"], { timeoutMs: 150_000 });
});

describe("least privilege: the chart's RBAC on the real API server", () => {
  it("lets the agent do everything it does, and every permission it grants is used", async () => {
    const granted = chart.permissions;
    const account = await accountWith("all", granted);
    const unused = (log: readonly ForwardedRequest[]) =>
      granted.filter((p) => !log.some((r) => authorized(r) && usedBy(r).some((u) => same(u, p))));
    const run = await runAgentAs(account, (log) => unused(log).length === 0, 30_000);
    const refused = run.log.filter((r) => !authorized(r));
    expect(refused.map((r) => `${r.method} ${r.url} ${r.status} ${r.message ?? ""}`)).toEqual([]);
    expect(run.synced, "the agent synced").toBe(true);
    expect(
      unused(run.log).map(show),
      `requests made:\n${run.log.map((r) => `${r.method} ${r.url} ${r.status}`).join("\n")}`,
    ).toEqual([]);
    for (const [capability, seen] of Object.entries(CAPABILITIES)) {
      expect(
        run.log.some((r) => r.status < 300 && seen(r)),
        capability,
      ).toBe(true);
    }
    console.error(
      `rbac: all ${granted.length} permissions used, ${run.log.length} requests, none refused:\n  ${granted.map(show).join("\n  ")}`,
    );
  });

  it("refuses exactly the permission taken away, for each one in turn", async () => {
    const results: { removed: Permission; refused: string[]; lost: string[]; others: string[] }[] = [];
    const one = async (removed: Permission, i: number) => {
      const account = await accountWith(
        `minus${i}`,
        chart.permissions.filter((p) => !same(p, removed)),
      );
      const isRemoved = (r: ForwardedRequest) => {
        const f = forbidden(r);
        return f !== undefined && same(f, removed);
      };
      // Stop soon after the first refusal (a moment more lets the effects show).
      let seenAt = 0;
      const run = await runAgentAs(
        account,
        (log) => {
          if (seenAt === 0 && log.some(isRemoved)) seenAt = Date.now();
          return seenAt > 0 && Date.now() - seenAt > 2000;
        },
        // A run ends 2 s after its refusal; the bound only matters on a loaded machine, where the
        // second drift repair (whose Event series needs "get events") came after 25 s once.
        60_000,
      );
      const refusedRequests = run.log.filter((r) => !authorized(r));
      results.push({
        removed,
        refused: [...new Set(refusedRequests.map((r) => `${r.method} ${r.url.replace(/\?.*/, "")}`))],
        lost: Object.entries(CAPABILITIES)
          .filter(([, seen]) => !run.log.some((r) => r.status < 300 && seen(r)))
          .map(([c]) => c),
        others: refusedRequests
          .filter((r) => !isRemoved(r))
          .map((r) => `${r.method} ${r.url} ${r.message ?? ""}`),
      });
    };
    // A few at a time: each is its own ServiceAccount, node, Lease and proxy.
    const queue = chart.permissions.map((p, i) => [p, i] as const);
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let next = queue.shift(); next; next = queue.shift()) await one(...next);
      }),
    );
    results.sort((a, b) => show(a.removed).localeCompare(show(b.removed)));
    console.error(
      `rbac: each permission taken away in turn (${results.length}):\n${results
        .map(
          (r) =>
            `  - ${show(r.removed)}: refused ${r.refused.join(", ") || "nothing"}${r.lost.length > 0 ? `; not done: ${r.lost.join(", ")}` : ""}`,
        )
        .join("\n")}`,
    );
    for (const r of results) {
      expect(r.refused.length, `${show(r.removed)} was never refused`).toBeGreaterThan(0);
      expect(r.others, `${show(r.removed)}: other refusals`).toEqual([]);
    }
    expect(results).toHaveLength(chart.permissions.length);
  }, 600_000);

  it("never writes a token to its log, through 403s and errors (debug level)", () => {
    const lines = logText.split("\n").filter(Boolean);
    const warnings = lines.filter((l) => /"level":(40|50)/.test(l));
    console.error(
      `rbac: ${lines.length} log lines (${warnings.length} warnings or errors) from ${tokens.length} runs searched for their tokens`,
    );
    expect(tokens.length).toBeGreaterThan(1);
    expect(warnings.length).toBeGreaterThan(0); // the refusals were logged: there was something to search
    for (const token of tokens) {
      expect(logText.includes(token), "a ServiceAccount token in the log").toBe(false);
      // Nor the token's signature (the last part), which alone is not secret-free either.
      expect(logText.includes(token.split(".").at(-1)!), "a token's signature in the log").toBe(false);
    }
    expect(logText.toLowerCase()).not.toMatch(/authorization:|bearer [a-z0-9]/);
  });
});
