/**
 * The chart's RBAC is exactly what the agent's API calls need (src/kube/*.ts): the table below is the
 * review copy of templates/rbac.yaml, rule by rule. Adding a verb to the chart without adding it here
 * (or the other way round) fails. That each rule is needed is shown against the real API server in
 * e2e/control-plane.
 */
import { describe, expect, it } from "vitest";
import { type K8sObject, NAMESPACE, only, RELEASE, render } from "./helm.ts";

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** [apiGroup, resource, verbs, resourceNames?]: one row per resource, whichever rule carries it. */
type Row = [group: string, resource: string, verbs: string[], resourceNames?: string[]];

const CLUSTER_ROWS: Row[] = [
  // kubernetes-source.ts, status-aggregator.ts: informers
  ["ipvs.dev", "virtualservices", ["list", "watch"]],
  ["ipvs.dev", "realservers", ["list", "watch"]],
  // kubernetes-source.ts: informer with --address-policy Enforce
  ["ipvs.dev", "ipvsaddresspolicies", ["list", "watch"]],
  // kubernetes-source.ts: informer with --address-policy Enforce (namespaceSelectors read the labels)
  ["", "namespaces", ["list", "watch"]],
  // status-aggregator.ts: server-side apply of status
  ["ipvs.dev", "virtualservices/status", ["patch"]],
  ["ipvs.dev", "realservers/status", ["patch"]],
  // ipvs-node-writer.ts (get, create by apply, patch) and status-aggregator.ts (list, watch)
  ["ipvs.dev", "ipvsnodes", ["create", "get", "list", "patch", "watch"]],
  ["ipvs.dev", "ipvsnodes/status", ["patch"]],
  // kubernetes-source.ts: informers
  ["", "services", ["list", "watch"]],
  ["", "endpoints", ["list", "watch"]],
  ["discovery.k8s.io", "endpointslices", ["list", "watch"]],
  ["", "nodes", ["list", "watch"]],
  // event-recorder.ts
  ["events.k8s.io", "events", ["create", "get", "update"]],
];

const LEASE_ROWS: Row[] = [
  // leader-lease.ts
  ["coordination.k8s.io", "leases", ["create"]],
  ["coordination.k8s.io", "leases", ["get", "update"], ["ipvs-operator-status-aggregator"]],
];

/** A Role's rules flattened into sorted rows (one per group x resource x resourceNames). */
function rows(role: K8sObject): Row[] {
  const out: Row[] = [];
  for (const rule of role.rules as Rule[]) {
    for (const group of rule.apiGroups) {
      for (const resource of rule.resources) {
        const row: Row = [group, resource, [...rule.verbs].sort()];
        if (rule.resourceNames) row.push([...rule.resourceNames].sort());
        out.push(row);
      }
    }
  }
  return out.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

const sorted = (table: Row[]) =>
  table
    .map((r): Row => (r[3] ? [r[0], r[1], [...r[2]].sort(), r[3]] : [r[0], r[1], [...r[2]].sort()]))
    .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

describe("chart RBAC", () => {
  const objects = render();
  const fullname = `${RELEASE}-ipvs-operator`;

  it("the ClusterRole grants exactly the agent's cluster-wide calls", () => {
    expect(rows(only(objects, "ClusterRole", fullname))).toEqual(sorted(CLUSTER_ROWS));
  });

  it("the Role in the release namespace grants exactly the Lease calls", () => {
    const role = only(objects, "Role", fullname);
    expect(role.metadata.namespace).toBe(NAMESPACE);
    expect(rows(role)).toEqual(sorted(LEASE_ROWS));
  });

  it("no rule uses a wildcard, and nothing deletes", () => {
    for (const role of [only(objects, "ClusterRole"), only(objects, "Role")]) {
      for (const rule of role.rules as Rule[]) {
        expect([...rule.apiGroups, ...rule.resources, ...rule.verbs]).not.toContain("*");
        expect(rule.verbs).not.toContain("delete");
        expect(rule.verbs).not.toContain("deletecollection");
      }
    }
  });

  it("both bindings bind the DaemonSet's ServiceAccount", () => {
    const sa = only(objects, "ServiceAccount");
    const ds = only(objects, "DaemonSet");
    expect(ds.spec.template.spec.serviceAccountName).toBe(sa.metadata.name);
    const subject = [{ kind: "ServiceAccount", name: sa.metadata.name, namespace: NAMESPACE }];
    const crb = only(objects, "ClusterRoleBinding");
    expect(crb.subjects).toEqual(subject);
    expect(crb.roleRef).toEqual({
      apiGroup: "rbac.authorization.k8s.io",
      kind: "ClusterRole",
      name: fullname,
    });
    const rb = only(objects, "RoleBinding");
    expect(rb.metadata.namespace).toBe(NAMESPACE);
    expect(rb.subjects).toEqual(subject);
    expect(rb.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: fullname });
  });

  it("rbac.create=false and serviceAccount.create=false leave them out; the DaemonSet uses the named account", () => {
    const without = render({ rbac: { create: false }, serviceAccount: { create: false, name: "mine" } });
    expect(without.map((o) => o.kind).filter((k) => /Role|ServiceAccount/.test(k))).toEqual([]);
    expect(only(without, "DaemonSet").spec.template.spec.serviceAccountName).toBe("mine");
  });
});
