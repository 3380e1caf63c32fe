/**
 * IP address helpers shared by the pure core and the kernel codec.
 * Canonical forms: IPv4 dotted quad; IPv6 as RFC 5952 (lower case, longest zero run compressed),
 * which is also what inet_ntop (and therefore ipvsadm) prints for ordinary addresses.
 */
import { isIPv4, isIPv6 } from "node:net";
import type { Family } from "./table.ts";

export function ipFamily(address: string): Family | undefined {
  if (isIPv4(address)) return "IPv4";
  if (isIPv6(address)) return "IPv6";
  return undefined;
}

/** 4 or 16 bytes of an address; throws on anything that is not an IP literal. */
export function ipToBytes(address: string): Uint8Array {
  if (isIPv4(address)) return Uint8Array.from(address.split(".").map((p) => Number(p)));
  if (!isIPv6(address)) throw new Error(`not an IP address: ${JSON.stringify(address)}`);
  let text = address.toLowerCase();
  const out = new Uint8Array(16);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const b = ipToBytes(v4[1]);
    text = `${text.slice(0, -v4[1].length)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const headParts = head === "" ? [] : head.split(":");
  const tailParts = tail === undefined || tail === "" ? [] : tail.split(":");
  const fill = 8 - headParts.length - tailParts.length;
  const hextets = [...headParts, ...Array<string>(tail === undefined ? 0 : fill).fill("0"), ...tailParts];
  hextets.forEach((h, i) => {
    const v = Number.parseInt(h, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

/** Canonical text of 4 (IPv4) or 16 (IPv6) bytes. */
export function bytesToIp(bytes: Uint8Array, family: Family): string {
  if (family === "IPv4") {
    if (bytes.length < 4) throw new Error(`IPv4 address needs 4 bytes, got ${bytes.length}`);
    return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  }
  if (bytes.length < 16) throw new Error(`IPv6 address needs 16 bytes, got ${bytes.length}`);
  const hextets: number[] = [];
  for (let i = 0; i < 8; i++) hextets.push((bytes[i * 2]! << 8) | bytes[i * 2 + 1]!);
  // IPv4-mapped addresses print in the mixed form, as inet_ntop does.
  if (hextets.slice(0, 5).every((h) => h === 0) && hextets[5] === 0xffff) {
    return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  // Longest run (length >= 2) of zero hextets, first one on ties (RFC 5952 4.2.3).
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (hextets[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && hextets[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = hextets.map((h) => h.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** Canonical text of an address literal; throws when it is not one. */
export function canonicalIp(address: string): string {
  const family = ipFamily(address);
  if (!family) throw new Error(`not an IP address: ${JSON.stringify(address)}`);
  return bytesToIp(ipToBytes(address), family);
}

/** IPv4 dotted mask -> unsigned 32-bit number (255.255.255.0 -> 0xffffff00). */
export function ipv4MaskToNumber(mask: string): number {
  const b = ipToBytes(mask);
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

export function numberToIpv4Mask(mask: number): string {
  return [24, 16, 8, 0].map((s) => (mask >>> s) & 0xff).join(".");
}

/** True when the mask is a contiguous run of ones from the top (a valid prefix mask). */
export function isContiguousIpv4Mask(mask: number): boolean {
  const inverted = ~mask >>> 0;
  return (inverted & (inverted + 1)) === 0;
}

/** Byte-wise comparison for deterministic ordering of addresses of the same family. */
export function compareIp(a: string, b: string): number {
  const x = ipToBytes(a);
  const y = ipToBytes(b);
  if (x.length !== y.length) return x.length - y.length;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}
