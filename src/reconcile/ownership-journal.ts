/**
 * The ownership journal: the node-local record of every IPVS service the agent programmed and of the
 * drains in progress. It is written BEFORE the kernel is changed, so a crash between the two can only
 * make the agent own a service it did not create yet (harmless: it is desired), never forget one it did.
 *
 * JournalStore is the I/O edge; the file implementation writes atomically (temp file + rename).
 */
import { randomUUID } from "node:crypto";
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { dirname } from "node:path";
import type { DrainEntry } from "../model/drain.ts";

export interface Journal {
  /** serviceKeyString() of every service the agent programmed and has not deleted. */
  services: string[];
  drains: DrainEntry[];
}

export interface JournalStore {
  load(): Promise<Journal>;
  save(journal: Journal): Promise<void>;
}

export const EMPTY_JOURNAL: Journal = Object.freeze({ services: [], drains: [] }) as Journal;

/** A journal kept in memory (tests, dry runs, `apply` without --state-file). */
export class MemoryJournalStore implements JournalStore {
  private journal: Journal;
  constructor(initial: Journal = EMPTY_JOURNAL) {
    this.journal = structuredClone(initial);
  }
  async load(): Promise<Journal> {
    return structuredClone(this.journal);
  }
  async save(journal: Journal): Promise<void> {
    this.journal = structuredClone(journal);
  }
}

export class JournalFormatError extends Error {
  override readonly name = "JournalFormatError";
}

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
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return structuredClone(EMPTY_JOURNAL);
      throw error;
    }
    return parseJournal(text, this.path);
  }

  async save(journal: Journal): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    // A unique temp name (pids repeat across containers), flushed to disk before it replaces the journal.
    const temp = `${this.path}.tmp-${process.pid}-${randomUUID()}`;
    const body = { version: 1, services: [...new Set(journal.services)].sort(), drains: journal.drains };
    const handle = await open(temp, "w", 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(body, null, 2)}\n`, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, this.path);
  }
}

export function parseJournal(text: string, origin: string): Journal {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new JournalFormatError(`${origin}: not JSON: ${(error as Error).message}`);
  }
  const v = value as { version?: unknown; services?: unknown; drains?: unknown };
  if (v.version !== 1 || !Array.isArray(v.services) || !Array.isArray(v.drains)) {
    throw new JournalFormatError(
      `${origin}: not an ipvs-operator journal (version 1 with services and drains)`,
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
  const services = v.services as string[];
  const drains = v.drains as DrainEntry[];
  return { services, drains };
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
