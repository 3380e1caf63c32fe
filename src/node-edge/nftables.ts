/**
 * Nft: the two things the SNAT manager asks of nftables, run one table at a time (it never lists the
 * ruleset, so other tables are neither read nor touched). ExecNft runs the `nft` binary (the script on
 * stdin, one transaction); FakeNft keeps tables in memory, applies the small subset of the nft language
 * the SNAT plan writes, transactionally, and prints them the way nft 1.0.6 does in the parts that
 * matter (a one-element set printed bare, set elements in address order, marks in hex).
 */
import { execFile } from "node:child_process";
import { sortByAddress } from "./vip-plan.ts";

export interface Nft {
  /** Runs a script (`nft -f -`): all of it or nothing. Throws NftError. */
  apply(script: string): Promise<void>;
  /** `nft list table <family> <name>`: what nft prints, undefined when there is no such table. Throws NftError. */
  listTable(family: string, name: string): Promise<string | undefined>;
}

export class NftError extends Error {
  override readonly name = "NftError";
  /** "missing": no nft binary (ENOENT); "failed": nft ran and said no (exit status, stderr). */
  readonly reason: "missing" | "failed";
  constructor(reason: "missing" | "failed", message: string) {
    super(message);
    this.reason = reason;
  }
}

export interface ExecNftOptions {
  /** The nft binary (default "nft", found on PATH). */
  binary?: string;
  /** Per run (default 30 s). */
  timeoutMs?: number;
}

interface Ran {
  status: number;
  stdout: string;
  stderr: string;
}

/** The first lines of nft's error output (it repeats the script line and underlines the culprit). */
function firstLines(text: string, n = 3): string {
  return text.trim().split("\n").slice(0, n).join(" | ");
}

export class ExecNft implements Nft {
  readonly #binary: string;
  readonly #timeoutMs: number;

  constructor(options: ExecNftOptions = {}) {
    this.#binary = options.binary ?? "nft";
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  async apply(script: string): Promise<void> {
    const ran = await this.#run(["-f", "-"], script);
    if (ran.status !== 0) {
      throw new NftError("failed", `nft -f failed (exit ${ran.status}): ${firstLines(ran.stderr)}`);
    }
  }

  async listTable(family: string, name: string): Promise<string | undefined> {
    const ran = await this.#run(["list", "table", family, name], "");
    if (ran.status === 0) return ran.stdout;
    // nft 1.0.6: exit 1, "Error: No such file or directory" and the command underlined.
    if (/^Error: No such file or directory/.test(ran.stderr.trimStart())) return undefined;
    throw new NftError(
      "failed",
      `nft list table ${family} ${name} failed (exit ${ran.status}): ${firstLines(ran.stderr)}`,
    );
  }

  #run(args: string[], input: string): Promise<Ran> {
    return new Promise((resolve, reject) => {
      const child = execFile(
        this.#binary,
        args,
        { encoding: "utf8", timeout: this.#timeoutMs, maxBuffer: 16 * 1024 * 1024 },
        (error, stdout, stderr) => {
          if (!error) return resolve({ status: 0, stdout, stderr });
          const code = (error as NodeJS.ErrnoException).code;
          if (code === "ENOENT") return reject(new NftError("missing", `${this.#binary} not found`));
          if (typeof code === "number") return resolve({ status: code, stdout, stderr });
          const why = error.killed ? `killed (${error.signal ?? "timeout"})` : error.message;
          reject(new NftError("failed", `${this.#binary} ${args.join(" ")}: ${why}`));
        },
      );
      child.stdin?.on("error", () => {}); // EPIPE when nft exits early: its status says why
      child.stdin?.end(input);
    });
  }
}

// --- the fake --------------------------------------------------------------------

interface FakeChain {
  /** "type nat hook postrouting priority srcnat; policy accept;" or undefined for a regular chain. */
  base: string | undefined;
  rules: string[];
}

interface FakeTable {
  chains: Map<string, FakeChain>;
}

/** A state of tables keyed "family name", copied per transaction. */
type FakeState = Map<string, FakeTable>;

const FAMILIES = new Set(["ip", "ip6", "inet", "arp", "bridge", "netdev"]);

function copyState(state: FakeState): FakeState {
  const out: FakeState = new Map();
  for (const [key, table] of state) {
    const chains = new Map<string, FakeChain>();
    for (const [name, chain] of table.chains) chains.set(name, { base: chain.base, rules: [...chain.rules] });
    out.set(key, { chains });
  }
  return out;
}

/** What nft prints for a rule it was given: one-element sets bare, elements sorted, marks in hex. */
function normalizeRule(rule: string): string {
  return rule
    .replace(/\{ ([^{}]*) \}/g, (_, inner: string) => {
      const items = inner.split(",").map((s) => s.trim());
      return items.length === 1 ? items[0]! : `{ ${sortByAddress(items, (a) => a).join(", ")} }`;
    })
    .replace(
      /\bmeta mark (\d+)\b/g,
      (_, n: string) => `meta mark 0x${Number(n).toString(16).padStart(8, "0")}`,
    );
}

function normalizeBase(spec: string): string {
  const m = /^type (\w+) hook (\w+) priority (\S+?);\s*(?:policy (\w+);)?$/.exec(spec.trim());
  if (!m) throw new Error(`unsupported chain spec: ${spec}`);
  const priority = m[3] === "100" ? "srcnat" : m[3];
  return `type ${m[1]} hook ${m[2]} priority ${priority}; policy ${m[4] ?? "accept"};`;
}

/**
 * nft in memory: tables, chains, rules. `apply()` runs `add|delete table`, `add chain` (with a base
 * chain spec), `add rule`, `flush chain|table` and `delete chain` as ONE transaction (a failing line
 * leaves every table as it was, like the kernel), and `listTable()` prints a table as nft does.
 */
export class FakeNft implements Nft {
  #state: FakeState = new Map();
  /** Scripts applied (successful or not), in order. */
  readonly applied: string[] = [];
  /** Tables listed ("inet ipvs_operator"), in order. */
  readonly listed: string[] = [];
  /** The binary is not installed: every call throws NftError "missing". */
  missing = false;
  /** The next apply() fails with this stderr (once). */
  #failNext: string | undefined;

  /** Someone else runs nft (out of band): no record in `applied`. Throws like apply(). */
  outOfBand(script: string): void {
    this.#state = this.#execute(script, this.#state);
  }

  failNextApply(stderr: string): void {
    this.#failNext = stderr;
  }

  /** The names of all tables ("inet ipvs_operator", "ip usernat"), sorted. */
  tables(): string[] {
    return [...this.#state.keys()].sort();
  }

  /** nft list table: the text, or undefined when there is no such table (no recording: for tests). */
  render(family: string, name: string): string | undefined {
    const table = this.#state.get(`${family} ${name}`);
    if (!table) return undefined;
    const lines = [`table ${family} ${name} {`];
    let first = true;
    for (const [chainName, chain] of table.chains) {
      if (!first) lines.push("");
      first = false;
      lines.push(`\tchain ${chainName} {`);
      if (chain.base) lines.push(`\t\t${chain.base}`);
      for (const rule of chain.rules) lines.push(`\t\t${rule}`);
      lines.push("\t}");
    }
    lines.push("}");
    return `${lines.join("\n")}\n`;
  }

  async apply(script: string): Promise<void> {
    if (this.missing) throw new NftError("missing", "nft not found");
    this.applied.push(script);
    if (this.#failNext !== undefined) {
      const stderr = this.#failNext;
      this.#failNext = undefined;
      throw new NftError("failed", `nft -f failed (exit 1): ${stderr}`);
    }
    try {
      this.#state = this.#execute(script, this.#state);
    } catch (e) {
      throw new NftError("failed", `nft -f failed (exit 1): ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  async listTable(family: string, name: string): Promise<string | undefined> {
    if (this.missing) throw new NftError("missing", "nft not found");
    this.listed.push(`${family} ${name}`);
    return this.render(family, name);
  }

  /** Runs every line on a copy; the copy becomes the state only when all of them worked. */
  #execute(script: string, state: FakeState): FakeState {
    const next = copyState(state);
    script.split("\n").forEach((raw, i) => {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) return;
      try {
        this.#line(line, next);
      } catch (e) {
        throw new Error(`line ${i + 1}: ${e instanceof Error ? e.message : String(e)}: ${line}`);
      }
    });
    return next;
  }

  #line(line: string, state: FakeState): void {
    const m = /^(add|delete|flush) (table|chain|rule) (\S+) (\S+)(?: (\S+))?(?: (.*))?$/.exec(line);
    if (!m) throw new Error("syntax error");
    const [, verb, what, family, tableName, chainName, rest] = m as unknown as [
      string,
      string,
      string,
      string,
      string,
      string | undefined,
      string | undefined,
    ];
    if (!FAMILIES.has(family)) throw new Error(`unknown family ${family}`);
    const key = `${family} ${tableName}`;
    const table = state.get(key);
    const needTable = (): FakeTable => {
      if (!table) throw new Error("No such file or directory");
      return table;
    };
    const needChain = (): FakeChain => {
      const chain = chainName === undefined ? undefined : needTable().chains.get(chainName);
      if (!chain) throw new Error("No such file or directory");
      return chain;
    };
    if (what === "table") {
      if (chainName !== undefined) throw new Error("syntax error");
      if (verb === "add") {
        if (!table) state.set(key, { chains: new Map() });
      } else if (verb === "delete") {
        needTable();
        state.delete(key);
      } else {
        for (const chain of needTable().chains.values()) chain.rules = [];
      }
      return;
    }
    if (chainName === undefined) throw new Error("syntax error");
    if (what === "chain") {
      if (verb === "add") {
        const t = needTable();
        const spec = rest === undefined ? undefined : /^\{(.*)\}$/.exec(rest.trim())?.[1];
        if (rest !== undefined && spec === undefined) throw new Error("syntax error");
        const base = spec === undefined ? undefined : normalizeBase(spec);
        const existing = t.chains.get(chainName);
        if (existing && base !== undefined && existing.base !== base)
          throw new Error("Device or resource busy");
        if (!existing) t.chains.set(chainName, { base, rules: [] });
      } else if (verb === "delete") {
        if (needChain().rules.length > 0) throw new Error("Device or resource busy");
        needTable().chains.delete(chainName);
      } else {
        needChain().rules = [];
      }
      return;
    }
    if (verb !== "add" || rest === undefined) throw new Error("syntax error");
    const comment = /\bcomment "([^"]*)"$/.exec(rest)?.[1];
    if (comment !== undefined && comment.length > 128) {
      throw new Error("comment too long, 128 characters maximum allowed");
    }
    needChain().rules.push(normalizeRule(rest));
  }
}
