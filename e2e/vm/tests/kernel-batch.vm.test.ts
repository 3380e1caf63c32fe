/**
 * apply() batch sizing against the real kernel (inside the test-bed VM): the kernel queues every
 * answer of a datagram on the socket inside sendmsg(), so the answers must fit the receive buffer.
 * These tests measure how many fit (ANSWER_TRUESIZE), show what a batch past that does (answers
 * lost, results unknown, no crash), and that apply() sizes its batches so it does not happen.
 */
import { RawNetlinkSocket } from "netlink";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { OperationResult } from "../../../src/kernel/ipvs-kernel.ts";
import type { RawSocket } from "../../../src/kernel/netlink-kernel.ts";
import {
  ANSWER_TRUESIZE,
  batchSizeFor,
  MAX_BATCH_SIZE,
  NetlinkIpvsKernel,
} from "../../../src/kernel/netlink-kernel.ts";
import type { Operation } from "../../../src/vocabulary/operations.ts";
import type { ServiceKey } from "../../../src/vocabulary/table.ts";
import { NO_FLAGS } from "../../../src/vocabulary/table.ts";

/** The netlink package's socket, counting the requests of each datagram sent; `reportedRcvbuf` lies. */
function countingSocket(recvBufferSize: number, sizes: number[], reportedRcvbuf?: number): () => RawSocket {
  return () => {
    const socket = new RawNetlinkSocket(16, { recvBufferSize, sendBufferSize: 1 << 20 });
    const send = socket.send.bind(socket);
    const counted = socket as unknown as RawSocket;
    counted.send = (msg, options, cb) => {
      const buf = Buffer.concat(Array.isArray(msg) ? msg : [msg]);
      let n = 0;
      for (let at = 0; at < buf.length; at += (buf.readUInt32LE(at) + 3) & ~3) n++;
      sizes.push(n);
      send(msg, options, cb);
    };
    if (reportedRcvbuf !== undefined) counted.getRecvBufferSize = () => reportedRcvbuf;
    return counted;
  };
}

const fwmark = (n: number): ServiceKey => ({ kind: "fwmark", family: "IPv4", fwmark: n });
/** Deletes of services that do not exist: every one is answered with an error echoing the request. */
const failing = (n: number): Operation[] =>
  Array.from({ length: n }, (_, i) => ({ op: "deleteService", key: fwmark(60000 + i) }));
const text = (r: OperationResult) => (r.ok ? "ok" : `${r.error.errno}${r.unknown ? "?" : ""}`);

beforeAll(async () => {
  const kernel = new NetlinkIpvsKernel();
  await kernel.flush();
  await kernel.close();
});

describe("apply() batches and the receive buffer (real kernel)", () => {
  let kernel: NetlinkIpvsKernel | undefined;
  afterEach(async () => {
    await kernel?.flush();
    await kernel?.close();
    kernel = undefined;
  });

  it("the kernel grants SO_RCVBUF = 2 x min(requested, rmem_max); the default gives batches of MAX_BATCH_SIZE", () => {
    const socket = new RawNetlinkSocket(16, { recvBufferSize: 4 << 20, sendBufferSize: 1 << 20 });
    const granted = socket.getRecvBufferSize();
    socket.close();
    expect(granted).toBe(425984); // rmem_max 212992 (the VM kernel's default), doubled
    expect(batchSizeFor(granted)).toBe(MAX_BATCH_SIZE);
  });

  it(`a batch past the receive buffer loses the later answers (unknown), without crashing; ${ANSWER_TRUESIZE} bytes per answer`, async () => {
    const sizes: number[] = [];
    // SO_RCVBUF 32768 in truth; the socket claims 16 MiB so apply() sends 200 requests in one datagram
    kernel = new NetlinkIpvsKernel({
      createSocket: countingSocket(16384, sizes, 16 << 20),
      timeoutMs: 10000,
    });
    const results = await kernel.apply(failing(200));
    const answered = results.filter((r) => !r.ok && !r.unknown).length;
    // The answers that arrived are the first ones (a prefix), the rest are unknown (ENOBUFS).
    expect(results.map(text)).toEqual([
      ...Array(answered).fill("ESRCH"),
      ...Array(200 - answered).fill("ENOBUFS?"),
    ]);
    process.stdout.write(
      `receive buffer 32768 bytes held ${answered} answers: ${(32768 / answered).toFixed(0)} bytes each, ` +
        `${(answered / 32).toFixed(2)} per KiB\n`,
    );
    expect(answered).toBe(Math.floor(32768 / ANSWER_TRUESIZE)); // 42: an answer is queued only if it fits
    expect(sizes.filter((n) => n === 200)).toHaveLength(1);
    // the handle opened a new socket and works
    expect((await kernel.apply(failing(1))).map(text)).toEqual(["ESRCH"]);
  });

  it("successes take no receive buffer: only failures and the last ACK are answered", async () => {
    const sizes: number[] = [];
    kernel = new NetlinkIpvsKernel({
      createSocket: countingSocket(16384, sizes, 16 << 20),
      timeoutMs: 10000,
    });
    const service = (n: number) => ({
      key: fwmark(n),
      config: {
        scheduler: "rr",
        flags: { ...NO_FLAGS },
        timeout: 0,
        netmask: 0xffffffff,
        persistenceEngine: "",
      },
    });
    const ops: Operation[] = Array.from({ length: 250 }, (_, i) => ({
      op: "addService",
      service: service(i + 1),
    }));
    const results = await kernel.apply(ops);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(sizes).toContain(250);
  });

  it("apply() sizes batches from the socket's real receive buffer, so every answer arrives", async () => {
    const sizes: number[] = [];
    kernel = new NetlinkIpvsKernel({ createSocket: countingSocket(16384, sizes), timeoutMs: 10000 });
    const results = await kernel.apply(failing(200));
    expect(results.map(text)).toEqual(Array(200).fill("ESRCH"));
    const batch = batchSizeFor(32768);
    expect(batch).toBe(21);
    expect(Math.max(...sizes)).toBe(batch);
  });
});
