/**
 * The CRD (OpenAPI + CEL, as the apiserver evaluates it) and the runtime zod schemas must accept and
 * reject exactly the same objects.
 */
import { describe, expect, it } from "vitest";
import { generateCrds, type JsonSchema } from "../../src/api/crds.ts";
import {
  IPVSNodeStatusSchema,
  RealServerSpecSchema,
  VIRTUAL_SERVICE_TRANSITION_RULES,
  VirtualServiceSpecSchema,
} from "../../src/api/v1alpha1/index.ts";
import { CORPUS } from "./corpus.ts";
import { apiserverErrors, celErrors, k8sIsIP, type Schema } from "./crd-evaluator.ts";

const crds = generateCrds();
function rootSchema(kind: string): JsonSchema {
  const crd = crds.find((c) => (c.object.spec as { names: { kind: string } }).names.kind === kind)!;
  return (crd.object.spec as { versions: { schema: { openAPIV3Schema: JsonSchema } }[] }).versions[0]!.schema
    .openAPIV3Schema;
}
const part = (kind: string, name: "spec" | "status") =>
  (rootSchema(kind).properties as Record<string, Schema>)[name] as Schema;

const zodFor = {
  VirtualService: VirtualServiceSpecSchema,
  RealServer: RealServerSpecSchema,
  IPVSNode: IPVSNodeStatusSchema,
};

function zodAccepts(kind: keyof typeof zodFor, body: unknown, old?: unknown): boolean {
  const r = zodFor[kind].safeParse(body);
  if (!r.success) return false;
  if (old === undefined) return true;
  const o = VirtualServiceSpecSchema.safeParse(old);
  if (!o.success) return true;
  return VIRTUAL_SERVICE_TRANSITION_RULES.every((t) => t.check(r.data as never, o.data));
}

describe("CEL + OpenAPI accept exactly what zod accepts", () => {
  it("has a corpus of at least 30 objects, valid and invalid", () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(30);
    expect(CORPUS.filter((c) => c.invalidAt === undefined).length).toBeGreaterThanOrEqual(10);
    expect(CORPUS.filter((c) => c.invalidAt !== undefined).length).toBeGreaterThanOrEqual(20);
  });

  it.each(CORPUS.map((c) => [c.name, c] as const))("%s", (_n, c) => {
    const schema = part(c.kind, c.kind === "IPVSNode" ? "status" : "spec");
    const crdErrors = apiserverErrors(schema, c.body, c.old);
    const zodOk = zodAccepts(c.kind, c.body, c.old);
    expect({ crdAccepts: crdErrors.length === 0, errors: crdErrors }).toEqual({
      crdAccepts: zodOk,
      errors: zodOk ? [] : expect.anything(),
    });
    expect(zodOk).toBe(c.invalidAt === undefined);
    // CEL evaluation errors (as opposed to rule failures) would mean a broken rule.
    expect(crdErrors.filter((e) => e.includes("CEL error"))).toEqual([]);
  });

  it("every CEL rule of the CRDs is violated by at least one corpus object", () => {
    const messages = new Set<string>();
    const collect = (n: Schema) => {
      for (const v of (n["x-kubernetes-validations"] as { message: string }[]) ?? []) messages.add(v.message);
      for (const sub of Object.values((n.properties as Record<string, Schema>) ?? {})) collect(sub);
      if (n.items) collect(n.items as Schema);
    };
    for (const kind of ["VirtualService", "RealServer"]) collect(part(kind, "spec"));
    collect(part("IPVSNode", "status"));
    const hit = new Set<string>();
    for (const c of CORPUS) {
      const schema = part(c.kind, c.kind === "IPVSNode" ? "status" : "spec");
      for (const e of apiserverErrors(schema, c.body, c.old)) hit.add(e.slice(e.indexOf(": ") + 2));
    }
    const missed = [...messages].filter((m) => !hit.has(m));
    expect(missed).toEqual([]);
  });

  it("transition rules are skipped on create and enforced on update", () => {
    const spec = part("VirtualService", "spec");
    const v4 = { address: "192.0.2.10", port: 80, scheduler: "wlc" };
    expect(apiserverErrors(spec, { ...v4, port: 81 })).toEqual([]);
    expect(apiserverErrors(spec, { ...v4, port: 81 }, v4)).toEqual(["<root>: port is immutable"]);
    // celErrors alone (no defaulting) sees the same transition failure.
    expect(celErrors(spec, { ...v4, port: 81, onePacket: false }, { ...v4, onePacket: false })).toEqual([
      "<root>: port is immutable",
    ]);
  });
});

describe("the test's isIP matches Kubernetes semantics", () => {
  it.each([
    ["10.0.0.1", true],
    ["2001:db8::1", true],
    ["::ffff:10.0.0.1", false],
    ["fe80::1%eth0", false],
    ["010.0.0.1", false],
    ["x", false],
  ])("%s -> %s", (t, ok) => expect(k8sIsIP(t)).toBe(ok));
});
