/**
 * Normalising `ipvsadm -S` text: service blocks and destination lines sorted into the canonical
 * order, every line's text unchanged, so that a live `ipvsadm -Sn` and renderIpvsadmSave()
 * (ipvsadm-render.ts) can be compared whatever order each came in. Lines are read with the parser
 * of ipvsadm-parse.ts.
 */

import { compareDestinationKey, compareServiceKey } from "../vocabulary/order.ts";
import type { DestinationKey, ServiceKey } from "../vocabulary/table.ts";
import { serviceKeyString } from "../vocabulary/table.ts";
import { readCommand, tokenize } from "./ipvsadm-parse.ts";

/**
 * Sorts the service blocks and destination lines of `ipvsadm -S` text into the canonical order
 * (compareServiceKey / compareDestinationKey of vocabulary/order.ts) without changing any line's text.
 * Use it on both sides to compare a live `ipvsadm -Sn` with renderIpvsadmSave(). Lines this
 * module cannot read keep their relative order at the end.
 */
export function normalizeIpvsadmSave(text: string): string {
  const blocks = new Map<
    string,
    { key: ServiceKey; lines: string[]; dests: { key: DestinationKey; line: string }[] }
  >();
  const other: string[] = [];
  const rawLines = text.split("\n");
  for (const raw of rawLines) {
    const line = raw.replace(/\s+$/, "");
    if (line.trim() === "") continue;
    const cmd = readCommand(tokenize(line), false);
    if (!cmd.service || (cmd.command !== "-A" && cmd.command !== "-a")) {
      other.push(line);
      continue;
    }
    const id = serviceKeyString(cmd.service.key);
    let block = blocks.get(id);
    if (!block) {
      block = { key: cmd.service.key, lines: [], dests: [] };
      blocks.set(id, block);
    }
    if (cmd.command === "-A") block.lines.push(line);
    else if (cmd.dest) block.dests.push({ key: cmd.dest.key, line });
    else other.push(line);
  }
  const out: string[] = [];
  for (const block of [...blocks.values()].sort((a, b) => compareServiceKey(a.key, b.key))) {
    out.push(...block.lines);
    for (const d of [...block.dests].sort((a, b) => compareDestinationKey(a.key, b.key))) out.push(d.line);
  }
  out.push(...other);
  return out.map((l) => `${l}\n`).join("");
}
