/**
 * The generated CRDs on a real kube-apiserver: they install with server-side apply (structural schemas,
 * CEL rules within the cost budget), every object of the validation corpus gets the same verdict from
 * the server as from the runtime's zod validation (rejections naming the corpus's field path, defaults
 * equal to zod's), printer columns show real values, and kubectl explain shows the field docs.
 *
 * The corpus goes to the API server directly, with server-side dry run and strict field validation
 * (what `kubectl apply --dry-run=server` sends), for the exact field paths of the metav1.Status
 * answer; the same objects then go through the built kubectl too.
 */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import type { z } from "zod";
import {
  API_GROUP_VERSION,
  IPVSNodeSchema,
  RealServerSchema,
  VirtualServiceSchema,
  validateIPVSNode,
  validateRealServer,
  validateVirtualService,
  validateVirtualServiceUpdate,
} from "../../src/api/v1alpha1/index.ts";
import { pruneNulls } from "../../src/api/v1alpha1/prune-nulls.ts";
import { type Case, CORPUS } from "../../test/api/corpus.ts";
import type { ApiResponse, KubectlResult } from "./control-plane.ts";
import { useControlPlane } from "./use-control-plane.ts";

const cp = useControlPlane();
const root = fileURLToPath(new URL("../..", import.meta.url));
const crdDir = `${root}crds/`;
const BASE = `/apis/${API_GROUP_VERSION}`;
const PLURAL = {
  VirtualService: "virtualservices",
  RealServer: "realservers",
  IPVSNode: "ipvsnodes",
} as const;
const DRY = "dryRun=All&fieldValidation=Strict";

type Obj = Record<string, unknown>;

/** The object as a user would write it; IPVSNodes carry the body as status, the others as spec. */
function wrap(c: Case, body: unknown, name: string, namespace: string): Obj {
  return {
    apiVersion: API_GROUP_VERSION,
    kind: c.kind,
    metadata: c.kind === "IPVSNode" ? { name } : { name, namespace },
    ...(c.kind === "IPVSNode" ? { status: body } : { spec: body }),
  };
}
const part = (c: Case): "spec" | "status" => (c.kind === "IPVSNode" ? "status" : "spec");

/** The runtime's verdict, through the entry points the engine uses. */
function zodAccepts(c: Case, obj: Obj, old: Obj | undefined): boolean {
  if (old !== undefined) return validateVirtualServiceUpdate(old, obj).ok;
  if (c.kind === "VirtualService") return validateVirtualService(obj).ok;
  if (c.kind === "RealServer") return validateRealServer(obj).ok;
  return validateIPVSNode(obj).ok;
}

/** zod's parse with its defaults, before the family-dependent normalization the CRD cannot express. */
function zodDefaulted(c: Case, obj: Obj): unknown {
  const schema: z.ZodType = {
    VirtualService: VirtualServiceSchema,
    RealServer: RealServerSchema,
    IPVSNode: IPVSNodeSchema,
  }[c.kind];
  const r = schema.safeParse(pruneNulls(obj, schema));
  if (!r.success) throw new Error(`zod rejects a valid case: ${r.error.message}`);
  return (r.data as Obj)[part(c)];
}

interface Verdict {
  accepted: boolean;
  /** Field paths the server named: metav1.Status causes, and unknown fields of a strict decoding error. */
  fields: string[];
  message: string;
  /** The object as the server would store it (defaults applied), when accepted. */
  object?: Obj;
}

function verdictOf(r: ApiResponse, what: string): Verdict {
  if (r.status >= 200 && r.status < 300)
    return { accepted: true, fields: [], message: "", object: r.body as Obj };
  const s = r.body as { reason?: string; message?: string; details?: { causes?: { field?: string }[] } };
  // 422 Invalid (schema, CEL) and 400 BadRequest (strict field validation) are rejections; anything
  // else means the test bed, not the object, is wrong.
  if (r.status !== 422 && r.status !== 400)
    throw new Error(`${what}: unexpected HTTP ${r.status}: ${JSON.stringify(r.body)}`);
  const message = s.message ?? "";
  const fields = (s.details?.causes ?? []).flatMap((c) => (c.field ? [c.field] : []));
  for (const m of message.matchAll(/unknown field "([^"]+)"/g)) fields.push(m[1]!);
  return { accepted: false, fields, message };
}

const hasNull = (v: unknown): boolean =>
  v === null || (typeof v === "object" && Object.values(v as object).some(hasNull));

/** What client-side `kubectl apply` sends on create: object fields whose value is null left out. */
function dropNullFields(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropNullFields);
  if (v === null || typeof v !== "object") return v;
  return Object.fromEntries(
    Object.entries(v)
      .filter(([, x]) => x !== null)
      .map(([k, x]) => [k, dropNullFields(x)]),
  );
}

/** True when `field` is `at` or lies under it ("spec.conditions[1]" is under "spec.conditions"). */
const under = (field: string, at: string) =>
  field === at || field.startsWith(`${at}.`) || field.startsWith(`${at}[`);

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

let ns = "";
let applyResult: KubectlResult;

beforeAll(async () => {
  applyResult = await cp.kubectl([
    "apply",
    "--server-side",
    "--field-manager=ipvs-operator-test",
    "-f",
    crdDir,
  ]);
  if (applyResult.code !== 0)
    throw new Error(`kubectl apply --server-side -f crds/ failed:\n${applyResult.stderr}`);
  await cp.kubectlOk(["wait", "--for=condition=Established", "--timeout=60s", "-f", crdDir]);
  ns = await cp.newNamespace("crds");
});

// Hundreds of corpus objects would otherwise stay for the later files, whose agents program every
// VirtualService in the cluster: leave the cluster as the next file expects it.
afterAll(async () => {
  const nodes = (await cp.kubectlOk(["get", "ipvsnodes", "-o", "name"]))
    .split("\n")
    .filter((n) => n.startsWith(`ipvsnode.ipvs.dev/${ns}-`));
  if (nodes.length > 0) await cp.kubectlOk(["delete", "--wait=false", ...nodes]);
  await cp.kubectlOk(["delete", "namespace", ns, "--timeout=120s"], { timeoutMs: 150_000 });
});

describe("CRDs on the real API server", () => {
  it("kubectl apply --server-side -f crds/ installs all four, established, names accepted", async () => {
    const files = readdirSync(crdDir).filter((f) => f.endsWith(".yaml"));
    expect(files.length).toBe(4);
    const names = files.map(
      (f) =>
        (parseAllDocuments(readFileSync(crdDir + f, "utf8"))[0]!.toJS() as { metadata: { name: string } })
          .metadata.name,
    );
    for (const n of names)
      expect(applyResult.stdout).toContain(
        `customresourcedefinition.apiextensions.k8s.io/${n} serverside-applied`,
      );
    for (const n of names) {
      const crd = (await cp.api("GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${n}`))
        .body as {
        status: { conditions: { type: string; status: string; message: string }[] };
      };
      const cond = Object.fromEntries(crd.status.conditions.map((c) => [c.type, c.status]));
      expect(cond, n).toMatchObject({ Established: "True", NamesAccepted: "True" });
      // A non-structural schema or a rule over the cost budget would show here (or fail the apply).
      expect(cond.NonStructuralSchema, n).toBeUndefined();
    }
    // Applying again changes nothing and conflicts with nothing.
    const again = await cp.kubectl([
      "apply",
      "--server-side",
      "--field-manager=ipvs-operator-test",
      "-f",
      crdDir,
    ]);
    expect(again.code, again.stderr).toBe(0);
  });

  describe("every corpus object: the server's verdict is zod's", () => {
    let verdicts: Verdict[] = [];

    beforeAll(async () => {
      verdicts = await pool(CORPUS, 6, async (c, i) => {
        const name = `c${i}`;
        const obj = wrap(c, c.body, name, ns);
        if (c.kind === "IPVSNode") {
          // Status is a subresource: create the node, then update its status (dry run).
          const nodeName = `${ns}-${name}`;
          const created = await cp.api("POST", `${BASE}/ipvsnodes`, wrap(c, undefined, nodeName, ns));
          if (created.status !== 201)
            throw new Error(`create IPVSNode ${nodeName}: ${JSON.stringify(created.body)}`);
          const rv = (created.body as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
          const withStatus = {
            ...wrap(c, c.body, nodeName, ns),
            metadata: { name: nodeName, resourceVersion: rv },
          };
          return verdictOf(
            await cp.api("PUT", `${BASE}/ipvsnodes/${nodeName}/status?${DRY}`, withStatus),
            c.name,
          );
        }
        const collection = `${BASE}/namespaces/${ns}/${PLURAL[c.kind]}`;
        if (c.old !== undefined) {
          // Transition rules: the old object is created for real, the new one is a dry-run update.
          const created = await cp.api(
            "POST",
            `${collection}?fieldValidation=Strict`,
            wrap(c, c.old, name, ns),
          );
          if (created.status !== 201)
            throw new Error(`create old ${c.name}: ${JSON.stringify(created.body)}`);
          const rv = (created.body as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
          const next = { ...obj, metadata: { name, namespace: ns, resourceVersion: rv } };
          return verdictOf(await cp.api("PUT", `${collection}/${name}?${DRY}`, next), c.name);
        }
        return verdictOf(await cp.api("POST", `${collection}?${DRY}`, obj), c.name);
      });
    });

    it.each(CORPUS.map((c, i) => [c.name, c, i] as const))("%s", (_n, c, i) => {
      const v = verdicts[i]!;
      const obj = wrap(c, c.body, `c${i}`, ns);
      const old = c.old === undefined ? undefined : wrap(c, c.old, `c${i}`, ns);
      const zodOk = zodAccepts(c, obj, old);
      expect(zodOk, "corpus and zod disagree").toBe(c.invalidAt === undefined);
      expect({ serverAccepts: v.accepted, message: v.message }).toEqual({
        serverAccepts: zodOk,
        message: zodOk ? "" : expect.any(String),
      });
      if (!zodOk) {
        expect(
          v.fields.some((f) => under(f, c.invalidAt!)),
          `fields ${JSON.stringify(v.fields)}: ${v.message}`,
        ).toBe(true);
      } else {
        // Defaults: what the server stores is what zod parses (before the family-dependent
        // normalization), and the runtime accepts the stored object as it is.
        const stored = v.object!;
        expect(stored[part(c)]).toEqual(zodDefaulted(c, obj));
        expect(zodAccepts(c, stored, undefined)).toBe(true);
      }
    });

    it("the corpus reaches every kind, update rules and the status subresource", () => {
      expect(verdicts.length).toBe(CORPUS.length);
      expect(verdicts.filter((v) => v.accepted).length).toBeGreaterThanOrEqual(10);
      expect(verdicts.filter((v) => !v.accepted).length).toBeGreaterThanOrEqual(20);
      expect(new Set(CORPUS.map((c) => c.kind))).toEqual(
        new Set(["VirtualService", "RealServer", "IPVSNode"]),
      );
      expect(CORPUS.some((c) => c.old !== undefined && c.invalidAt !== undefined)).toBe(true);
    });
  });

  /**
   * The same objects through the built kubectl, the way users send them. The three commands differ
   * only in how they treat nulls, and the expectations say exactly how:
   * - `kubectl create` sends the object as written: the corpus verdict (zod's) as it is;
   * - client-side `kubectl apply` drops null-valued fields before it creates the object (a null there
   *   means "delete"), so the verdict is zod's on the object without them;
   * - server-side apply (`--server-side`; Helm 4 and Flux use it) does not prune nulls: a typed apply
   *   configuration may not hold them, so any null is a rejection.
   */
  describe("through kubectl --dry-run=server: create, apply and apply --server-side", () => {
    const creates = CORPUS.map((c, i) => ({ c, i })).filter(
      ({ c }) => c.old === undefined && c.kind !== "IPVSNode",
    );
    const commands = {
      create: ["create", "--dry-run=server"],
      apply: ["apply", "--dry-run=server"],
      "apply --server-side": [
        "apply",
        "--server-side",
        "--field-manager=ipvs-operator-test",
        "--dry-run=server",
      ],
    } as const;
    type Command = keyof typeof commands;

    /** What the command should answer: accepted, or rejected naming one of `at`. */
    function expected(command: Command, c: Case, i: number): { accepted: boolean; at?: string[] } {
      if (command === "apply --server-side" && hasNull(c.body)) {
        // A null, or the corpus's own finding (an unknown field) when there is one.
        return { accepted: false, at: ["null", ...(c.invalidAt ? [c.invalidAt] : [])] };
      }
      const body = command === "apply" ? dropNullFields(c.body) : c.body;
      const accepted = zodAccepts(c, wrap(c, body, `k${i}`, ns), undefined);
      return accepted ? { accepted } : { accepted, at: [c.invalidAt!] };
    }

    it.each(Object.keys(commands) as Command[])("kubectl %s: every corpus object", async (command) => {
      const results = await pool(creates, 4, ({ c, i }) =>
        cp.kubectl([...commands[command], "-f", "-"], {
          input: JSON.stringify(wrap(c, c.body, `k${i}`, ns)),
        }),
      );
      const wrong = creates.flatMap(({ c, i }, j) => {
        const r = results[j]!;
        const want = expected(command, c, i);
        const ok = want.accepted
          ? r.code === 0 &&
            r.stdout.includes(
              `/k${i} ${command === "apply --server-side" ? "serverside-applied" : "created"}`,
            )
          : r.code !== 0 && want.at!.some((at) => r.stderr.includes(at));
        return ok ? [] : [{ name: c.name, want, code: r.code, out: (r.stderr || r.stdout).trim() }];
      });
      expect(wrong).toEqual([]);
      expect(results.filter((r) => r.code === 0).length).toBeGreaterThanOrEqual(10);
      expect(results.filter((r) => r.code !== 0).length).toBeGreaterThanOrEqual(20);
    });

    it("differs from the corpus verdict only where nulls are concerned, and these cases exist", () => {
      const differ = (command: Command) =>
        creates
          .filter(({ c, i }) => expected(command, c, i).accepted !== (c.invalidAt === undefined))
          .map(({ c }) => c.name);
      expect(differ("create")).toEqual([]);
      expect(differ("apply")).toEqual(["unknown field with null value"]);
      expect(differ("apply --server-side")).toEqual([
        "null optional and defaulted fields",
        "null nested fields",
        "rs null port, weight, thresholds and overrides",
      ]);
    });
  });

  it("kubectl get ipvsvs,ipvsrs,ipvsnode shows the printer columns with real values", async () => {
    const label = `columns=${ns}`;
    const node = `${ns}-worker-1`;
    await cp.kubectlOk(["apply", "-f", "-"], {
      input: JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [
          {
            apiVersion: API_GROUP_VERSION,
            kind: "VirtualService",
            metadata: { name: "web", namespace: ns, labels: { columns: ns } },
            spec: { address: "192.0.2.10", port: 80, protocol: "TCP", scheduler: "rr" },
          },
          {
            apiVersion: API_GROUP_VERSION,
            kind: "RealServer",
            metadata: { name: "web-a", namespace: ns, labels: { columns: ns } },
            spec: { virtualServiceRef: { name: "web" }, address: "198.51.100.10", port: 8080, weight: 3 },
          },
          {
            apiVersion: API_GROUP_VERSION,
            kind: "IPVSNode",
            metadata: { name: node, labels: { columns: ns } },
          },
        ],
      }),
    });
    const t = "2026-11-22T05:40:00Z";
    const cond = (type: string, status: string) => ({
      type,
      status,
      reason: "Test",
      message: "",
      lastTransitionTime: t,
    });
    const setStatus = (args: string[], status: unknown) =>
      cp.kubectlOk([
        "patch",
        ...args,
        "--subresource=status",
        "--type=merge",
        "-p",
        JSON.stringify({ status }),
      ]);
    await setStatus(["virtualservice", "web", "-n", ns], {
      address: "192.0.2.10:80",
      nodes: { selected: 3, programmed: 2, drifted: 1, summary: "2/3" },
      backends: { total: 2, healthy: 1, draining: 0, summary: "1/2" },
    });
    await setStatus(["realserver", "web-a", "-n", ns], {
      phase: "Active",
      conditions: [cond("Healthy", "True")],
    });
    await setStatus(["ipvsnode", node], {
      services: 4,
      destinations: 9,
      lastSync: { time: t, durationMilliseconds: 12, result: "Success", operations: 3 },
      conditions: [cond("Ready", "True"), cond("Drifted", "False")],
    });

    const out = await cp.kubectlOk(["get", "ipvsvs,ipvsrs,ipvsnode", "-n", ns, "-l", label]);
    const tables = out
      .trim()
      .split(/\n\s*\n/)
      .map((block) => block.split("\n").map((line) => line.trim().split(/\s{2,}/)));
    expect(tables.map((rows) => rows.length)).toEqual([2, 2, 2]);
    const [vs, rs, ipvsnode] = tables as [string[][], string[][], string[][]];
    expect(vs[0]).toEqual([
      "NAME",
      "ADDRESS",
      "PROTOCOL",
      "SCHEDULER",
      "BACKENDS",
      "NODES",
      "DRIFTED",
      "AGE",
    ]);
    expect(vs[1]!.slice(0, 7)).toEqual([
      "virtualservice.ipvs.dev/web",
      "192.0.2.10:80",
      "TCP",
      "rr",
      "1/2",
      "2/3",
      "1",
    ]);
    expect(rs[0]).toEqual(["NAME", "VIRTUALSERVICE", "ADDRESS", "WEIGHT", "PHASE", "HEALTHY", "AGE"]);
    expect(rs[1]!.slice(0, 6)).toEqual([
      "realserver.ipvs.dev/web-a",
      "web",
      "198.51.100.10",
      "3",
      "Active",
      "True",
    ]);
    expect(ipvsnode[0]).toEqual(["NAME", "SERVICES", "DESTINATIONS", "DRIFTED", "LAST-SYNC", "READY"]);
    // Last-Sync is a date column: kubectl shows its age.
    expect(ipvsnode[1]).toEqual([
      `ipvsnode.ipvs.dev/${node}`,
      "4",
      "9",
      "False",
      expect.stringMatching(/^\d+[smhdy]/),
      "True",
    ]);
    // Full names reach the same objects; "vs" and "rs" are not ours ("rs" is ReplicaSet).
    expect(
      await cp.kubectlOk(["get", "virtualservices,realservers", "-n", ns, "-l", label, "-o", "name"]),
    ).toBe("virtualservice.ipvs.dev/web\nrealserver.ipvs.dev/web-a\n");
    expect((await cp.kubectl(["get", "vs", "-n", ns])).code).not.toBe(0);
  });

  it.each([
    ["virtualservice.spec", "virtualservices.ipvs.dev.yaml", "spec"],
    ["realserver.spec", "realservers.ipvs.dev.yaml", "spec"],
    ["ipvsnode.status", "ipvsnodes.ipvs.dev.yaml", "status"],
  ])("kubectl explain %s shows the field docs", async (resource, file, field) => {
    const out = await cp.kubectlOk(["explain", resource]);
    const crd = parseAllDocuments(readFileSync(crdDir + file, "utf8"))[0]!.toJS() as {
      spec: {
        names: { kind: string };
        versions: { schema: { openAPIV3Schema: { properties: Record<string, Schema> } } }[];
      };
    };
    type Schema = { description?: string; properties?: Record<string, Schema> };
    const schema = crd.spec.versions[0]!.schema.openAPIV3Schema.properties[field]!;
    const flat = (s: string) => s.replace(/\s+/g, " ").trim();
    expect(out).toMatch(new RegExp(`^KIND:\\s+${crd.spec.names.kind}$`, "m"));
    expect(out).toMatch(new RegExp(`^VERSION:\\s+${API_GROUP_VERSION.split("/")[1]}$`, "m"));
    expect(out).toMatch(new RegExp(`^FIELD:\\s+${field} <Object>$`, "m"));
    expect(flat(out)).toContain(flat(schema.description!));
    const fields = Object.entries(schema.properties ?? {});
    expect(fields.length).toBeGreaterThan(3);
    for (const [name, sub] of fields) {
      expect(out, name).toMatch(new RegExp(`^ {2}${name}\\s+<`, "m"));
      expect(flat(out), name).toContain(flat(sub.description ?? "<missing description>"));
    }
  });
});
