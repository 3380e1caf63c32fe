import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FileJournalStore, JournalFormatError, parseJournal } from "../../src/reconcile/ownership-journal.ts";

describe("ownership journal file", () => {
  it("starts empty, saves sorted unique services with drains, and leaves no temp file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "journal-"));
    const store = new FileJournalStore(join(dir, "state", "journal.json"));
    expect(await store.load()).toEqual({ services: [], drains: [] });
    const drain = {
      service: "TCP 192.0.2.1:80",
      destination: "198.51.100.1:80",
      startedAt: 5,
      timeoutSeconds: 300,
    };
    await store.save({
      services: ["UDP 192.0.2.2:53", "TCP 192.0.2.1:80", "TCP 192.0.2.1:80"],
      drains: [drain],
    });
    expect(await store.load()).toEqual({
      services: ["TCP 192.0.2.1:80", "UDP 192.0.2.2:53"],
      drains: [drain],
    });
    expect(readdirSync(join(dir, "state"))).toEqual(["journal.json"]);
    expect(JSON.parse(readFileSync(join(dir, "state", "journal.json"), "utf8")).version).toBe(1);
  });

  it.each([
    ["{oops", /not JSON/],
    ['{"version": 2, "services": [], "drains": []}', /not an ipvs-operator journal/],
    ['{"version": 1, "services": ["TCP 192.0.2.1:80", 5], "drains": []}', /services\[1\] is not a string/],
    ['{"version": 1, "services": [], "drains": [{"service": "x"}]}', /drains\[0\] is not/],
  ])("rejects %s instead of silently forgetting entries", (text, message) => {
    expect(() => parseJournal(text, "j.json")).toThrow(JournalFormatError);
    expect(() => parseJournal(text, "j.json")).toThrow(message);
  });

  it("reports a corrupt file through load()", async () => {
    const dir = mkdtempSync(join(tmpdir(), "journal-"));
    writeFileSync(join(dir, "j.json"), "[]");
    await expect(new FileJournalStore(join(dir, "j.json")).load()).rejects.toThrow(JournalFormatError);
  });
});
