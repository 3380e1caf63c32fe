/**
 * SnatManager over FakeNft (tables in memory, transactional scripts, printed like nft 1.0.6): the
 * first sync applies, a second one only lists, out-of-band deletion and changes are repaired and
 * reported, the last service's removal deletes the table, nft failures are reported, never thrown,
 * and other tables are never touched. ExecNft is exercised with stand-in binaries.
 */
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ExecNft, FakeNft, NftError } from "../../src/node-edge/nftables.ts";
import { SnatManager } from "../../src/node-edge/snat.ts";
import type { SnatService } from "../../src/node-edge/snat-plan.ts";

const WEB: SnatService = {
  owner: "shop/web",
  family: "IPv4",
  match: { kind: "address", protocol: "TCP", address: "10.99.9.9", port: 80 },
  realServers: ["10.99.0.20"],
};
const DNS: SnatService = {
  owner: "infra/dns",
  family: "IPv6",
  match: { kind: "address", protocol: "UDP", address: "2001:db8:99::53", port: 53 },
  realServers: ["2001:db8:99::20", "2001:db8:99::3"],
  toAddress: "2001:db8:99::1",
};
const USER_TABLE = [
  "add table ip usernat",
  "add chain ip usernat post { type nat hook postrouting priority 100; policy accept; }",
  "add rule ip usernat post ip daddr 203.0.113.5 masquerade",
].join("\n");

function setup() {
  const nft = new FakeNft();
  nft.outOfBand(USER_TABLE);
  const userTable = nft.render("ip", "usernat");
  return { nft, manager: new SnatManager(nft), userTable };
}

describe("FakeNft", () => {
  it("applies a script as one transaction: a failing line leaves every table as it was", async () => {
    const { nft } = setup();
    await nft.apply("add table inet t\nadd chain inet t c { type nat hook postrouting priority srcnat; }\n");
    const before = nft.tables();
    await expect(
      nft.apply("delete table inet t\nadd rule inet t c ip daddr 1.2.3.4 masquerade\n"),
    ).rejects.toThrow(/line 2: No such file or directory/);
    expect(nft.tables()).toEqual(before);
    expect(nft.tables()).toEqual(["inet t", "ip usernat"]);
  });

  it("prints one-element sets bare, elements in address order, marks in hex", async () => {
    const nft = new FakeNft();
    await nft.apply(
      "add table inet t\nadd chain inet t c { type nat hook postrouting priority srcnat; policy accept; }\n" +
        "add rule inet t c ip daddr { 10.0.0.20, 10.0.0.3 } masquerade\nadd rule inet t c meta mark 7 ip daddr { 10.0.0.1 } masquerade\n",
    );
    expect(await nft.listTable("inet", "t")).toBe(
      "table inet t {\n\tchain c {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n" +
        "\t\tip daddr { 10.0.0.3, 10.0.0.20 } masquerade\n\t\tmeta mark 0x00000007 ip daddr 10.0.0.1 masquerade\n\t}\n}\n",
    );
    expect(await nft.listTable("inet", "missing")).toBeUndefined();
  });
});

describe("SnatManager", () => {
  it("first sync applies the table; a second sync only lists it", async () => {
    const { nft, manager } = setup();
    const first = await manager.sync([WEB, DNS]);
    expect(first).toEqual({
      table: "inet ipvs_operator",
      present: true,
      services: ["infra/dns", "shop/web"],
      applied: true,
      drift: [],
      errors: [],
    });
    expect(nft.applied).toHaveLength(1);
    const table = nft.render("inet", "ipvs_operator")!;
    expect(table).toContain(
      'meta l4proto tcp ct original ip daddr 10.99.9.9 ct original proto-dst 80 ip daddr 10.99.0.20 masquerade comment "shop/web"',
    );
    expect(table).toContain("ip6 daddr { 2001:db8:99::3, 2001:db8:99::20 } snat ip6 to 2001:db8:99::1");

    const second = await manager.sync([DNS, WEB]);
    expect(second).toMatchObject({ applied: false, present: true, drift: [], errors: [] });
    expect(nft.applied).toHaveLength(1);
    expect(nft.listed.length).toBeGreaterThanOrEqual(3);
  });

  it("a table deleted out of band is TableMissing, repaired", async () => {
    const { nft, manager } = setup();
    await manager.sync([WEB]);
    const good = nft.render("inet", "ipvs_operator");
    nft.outOfBand("delete table inet ipvs_operator");
    const report = await manager.sync([WEB]);
    expect(report.drift).toEqual([
      {
        kind: "TableMissing",
        object: "inet ipvs_operator",
        message: "the table was deleted out of band",
        action: "Repaired",
      },
    ]);
    expect(report).toMatchObject({ applied: true, present: true, errors: [] });
    expect(nft.render("inet", "ipvs_operator")).toBe(good);
    expect((await manager.sync([WEB])).drift).toEqual([]);
  });

  it("a flushed chain or an added rule is RulesModified, repaired by replacing the table whole", async () => {
    const { nft, manager } = setup();
    await manager.sync([WEB]);
    const good = nft.render("inet", "ipvs_operator");
    nft.outOfBand("flush chain inet ipvs_operator postrouting");
    const flushed = await manager.sync([WEB]);
    expect(flushed.drift).toMatchObject([{ kind: "RulesModified", action: "Repaired" }]);
    expect(nft.render("inet", "ipvs_operator")).toBe(good);

    nft.outOfBand("add rule inet ipvs_operator postrouting ip daddr 192.0.2.99 masquerade");
    expect((await manager.sync([WEB])).drift).toMatchObject([{ kind: "RulesModified", action: "Repaired" }]);
    expect(nft.render("inet", "ipvs_operator")).toBe(good);
  });

  it("observe() reports drift without changing anything", async () => {
    const { nft, manager } = setup();
    await manager.sync([WEB]);
    nft.outOfBand("delete table inet ipvs_operator");
    const seen = await manager.observe([WEB]);
    expect(seen).toMatchObject({
      applied: false,
      present: false,
      drift: [{ kind: "TableMissing", action: "Reported" }],
    });
    expect(nft.applied).toHaveLength(1);
    expect(nft.render("inet", "ipvs_operator")).toBeUndefined();
  });

  it("a changed service set is applied without drift", async () => {
    const { nft, manager } = setup();
    await manager.sync([WEB]);
    const report = await manager.sync([WEB, DNS]);
    expect(report).toMatchObject({ applied: true, drift: [], services: ["infra/dns", "shop/web"] });
    expect(nft.render("inet", "ipvs_operator")).toContain('comment "infra/dns"');
  });

  it("removing the last service deletes the table; other tables stay byte for byte", async () => {
    const { nft, manager, userTable } = setup();
    await manager.sync([WEB]);
    const removed = await manager.sync([]);
    expect(removed).toMatchObject({ applied: true, present: false, services: [], drift: [], errors: [] });
    expect(nft.tables()).toEqual(["ip usernat"]);
    expect(nft.render("ip", "usernat")).toBe(userTable);
    // nothing wanted and nothing there: no script
    expect(await manager.sync([])).toMatchObject({ applied: false, drift: [] });
    expect(nft.applied).toHaveLength(2);
    // every list named our table only
    expect(new Set(nft.listed)).toEqual(new Set(["inet ipvs_operator"]));
  });

  it("the table back after the operator removed it is TableUnexpected, removed again", async () => {
    const { nft, manager } = setup();
    await manager.sync([]);
    nft.outOfBand("add table inet ipvs_operator");
    const report = await manager.sync([]);
    expect(report.drift).toMatchObject([{ kind: "TableUnexpected", action: "Repaired" }]);
    expect(nft.tables()).toEqual(["ip usernat"]);
  });

  it("on a process's first sync an existing table is replaced without drift", async () => {
    const { nft } = setup();
    await new SnatManager(nft).sync([WEB, DNS]);
    nft.outOfBand("flush chain inet ipvs_operator postrouting");
    const restarted = new SnatManager(nft);
    const report = await restarted.sync([WEB]);
    expect(report).toMatchObject({ applied: true, drift: [], services: ["shop/web"] });
    expect(nft.render("inet", "ipvs_operator")).toContain('comment "shop/web"');
    expect(nft.render("inet", "ipvs_operator")).not.toContain("infra/dns");
  });

  it("a missing nft binary is an error only when SNAT is wanted; never a throw", async () => {
    const { nft, manager } = setup();
    nft.missing = true;
    const wanted = await manager.sync([WEB]);
    expect(wanted.errors).toEqual(["nft not found: SNAT rules not programmed (nft not found)"]);
    expect(wanted).toMatchObject({ applied: false, present: false });
    expect((await manager.sync([])).errors).toEqual([]);
    nft.missing = false;
    expect(await manager.sync([WEB])).toMatchObject({ applied: true, present: true, errors: [] });
  });

  it("a failing script is reported, its drift marked unrepaired, and retried on the next sync", async () => {
    const { nft, manager } = setup();
    await manager.sync([WEB]);
    nft.outOfBand("delete table inet ipvs_operator");
    nft.failNextApply("Error: Could not process rule: Operation not permitted");
    const failed = await manager.sync([WEB]);
    expect(failed.errors).toEqual([
      "replacing table inet ipvs_operator: nft -f failed (exit 1): Error: Could not process rule: Operation not permitted",
    ]);
    expect(failed.drift).toMatchObject([
      { kind: "TableMissing", action: "Ignored", message: "repair failed (see errors)" },
    ]);
    expect(failed.applied).toBe(false);
    const retried = await manager.sync([WEB]);
    expect(retried).toMatchObject({ applied: true, present: true, errors: [] });
    expect(retried.drift).toMatchObject([{ kind: "TableMissing", action: "Repaired" }]);
  });

  it("input problems come back as errors; the other services keep their rules", async () => {
    const { nft, manager } = setup();
    const report = await manager.sync([WEB, { ...DNS, realServers: ["10.99.0.20"] }]);
    expect(report.services).toEqual(["shop/web"]);
    expect(report.errors).toEqual([
      'infra/dns: real server "10.99.0.20" is not an IPv6 address: left out of the SNAT rule',
    ]);
    expect(nft.render("inet", "ipvs_operator")).toContain("shop/web");
  });
});

describe("ExecNft", () => {
  const dir = mkdtempSync(join(tmpdir(), "exec-nft-"));
  /** A stand-in nft: records its arguments and stdin, answers like nft 1.0.6. */
  function fakeBinary(body: string): string {
    const file = join(dir, `nft-${Math.random().toString(36).slice(2)}`);
    writeFileSync(file, `#!/bin/sh\n${body}\n`);
    chmodSync(file, 0o755);
    return file;
  }

  it("passes the script on stdin to nft -f -", async () => {
    const log = join(dir, "stdin");
    const nft = new ExecNft({ binary: fakeBinary(`echo "$@" > ${log}.args; cat > ${log}`) });
    await nft.apply("add table inet ipvs_operator\n");
    const { readFileSync } = await import("node:fs");
    expect(readFileSync(`${log}.args`, "utf8")).toBe("-f -\n");
    expect(readFileSync(log, "utf8")).toBe("add table inet ipvs_operator\n");
  });

  it("a missing table lists as undefined; other failures and a missing binary throw NftError", async () => {
    const absent = new ExecNft({
      binary: fakeBinary(
        'echo "Error: No such file or directory" >&2; echo "list table inet ipvs_operator" >&2; exit 1',
      ),
    });
    expect(await absent.listTable("inet", "ipvs_operator")).toBeUndefined();
    const denied = new ExecNft({
      binary: fakeBinary('echo "Error: Operation not permitted" >&2; exit 1'),
    });
    await expect(denied.listTable("inet", "ipvs_operator")).rejects.toThrow(
      /exit 1\): Error: Operation not permitted/,
    );
    await expect(denied.apply("x")).rejects.toMatchObject({ reason: "failed" });
    const missing = new ExecNft({ binary: join(dir, "no-such-nft") });
    const error = await missing.apply("x").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NftError);
    expect(error).toMatchObject({ reason: "missing" });
  });

  it("returns what nft prints", async () => {
    const nft = new ExecNft({
      binary: fakeBinary('[ "$*" = "list table inet t" ] && printf "table inet t {\\n}\\n"'),
    });
    expect(await nft.listTable("inet", "t")).toBe("table inet t {\n}\n");
  });
});
