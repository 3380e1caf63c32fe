/**
 * The node lock across processes: a holder that was SIGKILLed (no release, the lock directory left
 * behind) is taken over within seconds by a waiter of the same boot and pid namespace, while a holder
 * that still runs keeps the lock for as long as it refreshes it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FileNodeLock, NodeLockBusyError } from "../../src/reconcile/node-lock.ts";

const MODULE = resolve(import.meta.dirname, "../../src/reconcile/node-lock.ts");

/** Another process that takes the lock on `path`, says "held" and keeps it until killed. */
async function holderProcess(path: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `import { FileNodeLock } from ${JSON.stringify(MODULE)};
       await new FileNodeLock(${JSON.stringify(path)}, { holder: "other" }).acquire();
       console.log("held");
       setInterval(() => {}, 1000);`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  await new Promise<void>((done, fail) => {
    child.stdout!.once("data", () => done());
    child.once("exit", (code) => fail(new Error(`the holder exited (${code})`)));
  });
  return child;
}

describe("FileNodeLock across processes", () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) c.kill("SIGKILL");
  });

  it("takes over from a SIGKILLed holder in seconds, not after staleMs", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "lock-")), "journal.json");
    const holder = await holderProcess(path);
    children.push(holder);
    const exited = new Promise((r) => holder.once("exit", r));
    holder.kill("SIGKILL");
    await exited;
    const started = Date.now();
    const release = await new FileNodeLock(path, {
      holder: "apply",
      waitMs: 20_000,
      staleMs: 30_000,
    }).acquire();
    const waited = Date.now() - started;
    await release();
    expect(waited).toBeLessThan(15_000); // staleMs is 30 s: only the dead-holder rule lets it in sooner
  }, 30_000);

  it("waits for a holder that still runs, and names it", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "lock-")), "journal.json");
    children.push(await holderProcess(path));
    const busy = await new FileNodeLock(path, { holder: "apply", waitMs: 4_000, staleMs: 30_000 })
      .acquire()
      .catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(NodeLockBusyError);
    expect((busy as Error).message).toMatch(/being changed by other \(pid \d+ on .*\) since [^\n{]*held for/);
  }, 30_000);
});
