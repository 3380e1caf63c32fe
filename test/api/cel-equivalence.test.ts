/**
 * The CRD (OpenAPI + CEL, as the apiserver evaluates it under kubectl's default strict field validation)
 * and the runtime validation must accept and reject exactly the same single objects. Nulls are pruned by
 * both. Unknown fields are the one deliberate difference from the apiserver on its own: it prunes them
 * (fieldValidation=Ignore), while kubectl apply (fieldValidation=Strict) and the runtime reject them.
 */
import { describe, expect, it } from "vitest";
import { generateCrds, type JsonSchema } from "../../src/api/crds.ts";
import {
  API_GROUP_VERSION,
  validateIPVSNode,
  validateRealServer,
  validateVirtualService,
  validateVirtualServiceUpdate,
} from "../../src/api/v1alpha1/index.ts";
import { type Case, CORPUS } from "./corpus.ts";
import { apiserverErrors, celErrors, k8sIsIP, type Schema } from "./crd-evaluator.ts";

const crds = generateCrds();
function rootSchema(kind: string): JsonSchema {
  const crd = crds.find((c) => (c.object.spec as { names: { kind: string } }).names.kind === kind)!;
  return (crd.object.spec as { versions: { schema: { openAPIV3Schema: JsonSchema } }[] }).versions[0]!.schema
    .openAPIV3Schema;
}
const part = (kind: string, name: "spec" | "status") =>
  (rootSchema(kind).properties as Record<string, Schema>)[name] as Schema;

const wrap = (kind: Case["kind"], body: unknown) => ({
  apiVersion: API_GROUP_VERSION,
  kind,
  metadata: { name: kind === "IPVSNode" ? "worker-1" : "web" },
  ...(kind === "IPVSNode" ? { status: body } : { spec: body }),
});

/** The runtime's verdict, through the same entry points the engine uses. */
function zodAccepts(c: Case): boolean {
  const obj = wrap(c.kind, c.body);
  if (c.old !== undefined) return validateVirtualServiceUpdate(wrap(c.kind, c.old), obj).ok;
  if (c.kind === "VirtualService") return validateVirtualService(obj).ok;
  if (c.kind === "RealServer") return validateRealServer(obj).ok;
  return validateIPVSNode(obj).ok;
}

describe("CEL + OpenAPI accept exactly what zod accepts", () => {
  it("has a corpus of at least 30 objects, valid and invalid", () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(30);
    expect(CORPUS.filter((c) => c.invalidAt === undefined).length).toBeGreaterThanOrEqual(10);
    expect(CORPUS.filter((c) => c.invalidAt !== undefined).length).toBeGreaterThanOrEqual(20);
  });

  it.each(CORPUS.map((c) => [c.name, c] as const))("%s", (_n, c) => {
    const schema = part(c.kind, c.kind === "IPVSNode" ? "status" : "spec");
    const crdErrors = apiserverErrors(schema, c.body, c.old, "Strict");
    const zodOk = zodAccepts(c);
    expect({ crdAccepts: crdErrors.length === 0, errors: crdErrors }).toEqual({
      crdAccepts: zodOk,
      errors: zodOk ? [] : expect.anything(),
    });
    expect(zodOk).toBe(c.invalidAt === undefined);
    // CEL evaluation errors (as opposed to rule failures) would mean a broken rule.
    expect(crdErrors.filter((e) => e.includes("CEL error"))).toEqual([]);
  });

  it.each(
    CORPUS.map((c) => [c.name, c] as const),
  )("%s: apiserver without strict field validation", (_n, c) => {
    const schema = part(c.kind, c.kind === "IPVSNode" ? "status" : "spec");
    const strict = apiserverErrors(schema, c.body, c.old, "Strict");
    const ignore = apiserverErrors(schema, c.body, c.old, "Ignore");
    if (c.unknownField) {
      // Deliberate difference: the apiserver alone prunes the field and accepts the object; kubectl's
      // strict field validation rejects it, naming the field, and so does the runtime.
      expect(ignore).toEqual([]);
      expect(strict).toEqual([`${c.invalidAt!.replace(/^spec|^status/, "")}: unknown field`]);
    } else {
      expect(ignore).toEqual(strict);
    }
  });

  it("has null and unknown-field cases", () => {
    const hasNull = (v: unknown): boolean =>
      v === null || (typeof v === "object" && Object.values(v as object).some(hasNull));
    expect(CORPUS.filter((c) => hasNull(c.body) && c.invalidAt === undefined).length).toBeGreaterThanOrEqual(
      3,
    );
    expect(CORPUS.filter((c) => c.unknownField).length).toBeGreaterThanOrEqual(5);
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
