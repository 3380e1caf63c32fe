/**
 * NetlinkIpvsKernel's own logic (family resolution, errno mapping, batching, timeouts) against a
 * scripted socket. The real-kernel behaviour is checked by e2e/vm/tests/kernel-contract.vm.test.ts.
 */
import { EventEmitter } from "node:events";
import { AttrStream, formatGenlHeader, formatMessage, putU16 } from "netlink";
import { describe, expect, it } from "vitest";
import {
  IpvsDecodeError,
  IpvsError,
  IpvsTimeoutError,
  IpvsUnavailableError,
} from "../../src/kernel/errors.ts";
import type { NetlinkReply } from "../../src/kernel/ipvs-decode.ts";
import { attributeMap, decodeGenlPayload, decodeMessages } from "../../src/kernel/ipvs-decode.ts";
import { destinationAttr, serviceAttr } from "../../src/kernel/ipvs-encode.ts";
import {
  CTRL_ATTR_FAMILY_ID,
  GENL_ID_CTRL,
  IPVS_CMD,
  IPVS_CMD_ATTR,
  IPVS_DEST_ATTR,
  IPVS_SVC_ATTR,
} from "../../src/kernel/ipvs-protocol.ts";
import type { RawSocket } from "../../src/kernel/netlink-kernel.ts";
import { batchSizeFor, MAX_BATCH_SIZE, NetlinkIpvsKernel } from "../../src/kernel/netlink-kernel.ts";
import { readKernelTable } from "../../src/kernel/read-kernel-table.ts";
import type { Operation } from "../../src/vocabulary/operations.ts";
import type { IpvsService, ServiceKey } from "../../src/vocabulary/table.ts";
import { NO_FLAGS, NO_TUNNEL } from "../../src/vocabulary/table.ts";
import { attributeDataAt } from "./attribute-at.ts";

type AddressKey = Extract<ServiceKey, { kind: "address" }>;
type Responder = (m: NetlinkReply, cmd: number) => Buffer[];

function nlmsg(type: number, seq: number, flags: number, payload: Uint8Array[]): Buffer {
  return Buffer.concat(formatMessage({ type, flags, seq, port: 1234, data: payload }));
}
/** The port of the service a GET_DEST request names. */
function requestedServicePort(m: NetlinkReply): number {
  const top = attributeMap(decodeGenlPayload(m.payload).attrs, "request");
  const attrs = top.get(IPVS_CMD_ATTR.SERVICE)!;
  const svc = attributeMap(attrs, "service");
  return svc.get(4)!.readUInt16BE(0);
}
function ack(m: NetlinkReply, errno = 0): Buffer {
  const e = Buffer.alloc(20);
  e.writeInt32LE(-errno, 0);
  return nlmsg(2, m.seq, 0, [e]);
}
function done(m: NetlinkReply): Buffer {
  return nlmsg(3, m.seq, 2, [Buffer.alloc(4)]);
}
function familyReply(m: NetlinkReply, id: number): Buffer {
  const attrs = new AttrStream();
  attrs.push(CTRL_ATTR_FAMILY_ID, putU16(id));
  return nlmsg(GENL_ID_CTRL, m.seq, 0, [formatGenlHeader({ cmd: 1, version: 2 }), ...attrs.bufs]);
}

/** Whether a reply buffer is a success ACK (NLMSG_ERROR with errno 0). */
function isSuccessAck(b: Buffer): boolean {
  return b.readUInt16LE(4) === 2 && b.readInt32LE(16) === 0;
}

/**
 * A socket that answers each datagram with what `respond` returns, one reply datagram per buffer.
 * Like the kernel, it sends no success ACK for a request without NLM_F_ACK.
 */
class ScriptedSocket extends EventEmitter implements RawSocket {
  readonly datagrams: NetlinkReply[][] = [];
  closed = false;
  /** When set, getRecvBufferSize() reports it (getsockopt SO_RCVBUF). */
  rcvbuf: number | undefined;
  /** GET_DEST dumps between their request and their DONE: on this socket, on all, and the most seen. */
  dumping = 0;
  static dumping = 0;
  static maxDumping = 0;
  static maxDumpingPerSocket = 0;
  readonly respond: Responder;
  readonly family: () => number | undefined;
  constructor(respond: Responder, family: () => number | undefined) {
    super();
    this.respond = respond;
    this.family = family;
  }
  send(msg: Uint8Array | Uint8Array[], _options: { port?: number }, cb: (err?: Error) => void): void {
    const msgs = decodeMessages(Buffer.concat(Array.isArray(msg) ? msg : [msg]));
    this.datagrams.push(msgs);
    const out: Buffer[] = [];
    for (const m of msgs) {
      if (m.type === GENL_ID_CTRL) {
        const id = this.family();
        out.push(id === undefined ? ack(m, 2) : familyReply(m, id), ack(m));
      } else if (m.type !== this.family()) {
        out.push(ack(m, 2)); // genl: unknown family id
      } else {
        const replies = this.respond(m, decodeGenlPayload(m.payload).cmd);
        out.push(...(m.flags & 4 ? replies : replies.filter((b) => !isSuccessAck(b))));
      }
    }
    const dump = msgs.some(
      (m) => m.type === this.family() && decodeGenlPayload(m.payload).cmd === IPVS_CMD.GET_DEST,
    );
    if (dump) {
      this.dumping++;
      ScriptedSocket.dumping++;
      ScriptedSocket.maxDumping = Math.max(ScriptedSocket.maxDumping, ScriptedSocket.dumping);
      ScriptedSocket.maxDumpingPerSocket = Math.max(ScriptedSocket.maxDumpingPerSocket, this.dumping);
    }
    cb();
    setImmediate(() => {
      out.forEach((d, i) => {
        if (dump && i === out.length - 1) {
          this.dumping--; // the DONE: the kernel may start this socket's next dump while it is delivered
          ScriptedSocket.dumping--;
        }
        this.emit("message", d, { port: 0, groups: 0 });
      });
    });
  }
  close(): void {
    this.closed = true;
  }
  ref(): void {}
  unref(): void {}
  getRecvBufferSize(): number {
    if (this.rcvbuf === undefined) throw new Error("getsockopt not scripted");
    return this.rcvbuf;
  }
}

const key: AddressKey = { kind: "address", family: "IPv4", protocol: "TCP", address: "192.0.2.1", port: 80 };
const service: IpvsService & { key: AddressKey } = {
  key,
  config: { scheduler: "rr", flags: { ...NO_FLAGS }, timeout: 0, netmask: 0xffffffff, persistenceEngine: "" },
};

/** "ok", the errno, or the errno and "?" for an unknown result. */
function resultText(r: { ok: boolean; error?: IpvsError; unknown?: boolean }): string {
  return r.ok ? "ok" : `${r.error!.errno}${r.unknown ? "?" : ""}`;
}

/** Attribute bytes with the data of the nested attribute at `path` changed by `write`. */
function patched(attrs: Uint8Array[], path: number[], write: (b: Buffer, at: number) => void): Buffer {
  const buf = Buffer.concat(attrs);
  write(buf, attributeDataAt(buf, path));
  return buf;
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

function kernelWith(respond: Responder, family: () => number | undefined = () => 30, options = {}) {
  const sockets: ScriptedSocket[] = [];
  const kernel = new NetlinkIpvsKernel({
    timeoutMs: 200,
    ...options,
    createSocket: () => {
      const s = new ScriptedSocket(respond, family);
      sockets.push(s);
      return s;
    },
  });
  return { kernel, sockets };
}

describe("NetlinkIpvsKernel (scripted socket)", () => {
  it("says clearly that IPVS is unavailable when the family does not exist, and retries later", async () => {
    let id: number | undefined;
    const { kernel } = kernelWith(
      (m) => [ack(m)],
      () => id,
    );
    const error = await kernel.listServices().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IpvsUnavailableError);
    expect((error as Error).message).toContain(
      "IPVS is not available in this kernel: generic netlink family IPVS not found; load the ip_vs module",
    );
    id = 30; // ip_vs loaded after the agent started
    await kernel.addService(service);
  });

  it("re-resolves a stale family id on ENOENT and retries once", async () => {
    let id = 30;
    const seen: number[] = [];
    const { kernel } = kernelWith(
      (m) => {
        seen.push(m.type);
        return [ack(m)];
      },
      () => id,
    );
    await kernel.addService(service);
    id = 31; // module reloaded: new id
    await kernel.addService(service);
    expect(seen).toEqual([30, 31]);
  });

  it("keeps a genuine ENOENT and explains it (missing scheduler module)", async () => {
    const { kernel, sockets } = kernelWith((m) => [ack(m, 2)]);
    const error = await kernel
      .addService({ ...service, config: { ...service.config, scheduler: "mh" } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IpvsError);
    expect(error).toMatchObject({ errno: "ENOENT", operation: "addService", object: "TCP 192.0.2.1:80" });
    expect((error as Error).message).toContain("scheduler module ip_vs_mh not available");
    // family lookup, request, re-lookup (same id): no second send of the request
    expect(sockets[0]!.datagrams.map((d) => d[0]!.type)).toEqual([GENL_ID_CTRL, 30, GENL_ID_CTRL]);
  });

  it("times out, reports IpvsTimeoutError and opens a new socket for the next request", async () => {
    let silent = true;
    const { kernel, sockets } = kernelWith((m) => (silent ? [] : [ack(m)]));
    const error = await kernel.deleteService(service.key).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IpvsTimeoutError);
    expect(error).toMatchObject({ errno: "ETIMEDOUT", operation: "deleteService" });
    await nextTurn(); // sockets are closed on the next turn of the event loop
    expect(sockets[0]!.closed).toBe(true);
    silent = false;
    await kernel.deleteService(service.key);
    expect(sockets).toHaveLength(2);
  });

  it("batches apply() into datagrams of batchSize and maps each ACK to its operation", async () => {
    const { kernel, sockets } = kernelWith(
      (m, cmd) => [ack(m, cmd === IPVS_CMD.DEL_SERVICE ? 3 : 0)],
      () => 30,
      { batchSize: 2 },
    );
    const ops: Operation[] = [
      { op: "addService", service },
      { op: "deleteService", key: { kind: "fwmark", family: "IPv4", fwmark: 1 } },
      { op: "addService", service: { ...service, key: { ...service.key, port: 70000 } } },
      { op: "updateService", service },
      { op: "deleteService", key: service.key },
    ];
    const results = await kernel.apply(ops);
    expect(results.map((r) => (r.ok ? "ok" : r.error.errno))).toEqual([
      "ok",
      "ESRCH",
      "EINVAL",
      "ok",
      "ESRCH",
    ]);
    const failed = results[1];
    expect(failed?.ok === false && failed.error.message).toContain("virtual service does not exist");
    const ipvsDatagrams = sockets[0]!.datagrams.filter((d) => d[0]!.type === 30);
    expect(ipvsDatagrams.map((d) => d.length)).toEqual([2, 2]);
  });

  it("never puts more than MAX_BATCH_SIZE requests in one datagram (the ACKs must fit the receive buffer)", async () => {
    const { kernel, sockets } = kernelWith(
      (m) => [ack(m, 3)],
      () => 30,
      { batchSize: 100_000 },
    );
    const ops: Operation[] = Array.from({ length: MAX_BATCH_SIZE + 10 }, (_, i) => ({
      op: "deleteService",
      key: { kind: "fwmark", family: "IPv4", fwmark: i + 1 },
    }));
    const results = await kernel.apply(ops);
    expect(results.filter((r) => !r.ok)).toHaveLength(MAX_BATCH_SIZE + 10);
    const ipvsDatagrams = sockets[0]!.datagrams.filter((d) => d[0]!.type === 30);
    expect(ipvsDatagrams.map((d) => d.length)).toEqual([MAX_BATCH_SIZE, 10]);
  });

  it("times a long dump by silence, not by its total length", async () => {
    // Five datagrams 300 ms apart (1.5 s in all) against a 1 s timeout: the dump keeps arriving.
    // (Wide margins: a loaded machine may delay a datagram by a few hundred ms and the test still holds.)
    class SlowSocket extends ScriptedSocket {
      override send(
        msg: Uint8Array | Uint8Array[],
        options: { port?: number },
        cb: (err?: Error) => void,
      ): void {
        const msgs = decodeMessages(Buffer.concat(Array.isArray(msg) ? msg : [msg]));
        const m = msgs[0]!;
        if (m.type !== 30) {
          super.send(msg, options, cb);
          return;
        }
        cb();
        const part = (port: number) =>
          nlmsg(30, m.seq, 2, [
            formatGenlHeader({ cmd: IPVS_CMD.NEW_SERVICE, version: 1 }),
            ...serviceAttr({ ...service, key: { ...service.key, port } }),
          ]);
        const datagrams = [part(1), part(2), part(3), part(4), done(m)];
        for (const [i, d] of datagrams.entries()) {
          setTimeout(() => this.emit("message", d, { port: 0, groups: 0 }), 300 * (i + 1));
        }
      }
    }
    const kernel = new NetlinkIpvsKernel({
      timeoutMs: 1000,
      createSocket: () =>
        new SlowSocket(
          () => [],
          () => 30,
        ),
    });
    const listed = await kernel.listServices();
    expect(listed).toHaveLength(4);
  });

  it("reassembles a dump spread over several datagrams and ignores late replies", async () => {
    const reply = (m: NetlinkReply, port: number) =>
      nlmsg(30, m.seq, 2, [
        formatGenlHeader({ cmd: IPVS_CMD.NEW_SERVICE, version: 1 }),
        ...serviceAttr({ ...service, key: { ...service.key, port } }),
      ]);
    const { kernel } = kernelWith((m, cmd) =>
      cmd === IPVS_CMD.GET_SERVICE
        ? [ack({ ...m, seq: 9999 }), reply(m, 1), Buffer.concat([reply(m, 2), reply(m, 3)]), done(m)]
        : [ack(m)],
    );
    const listed = await kernel.listServices();
    expect(listed.map((s) => (s.key.kind === "address" ? s.key.port : 0))).toEqual([1, 2, 3]);
  });

  it("serialises concurrent calls: one exchange in flight at a time", async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const { kernel } = kernelWith((m) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setImmediate(() => inFlight--);
      return [ack(m)];
    });
    await Promise.all([1, 2, 3, 4].map((p) => kernel.deleteService({ ...service.key, port: p })));
    expect(maxInFlight).toBe(1);
  });

  it("readTable dumps destination lists over readConcurrency sockets, one dump per socket at a time", async () => {
    const reply = (m: NetlinkReply, type: number, cmd: number, attrs: Uint8Array[]) =>
      nlmsg(type, m.seq, 2, [formatGenlHeader({ cmd, version: 1 }), ...attrs]);
    const ports = Array.from({ length: 11 }, (_, i) => i + 1);
    for (const readConcurrency of [1, 3]) {
      ScriptedSocket.maxDumping = 0;
      ScriptedSocket.maxDumpingPerSocket = 0;
      const { kernel, sockets } = kernelWith(
        (m, cmd) => {
          if (cmd === IPVS_CMD.GET_SERVICE) {
            return [
              ...ports.map((port) =>
                reply(m, 30, IPVS_CMD.NEW_SERVICE, serviceAttr({ ...service, key: { ...key, port } })),
              ),
              done(m),
            ];
          }
          // the destination's port tells which service was asked for
          const port = requestedServicePort(m) + 1000;
          const destination = {
            key: { family: "IPv4" as const, address: "198.51.100.1", port },
            config: {
              forwarding: "NAT" as const,
              weight: 1,
              upperThreshold: 0,
              lowerThreshold: 0,
              ...NO_TUNNEL,
            },
          };
          return [reply(m, 30, IPVS_CMD.NEW_DEST, destinationAttr(destination)), done(m)];
        },
        () => 30,
        { readConcurrency },
      );
      const { undecodable, table } = await kernel.readTable();
      expect(undecodable).toEqual([]);
      expect(
        table.map((e) => [
          e.service.key.kind === "address" && e.service.key.port,
          e.destinations.map((d) => d.key.port),
        ]),
      ).toEqual(ports.map((p) => [p, [p + 1000]]));
      expect(ScriptedSocket.maxDumpingPerSocket).toBe(1);
      expect(ScriptedSocket.maxDumping).toBe(readConcurrency);
      expect(sockets).toHaveLength(readConcurrency);
      expect(await readKernelTable(kernel)).toHaveLength(ports.length); // the extra sockets are reused
      expect(sockets).toHaveLength(readConcurrency);
      await kernel.close();
      await nextTurn(); // sockets are closed on the next turn of the event loop
      expect(sockets.every((s) => s.closed)).toBe(true);
    }
  });

  it("asks for an ACK on the last request of a datagram only, and reads silence before it as success", async () => {
    const { kernel, sockets } = kernelWith(
      (m, cmd) => [ack(m, cmd === IPVS_CMD.DEL_SERVICE ? 3 : 0)],
      () => 30,
      { batchSize: 3 },
    );
    const results = await kernel.apply([
      { op: "addService", service },
      { op: "deleteService", key: { kind: "fwmark", family: "IPv4", fwmark: 1 } },
      { op: "updateService", service },
      { op: "updateService", service },
      { op: "deleteService", key: service.key },
    ]);
    expect(results.map(resultText)).toEqual(["ok", "ESRCH", "ok", "ok", "ESRCH"]);
    const ipvs = sockets[0]!.datagrams.filter((d) => d[0]!.type === 30);
    expect(ipvs.map((d) => d.map((m) => (m.flags & 4 ? "ack" : "-")))).toEqual([
      ["-", "-", "ack"],
      ["-", "ack"],
    ]);
  });

  describe("a transport failure in the middle of apply()", () => {
    /** 8 operations in chunks of 3: [0 1 2] [3 4 5] [6 7]; `second` answers the second chunk's requests. */
    function eight(second: (m: NetlinkReply, i: number) => Buffer[], options = {}) {
      let n = 0;
      const setup = kernelWith(
        (m) => {
          const i = n++;
          return i >= 3 && i < 6 ? second(m, i) : [ack(m)];
        },
        () => 30,
        { batchSize: 3, timeoutMs: 150, ...options },
      );
      const ops: Operation[] = Array.from({ length: 8 }, (_, i) => ({
        op: "updateService",
        service: { ...service, key: { ...key, port: 100 + i } },
      }));
      return { ...setup, ops };
    }

    it("a timeout: answered requests keep their result, unanswered ones are unknown, later chunks are not sent", async () => {
      // request 4 fails (ESRCH), the final ACK (request 5) is lost
      const { kernel, sockets, ops } = eight((m, i) => (i === 4 ? [ack(m, 3)] : i === 5 ? [] : [ack(m)]));
      const results = await kernel.apply(ops);
      expect(results.map(resultText)).toEqual([
        "ok",
        "ok",
        "ok",
        "ok",
        "ESRCH",
        "ETIMEDOUT?",
        "ETIMEDOUT",
        "ETIMEDOUT",
      ]);
      const unknown = results[5]!;
      expect(unknown.ok === false && unknown.error.message).toContain("may or may not have been applied");
      expect(unknown.ok === false && unknown.error.object).toBe("TCP 192.0.2.1:105");
      const notSent = results[7]!;
      expect(notSent.ok === false && notSent.error.message).toContain("not sent");
      expect(sockets[0]!.datagrams.filter((d) => d[0]!.type === 30)).toHaveLength(2);
      await nextTurn(); // sockets are closed on the next turn of the event loop
      expect(sockets[0]!.closed).toBe(true);
      await kernel.apply(ops.slice(0, 1)); // a new socket for the next call
      expect(sockets).toHaveLength(2);
    });

    it("ENOBUFS (answers dropped): the answers still queued are read first, the rest are unknown", async () => {
      let socketOf: () => ScriptedSocket = () => {
        throw new Error("unset");
      };
      const { kernel, sockets, ops } = eight((m, i) => {
        if (i === 5) return []; // the final ACK did not fit the receive buffer
        if (i === 3) {
          // recvmsg() reports ENOBUFS before the answers that did fit (they are delivered after it)
          queueMicrotask(() => {
            const error = Object.assign(new Error("no buffer space available"), { errno: -105 });
            socketOf().emit("error", error);
          });
        }
        return [ack(m, i === 3 ? 17 : 0)];
      });
      socketOf = () => sockets[0]!;
      const results = await kernel.apply(ops);
      expect(results.map(resultText)).toEqual([
        "ok",
        "ok",
        "ok",
        "EEXIST",
        "ENOBUFS?",
        "ENOBUFS?",
        "ENOBUFS",
        "ENOBUFS",
      ]);
      await nextTurn(); // sockets are closed on the next turn of the event loop
      expect(sockets[0]!.closed).toBe(true);
    });

    it("a failed sendmsg: nothing of the chunk was applied, so its requests fail (not unknown)", async () => {
      const { kernel, sockets, ops } = eight((m) => [ack(m)]);
      let ipvsSends = 0;
      const socket = () => sockets[0]!;
      await kernel.getInfo().catch(() => undefined); // open the socket
      const send = socket().send.bind(socket());
      socket().send = (msg, options, cb) => {
        const first = decodeMessages(Buffer.concat(Array.isArray(msg) ? msg : [msg]))[0]!;
        if (first.type === 30 && ++ipvsSends === 2) {
          cb(Object.assign(new Error("Message too long"), { errno: -90 }));
          return;
        }
        send(msg, options, cb);
      };
      const results = await kernel.apply(ops);
      expect(results.map(resultText)).toEqual([
        "ok",
        "ok",
        "ok",
        "EMSGSIZE",
        "EMSGSIZE",
        "EMSGSIZE",
        "EMSGSIZE",
        "EMSGSIZE",
      ]);
      expect(ipvsSends).toBe(2);
    });

    it("IPVS unavailable: every operation fails, apply() does not throw", async () => {
      const { kernel } = kernelWith(
        (m) => [ack(m)],
        () => undefined,
      );
      const results = await kernel.apply([{ op: "addService", service }]);
      expect(results.map(resultText)).toEqual(["ENOENT"]);
      expect(results[0]!.ok === false && results[0]!.error).toBeInstanceOf(IpvsUnavailableError);
    });
  });

  it("sizes batches from the socket's receive buffer (getsockopt SO_RCVBUF)", async () => {
    expect(batchSizeFor(425984)).toBe(256); // default rmem_max 212992, doubled by the kernel
    expect(batchSizeFor(131072)).toBe(85);
    expect(batchSizeFor(16384)).toBe(10);
    expect(batchSizeFor(1000)).toBe(1);
    expect(batchSizeFor(425984, 128)).toBe(128);
    const { kernel, sockets } = kernelWith((m) => [ack(m)]);
    await kernel.deleteService(service.key); // opens the socket
    sockets[0]!.rcvbuf = 16384;
    const ops: Operation[] = Array.from({ length: 25 }, (_, i) => ({
      op: "deleteService",
      key: { kind: "fwmark", family: "IPv4", fwmark: i + 1 },
    }));
    expect((await kernel.apply(ops)).every((r) => r.ok)).toBe(true);
    expect(sockets[0]!.datagrams.filter((d) => d[0]!.type === 30).map((d) => d.length)).toEqual([
      1, 10, 10, 5,
    ]);
  });

  it("readTable decodes entry by entry: an undecodable service or destination is reported, the rest is read", async () => {
    const reply = (m: NetlinkReply, cmd: number, attrs: Uint8Array[]) =>
      nlmsg(30, m.seq, 2, [formatGenlHeader({ cmd, version: 1 }), ...attrs]);
    const withPort = (port: number) => ({ ...service, key: { ...key, port } });
    const unknownProtocol = patched(
      serviceAttr(withPort(2)),
      [IPVS_CMD_ATTR.SERVICE, IPVS_SVC_ATTR.PROTOCOL],
      (b, at) => b.writeUInt16LE(99, at),
    );
    const dest = (port: number) => ({
      key: { family: "IPv4" as const, address: "198.51.100.1", port },
      config: { forwarding: "NAT" as const, weight: 1, upperThreshold: 0, lowerThreshold: 0, ...NO_TUNNEL },
    });
    const unknownForwarding = patched(
      destinationAttr(dest(1003)),
      [IPVS_CMD_ATTR.DEST, IPVS_DEST_ATTR.FWD_METHOD],
      (b, at) => b.writeUInt32LE(5, at),
    );
    const { kernel } = kernelWith((m, cmd) => {
      if (cmd === IPVS_CMD.GET_SERVICE) {
        return [
          reply(m, IPVS_CMD.NEW_SERVICE, serviceAttr(withPort(1))),
          reply(m, IPVS_CMD.NEW_SERVICE, [unknownProtocol]),
          reply(m, IPVS_CMD.NEW_SERVICE, serviceAttr(withPort(3))),
          done(m),
        ];
      }
      const port = requestedServicePort(m);
      if (port === 1) return [reply(m, IPVS_CMD.NEW_DEST, destinationAttr(dest(1001))), done(m)];
      return [
        Buffer.concat([
          reply(m, IPVS_CMD.NEW_DEST, destinationAttr(dest(1004))),
          reply(m, IPVS_CMD.NEW_DEST, [unknownForwarding]),
        ]),
        done(m),
      ];
    });
    const { table, undecodable } = await kernel.readTable();
    expect(table.map((e) => [e.service.key, e.destinations.map((d) => d.key.port)])).toEqual([
      [withPort(1).key, [1001]],
    ]);
    expect(undecodable).toEqual([
      { service: "protocol 99 192.0.2.1:2", reason: "service PROTOCOL 99 is not TCP, UDP or SCTP" },
      {
        service: "TCP 192.0.2.1:3",
        key: withPort(3).key,
        destination: "198.51.100.1:1003",
        reason: "destination FWD_METHOD 5 is not known",
      },
    ]);
    // the listing methods return what decodes and say nothing of the rest
    expect((await kernel.listServices()).map((s) => s.key)).toEqual([withPort(1).key, withPort(3).key]);
    expect((await kernel.listDestinations(withPort(3).key)).map((d) => d.key.port)).toEqual([1004]);
  });

  it("a reply that does not parse fails the read with IpvsDecodeError; the next read works", async () => {
    let broken = true;
    const { kernel, sockets } = kernelWith((m, cmd) => {
      if (cmd === IPVS_CMD.GET_SERVICE) {
        return [
          nlmsg(30, m.seq, 2, [
            formatGenlHeader({ cmd: IPVS_CMD.NEW_SERVICE, version: 1 }),
            ...serviceAttr(service),
          ]),
          done(m),
        ];
      }
      if (!broken) return [done(m)];
      const truncated = Buffer.alloc(20);
      truncated.writeUInt32LE(400, 0); // claims 400 bytes
      truncated.writeUInt32LE(m.seq, 8);
      return [truncated];
    });
    const error = await kernel.readTable().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IpvsDecodeError);
    await nextTurn(); // sockets are closed on the next turn of the event loop
    expect(sockets[0]!.closed).toBe(true);
    broken = false;
    expect((await kernel.readTable()).table).toHaveLength(1);
  });

  it("readTable times its destination dumps by silence: a steady slow read lives on, a silent one fails", async () => {
    // 12 services, one destination dump at a time, each answered 100 ms late: 1.2 s in all against a
    // 500 ms timeout. Then the dump of one service is never answered.
    let silentPort = 0;
    const reply = (m: NetlinkReply, cmd: number, attrs: Uint8Array[]) =>
      nlmsg(30, m.seq, 2, [formatGenlHeader({ cmd, version: 1 }), ...attrs]);
    class LateSocket extends ScriptedSocket {
      override send(
        msg: Uint8Array | Uint8Array[],
        options: { port?: number },
        cb: (err?: Error) => void,
      ): void {
        const m = decodeMessages(Buffer.concat(Array.isArray(msg) ? msg : [msg]))[0]!;
        if (m.type !== 30 || decodeGenlPayload(m.payload).cmd !== IPVS_CMD.GET_DEST) {
          super.send(msg, options, cb);
          return;
        }
        cb();
        const port = requestedServicePort(m);
        if (port === silentPort) return;
        setTimeout(() => this.emit("message", done(m), { port: 0, groups: 0 }), 100);
      }
    }
    const ports = Array.from({ length: 12 }, (_, i) => i + 1);
    const kernel = new NetlinkIpvsKernel({
      timeoutMs: 500,
      readConcurrency: 1,
      createSocket: () =>
        new LateSocket(
          (m) => [
            ...ports.map((port) =>
              reply(m, IPVS_CMD.NEW_SERVICE, serviceAttr({ ...service, key: { ...key, port } })),
            ),
            done(m),
          ],
          () => 30,
        ),
    });
    let started = performance.now();
    const { table } = await kernel.readTable();
    expect(table).toHaveLength(12);
    expect(performance.now() - started).toBeGreaterThan(1000); // longer than the timeout, and still read
    silentPort = 7;
    started = performance.now();
    const error = await kernel.readTable().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IpvsTimeoutError);
    expect(error).toMatchObject({ errno: "ETIMEDOUT", operation: "readTable" });
    // services 1-6 answered (600 ms), then silence: detected after one to two periods of it
    expect(performance.now() - started).toBeGreaterThanOrEqual(600 + 500 - 50);
    silentPort = 0;
    expect((await kernel.readTable()).table).toHaveLength(12); // a new socket, a whole read
  });

  it("refuses calls after close", async () => {
    const { kernel } = kernelWith((m) => [ack(m)]);
    await kernel.close();
    await expect(kernel.getInfo()).rejects.toBeInstanceOf(IpvsError);
  });
});
