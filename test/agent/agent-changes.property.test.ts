/**
 * Property: an agent that syncs EndpointSlice changes the short way (only the VirtualServices that read
 * the changed slices) programs, after every step, exactly the table a whole computeDesired + sync of
 * the same objects gives — for any sequence of slice changes (endpoints added, removed, turned not
 * ready), VirtualService edits, conflicts between two VirtualServices, and malformed slices.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Agent, type AgentSyncReport } from "../../src/agent/agent.ts";
import { resolveAgentConfig } from "../../src/agent/config.ts";
import { FakeIpvsKernel } from "../../src/kernel/fake-kernel.ts";
import { readKernelTable } from "../../src/kernel/read-kernel-table.ts";
import { computeDesired } from "../../src/model/desired.ts";
import { renderIpvsadmSave } from "../../src/model/ipvsadm-render.ts";
import type { Snapshot } from "../../src/model/snapshot.ts";
import { createRootLogger } from "../../src/observability/logger.ts";
import { MemoryJournalStore } from "../../src/reconcile/ownership-journal.ts";
import { Reconciler } from "../../src/reconcile/reconciler.ts";
import type { SnapshotSource, SourceChange, SourceState } from "../../src/sources/snapshot-source.ts";

const SERVICES = 3;
const POOL = 4;
const NODE = { name: "n1", labels: {} };

/** A source with the change tracking of KubernetesSource, over objects the test edits. */
class EditableSource implements SnapshotSource {
  readonly #listeners: ((change?: SourceChange) => void)[] = [];
  objects: Snapshot = {
    virtualServices: [],
    realServers: [],
    services: [],
    endpointSlices: [],
    endpoints: [],
  };
  synced = false;
  async start() {
    this.synced = true;
  }
  async stop() {}
  current(): SourceState {
    return { snapshot: this.objects, node: NODE, incomplete: [] };
  }
  onChange(listener: (change?: SourceChange) => void) {
    this.#listeners.push(listener);
  }
  readonly changes = {
    endpointSlicesOf: (service: string) =>
      this.objects.endpointSlices.filter(
        (s) => `${s.metadata?.namespace}/${s.metadata?.labels?.["kubernetes.io/service-name"]}` === service,
      ),
    incomplete: () => [],
  };
  emit(change?: SourceChange) {
    for (const l of this.#listeners) l(change);
  }
}

const virtualService = (i: number, address: number, scheduler: string) => ({
  apiVersion: "ipvs.dev/v1alpha1",
  kind: "VirtualService",
  metadata: { namespace: "t", name: `vs-${i}`, creationTimestamp: `2026-01-01T00:00:0${i}Z` },
  spec: {
    address: `192.0.2.${address + 1}`,
    port: 80,
    scheduler,
    forwarding: { method: "NAT" },
    backends: { serviceRef: { name: `svc-${i}`, port: "http" } },
  },
});

const service = (i: number) => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { namespace: "t", name: `svc-${i}` },
  spec: { ports: [{ name: "http", port: 80, protocol: "TCP" }] },
});

const slice = (i: number, endpoints: { at: number; ready: boolean }[], malformed: boolean) => ({
  apiVersion: "discovery.k8s.io/v1",
  kind: "EndpointSlice",
  metadata: { namespace: "t", name: `svc-${i}-a`, labels: { "kubernetes.io/service-name": `svc-${i}` } },
  addressType: "IPv4",
  ports: [{ name: "http", port: 8080, protocol: "TCP" }],
  endpoints: [
    ...endpoints.map((e) => ({ addresses: [`10.1.${i}.${e.at + 1}`], conditions: { ready: e.ready } })),
    ...(malformed ? [{ addresses: ["10.1.999.1"], conditions: { ready: true } }] : []),
  ],
});

type Step =
  | { kind: "slice"; service: number; endpoints: { at: number; ready: boolean }[]; malformed: boolean }
  | { kind: "scheduler"; vs: number; scheduler: string }
  | { kind: "address"; vs: number; address: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("slice" as const),
      service: fc.integer({ min: 0, max: SERVICES - 1 }),
      endpoints: fc.uniqueArray(
        fc.record({ at: fc.integer({ min: 0, max: POOL - 1 }), ready: fc.boolean() }),
        {
          selector: (e) => e.at,
          maxLength: POOL,
        },
      ),
      malformed: fc.boolean().map((b) => b && Math.random() < 0.2),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("scheduler" as const),
      vs: fc.integer({ min: 0, max: SERVICES - 1 }),
      scheduler: fc.constantFrom("rr", "wrr"),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("address" as const),
      vs: fc.integer({ min: 0, max: SERVICES - 1 }),
      address: fc.integer({ min: 0, max: SERVICES - 1 }), // another VirtualService's address: a conflict
    }),
  },
);

describe("the agent's short way for EndpointSlice changes", () => {
  it("programs what a whole sync of the same objects programs, after every step", async () => {
    let short = 0;
    let syncs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 10 }), async (steps) => {
        const source = new EditableSource();
        const schedulers = Array.from({ length: SERVICES }, () => "rr");
        const addresses = Array.from({ length: SERVICES }, (_, i) => i);
        const slices = Array.from({ length: SERVICES }, (_, i) => slice(i, [{ at: 0, ready: true }], false));
        const objects = (): Snapshot => ({
          virtualServices: addresses.map((a, i) => virtualService(i, a, schedulers[i]!)),
          realServers: [],
          services: Array.from({ length: SERVICES }, (_, i) => service(i)),
          endpointSlices: [...slices],
          endpoints: [],
        });
        source.objects = objects();
        const kernel = new FakeIpvsKernel();
        kernel.close = async () => {};
        const waiters: ((r: AgentSyncReport) => void)[] = [];
        const agent = new Agent(
          resolveAgentConfig(
            {
              stateFile: join(mkdtempSync(join(tmpdir(), "agent-changes-")), "journal.json"),
              minSyncInterval: "0",
              resyncInterval: "10m",
              httpAddress: "",
            },
            { NODE_NAME: NODE.name },
          ),
          {
            kernel,
            source,
            bootId: "boot",
            logger: createRootLogger({ level: "silent" }),
            onSync: (r) => {
              syncs++;
              if (r.scope === "changes") short++;
              waiters.shift()?.(r);
            },
          },
        );
        const reference = new FakeIpvsKernel();
        const whole = new Reconciler({
          kernel: reference,
          journal: new MemoryJournalStore(),
          scope: { managedCidrs: [], managedFwmarks: [] },
          bootId: "boot",
        });
        const nextSync = () => new Promise<AgentSyncReport>((resolve) => waiters.push(resolve));
        try {
          let synced = nextSync();
          await agent.start();
          await synced;
          for (const s of steps) {
            let change: SourceChange | undefined;
            if (s.kind === "slice") {
              slices[s.service] = slice(s.service, s.endpoints, s.malformed);
              change = { kind: "EndpointSlices", service: `t/svc-${s.service}` };
            } else if (s.kind === "scheduler") {
              schedulers[s.vs] = s.scheduler;
            } else {
              addresses[s.vs] = s.address;
            }
            source.objects = objects();
            synced = nextSync();
            source.emit(change);
            await synced;
            const desired = computeDesired(source.objects, NODE).table;
            expect((await whole.sync({ desired, now: Date.now() })).ok).toBe(true);
            expect(renderIpvsadmSave(await readKernelTable(kernel))).toBe(
              renderIpvsadmSave(await readKernelTable(reference)),
            );
          }
        } finally {
          await agent.stop();
        }
      }),
      { numRuns: 40 },
    );
    // The short way really ran (the property compares two different paths), and not always.
    expect(short).toBeGreaterThan(syncs / 10);
    expect(short).toBeLessThan(syncs);
    process.stdout.write(`agent short way: ${short} of ${syncs} syncs\n`);
  }, 120_000);
});
