/** Helpers shared by the real-kernel tests (they run inside the test-bed VM only). */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sortTable } from "../../../src/vocabulary/order.ts";
import type { IpvsTable, KernelTable } from "../../../src/vocabulary/table.ts";

/** Runs ipvsadm with the given arguments (and stdin), returning stdout; throws with stderr on failure. */
export function ipvsadm(args: string[], input?: string): string {
  return execFileSync("ipvsadm", args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

/** A kernel table without counters and statistics, in canonical order, for whole-table comparison. */
export function plainTable(table: KernelTable | IpvsTable): IpvsTable {
  return sortTable(
    table.map((entry) => ({
      service: { key: entry.service.key, config: entry.service.config },
      destinations: entry.destinations.map((d) => ({ key: d.key, config: d.config })),
    })),
  );
}

/** A fresh folder under /tmp (tmpfs in the VM). */
export function scratch(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeManifest(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}
