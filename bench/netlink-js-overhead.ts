/**
 * The JavaScript side of reading the IPVS table, without a kernel: NetlinkIpvsKernel over a socket
 * that answers GET_SERVICE / GET_DEST dumps with kernel-shaped messages (stats included), the way
 * the netlink binding delivers them (sendmsg at once, replies on a later event-loop turn, one
 * datagram for the entries and one for NLMSG_DONE). Runs anywhere (no IPVS, no privileges):
 *   node bench/netlink-js-overhead.ts [services] [destinations] [rounds]
 * Prints the time per service of readTable without and with the counters (a sync reads without), and
 * of the list-one-service-at-a-time loop.
 */
import { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";
import { AttrStream, formatGenlHeader, formatMessage, putU16, putU16be, putU32, putU64 } from "netlink";
import type { NetlinkReply } from "../src/kernel/ipvs-decode.ts";
import { decodeGenlPayload, decodeMessages } from "../src/kernel/ipvs-decode.ts";
import { serviceAttr } from "../src/kernel/ipvs-encode.ts";
import { GENL_ID_CTRL, IPVS_CMD, IPVS_CMD_ATTR, IPVS_DEST_ATTR } from "../src/kernel/ipvs-protocol.ts";
import type { RawSocket } from "../src/kernel/netlink-kernel.ts";
import { NetlinkIpvsKernel } from "../src/kernel/netlink-kernel.ts";
import { readKernelTable } from "../src/kernel/read-kernel-table.ts";
import { NO_FLAGS } from "../src/vocabulary/table.ts";

const services = Number(process.argv[2] ?? 1000);
const dests = Number(process.argv[3] ?? 4);
const rounds = Number(process.argv[4] ?? 5);
const FAMILY = 30;

function message(type: number, seq: number, flags: number, data: Uint8Array[]): Buffer {
  const m = Buffer.concat(formatMessage({ type, flags, seq, port: 0, data }));
  return m.length % 4 ? Buffer.concat([m, Buffer.alloc(4 - (m.length % 4))]) : m;
}
function withSeq(template: Buffer, seq: number): Buffer {
  const b = Buffer.from(template);
  for (let off = 0; off < b.length; off += (b.readUInt32LE(off) + 3) & ~3) b.writeUInt32LE(seq, off + 8);
  return b;
}
function stats(out: AttrStream, wide: boolean): void {
  for (let t = 1; t <= 10; t++) out.push(t, wide || t === 4 || t === 5 ? putU64(BigInt(t)) : putU32(t));
}
function destMessage(j: number): Buffer {
  const out = new AttrStream();
  out.push(IPVS_CMD_ATTR.DEST, (d) => {
    const addr = Buffer.alloc(16);
    addr.set([198, 51, 100, j + 1]);
    d.push(IPVS_DEST_ATTR.ADDR, addr);
    d.push(IPVS_DEST_ATTR.PORT, putU16be(8080));
    d.push(IPVS_DEST_ATTR.FWD_METHOD, putU32(0));
    d.push(IPVS_DEST_ATTR.WEIGHT, putU32(1));
    d.push(IPVS_DEST_ATTR.TUN_TYPE, Buffer.from([0]));
    d.push(IPVS_DEST_ATTR.TUN_PORT, putU16be(0));
    d.push(IPVS_DEST_ATTR.TUN_FLAGS, putU16(0));
    d.push(IPVS_DEST_ATTR.U_THRESH, putU32(0));
    d.push(IPVS_DEST_ATTR.L_THRESH, putU32(0));
    d.push(IPVS_DEST_ATTR.ACTIVE_CONNS, putU32(0));
    d.push(IPVS_DEST_ATTR.INACT_CONNS, putU32(0));
    d.push(IPVS_DEST_ATTR.PERSIST_CONNS, putU32(0));
    d.push(IPVS_DEST_ATTR.STATS, (s) => stats(s, false));
    d.push(IPVS_DEST_ATTR.STATS64, (s) => stats(s, true));
    d.push(IPVS_DEST_ATTR.ADDR_FAMILY, putU16(2));
  });
  return message(FAMILY, 0, 2, [formatGenlHeader({ cmd: IPVS_CMD.NEW_DEST, version: 1 }), ...out.bufs]);
}
const destDatagram = Buffer.concat(Array.from({ length: dests }, (_, j) => destMessage(j)));
const serviceMessages = Array.from({ length: services }, (_, i) =>
  message(FAMILY, 0, 2, [
    formatGenlHeader({ cmd: IPVS_CMD.NEW_SERVICE, version: 1 }),
    ...serviceAttr({
      key: {
        kind: "address",
        family: "IPv4",
        protocol: "TCP",
        address: `10.${i >> 8}.${i & 0xff}.1`,
        port: 80,
      },
      config: {
        scheduler: "wlc",
        flags: { ...NO_FLAGS },
        timeout: 0,
        netmask: 0xffffffff,
        persistenceEngine: "",
      },
    }),
  ]),
);
const done = message(3, 0, 2, [Buffer.alloc(4)]);

/** Answers like the kernel: the first dump chunk during sendmsg, the rest (and DONE) on later turns. */
class KernelLikeSocket extends EventEmitter implements RawSocket {
  send(msg: Uint8Array | Uint8Array[], _options: { port?: number }, cb: (err?: Error) => void): void {
    const out: Buffer[] = [];
    for (const m of decodeMessages(Buffer.concat(Array.isArray(msg) ? msg : [msg])))
      out.push(...this.#answer(m));
    setImmediate(() => {
      cb();
    });
    setImmediate(() => {
      for (const d of out) this.emit("message", d, { port: 0, groups: 0 });
    });
  }
  #answer(m: NetlinkReply): Buffer[] {
    if (m.type === GENL_ID_CTRL) {
      const attrs = new AttrStream();
      attrs.push(1, putU16(FAMILY));
      const reply = message(GENL_ID_CTRL, m.seq, 0, [
        formatGenlHeader({ cmd: 1, version: 2 }),
        ...attrs.bufs,
      ]);
      const ack = Buffer.alloc(36);
      ack.writeUInt32LE(36, 0);
      ack.writeUInt16LE(2, 4);
      ack.writeUInt32LE(m.seq, 8);
      return [reply, ack];
    }
    const cmd = decodeGenlPayload(m.payload).cmd;
    if (cmd === IPVS_CMD.GET_DEST) return [withSeq(destDatagram, m.seq), withSeq(done, m.seq)];
    if (cmd === IPVS_CMD.GET_SERVICE) {
      const out: Buffer[] = [];
      for (let i = 0; i < serviceMessages.length; i += 12) {
        out.push(withSeq(Buffer.concat(serviceMessages.slice(i, i + 12)), m.seq));
      }
      return [...out, withSeq(done, m.seq)];
    }
    throw new Error(`bench socket: unexpected command ${cmd}`);
  }
  close(): void {}
  ref(): void {}
  unref(): void {}
}

const kernel = new NetlinkIpvsKernel({ createSocket: () => new KernelLikeSocket() });
const out = (s: string) => process.stdout.write(`${s}\n`);
out(`${services} services x ${dests} destinations, ${rounds} rounds (JavaScript only, no kernel)`);
for (let r = 0; r < rounds; r++) {
  let t0 = performance.now();
  const table = (await kernel.readTable({ stats: false })).table; // as a sync reads
  const leanMs = performance.now() - t0;
  t0 = performance.now();
  await readKernelTable(kernel);
  const readMs = performance.now() - t0;
  if (table.length !== services || table.some((e) => e.destinations.length !== dests)) {
    throw new Error("bench: incomplete table");
  }
  t0 = performance.now();
  for (const service of await kernel.listServices()) await kernel.listDestinations(service.key);
  const seqMs = performance.now() - t0;
  out(
    `round ${r + 1}: readTable({ stats: false }) ${((leanMs / services) * 1000).toFixed(1)} us/service, ` +
      `with stats ${((readMs / services) * 1000).toFixed(1)} us/service, ` +
      `one at a time ${((seqMs / services) * 1000).toFixed(1)} us/service`,
  );
}
await kernel.close();
