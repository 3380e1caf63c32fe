/**
 * Bad input at volume (issue 11, item 3): every invalid VirtualService and RealServer of the API corpus
 * (test/api/corpus.ts: one or more cases per field and rule, each with the path the API server names),
 * copied across ten tenants until there are thousands, mixed with a thousand valid VirtualServices
 * that each have a real server. computeDesired reports every invalid object with that field path and
 * programs none of them; every valid one is programmed with its real server; nothing throws. The real
 * API server rejects the same corpus at the same paths (e2e/control-plane/crds.cp.test.ts); this is the
 * agent's side, for objects that reach it anyway (a directory of manifests, a CRD without validation).
 */
import { describe, expect, it } from "vitest";
import { computeDesired } from "../../src/model/desired.ts";
import { EMPTY_SNAPSHOT } from "../../src/model/snapshot.ts";
import { CORPUS } from "../api/corpus.ts";

const TENANTS = 10;
const VALID = 1_000;
const TARGET_INVALID = Number(process.env.INVALID_OBJECTS ?? 5_000);

const object = (kind: string, namespace: string, name: string, spec: Record<string, unknown>) => ({
  apiVersion: "ipvs.dev/v1alpha1",
  kind,
  metadata: { namespace, name, uid: `${namespace}-${name}`, creationTimestamp: "2026-12-01T00:00:00Z" },
  spec,
});

describe("thousands of invalid objects among valid ones", () => {
  it("reports each invalid object at its field path, programs none of them and every valid one", () => {
    const invalidCases = CORPUS.filter(
      (c) => c.invalidAt !== undefined && c.old === undefined && c.kind !== "IPVSNode",
    );
    const copies = Math.ceil(TARGET_INVALID / invalidCases.length);
    const invalid: { kind: string; namespace: string; name: string; at: string }[] = [];
    const virtualServices: unknown[] = [];
    const realServers: unknown[] = [];
    for (let t = 0; t < TENANTS; t++) {
      // The VirtualService the corpus's RealServers refer to ("web"), valid, in every tenant.
      virtualServices.push(
        object("VirtualService", `tenant-${t}`, "web", { address: `10.2.${t}.1`, port: 80 }),
      );
    }
    for (let copy = 0; copy < copies; copy++) {
      invalidCases.forEach((c, i) => {
        const namespace = `tenant-${copy % TENANTS}`;
        const name = `bad-${i}-${copy}`;
        invalid.push({ kind: c.kind, namespace, name, at: c.invalidAt! });
        (c.kind === "VirtualService" ? virtualServices : realServers).push(
          object(c.kind, namespace, name, c.body),
        );
      });
    }
    for (let i = 0; i < VALID; i++) {
      const namespace = `tenant-${i % TENANTS}`;
      const address = `10.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;
      virtualServices.push(object("VirtualService", namespace, `ok-${i}`, { address, port: 80 }));
      realServers.push(
        object("RealServer", namespace, `ok-${i}-a`, {
          virtualServiceRef: { name: `ok-${i}` },
          address: `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`,
          port: 8080,
        }),
      );
    }
    const started = performance.now();
    const { table, problems } = computeDesired(
      { ...EMPTY_SNAPSHOT, virtualServices, realServers },
      { name: "n1", labels: {} },
    );
    const ms = performance.now() - started;

    const fieldsOf = new Map<string, Set<string>>();
    for (const p of problems) {
      const key = `${p.object.kind} ${p.object.namespace}/${p.object.name}`;
      if (!fieldsOf.has(key)) fieldsOf.set(key, new Set());
      fieldsOf.get(key)!.add(p.field ?? "");
    }
    const missed = invalid.filter((o) => !fieldsOf.get(`${o.kind} ${o.namespace}/${o.name}`)?.has(o.at));
    expect(
      missed
        .slice(0, 5)
        .map(
          (o) =>
            `${o.kind} ${o.name} at ${o.at}: ${[...(fieldsOf.get(`${o.kind} ${o.namespace}/${o.name}`) ?? [])]}`,
        ),
    ).toEqual([]);

    const programmed = new Set(table.map((e) => `${e.service.source.namespace}/${e.service.source.name}`));
    const programmedBad = invalid.filter(
      (o) => o.kind === "VirtualService" && programmed.has(`${o.namespace}/${o.name}`),
    );
    expect(programmedBad).toEqual([]);
    for (let i = 0; i < VALID; i++) {
      const entry = table.find((e) => e.service.source.name === `ok-${i}`);
      expect(entry?.destinations.map((d) => d.source.name)).toEqual([`ok-${i}-a`]);
    }
    // No invalid RealServer reached a table entry either.
    const badRealServers = new Set(invalid.filter((o) => o.kind === "RealServer").map((o) => o.name));
    expect(table.flatMap((e) => e.destinations).filter((d) => badRealServers.has(d.source.name))).toEqual([]);

    const byKind = (kind: string) => invalid.filter((o) => o.kind === kind).length;
    console.log(
      `[invalid input] ${invalid.length} invalid objects (${byKind("VirtualService")} VirtualServices, ${byKind("RealServer")} RealServers; ${invalidCases.length} corpus cases over ${new Set(invalidCases.map((c) => c.invalidAt)).size} field paths) among ${VALID} valid VirtualServices: each reported at its path, none programmed, all ${VALID} valid ones programmed; computeDesired ${ms.toFixed(0)} ms`,
    );
  }, 60_000);
});
