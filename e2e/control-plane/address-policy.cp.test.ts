/**
 * The address policy on the real API server, with two tenants (issue 11, item 1). An agent with
 * --address-policy Enforce (the chart's default) and IPVSAddressPolicy objects: tenant-a may use
 * 192.0.2.240/29 on port 80, tenant-b 192.0.2.248/29 on any port. Each tenant's own services are
 * programmed; tenant-b's claim on tenant-a's address and tenant-a's service on a port its policy does not
 * list are refused: never programmed, reported as NotAllowed (IPVSNode, Event, VirtualService
 * Accepted=False). A third tenant is admitted by a namespaceSelector: labelling its namespace programs its
 * service, removing the label refuses it again (NotAllowed) and takes it out of the table. A policy the
 * API server refuses never reaches the agent; revoking a policy removes what it allowed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadKubeConfig } from "../../src/kube/kubernetes-source.ts";
import { StatusAggregator } from "../../src/kube/status-aggregator.ts";
import { until as waitFor } from "../../test/support/until.ts";
import { type TestAgent, testAgent } from "./test-agent.ts";
import { useControlPlane } from "./use-control-plane.ts";

const cp = useControlPlane();
/** The label tenant-c's policy selects on (its own key: no other test's namespace carries it). */
const TENANT_LABEL = "policy-test.ipvs.dev/tenant";
const until = <T>(what: string, probe: () => Promise<T | undefined> | T | undefined, limitMs = 40_000) =>
  waitFor(what, probe, limitMs);

describe("the address policy with two tenants (real API server)", () => {
  let a: string;
  let b: string;
  let c: string;
  let leaseNs: string;
  let agent: TestAgent;
  let aggregator: StatusAggregator;
  const policies: string[] = [];

  const vs = (ns: string, name: string, address: string, port: number) =>
    `apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: ${name}, namespace: ${ns}}\nspec: {address: ${address}, port: ${port}, scheduler: rr, drain: {timeoutSeconds: 0}}\n---\napiVersion: ipvs.dev/v1alpha1\nkind: RealServer\nmetadata: {name: ${name}-a, namespace: ${ns}}\nspec: {virtualServiceRef: {name: ${name}}, address: 198.51.100.240, port: 8080}`;
  const policy = (name: string, body: string) =>
    `apiVersion: ipvs.dev/v1alpha1\nkind: IPVSAddressPolicy\nmetadata: {name: ${name}}\nspec: ${body}`;
  const apply = (yaml: string) =>
    cp.kubectlOk(["apply", "--server-side", "--field-manager=test", "-f", "-"], { input: yaml });

  beforeAll(async () => {
    await cp.installCrds();
    a = await cp.newNamespace("tenant-a");
    b = await cp.newNamespace("tenant-b");
    c = await cp.newNamespace("tenant-c");
    leaseNs = await cp.newNamespace("policy-lease");
    policies.push(`policy-${a}`, `policy-${b}`, `policy-${c}`);
    await apply(
      [
        policy(`policy-${a}`, `{namespaces: [${a}], cidrs: [192.0.2.240/29], ports: ["80"]}`),
        policy(`policy-${b}`, `{namespaces: [${b}], cidrs: [192.0.2.248/29]}`),
        policy(
          `policy-${c}`,
          `{namespaceSelectors: [{matchExpressions: [{key: ${TENANT_LABEL}, operator: In, values: [${c}]}]}], cidrs: [192.0.2.236/32]}`,
        ),
        vs(a, "web", "192.0.2.241", 80),
        vs(a, "admin", "192.0.2.242", 8080),
        vs(b, "web", "192.0.2.249", 443),
        vs(b, "steal", "192.0.2.241", 81),
        vs(c, "web", "192.0.2.236", 80),
      ].join("\n---\n"),
    );
    const kubeConfig = loadKubeConfig(cp.kubeconfig);
    agent = testAgent({ kubeConfig, node: "policy-node", events: true, addressPolicy: true });
    aggregator = new StatusAggregator({
      kubeConfig,
      identity: "policy-node",
      leaseNamespace: leaseNs,
      renewMs: 300,
      minIntervalMs: 100,
    });
    aggregator.start();
    await agent.agent.start();
  });

  afterAll(async () => {
    await aggregator?.stop();
    await agent?.agent.stop();
    await cp.kubectlOk(["delete", "ipvsaddresspolicies", ...policies, "--ignore-not-found"]);
    await cp.kubectlOk(["delete", "ipvsnode", "policy-node", "--ignore-not-found"]);
    for (const ns of [a, b, c]) await cp.kubectlOk(["delete", "namespace", ns, "--wait=false"]);
  });

  const accepted = async (ns: string, name: string) => {
    const o = JSON.parse(await cp.kubectlOk(["-n", ns, "get", "ipvsvs", name, "-o", "json"])) as {
      status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
    };
    return o.status?.conditions?.find((c) => c.type === "Accepted");
  };
  const acceptedIs = (ns: string, name: string, status: "True" | "False") =>
    until(`${ns}/${name} Accepted=${status}`, async () => {
      const condition = await accepted(ns, name);
      return condition?.status === status ? condition : undefined;
    });

  it("programs each tenant's own services and refuses the rest, on the object, in the IPVSNode and as an Event", async () => {
    const table = await until("the allowed services programmed", async () => {
      const t = await agent.table();
      return t.includes("-A -t 192.0.2.241:80 ") && t.includes("-A -t 192.0.2.249:443 ") ? t : undefined;
    });
    expect(table).not.toContain("192.0.2.241:81"); // tenant-b on tenant-a's address
    expect(table).not.toContain("192.0.2.242:8080"); // tenant-a on a port its policy does not list
    const steal = await acceptedIs(b, "steal", "False");
    expect(steal.reason).toBe("NotAllowed");
    expect(steal.message).toMatch(/no IPVSAddressPolicy for namespace .* covers 192\.0\.2\.241 port 81/);
    const admin = await acceptedIs(a, "admin", "False");
    expect(admin.reason).toBe("NotAllowed");
    expect((await accepted(a, "web"))?.status).toBe("True");
    const events = await until("a NotAllowed Event for the claim", async () => {
      const list = JSON.parse(await cp.kubectlOk(["-n", b, "get", "events.events.k8s.io", "-o", "json"])) as {
        items: { reason: string; regarding: { name: string }; note: string }[];
      };
      return list.items.find((e) => e.reason === "NotAllowed" && e.regarding.name === "steal");
    });
    expect(events.note).toContain("192.0.2.241");
    const node = JSON.parse(await cp.kubectlOk(["get", "ipvsnode", "policy-node", "-o", "json"])) as {
      status: { virtualServices: { name: string; programmed: boolean; message: string }[] };
    };
    expect(node.status.virtualServices.find((v) => v.name === `${b}/steal`)).toMatchObject({
      programmed: false,
      message: expect.stringMatching(/^NotAllowed: /),
    });
  });

  it("admits a namespace while a namespaceSelector matches its labels, and refuses it when the label goes", async () => {
    // Not labelled yet: no policy is for tenant-c.
    const before = await acceptedIs(c, "web", "False");
    expect(before.reason).toBe("NotAllowed");
    expect(before.message).toMatch(/no IPVSAddressPolicy lets namespace tenant-c-\S+ use addresses/);
    expect(await agent.table()).not.toContain("192.0.2.236");

    await cp.kubectlOk(["label", "namespace", c, `${TENANT_LABEL}=${c}`]);
    await until("tenant-c's service programmed once its namespace is labelled", async () =>
      (await agent.table()).includes("-A -t 192.0.2.236:80 ") ? true : undefined,
    );
    await acceptedIs(c, "web", "True");

    await cp.kubectlOk(["label", "namespace", c, `${TENANT_LABEL}-`]);
    await until("tenant-c's service out of the table once the label is removed", async () =>
      (await agent.table()).includes("192.0.2.236") ? undefined : true,
    );
    const after = await acceptedIs(c, "web", "False");
    expect(after.reason).toBe("NotAllowed");
    expect(after.message).toContain(c);
  });

  it("never sees a policy the API server refuses, and removes what a revoked policy allowed", async () => {
    const refused = await cp.kubectl(["apply", "--server-side", "--field-manager=test", "-f", "-"], {
      input: policy("policy-bad", "{namespaces: [Not_A_Namespace], cidrs: [everything]}"),
    });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/spec\.namespaces\[0\]|spec\.cidrs\[0\]/);
    const forNobody = await cp.kubectl(["apply", "--server-side", "--field-manager=test", "-f", "-"], {
      input: policy("policy-nobody", "{cidrs: [10.0.0.0/8]}"),
    });
    expect(forNobody.code).not.toBe(0);
    expect(forNobody.stderr).toContain("a policy needs namespaces or namespaceSelectors");

    await cp.kubectlOk(["delete", "ipvsaddresspolicy", `policy-${a}`]);
    await until("tenant-a's service removed with its policy", async () => {
      const t = await agent.table();
      return !t.includes("192.0.2.241:80") && t.includes("192.0.2.249:443") ? true : undefined;
    });
  });
});
