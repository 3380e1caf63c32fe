/**
 * SysctlStore: read and write kernel parameters by their dotted name. ProcSysctlStore reads the
 * files under /proc/sys (or any folder laid out the same way, for tests); FakeSysctlStore keeps
 * them in memory with the errors /proc/sys gives (a missing key, a read-only one).
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { RtErrnoName } from "./rt-link.ts";

export interface SysctlStore {
  /** The value as the kernel prints it (trimmed); undefined when the key does not exist (module not loaded). */
  read(key: string): Promise<string | undefined>;
  /** Throws SysctlError (ENOENT for a missing key, EACCES/EROFS/EINVAL as the kernel says). */
  write(key: string, value: string): Promise<void>;
}

export class SysctlError extends Error {
  override readonly name = "SysctlError";
  readonly operation: "read" | "write";
  readonly key: string;
  readonly errno: RtErrnoName | "EROFS";
  constructor(operation: "read" | "write", key: string, errno: RtErrnoName | "EROFS", detail?: string) {
    super(`${operation} sysctl ${key} failed: ${errno}${detail ? ` (${detail})` : ""}`);
    this.operation = operation;
    this.key = key;
    this.errno = errno;
  }
}

/** "net.ipv4.ip_forward" -> "net/ipv4/ip_forward"; a key already in slash form stays as it is. */
export function sysctlPath(key: string): string {
  if (!/^[A-Za-z0-9_./-]+$/.test(key) || key.split(/[./]/).some((p) => p === "" || p === "..")) {
    throw new SysctlError("read", key, "EINVAL", "not a sysctl name");
  }
  return key.includes("/") ? key : key.replaceAll(".", "/");
}

/** Whitespace-insensitive form (multi-value sysctls print tabs): "4096\t87380" -> "4096 87380". */
export function normalizeSysctlValue(value: string): string {
  return value.trim().split(/\s+/).join(" ");
}

function errnoOf(e: unknown): string {
  return typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : "EIO";
}

export class ProcSysctlStore implements SysctlStore {
  readonly #root: string;
  constructor(root = "/proc/sys") {
    this.#root = root;
  }

  async read(key: string): Promise<string | undefined> {
    try {
      return normalizeSysctlValue(await readFile(join(this.#root, sysctlPath(key)), "utf8"));
    } catch (e) {
      if (e instanceof SysctlError) throw e;
      if (errnoOf(e) === "ENOENT") return undefined;
      throw new SysctlError("read", key, errnoOf(e) as RtErrnoName);
    }
  }

  async write(key: string, value: string): Promise<void> {
    try {
      // No O_CREAT: a missing key must fail (ENOENT), never become a file (that matters for a temp-dir root).
      await writeFile(join(this.#root, sysctlPath(key)), `${value}\n`, { flag: "r+" });
    } catch (e) {
      if (e instanceof SysctlError) throw new SysctlError("write", key, e.errno);
      throw new SysctlError("write", key, errnoOf(e) as RtErrnoName);
    }
  }
}

export class FakeSysctlStore implements SysctlStore {
  readonly #values = new Map<string, string>();
  readonly #readOnly = new Set<string>();
  /** Writes made, in order (for assertions). */
  readonly writes: { key: string; value: string }[] = [];

  constructor(initial: Record<string, string> = {}) {
    for (const [k, v] of Object.entries(initial)) this.#values.set(k, normalizeSysctlValue(v));
  }

  /** Someone else changes a value (`sysctl -w`), or a module load makes a key appear. */
  set(key: string, value: string): void {
    this.#values.set(key, normalizeSysctlValue(value));
  }

  /** A module unload makes a key disappear. */
  remove(key: string): void {
    this.#values.delete(key);
  }

  /** Writes to this key fail with EACCES (a container without the right to write it). */
  makeReadOnly(key: string): void {
    this.#readOnly.add(key);
  }

  async read(key: string): Promise<string | undefined> {
    sysctlPath(key);
    return this.#values.get(key);
  }

  async write(key: string, value: string): Promise<void> {
    sysctlPath(key);
    if (!this.#values.has(key)) throw new SysctlError("write", key, "ENOENT");
    if (this.#readOnly.has(key)) throw new SysctlError("write", key, "EACCES");
    if (!/^[0-9 \t-]+$/.test(value.trim())) throw new SysctlError("write", key, "EINVAL");
    this.writes.push({ key, value });
    this.#values.set(key, normalizeSysctlValue(value));
  }
}
