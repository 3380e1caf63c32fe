/**
 * validate.ts parses with zod.compile() clones of the schemas (a generated fast path for valid objects,
 * the runtime parser for the others). Here the clones are compared with the runtime parser itself on the
 * corpus, the examples and randomly damaged objects: the same verdict, the same value (also key order,
 * absent versus undefined keys and -0), the same issues.
 */
import { readdirSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { loadAll } from "js-yaml";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { parseCommonRealServer, parseCommonVirtualService } from "../../src/api/v1alpha1/common-shape.ts";
import {
  API_GROUP_VERSION,
  IPVSNodeSchema,
  RealServerSchema,
  VirtualServiceSchema,
} from "../../src/api/v1alpha1/index.ts";
import { compiledOf } from "../../src/api/v1alpha1/validate.ts";
import { CORPUS } from "./corpus.ts";

const SCHEMAS = {
  VirtualService: VirtualServiceSchema,
  RealServer: RealServerSchema,
  IPVSNode: IPVSNodeSchema,
} as const;
type Kind = keyof typeof SCHEMAS;

/** Same structure: keys in the same order (absent differs from undefined), leaves Object.is-equal. */
function sameValue(a: unknown, b: unknown, path = "$"): string | undefined {
  if (typeof a !== "object" || a === null || typeof b !== "object" || b === null) {
    return Object.is(a, b) ? undefined : `${path}: ${String(a)} vs ${String(b)}`;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return `${path}: array vs object`;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return `${path}: prototypes differ`;
  const ka = Reflect.ownKeys(a);
  const kb = Reflect.ownKeys(b);
  if (ka.join("\u0000") !== kb.join("\u0000")) return `${path}: keys [${ka.join(",")}] vs [${kb.join(",")}]`;
  for (const k of ka) {
    const d = sameValue(
      (a as Record<PropertyKey, unknown>)[k],
      (b as Record<PropertyKey, unknown>)[k],
      `${path}.${String(k)}`,
    );
    if (d) return d;
  }
  return undefined;
}

/** How many objects parseCommonRealServer / parseCommonVirtualService took (rather than leaving them to zod). */
const commonObjects = { RealServer: 0, VirtualService: 0 };

function expectSameParse(kind: Kind, obj: unknown): boolean {
  const schema = SCHEMAS[kind] as z.ZodType;
  const runtime = schema.safeParse(obj);
  const compiled = compiledOf(schema).safeParse(obj);
  expect(compiled.success).toBe(runtime.success);
  if (runtime.success && compiled.success) {
    expect(sameValue(compiled.data, runtime.data)).toBeUndefined();
  } else {
    expect(compiled.error?.issues).toEqual(runtime.error?.issues);
  }
  if (kind !== "IPVSNode") {
    // The parser without zod takes an object only when zod accepts it, and returns zod's value.
    const common = kind === "RealServer" ? parseCommonRealServer(obj) : parseCommonVirtualService(obj);
    if (common !== undefined) {
      commonObjects[kind]++;
      expect(runtime.success).toBe(true);
      expect(sameValue(common, runtime.data)).toBeUndefined();
    }
  }
  return runtime.success;
}

const wrap = (kind: Kind, body: Record<string, unknown>) => ({
  apiVersion: API_GROUP_VERSION,
  kind,
  metadata: kind === "IPVSNode" ? { name: "worker-1" } : { name: "web", namespace: "edge" },
  ...(kind === "IPVSNode" ? { status: body } : { spec: body }),
});

const examples = (): unknown[] => {
  const dir = new URL("../../examples/", import.meta.url);
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((f) => loadAll(readFileSync(new URL(f, dir), "utf8")));
};

const BASES: [Kind, unknown][] = [
  ...CORPUS.map((c) => [c.kind, wrap(c.kind, c.body)] as [Kind, unknown]),
  ...examples()
    .filter(
      (o): o is { kind: Kind } =>
        typeof o === "object" && o !== null && (o as { kind: string }).kind in SCHEMAS,
    )
    .map((o) => [o.kind, o] as [Kind, unknown]),
];

describe("compiled validation = runtime validation", () => {
  it("compiles every schema (none is handed back to the runtime parser)", () => {
    for (const schema of Object.values(SCHEMAS)) expect(compiledOf(schema as z.ZodType)).not.toBe(schema);
  });

  it("agrees on the corpus and the examples", () => {
    let valid = 0;
    for (const [kind, obj] of BASES) if (expectSameParse(kind, obj)) valid++;
    expect(valid).toBeGreaterThan(50);
  });

  it("agrees on damaged objects", () => {
    const value = fc.oneof(
      fc.anything({ maxDepth: 2, withNullPrototype: true, withObjectString: true }),
      fc.constantFrom(
        null,
        undefined,
        -0,
        0,
        1,
        65535,
        65536,
        4294967295,
        4294967296,
        1.5,
        Number.NaN,
        Number.POSITIVE_INFINITY,
        2 ** 53,
        "",
        "x".repeat(300),
        "192.0.2.1",
        "::ffff:1.2.3.4",
        "fe80::1%eth0",
        "NAT",
        "Tunnel",
        "TCP",
        "web",
        [],
        {},
        true,
        false,
      ),
    );
    /** A copy of `base` with `value` at `path` (a path through objects and arrays; missing steps are made). */
    const put = (base: unknown, path: string[], v: unknown, remove: boolean): unknown => {
      if (path.length === 0) return v;
      const [head, ...rest] = path as [string, ...string[]];
      const node: Record<string, unknown> =
        typeof base === "object" && base !== null ? { ...(base as Record<string, unknown>) } : {};
      if (remove && rest.length === 0) delete node[head];
      else node[head] = put(node[head], rest, v, remove);
      return node;
    };
    const KEYS = [
      "spec",
      "status",
      "metadata",
      "name",
      "namespace",
      "labels",
      "address",
      "port",
      "weight",
      "enabled",
      "forwarding",
      "method",
      "tunnel",
      "type",
      "healthCheck",
      "persistence",
      "netmask",
      "backends",
      "serviceRef",
      "drain",
      "timeoutSeconds",
      "upperThreshold",
      "lowerThreshold",
      "virtualServiceRef",
      "sorryServer",
      "conditions",
      "unknownField",
      "__proto__",
    ];
    let valid = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: BASES.length - 1 }),
        fc.array(
          fc.record({
            path: fc.array(fc.constantFrom(...KEYS), { minLength: 1, maxLength: 4 }),
            value,
            remove: fc.boolean(),
          }),
          { minLength: 1, maxLength: 3 },
        ),
        (i, edits) => {
          const [kind, base] = BASES[i]!;
          let obj = base;
          for (const e of edits) obj = put(obj, e.path, e.value, e.remove);
          if (expectSameParse(kind, obj)) valid++;
          // The same object as JSON.parse makes it (an own "__proto__" key, no undefined).
          const text = JSON.stringify(obj);
          if (text !== undefined) expectSameParse(kind, JSON.parse(text));
        },
      ),
      { numRuns: 3000 },
    );
    // Enough of them still valid that the values, not only the verdicts, are compared.
    expect(valid).toBeGreaterThan(100);
    expect(commonObjects.RealServer).toBeGreaterThan(50);
    expect(commonObjects.VirtualService).toBeGreaterThan(50);
  });
});

describe("objects of the common shape (parsed without zod) = runtime validation", () => {
  /** Mostly `good`, sometimes something else. */
  const mostly = <T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<unknown>) =>
    fc.oneof({ arbitrary: good, weight: 20 }, { arbitrary: bad, weight: 1 });
  const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 });
  const odd = fc.oneof(
    fc.constantFrom(
      -1,
      65536,
      65535 + 1,
      4294967296,
      1.5,
      Number.NaN,
      2 ** 53,
      "",
      "x".repeat(254),
      "\u{1F600}",
    ),
    fc.constantFrom(true, null, undefined, {}, [], "80", "Web", "-a", "01.2.3.4", "::ffff:1.2.3.4"),
    fc.string({ maxLength: 6 }),
  );
  const int = (max: number) =>
    fc.oneof(fc.constantFrom(0, 1, max, -0), fc.integer({ min: 0, max: Math.min(max, 70000) }));
  const dnsName = fc.oneof(
    fc.constantFrom("web", "a", "a.b-c", "x".repeat(253)),
    fc.stringMatching(/^[a-z][a-z0-9-]{0,6}[a-z0-9]$/),
  );
  const address = fc.oneof(
    fc.constantFrom("192.0.2.1", "2001:db8::1", "fe80::1%eth0", "300.1.1.1"),
    fc.ipV4(),
    fc.ipV6(),
  );
  /** Parses the object (or its JSON copy) with zod and without; counts zod's yeses and the other's answers. */
  const compare = (
    kind: "RealServer" | "VirtualService",
    metadata: unknown,
    spec: unknown,
    viaJson: boolean,
    counts: { common: number; accepted: number },
  ) => {
    let obj: unknown = { apiVersion: API_GROUP_VERSION, kind, metadata, spec };
    if (viaJson) obj = JSON.parse(JSON.stringify(obj));
    const runtime = (SCHEMAS[kind] as z.ZodType).safeParse(obj);
    if (runtime.success) counts.accepted++;
    const fast = kind === "RealServer" ? parseCommonRealServer(obj) : parseCommonVirtualService(obj);
    if (fast === undefined) return;
    counts.common++;
    expect(runtime.success).toBe(true);
    expect(sameValue(fast, runtime.data)).toBeUndefined();
  };

  it("agrees on generated RealServers", () => {
    const counts = { common: 0, accepted: 0 };
    fc.assert(
      fc.property(
        fc.record({
          name: mostly(dnsName, odd),
          namespace: maybe(mostly(fc.constantFrom("edge", "ns-1", "x".repeat(63), "x".repeat(64)), odd)),
          extra: maybe(
            fc.dictionary(
              fc.constantFrom("labels", "uid", "resourceVersion", "__proto__"),
              fc.oneof(odd, fc.object()),
            ),
          ),
          ref: mostly(
            fc.record({ name: mostly(dnsName, odd) }),
            fc.oneof(odd, fc.constant({ name: "web", x: 1 })),
          ),
          address: mostly(address, odd),
          port: maybe(mostly(int(65535), odd)),
          weight: maybe(mostly(int(65535), odd)),
          upperThreshold: maybe(mostly(int(4294967295), odd)),
          lowerThreshold: maybe(mostly(fc.constantFrom(0, 0, 0, 0, 0, 1, 5), odd)),
          enabled: maybe(mostly(fc.boolean(), odd)),
          unknown: mostly(fc.constant(undefined), odd),
        }),
        fc.boolean(),
        (r, viaJson) => {
          const spec: Record<string, unknown> = { virtualServiceRef: r.ref, address: r.address };
          for (const k of [
            "port",
            "weight",
            "upperThreshold",
            "lowerThreshold",
            "enabled",
            "unknown",
          ] as const)
            if (r[k] !== undefined) spec[k] = r[k];
          const metadata: Record<string, unknown> = { name: r.name, ...(r.extra ?? {}) };
          if (r.namespace !== undefined) metadata.namespace = r.namespace;
          compare("RealServer", metadata, spec, viaJson, counts);
        },
      ),
      { numRuns: 3000 },
    );
    // Most objects zod accepts are of the common shape here, so the values are compared often.
    expect(counts.common).toBeGreaterThan(counts.accepted / 2);
  });

  it("agrees on generated VirtualServices", () => {
    const enumOf = <T>(...values: T[]) => mostly(fc.constantFrom(...values), odd);
    const counts = { common: 0, accepted: 0 };
    fc.assert(
      fc.property(
        fc.record({
          name: mostly(dnsName, odd),
          namespace: maybe(mostly(fc.constantFrom("edge", "ns-1"), odd)),
          address: mostly(address, odd),
          port: mostly(int(65535), odd),
          protocol: maybe(enumOf("TCP", "UDP", "SCTP")),
          family: maybe(enumOf("IPv4", "IPv6")),
          scheduler: maybe(enumOf("wlc", "rr", "wrr", "mh", "twos")),
          onePacket: maybe(mostly(fc.boolean(), odd)),
          forwarding: maybe(
            mostly(
              fc.oneof(
                fc.record({ method: enumOf("NAT", "DirectRouting", "Tunnel") }),
                fc.constant({}),
                fc.constant({ method: "Tunnel", tunnel: { type: "IPIP" } }),
              ),
              odd,
            ),
          ),
          backends: maybe(
            mostly(
              fc.record(
                {
                  serviceRef: mostly(
                    fc.record({
                      name: mostly(dnsName, odd),
                      port: maybe(mostly(fc.oneof(int(65535), dnsName), odd)),
                    }),
                    odd,
                  ),
                  weight: mostly(int(65535), odd),
                  source: enumOf("EndpointSlice", "Endpoints"),
                },
                { requiredKeys: ["serviceRef"] },
              ),
              odd,
            ),
          ),
          bindAddress: maybe(mostly(fc.boolean(), odd)),
          drain: maybe(
            mostly(fc.record({ timeoutSeconds: mostly(int(86400), odd) }, { requiredKeys: [] }), odd),
          ),
          driftPolicy: maybe(enumOf("Repair", "Report")),
          unknown: mostly(fc.constant(undefined), odd),
        }),
        fc.boolean(),
        (r, viaJson) => {
          const spec: Record<string, unknown> = {};
          for (const [k, v] of Object.entries(r))
            if (k !== "name" && k !== "namespace" && v !== undefined) spec[k] = v;
          const metadata: Record<string, unknown> = { name: r.name };
          if (r.namespace !== undefined) metadata.namespace = r.namespace;
          compare("VirtualService", metadata, spec, viaJson, counts);
        },
      ),
      { numRuns: 3000 },
    );
    expect(counts.common).toBeGreaterThan(counts.accepted / 2);
  });
});
