/**
 * Malformed netlink replies never crash the process (issue 11, item 3): random datagrams and mutations
 * of replies captured from the real kernel (bit flips, overwritten bytes, truncation, appended bytes,
 * corrupted length fields, spliced messages) go through the whole path a dump reply takes in
 * NetlinkIpvsKernel (messages, generic netlink header, every entry decoder, the entry describers used
 * for reports). Each one ends in a value, an undecodable entry with its reason, or IpvsDecodeError;
 * anything else fails the test with the seed and the input in hex.
 *
 * FUZZ_RUNS (default 200,000) and FUZZ_SEED set the run; a soak: FUZZ_RUNS=5000000 npx vitest run
 * test/kernel/netlink-fuzz.test.ts. It prints what it tried and how each input ended.
 */
import { describe, expect, it } from "vitest";
import { IpvsDecodeError } from "../../src/kernel/errors.ts";
import {
  decodeDaemonMessage,
  decodeDestinationEntry,
  decodeErrorPayload,
  decodeFamilyId,
  decodeGenlPayload,
  decodeInfo,
  decodeMessages,
  decodeServiceEntry,
  decodeTimeouts,
  describeDestinationEntry,
  describeServiceEntry,
} from "../../src/kernel/ipvs-decode.ts";
import { seededRandom as generator } from "../support/seeded-random.ts";
import { KERNEL_DEST_DUMP, KERNEL_SERVICE_DUMP } from "./kernel-captures.ts";

const RUNS = Number(process.env.FUZZ_RUNS ?? 200_000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

const captures = [KERNEL_SERVICE_DUMP, KERNEL_DEST_DUMP].map((h) => Buffer.from(h, "hex"));
const seeds = [...captures, Buffer.concat(captures)];

type Mutation = "random" | "flip" | "overwrite" | "truncate" | "append" | "length" | "splice";
const MUTATIONS: Mutation[] = ["random", "flip", "overwrite", "truncate", "append", "length", "splice"];

function mutate(random: () => number, kind: Mutation): Buffer {
  const int = (n: number) => Math.floor(random() * n);
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const base = Buffer.from(seeds[int(seeds.length)]!);
  switch (kind) {
    case "random":
      return bytes(int(400));
    case "flip":
      for (let i = 0, n = 1 + int(8); i < n; i++) base[int(base.length)]! ^= 1 << int(8);
      return base;
    case "overwrite":
      for (let i = 0, n = 1 + int(4); i < n; i++) base[int(base.length)] = int(256);
      return base;
    case "truncate":
      return base.subarray(0, int(base.length));
    case "append":
      return Buffer.concat([base, bytes(1 + int(64))]);
    case "length": {
      // A netlink or attribute length field (u16/u32 at a 4-byte boundary) set to something else.
      const at = 4 * int(base.length / 4);
      if (random() < 0.5) base.writeUInt16LE(int(0x10000), at);
      else if (at + 4 <= base.length) base.writeUInt32LE(int(2 ** 32), at);
      return base;
    }
    case "splice": {
      const other = seeds[int(seeds.length)]!;
      return Buffer.concat([base.subarray(0, int(base.length)), other.subarray(int(other.length))]);
    }
  }
}

type Ending = "framing rejected" | "entry decoded" | "entry undecodable, described";

/** Runs a decoder that may refuse the input: only IpvsDecodeError is a refusal. */
function typed(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (!(e instanceof IpvsDecodeError)) throw e;
    return false;
  }
}

/**
 * What NetlinkIpvsKernel does with a dump datagram (framing, then each message's entry), and the
 * decoders of the small replies (error, timeouts, info, daemons, family id) on the same bytes. The
 * ending is the dump path's: framing refused, or the entries decoded or described.
 */
function consume(datagram: Buffer): Ending {
  let ending: Ending = "framing rejected";
  typed(() => {
    for (const message of decodeMessages(datagram)) {
      typed(() => decodeErrorPayload(message.payload));
      typed(() => {
        const { attrs } = decodeGenlPayload(message.payload);
        const service = decodeServiceEntry(attrs);
        if (service.ok) ending = "entry decoded";
        else {
          describeServiceEntry(attrs);
          if (ending === "framing rejected") ending = "entry undecodable, described";
        }
        for (const family of ["IPv4", "IPv6"] as const) {
          const destination = decodeDestinationEntry(attrs, family);
          if (destination.ok) ending = "entry decoded";
          else describeDestinationEntry(attrs, family);
        }
        typed(() => decodeTimeouts(attrs));
        typed(() => decodeInfo(attrs));
        typed(() => decodeDaemonMessage(attrs));
        typed(() => decodeFamilyId(attrs));
      });
    }
  });
  return ending;
}

describe("netlink replies: fuzzing the decoders", () => {
  it(`${RUNS.toLocaleString("en")} random and mutated replies end in a value or a typed error, never another exception`, () => {
    const random = generator(SEED);
    const endings = new Map<string, number>();
    const started = performance.now();
    for (let i = 0; i < RUNS; i++) {
      const kind = MUTATIONS[i % MUTATIONS.length]!;
      const input = mutate(random, kind);
      let ending: string;
      try {
        ending = consume(input);
      } catch (e) {
        throw new Error(
          `input ${i} (${kind}, FUZZ_SEED=${SEED}) threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}: ${input.toString("hex")}`,
        );
      }
      endings.set(`${kind}: ${ending}`, (endings.get(`${kind}: ${ending}`) ?? 0) + 1);
    }
    const ms = performance.now() - started;
    const lines = [...endings].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => `  ${k}: ${n}`);
    console.log(
      `[fuzz] ${RUNS.toLocaleString("en")} inputs (seed ${SEED}) in ${(ms / 1000).toFixed(1)} s, 0 crashes:\n${lines.join("\n")}`,
    );
    // Every kind of ending was reached: the mutations test decoding, not only the first length check.
    const total = (ending: string) =>
      [...endings].filter(([k]) => k.endsWith(`: ${ending}`)).reduce((n, [, c]) => n + c, 0);
    expect(total("framing rejected")).toBeGreaterThan(0);
    expect(total("entry undecodable, described")).toBeGreaterThan(RUNS / 100);
    expect(total("entry decoded")).toBeGreaterThan(RUNS / 100);
  }, 600_000);
});
