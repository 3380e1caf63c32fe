/**
 * The agent against the real API server (fake kernel): informers see kubectl's changes, the node's
 * table converges on create / scale / change / delete, EndpointSlices made by the real
 * kube-controller-manager from a Service and Pods become real servers, the IPVSNode status is written
 * with server-side apply only when it changes, and an agent restarted mid-way converges without
 * touching a foreign entry.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../src/agent/agent.ts";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { loadKubeConfig } from "../../src/kube/kubernetes-source.ts";
import { until } from "../../test/support/until.ts";
import { type TestAgent, testAgent } from "./test-agent.ts";
import { useControlPlane } from "./use-control-plane.ts";

const cp = useControlPlane();

type Running = TestAgent;

/** The lines of an `ipvsadm -Sn` text that mention `needle`. */
function only(table: string, needle: string): string {
  const lines = table.split("\n").filter((l) => l.includes(needle));
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

const running: Agent[] = [];
afterEach(async () => {
  for (const a of running.splice(0)) await a.stop();
});

function startAgent(
  node: string,
  kernel?: FakeIpvsKernel,
  stateFile?: string,
  resyncInterval?: string,
): Running {
  const running_ = testAgent({
    kubeConfig: loadKubeConfig(cp.kubeconfig),
    node,
    events: true,
    ...(resyncInterval ? { resyncInterval } : {}),
    ...(kernel ? { kernel } : {}),
    ...(stateFile ? { stateFile } : {}),
  });
  running.push(running_.agent);
  return running_;
}

const vs = (ns: string, name: string, address: string, extra = "") =>
  `apiVersion: ipvs.dev/v1alpha1\nkind: VirtualService\nmetadata: {name: ${name}, namespace: ${ns}}\nspec: {address: ${address}, port: 80, scheduler: rr${extra}}\n---\n`;
const rs = (ns: string, name: string, target: string, address: string, weight = 1) =>
  `apiVersion: ipvs.dev/v1alpha1\nkind: RealServer\nmetadata: {name: ${name}, namespace: ${ns}}\nspec: {virtualServiceRef: {name: ${target}}, address: ${address}, port: 8080, weight: ${weight}}\n---\n`;

async function apply(yaml: string): Promise<void> {
  await cp.kubectlOk(["apply", "--server-side", "--field-manager=test", "-f", "-"], { input: yaml });
}

async function ipvsNode(name: string): Promise<{
  status?: Record<string, unknown>;
  metadata: { managedFields?: { manager: string; subresource?: string }[] };
}> {
  const r = await cp.api("GET", `/apis/ipvs.dev/v1alpha1/ipvsnodes/${name}`);
  if (r.status !== 200) throw new Error(`IPVSNode ${name}: HTTP ${r.status}`);
  return r.body as never;
}

beforeAll(async () => {
  await cp.installCrds();
});

describe("the agent against a real API server (fake kernel)", () => {
  it("converges on create, scale, change and delete, and reports in its IPVSNode", async () => {
    const ns = await cp.newNamespace("agent");
    await apply(vs(ns, "web", "192.0.2.60") + rs(ns, "web-a", "web", "198.51.100.60"));
    const a = startAgent("node-converge");
    await a.agent.start();
    await until("the service", async () =>
      (await a.table()).includes("198.51.100.60:8080") ? true : undefined,
    );
    // Other test files' objects share the cluster (the agent watches every namespace): look at ours.
    expect(only(await a.table(), "192.0.2.60:")).toBe(
      "-A -t 192.0.2.60:80 -s rr\n-a -t 192.0.2.60:80 -r 198.51.100.60:8080 -m -w 1\n",
    );

    await apply(rs(ns, "web-b", "web", "198.51.100.61") + rs(ns, "web-a", "web", "198.51.100.60", 5));
    await until("the scale-up and weight change", async () =>
      (await a.table()).includes("198.51.100.61:8080 -m -w 1") &&
      (await a.table()).includes("198.51.100.60:8080 -m -w 5")
        ? true
        : undefined,
    );
    await cp.kubectlOk(["-n", ns, "delete", "realserver", "web-a"]);
    await until("the removal", async () => (!(await a.table()).includes("198.51.100.60") ? true : undefined));
    await cp.kubectlOk(["-n", ns, "delete", "virtualservice", "web"]);
    await until("the service removal", async () =>
      only(await a.table(), "192.0.2.60:") === "" ? true : undefined,
    );

    const node = await until("the IPVSNode", async () => {
      const n = await ipvsNode("node-converge");
      const ready = (n.status?.conditions as { type: string; status: string }[] | undefined)?.find(
        (c) => c.type === "Ready",
      );
      return ready?.status === "True" ? n : undefined;
    });
    expect(
      node.metadata.managedFields?.some(
        (f) => f.manager === "ipvs-operator-agent" && f.subresource === "status",
      ),
    ).toBe(true);
  });

  it("writes its status on change only, not on every resync", async () => {
    const ns = await cp.newNamespace("writes");
    await apply(vs(ns, "quiet", "192.0.2.61") + rs(ns, "quiet-a", "quiet", "198.51.100.62"));
    const a = startAgent("node-writes");
    await a.agent.start();
    await until("the service", async () => ((await a.table()).includes("198.51.100.62") ? true : undefined));
    // The first status lists the service as Missing (Repaired); the next sync clears that: two writes.
    await until("a settled status", () => (a.agent.health().syncs >= 3 ? true : undefined));
    const writes = a.writer.writes;
    const syncs = a.agent.health().syncs;
    await until("three more resyncs", () => (a.agent.health().syncs >= syncs + 3 ? true : undefined), 20_000);
    expect(a.writer.writes).toBe(writes);
    await apply(rs(ns, "quiet-b", "quiet", "198.51.100.63"));
    await until("a write after the change", () => (a.writer.writes > writes ? true : undefined));
  });

  it("takes real servers from EndpointSlices that kube-controller-manager makes from a Service and ready Pods", async () => {
    if (!cp.controllerManager)
      throw new Error("kube-controller-manager is not running: EndpointSlices cannot be tested");
    const ns = await cp.newNamespace("eps");
    await apply(
      `${vs(ns, "api", "192.0.2.62", ", backends: {serviceRef: {name: api, port: http}}")}apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: ${ns}}\nspec: {selector: {app: api}, ports: [{name: http, port: 80, targetPort: 8080}]}\n`,
    );
    // The EndpointSlice controller skips Pods whose Node it does not know.
    await apply("apiVersion: v1\nkind: Node\nmetadata: {name: node-x}\n");
    for (const [i, ip] of ["10.244.0.10", "10.244.0.11"].entries()) {
      await apply(
        `apiVersion: v1\nkind: Pod\nmetadata: {name: api-${i}, namespace: ${ns}, labels: {app: api}}\nspec: {nodeName: node-x, containers: [{name: c, image: none, ports: [{name: http, containerPort: 8080}]}]}\n`,
      );
      // No kubelet here: the test plays its part and reports the Pod running and ready.
      const status = {
        status: {
          phase: "Running",
          podIP: ip,
          podIPs: [{ ip }],
          conditions: [
            {
              type: "Ready",
              status: "True",
              lastTransitionTime: new Date().toISOString().replace(/\.\d+Z/, "Z"),
            },
          ],
        },
      };
      await cp.kubectlOk([
        "-n",
        ns,
        "patch",
        "pod",
        `api-${i}`,
        "--subresource=status",
        "--type=merge",
        "-p",
        JSON.stringify(status),
      ]);
    }
    const a = startAgent("node-eps");
    await a.agent.start();
    await until("both endpoints", async () => {
      const t = await a.table();
      return t.includes("10.244.0.10:8080") && t.includes("10.244.0.11:8080") ? t : undefined;
    });
    await cp.kubectlOk(["-n", ns, "delete", "pod", "api-1", "--grace-period=0", "--force"]);
    await until("the deleted pod's endpoint gone", async () =>
      !(await a.table()).includes("10.244.0.11") ? true : undefined,
    );
  });

  it("syncs EndpointSlice changes the short way, and a slice that moves to another Service the whole way", async () => {
    const ns = await cp.newNamespace("short");
    const slice = (name: string, service: string, addresses: string[]) =>
      `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: ${name}, namespace: ${ns}, labels: {kubernetes.io/service-name: ${service}}}\naddressType: IPv4\nports: [{name: http, port: 8080, protocol: TCP}]\nendpoints: [${addresses.map((a) => `{addresses: [${a}], conditions: {ready: true}}`).join(", ")}]\n---\n`;
    const service = (name: string) =>
      `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: ${ns}}\nspec: {ports: [{name: http, port: 80, targetPort: 8080}]}\n---\n`;
    await apply(
      `${vs(ns, "web", "192.0.2.171", ", backends: {serviceRef: {name: web, port: http}}")}${service("web")}${service("other")}${slice("web-a", "web", ["10.9.0.1"])}`,
    );
    const a = startAgent("node-short", undefined, undefined, "10m"); // no periodic resync in the way
    /** The real servers of 192.0.2.171 in the table, sorted. */
    const backends = async () =>
      only(await a.table(), "-r ")
        .split("\n")
        .filter((l) => l.includes("192.0.2.171:80"))
        .map((l) => /-r (\S+):8080/.exec(l)![1]!)
        .sort()
        .join(" ");
    /** Runs `change`, waits for the backends it should give, and returns the reports of the syncs it took. */
    const step = async (what: string, change: () => Promise<unknown>, expected: string) => {
      const before = a.reports.length;
      await change();
      await until(what, async () => ((await backends()) === expected ? true : undefined));
      await until(`${what}: reported`, () => (a.reports.length > before ? true : undefined));
      return a.reports.slice(before);
    };
    const scopes = (reports: { scope: string }[]) => reports.map((r) => r.scope);
    await step("the first sync", () => a.agent.start(), "10.9.0.1");

    // An endpoint added, a second slice of the same Service, an endpoint removed: the short way.
    const added = await step(
      "an endpoint added",
      () => apply(slice("web-a", "web", ["10.9.0.1", "10.9.0.2"])),
      "10.9.0.1 10.9.0.2",
    );
    expect(scopes(added)).toEqual(["changes"]);
    expect(added[0]!.result.outcomes.map((o) => o.description)).toEqual([
      "add destination TCP 192.0.2.171:80 -> 10.9.0.2:8080 (weight 1)",
    ]);
    const second = await step(
      "a second slice",
      () => apply(slice("web-b", "web", ["10.9.0.3"])),
      "10.9.0.1 10.9.0.2 10.9.0.3",
    );
    expect(scopes(second)).toEqual(["changes"]);
    const removed = await step(
      "an endpoint removed",
      () => apply(slice("web-a", "web", ["10.9.0.2"])),
      "10.9.0.2 10.9.0.3",
    );
    expect(scopes(removed)).toEqual(["changes"]);
    expect(removed[0]!.result.dumped).toBe(false);

    // web-b moves to Service "other" (no VirtualService reads it): a whole sync takes 10.9.0.3 away.
    const moved = await step(
      "a slice moved away",
      () => apply(slice("web-b", "other", ["10.9.0.3"])),
      "10.9.0.2",
    );
    expect(scopes(moved)).toEqual(["all"]);
    // The VirtualService changes (a label): a whole sync; then the short way again.
    const relabelled = await step(
      "the VirtualService relabelled",
      () => cp.kubectlOk(["-n", ns, "label", "virtualservices.ipvs.dev", "web", "tier=front"]),
      "10.9.0.2",
    );
    expect(scopes(relabelled)).toEqual(["all"]);
    const after = await step(
      "an endpoint added after it",
      () => apply(slice("web-a", "web", ["10.9.0.2", "10.9.0.4"])),
      "10.9.0.2 10.9.0.4",
    );
    expect(scopes(after)).toEqual(["changes"]);
  });

  it("restarted mid-way, converges without touching a foreign entry", async () => {
    const ns = await cp.newNamespace("restart");
    await apply(vs(ns, "r", "192.0.2.63") + rs(ns, "r-a", "r", "198.51.100.64"));
    const kernel = new FakeIpvsKernel();
    const foreign = {
      kind: "address" as const,
      family: "IPv4" as const,
      protocol: "TCP" as const,
      address: "203.0.113.63",
      port: 80,
    };
    await kernel.addService({
      key: foreign,
      config: {
        scheduler: "wlc",
        flags: {
          persistent: false,
          onePacket: false,
          schedFlag1: false,
          schedFlag2: false,
          schedFlag3: false,
        },
        timeout: 0,
        netmask: 0xffffffff,
        persistenceEngine: "",
      },
    });
    const state = join(mkdtempSync(join(tmpdir(), "agent-")), "journal.json");
    const first = startAgent("node-restart", kernel, state);
    await first.agent.start();
    await until("the service", async () =>
      (await first.table()).includes("198.51.100.64") ? true : undefined,
    );
    await first.agent.stop();
    // While it is down: a real server is added and the other removed.
    await apply(rs(ns, "r-b", "r", "198.51.100.65"));
    await cp.kubectlOk(["-n", ns, "delete", "realserver", "r-a"]);
    const second = startAgent("node-restart", kernel, state);
    await second.agent.start();
    await until("convergence after the restart", async () => {
      const t = await second.table();
      return t.includes("198.51.100.65") && !t.includes("198.51.100.64") ? t : undefined;
    });
    expect(await second.table()).toContain("-A -t 203.0.113.63:80 -s wlc\n");
  });

  it("lists in pages: 1,100 RealServers (three pages of 500) all reach the kernel", async () => {
    const ns = await cp.newNamespace("pages");
    const many = Array.from({ length: 1100 }, (_, i) =>
      rs(ns, `p-${i}`, "big", `10.77.${i >> 8}.${i & 255}`),
    ).join("");
    await apply(vs(ns, "big", "192.0.2.77") + many);
    const a = startAgent("node-pages");
    await a.agent.start();
    const lines = await until("1,100 destinations", async () => {
      const n = only(await a.table(), "192.0.2.77:80 -r")
        .split("\n")
        .filter(Boolean).length;
      return n === 1100 ? n : undefined;
    });
    expect(lines).toBe(1100);
  });

  it("records Events for repaired drift, refused operations and objects it cannot use", async () => {
    const ns = await cp.newNamespace("events");
    await apply(
      vs(ns, "ev", "192.0.2.64") +
        rs(ns, "ev-a", "ev", "198.51.100.66") +
        vs(ns, "maglev", "192.0.2.65", ", scheduler: mh") +
        rs(ns, "orphan", "missing", "198.51.100.67"),
    );
    const a = startAgent("node-events", new FakeIpvsKernel({ schedulers: ["rr"] }));
    await a.agent.start();
    await until("the service", async () => ((await a.table()).includes("198.51.100.66") ? true : undefined));
    await a.kernel.updateDestination(
      { kind: "address", family: "IPv4", protocol: "TCP", address: "192.0.2.64", port: 80 },
      {
        key: { family: "IPv4", address: "198.51.100.66", port: 8080 },
        config: {
          forwarding: "NAT",
          weight: 0,
          upperThreshold: 0,
          lowerThreshold: 0,
          tunnelType: "IPIP",
          tunnelPort: 0,
          tunnelChecksum: "None",
        },
      },
    );
    const events = await until("the three kinds of Event", async () => {
      const list = JSON.parse(
        await cp.kubectlOk(["-n", ns, "get", "events.events.k8s.io", "-o", "json"]),
      ) as {
        items: {
          reason: string;
          type: string;
          regarding: { kind: string; name: string };
          reportingController: string;
          note: string;
        }[];
      };
      const reasons = new Set(list.items.map((e) => `${e.reason} ${e.regarding.kind}/${e.regarding.name}`));
      return reasons.has("DriftRepaired VirtualService/ev") &&
        reasons.has("ApplyFailed VirtualService/maglev") &&
        reasons.has("NotFound RealServer/orphan")
        ? list.items
        : undefined;
    });
    expect(events.every((e) => e.reportingController === "ipvs.dev/agent")).toBe(true);
    expect(events.find((e) => e.reason === "ApplyFailed")?.note).toContain("ENOENT");
    // A problem is reported once, not on every resync.
    const syncs = a.agent.health().syncs;
    await until("two more resyncs", () => (a.agent.health().syncs >= syncs + 2 ? true : undefined));
    const again = JSON.parse(await cp.kubectlOk(["-n", ns, "get", "events.events.k8s.io", "-o", "json"])) as {
      items: { reason: string }[];
    };
    expect(again.items.filter((e) => e.reason === "NotFound")).toHaveLength(1);
  });
});
