/**
 * The ownership journal: the node-local record of every IPVS service the agent programmed, of the
 * VirtualService each was programmed for, and of the drains in progress. It is written BEFORE the kernel
 * is changed, so a crash between the two can only make the agent own a service it did not create yet
 * (harmless: it is desired), never forget one it did.
 *
 * What keeps it from going stale (the reconciler applies these rules, see reconciler.ts):
 * - it records the kernel's boot id; entries written in another boot own nothing (the kernel table
 *   was empty at boot, so any service now at such a key was made by someone else);
 * - after every full dump it keeps only keys that are in the kernel or being added now, so an
 *   out-of-band `ipvsadm -D`/`-C` ends the claim;
 * - it is written only when it changes, and only under the node lock (node-lock.ts).
 *
 * JournalStore is the I/O edge; the file implementation writes atomically (temp file, fsync, rename).
 */
import { randomUUID } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { type DrainEntry, drainKey } from "../model/drain.ts";

export interface Journal {
  /** The kernel boot the entries belong to; undefined for a journal written before boot ids were kept. */
  bootId?: string | undefined;
  /** serviceKeyString() of every service the agent programmed and has not deleted. */
  services: string[];
  /** serviceKeyString() -> "namespace/name" of the VirtualService the service was last programmed for. */
  owners: Record<string, string>;
  drains: DrainEntry[];
}

export interface JournalStore {
  load(): Promise<Journal>;
  save(journal: Journal): Promise<void>;
  /** Changes whenever the stored journal changes (another writer included); cheap (a stat). */
  fingerprint(): Promise<string>;
  /** Removes temporary files a crashed writer left behind (call with the node lock held). */
  cleanTemporaryFiles(): Promise<number>;
}

export function emptyJournal(bootId?: string): Journal {
  return { ...(bootId === undefined ? {} : { bootId }), services: [], owners: {}, drains: [] };
}

/** The same journal, in the form it is stored (sorted, unique): equal journals compare equal. */
export function normalizeJournal(journal: Journal): Journal {
  const services = [...new Set(journal.services)].sort();
  const kept = new Set(services);
  const owners: Record<string, string> = {};
  for (const key of Object.keys(journal.owners).sort()) {
    if (kept.has(key)) owners[key] = journal.owners[key]!;
  }
  const order = (d: DrainEntry) => drainKey(d.service, d.destination);
  const drains = [...journal.drains].sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
  return { ...(journal.bootId === undefined ? {} : { bootId: journal.bootId }), services, owners, drains };
}

/** Whether two journals store the same (compared as sets: no sorting, no serialization of the services). */
export function sameJournal(a: Journal, b: Journal): boolean {
  if (a.bootId !== b.bootId) return false;
  const as = new Set(a.services);
  const bs = new Set(b.services);
  if (as.size !== bs.size) return false;
  for (const k of as) if (!bs.has(k) || a.owners[k] !== b.owners[k]) return false;
  const ad = new Set(a.drains.map(drainText));
  const bd = new Set(b.drains.map(drainText));
  if (ad.size !== bd.size) return false;
  for (const d of ad) if (!bd.has(d)) return false;
  return true;
}

const drainText = (d: DrainEntry) =>
  JSON.stringify([d.service, d.destination, d.startedAt, d.timeoutSeconds]);

/** A journal kept in memory (tests, dry runs). */
export class MemoryJournalStore implements JournalStore {
  private journal: Journal;
  private version = 0;
  /** How many times save() was called (tests assert that unchanged journals are not rewritten). */
  saves = 0;
  constructor(initial: Journal = emptyJournal()) {
    this.journal = structuredClone(initial);
  }
  async load(): Promise<Journal> {
    return structuredClone(this.journal);
  }
  async save(journal: Journal): Promise<void> {
    this.journal = structuredClone(normalizeJournal(journal));
    this.version++;
    this.saves++;
  }
  async fingerprint(): Promise<string> {
    return String(this.version);
  }
  async cleanTemporaryFiles(): Promise<number> {
    return 0;
  }
}

export class JournalFormatError extends Error {
  override readonly name = "JournalFormatError";
}

const TEMP_INFIX = ".tmp-";

/** A journal in a JSON file (the DaemonSet puts it on a hostPath so it survives restarts). */
export class FileJournalStore implements JournalStore {
  readonly path: string;
  constructor(path: string) {
    this.path = path;
  }

  async load(): Promise<Journal> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return emptyJournal();
      throw error;
    }
    return parseJournal(text, this.path);
  }

  async save(journal: Journal): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    // A unique temp name (pids repeat across containers), flushed to disk before it replaces the journal.
    const temp = `${this.path}${TEMP_INFIX}${process.pid}-${randomUUID()}`;
    const body = { version: 2, ...normalizeJournal(journal) };
    const handle = await open(temp, "w", 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(body, null, 2)}\n`, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, this.path);
  }

  async fingerprint(): Promise<string> {
    try {
      const s = await stat(this.path, { bigint: true });
      return `${s.ino}:${s.size}:${s.mtimeNs}`;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return "absent";
      throw error;
    }
  }

  async cleanTemporaryFiles(): Promise<number> {
    const prefix = `${basename(this.path)}${TEMP_INFIX}`;
    let names: string[];
    try {
      names = await readdir(dirname(this.path));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
      throw error;
    }
    const stale = names.filter((n) => n.startsWith(prefix));
    await Promise.all(stale.map((n) => unlink(join(dirname(this.path), n)).catch(() => undefined)));
    return stale.length;
  }
}

export function parseJournal(text: string, origin: string): Journal {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new JournalFormatError(`${origin}: not JSON: ${(error as Error).message}`);
  }
  const v = value as {
    version?: unknown;
    bootId?: unknown;
    services?: unknown;
    owners?: unknown;
    drains?: unknown;
  };
  const known = v?.version === 1 || v?.version === 2;
  if (!known || !Array.isArray(v.services) || !Array.isArray(v.drains)) {
    throw new JournalFormatError(
      `${origin}: not an ipvs-operator journal (version 1 or 2 with services and drains)`,
    );
  }
  const badService = v.services.findIndex((entry) => typeof entry !== "string");
  if (badService >= 0) throw new JournalFormatError(`${origin}: services[${badService}] is not a string`);
  const badDrain = v.drains.findIndex((d) => !isDrainEntry(d));
  if (badDrain >= 0) {
    throw new JournalFormatError(
      `${origin}: drains[${badDrain}] is not {service, destination, startedAt, timeoutSeconds}`,
    );
  }
  if (v.version === 2) {
    if (typeof v.bootId !== "string") throw new JournalFormatError(`${origin}: bootId is not a string`);
    const owners = v.owners ?? {};
    const ok =
      typeof owners === "object" &&
      owners !== null &&
      !Array.isArray(owners) &&
      Object.values(owners).every((o) => typeof o === "string");
    if (!ok) throw new JournalFormatError(`${origin}: owners is not a map of service key to namespace/name`);
  }
  return {
    ...(typeof v.bootId === "string" ? { bootId: v.bootId } : {}),
    services: v.services as string[],
    owners: (v.owners as Record<string, string> | undefined) ?? {},
    drains: v.drains as DrainEntry[],
  };
}

function isDrainEntry(d: unknown): d is DrainEntry {
  const e = d as DrainEntry;
  return (
    typeof d === "object" &&
    d !== null &&
    typeof e.service === "string" &&
    typeof e.destination === "string" &&
    Number.isFinite(e.startedAt) &&
    Number.isFinite(e.timeoutSeconds)
  );
}
