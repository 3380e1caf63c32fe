/**
 * NetlinkIpvsKernel's own logic (family resolution, errno mapping, batching, timeouts) against a
 * scripted socket. The real-kernel behaviour is checked by e2e/vm/tests/kernel-contract.vm.test.ts.
 */
import { EventEmitter } from "node:events";
import { AttrStream, formatGenlHeader, formatMessage, putU16 } from "netlink";
import { describe, expect, it } from "vitest";
import { IpvsError, IpvsTimeoutError, IpvsUnavailableError } from "../../src/kernel/errors.ts";
import type { NetlinkReply } from "../../src/kernel/ipvs-codec.ts";
import {
  attributeMap,
  CTRL_ATTR_FAMILY_ID,
  decodeGenlPayload,
  decodeMessages,
  destinationAttr,
  GENL_ID_CTRL,
  IPVS_CMD,
  IPVS_CMD_ATTR,
  serviceAttr,
} from "../../src/kernel/ipvs-codec.ts";
import type { RawSocket } from "../../src/kernel/netlink-kernel.ts";
import { MAX_BATCH_SIZE, NetlinkIpvsKernel } from "../../src/kernel/netlink-kernel.ts";
import { readKernelTable } from "../../src/kernel/read-kernel-table.ts";
import type { Operation } from "../../src/model/plan.ts";
import type { IpvsService, ServiceKey } from "../../src/model/table.ts";
import { NO_FLAGS, NO_TUNNEL } from "../../src/model/table.ts";

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

/** A socket that answers each datagram with what `respond` returns, one reply datagram per buffer. */
class ScriptedSocket extends EventEmitter implements RawSocket {
  readonly datagrams: NetlinkReply[][] = [];
  closed = false;
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
        out.push(...this.respond(m, decodeGenlPayload(m.payload).cmd));
      }
    }
    cb();
    setImmediate(() => {
      for (const d of out) this.emit("message", d, { port: 0, groups: 0 });
    });
  }
  close(): void {
    this.closed = true;
  }
  ref(): void {}
  unref(): void {}
}

const key: AddressKey = { kind: "address", family: "IPv4", protocol: "TCP", address: "192.0.2.1", port: 80 };
const service: IpvsService & { key: AddressKey } = {
  key,
  config: { scheduler: "rr", flags: { ...NO_FLAGS }, timeout: 0, netmask: 0xffffffff, persistenceEngine: "" },
};

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

  it("answers readKernelTable's concurrent listDestinations() calls one exchange at a time, each with its own reply", async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const reply = (m: NetlinkReply, type: number, cmd: number, attrs: Uint8Array[]) =>
      nlmsg(type, m.seq, 2, [formatGenlHeader({ cmd, version: 1 }), ...attrs]);
    const ports = [1, 2, 3, 4, 5];
    const { kernel } = kernelWith((m, cmd) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setImmediate(() => inFlight--);
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
        config: { forwarding: "NAT" as const, weight: 1, upperThreshold: 0, lowerThreshold: 0, ...NO_TUNNEL },
      };
      return [reply(m, 30, IPVS_CMD.NEW_DEST, destinationAttr(destination)), done(m)];
    });
    const table = await readKernelTable(kernel);
    expect(
      table.map((e) => [
        e.service.key.kind === "address" && e.service.key.port,
        e.destinations.map((d) => d.key.port),
      ]),
    ).toEqual(ports.map((p) => [p, [p + 1000]]));
    expect(maxInFlight).toBe(1);
  });

  it("refuses calls after close", async () => {
    const { kernel } = kernelWith((m) => [ack(m)]);
    await kernel.close();
    await expect(kernel.getInfo()).rejects.toBeInstanceOf(IpvsError);
  });
});
