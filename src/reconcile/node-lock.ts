/**
 * The node lock: one writer of the IPVS table and the ownership journal at a time, shared by the agent
 * and the CLI (`apply`, `flush --owned`) on one node. A second writer waits up to its timeout, then fails
 * with a message naming the holder.
 *
 * proper-lockfile makes `<state file>.lock` (a directory: mkdir is atomic) and refreshes its mtime while
 * held; a lock not refreshed for `staleMs` is taken over (its holder died). It works across pid
 * namespaces (agent in a container, CLI on the host) because it relies on the file system only. Beside
 * the lock directory an info file names the holder for the error message.
 *
 * The info file also says who the holder is to the kernel (boot id, pid namespace, pid and the pid's start
 * time). A waiter that shares the boot and the pid namespace and finds that process gone (a SIGKILLed
 * `apply`, an agent killed by the OOM killer) takes the lock over after 2 s instead of `staleMs`; across
 * pid namespaces (the agent in a container, the CLI on the host) only the mtime decides.
 */

import { mkdir, readFile, readlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname } from "node:path";
import lockfile from "proper-lockfile";
import { readBootId } from "./boot-id.ts";

export interface NodeLock {
  /** Waits for the lock (up to the timeout) and returns its release; throws NodeLockBusyError when it stays held. */
  acquire(signal?: AbortSignal): Promise<() => Promise<void>>;
}

export class NodeLockBusyError extends Error {
  override readonly name = "NodeLockBusyError";
}

export interface FileNodeLockOptions {
  /** How long acquire() waits for another writer, in ms (default 30 s; 0 = fail at once). */
  waitMs?: number;
  /** A lock not refreshed for this long belongs to a dead writer (default 30 s). */
  staleMs?: number;
  /** Who we are, for the other writer's message ("apply", "agent"). */
  holder?: string;
  /** Called when the lock was lost while held (refresh failed): the holder should stop writing. */
  onCompromised?: (error: Error) => void;
}

export class FileNodeLock implements NodeLock {
  readonly path: string;
  readonly #options: Required<Omit<FileNodeLockOptions, "onCompromised">> &
    Pick<FileNodeLockOptions, "onCompromised">;

  /** `path`: the file the lock protects (the state file); the lock is `${path}.lock`. */
  constructor(path: string, options: FileNodeLockOptions = {}) {
    this.path = path;
    this.#options = {
      waitMs: options.waitMs ?? 30_000,
      staleMs: options.staleMs ?? 30_000,
      holder: options.holder ?? "ipvs-operator",
      onCompromised: options.onCompromised,
    };
  }

  get #infoPath(): string {
    return `${this.path}.lock-holder`;
  }

  async acquire(signal?: AbortSignal): Promise<() => Promise<void>> {
    await mkdir(dirname(this.path), { recursive: true });
    const { waitMs, staleMs } = this.#options;
    const deadline = Date.now() + waitMs;
    for (;;) {
      signal?.throwIfAborted();
      try {
        const holderGone = await this.#holderGone();
        const release = await lockfile.lock(this.path, {
          realpath: false,
          stale: holderGone ? DEAD_HOLDER_STALE_MS : staleMs,
          update: Math.max(1000, Math.floor(staleMs / 3)),
          retries: 0,
          onCompromised: (error) => this.#options.onCompromised?.(error),
        });
        await writeFile(
          this.#infoPath,
          `${this.#options.holder} (pid ${process.pid} on ${hostname()}) since ${new Date().toISOString()}\n` +
            `${JSON.stringify(await processIdentity(process.pid))}\n`,
        ).catch(() => undefined);
        return async () => {
          await release().catch(() => undefined);
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ELOCKED") throw error;
        if (Date.now() >= deadline) {
          const holder = (await readFile(this.#infoPath, "utf8").catch(() => "another writer")).split(
            "\n",
          )[0]!;
          throw new NodeLockBusyError(
            `the node's IPVS table is being changed by ${holder}: lock ${this.path}.lock held for more than ${Math.round(waitMs / 1000)} s ` +
              "(wait and retry; a lock whose holder died is taken over after " +
              `${Math.round(staleMs / 1000)} s, or 2 s when it ran in this pid namespace)`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  /** True when the info file names a process of this boot and pid namespace that no longer runs. */
  async #holderGone(): Promise<boolean> {
    const identity = (await readFile(this.#infoPath, "utf8").catch(() => "")).split("\n")[1];
    if (!identity) return false;
    let recorded: ProcessIdentity;
    try {
      recorded = JSON.parse(identity) as ProcessIdentity;
    } catch {
      return false;
    }
    if (typeof recorded.pid !== "number") return false;
    const [mine, theirs] = await Promise.all([processIdentity(process.pid), processIdentity(recorded.pid)]);
    if (!mine.bootId || mine.bootId !== recorded.bootId || !mine.pidNamespace) return false;
    if (mine.pidNamespace !== recorded.pidNamespace) return false;
    return theirs.startTime === undefined || theirs.startTime !== recorded.startTime;
  }
}

/** How long a lock whose holder is known to be gone is still respected (proper-lockfile's minimum). */
const DEAD_HOLDER_STALE_MS = 2_000;

interface ProcessIdentity {
  bootId?: string;
  pidNamespace?: string;
  pid: number;
  /** Field 22 of /proc/PID/stat (clock ticks after boot): a reused pid has another. */
  startTime?: string;
}

async function processIdentity(pid: number): Promise<ProcessIdentity> {
  const [bootId, pidNamespace, stat] = await Promise.all([
    readBootId().catch(() => undefined),
    readlink("/proc/self/ns/pid").catch(() => undefined),
    readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined),
  ]);
  // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ")".
  const startTime = stat?.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  return {
    pid,
    ...(bootId ? { bootId } : {}),
    ...(pidNamespace ? { pidNamespace } : {}),
    ...(startTime ? { startTime } : {}),
  };
}

/** No lock (tests that run one writer, dry runs). */
export const NO_LOCK: NodeLock = { acquire: async () => async () => undefined };
