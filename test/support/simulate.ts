/**
 * Tables through the contract-checked fake kernel (FakeIpvsKernel, which passes the same suite as the real
 * kernel in test/kernel/contract.ts): the one kernel simulator the model tests use.
 *
 * - kernelFrom(table): a fake kernel holding `table`, connection counters included, that lists it as
 *   given; operations after that change it the kernel's way (a new destination is listed first).
 * - readTable(kernel): what it holds, as a KernelTable without the (all-zero) statistics.
 * - simulate(table, operations): apply operations to a table through kernel.apply(), read it back.
 */
import { FakeIpvsKernel, type FakeIpvsKernelOptions } from "../../src/kernel/fake-kernel.ts";
import type { OperationResult } from "../../src/kernel/ipvs-kernel.ts";
import { readKernelTable } from "../../src/kernel/read-kernel-table.ts";
import type { Operation } from "../../src/vocabulary/operations.ts";
import type { KernelTable } from "../../src/vocabulary/table.ts";

/**
 * A fake kernel holding `table`. It refuses (throws) what the real kernel would refuse: a table that
 * cannot be built is a bug of the test that made it. Destinations are added last to first, so the kernel
 * (newest first, like ip_vs_ctl.c's list_add_rcu) lists them in the order given.
 */
export async function kernelFrom(
  table: KernelTable,
  options: FakeIpvsKernelOptions = {},
): Promise<FakeIpvsKernel> {
  const kernel = new FakeIpvsKernel(options);
  const operations: Operation[] = [];
  for (const { service, destinations } of table) {
    operations.push({ op: "addService", service: { key: service.key, config: service.config } });
    for (const d of [...destinations].reverse()) {
      operations.push({
        op: "addDestination",
        service: service.key,
        destination: { key: d.key, config: d.config },
      });
    }
  }
  const refused = failures(operations, await kernel.apply(operations));
  if (refused.length > 0) throw new Error(`kernelFrom: the kernel refuses the table:\n${refused.join("\n")}`);
  for (const { service, destinations } of table) {
    for (const d of destinations) {
      kernel.setConnections(service.key, d.key, {
        active: d.activeConnections,
        inactive: d.inactiveConnections,
        persistent: d.persistentConnections,
      });
    }
  }
  return kernel;
}

/** The kernel's table in its own order: keys, configs and connection counters, no statistics. */
export async function readTable(kernel: FakeIpvsKernel): Promise<KernelTable> {
  return (await readKernelTable(kernel)).map(({ service, destinations }) => ({
    service: { key: service.key, config: service.config },
    destinations: destinations.map(({ stats: _, ...d }) => d),
  }));
}

/** `operations` applied to `table` (which is not changed), one result per operation, as kernel.apply() gives them. */
export async function simulate(
  table: KernelTable,
  operations: readonly Operation[],
): Promise<{ table: KernelTable; results: OperationResult[] }> {
  const kernel = await kernelFrom(table);
  const results = await kernel.apply(operations);
  return { table: await readTable(kernel), results };
}

/** One line per failed operation: the operation and the kernel's error. */
export function failures(operations: readonly Operation[], results: readonly OperationResult[]): string[] {
  return results.flatMap((r, i) => (r.ok ? [] : [`${JSON.stringify(operations[i])}: ${r.error.message}`]));
}
