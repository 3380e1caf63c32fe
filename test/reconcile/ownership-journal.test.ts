import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  FileJournalStore,
  JournalFormatError,
  parseJournal,
  sameJournal,
} from "../../src/reconcile/ownership-journal.ts";

describe("ownership journal file", () => {
  it("starts empty, saves sorted unique services with drains, and leaves no temp file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "journal-"));
    const store = new FileJournalStore(join(dir, "state", "journal.json"));
    expect(await store.load()).toEqual({ services: [], owners: {}, drains: [] });
    const drain = {
      service: "TCP 192.0.2.1:80",
      destination: "198.51.100.1:80",
      startedAt: 5,
      timeoutSeconds: 300,
    };
    await store.save({
      bootId: "b1",
      services: ["UDP 192.0.2.2:53", "TCP 192.0.2.1:80", "TCP 192.0.2.1:80"],
      owners: { "TCP 192.0.2.1:80": "demo/web", "TCP 192.0.2.9:80": "demo/gone" },
      drains: [drain],
    });
    expect(await store.load()).toEqual({
      bootId: "b1",
      services: ["TCP 192.0.2.1:80", "UDP 192.0.2.2:53"],
      owners: { "TCP 192.0.2.1:80": "demo/web" },
      drains: [drain],
    });
    expect(readdirSync(join(dir, "state"))).toEqual(["journal.json"]);
    expect(JSON.parse(readFileSync(join(dir, "state", "journal.json"), "utf8")).version).toBe(2);
  });

  it.each([
    ["{oops", /not JSON/],
    ['{"version": 3, "services": [], "drains": []}', /not an ipvs-operator journal/],
    ['{"version": 2, "services": [], "drains": []}', /bootId is not a string/],
    ['{"version": 2, "bootId": "b", "services": [], "owners": [], "drains": []}', /owners is not a map/],
    ['{"version": 1, "services": ["TCP 192.0.2.1:80", 5], "drains": []}', /services\[1\] is not a string/],
    ['{"version": 1, "services": [], "drains": [{"service": "x"}]}', /drains\[0\] is not/],
  ])("rejects %s instead of silently forgetting entries", (text, message) => {
    expect(() => parseJournal(text, "j.json")).toThrow(JournalFormatError);
    expect(() => parseJournal(text, "j.json")).toThrow(message);
  });

  it("reads a version 1 journal (no boot id, no owners)", () => {
    const j = parseJournal('{"version": 1, "services": ["TCP 192.0.2.1:80"], "drains": []}', "j.json");
    expect(j).toEqual({ services: ["TCP 192.0.2.1:80"], owners: {}, drains: [] });
  });

  it("cleans temporary files an interrupted writer left, and its fingerprint follows every save", async () => {
    const dir = mkdtempSync(join(tmpdir(), "journal-"));
    const store = new FileJournalStore(join(dir, "journal.json"));
    expect(await store.fingerprint()).toBe("absent");
    writeFileSync(join(dir, "journal.json.tmp-123-abc"), "{");
    writeFileSync(join(dir, "other.json.tmp-1-x"), "{");
    expect(await store.cleanTemporaryFiles()).toBe(1);
    expect(readdirSync(dir).sort()).toEqual(["other.json.tmp-1-x"]);
    await store.save({ bootId: "b", services: ["TCP 192.0.2.1:80"], owners: {}, drains: [] });
    const first = await store.fingerprint();
    await store.save({ bootId: "b", services: [], owners: {}, drains: [] });
    expect(await store.fingerprint()).not.toBe(first);
  });

  it("reports a corrupt file through load()", async () => {
    const dir = mkdtempSync(join(tmpdir(), "journal-"));
    writeFileSync(join(dir, "j.json"), "[]");
    await expect(new FileJournalStore(join(dir, "j.json")).load()).rejects.toThrow(JournalFormatError);
  });
});

describe("sameJournal", () => {
  const drain = (destination: string, startedAt = 0) => ({
    service: "TCP 192.0.2.1:80",
    destination,
    startedAt,
    timeoutSeconds: 30,
  });
  const base = {
    bootId: "b",
    services: ["TCP 192.0.2.1:80", "TCP 192.0.2.2:80"],
    owners: { "TCP 192.0.2.1:80": "ns/a", "TCP 192.0.2.2:80": "ns/b", "TCP 192.0.2.9:80": "ns/gone" },
    drains: [drain("198.51.100.1:80"), drain("198.51.100.2:80")],
  };

  it("ignores order, repeats and owners of keys it does not hold", () => {
    expect(
      sameJournal(base, {
        bootId: "b",
        services: ["TCP 192.0.2.2:80", "TCP 192.0.2.1:80", "TCP 192.0.2.2:80"],
        owners: { "TCP 192.0.2.2:80": "ns/b", "TCP 192.0.2.1:80": "ns/a" },
        drains: [drain("198.51.100.2:80"), drain("198.51.100.1:80")],
      }),
    ).toBe(true);
  });

  it("tells apart a boot id, a service, an owner and a drain", () => {
    expect(sameJournal(base, { ...base, bootId: "c" })).toBe(false);
    expect(sameJournal(base, { ...base, services: ["TCP 192.0.2.1:80"] })).toBe(false);
    expect(sameJournal(base, { ...base, services: ["TCP 192.0.2.1:80", "TCP 192.0.2.3:80"] })).toBe(false);
    expect(sameJournal(base, { ...base, owners: { ...base.owners, "TCP 192.0.2.2:80": "ns/c" } })).toBe(
      false,
    );
    expect(sameJournal(base, { ...base, drains: [drain("198.51.100.1:80")] })).toBe(false);
    expect(
      sameJournal(base, { ...base, drains: [drain("198.51.100.1:80"), drain("198.51.100.2:80", 5)] }),
    ).toBe(false);
  });
});
