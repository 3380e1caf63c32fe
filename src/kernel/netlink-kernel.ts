/**
 * NetlinkIpvsKernel: IpvsKernel over generic netlink, using the `netlink` package's raw socket
 * (its request() helper can't batch, loses errnos, has no default timeout and keeps multipart
 * state per socket, so sequencing, ACK matching and timeouts live here).
 *
 * - The "IPVS" family id is resolved lazily and re-resolved when a request fails with ENOENT
 *   (a stale id after ip_vs was reloaded); a missing family gives IpvsUnavailableError.
 * - One exchange in flight per socket (promise queue); every exchange has a timeout, after which
 *   the socket is closed and a new one opened on the next call.
 * - apply() sends up to `batchSize` requests in one datagram; the kernel processes them in order
 *   and acknowledges each, so one failure does not stop the rest.
 */
import type { MessageInfo } from "netlink";
import { RawNetlinkSocket } from "netlink";
import type { Operation } from "../model/plan.ts";
import type {
  DestinationKey,
  Family,
  IpvsDestination,
  IpvsInfo,
  IpvsService,
  IpvsTimeouts,
  KernelDestination,
  KernelService,
  KernelSnapshot,
  ServiceKey,
  SyncDaemonConfig,
  SyncDaemonState,
} from "../model/table.ts";
import { serviceKeyString } from "../model/table.ts";
import { ipvsError, operationObject } from "./error-hints.ts";
import type { ErrnoName } from "./errors.ts";
import { errnoName, IpvsError, IpvsTimeoutError, IpvsUnavailableError } from "./errors.ts";
import type { GenlRequest, NetlinkReply } from "./ipvs-codec.ts";
import {
  decodeDaemonMessage,
  decodeDestinationMessage,
  decodeErrorPayload,
  decodeFamilyId,
  decodeGenlPayload,
  decodeInfo,
  decodeMessages,
  decodeServiceMessage,
  decodeTimeouts,
  delDaemonRequest,
  encodeOperation,
  flushRequest,
  frameRequest,
  GENL_ID_CTRL,
  getConfigRequest,
  getDaemonsRequest,
  getFamilyRequest,
  getInfoRequest,
  IPVS_GENL_NAME,
  IpvsEncodeError,
  listDestinationsRequest,
  listServicesRequest,
  NLMSG,
  newDaemonRequest,
  setConfigRequest,
  zeroRequest,
} from "./ipvs-codec.ts";
import type { IpvsKernel, OperationResult } from "./ipvs-kernel.ts";
import { readTableByListing } from "./read-kernel-table.ts";

const NETLINK_GENERIC = 16;

/**
 * The kernel queues one ACK per request of a datagram before sendmsg() returns, so a batch must fit
 * the receive buffer (capped by net.core.rmem_max, 212992 bytes by default). Past it the kernel drops
 * ACKs (ENOBUFS), and the netlink package's addon then aborts the process instead of raising an error
 * (seen with 3000-4000 requests per datagram; 128 and 512 were fine). 256 keeps a wide margin and is
 * already as fast as `ipvsadm -R` (bench/kernel-apply.ts).
 */
export const MAX_BATCH_SIZE = 256;

/** The part of the netlink package's RawNetlinkSocket this module uses (a seam for tests). */
export interface RawSocket {
  send(msg: Uint8Array | Uint8Array[], options: { port?: number }, cb: (err?: Error) => void): void;
  on(event: "message", listener: (msg: Buffer, rinfo: MessageInfo) => void): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
  close(): void;
  ref(): void;
  unref(): void;
}

export interface NetlinkIpvsKernelOptions {
  /** Timeout in ms of an exchange without any reply message arriving (default 5000). */
  timeoutMs?: number;
  /** Requests per datagram in apply() (default and maximum MAX_BATCH_SIZE; 1 = unbatched). */
  batchSize?: number;
  /** SO_RCVBUF to ask for, so a batch's ACKs fit (default 4 MiB; the kernel caps it at rmem_max). */
  recvBufferSize?: number;
  /** Socket factory (tests); default: the netlink package's RawNetlinkSocket on NETLINK_GENERIC. */
  createSocket?: () => RawSocket;
}

/** The end of one request: 0 or an errno, plus the messages received before it. */
interface Reply {
  errno: number;
  messages: NetlinkReply[];
}

interface Pending {
  messages: NetlinkReply[];
  done: (reply: Reply) => void;
}

/** A request plus what to say about it in errors. */
interface Call {
  operation: string;
  object: string;
  request: GenlRequest;
  op?: Operation;
}

export class NetlinkIpvsKernel implements IpvsKernel {
  readonly #timeoutMs: number;
  readonly #batchSize: number;
  readonly #recvBufferSize: number;
  readonly #createSocket: () => RawSocket;
  #socket: RawSocket | undefined;
  readonly #pending = new Map<number, Pending>();
  #failPending: ((error: Error) => void) | undefined;
  /** Restarts the exchange's timeout: it measures silence, so a long dump that keeps arriving lives on. */
  #progress: (() => void) | undefined;
  #seq = 1;
  #familyId: number | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: NetlinkIpvsKernelOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#batchSize = Math.min(MAX_BATCH_SIZE, Math.max(1, Math.floor(options.batchSize ?? MAX_BATCH_SIZE)));
    this.#recvBufferSize = options.recvBufferSize ?? 4 * 1024 * 1024;
    this.#createSocket =
      options.createSocket ??
      (() =>
        // The package types recvBufferSize/sendBufferSize as required (a typing bug): pass both.
        new RawNetlinkSocket(NETLINK_GENERIC, {
          recvBufferSize: this.#recvBufferSize,
          sendBufferSize: 1024 * 1024,
        }) as unknown as RawSocket);
  }

  // -------------------------------------------------------------------------------------------
  // IpvsKernel

  readTable(): Promise<KernelSnapshot> {
    return readTableByListing(this);
  }

  listServices(): Promise<KernelService[]> {
    return this.#exclusive(async () => {
      const reply = await this.#call({
        operation: "listServices",
        object: "",
        request: listServicesRequest(),
      });
      return this.#genlMessages(reply).map((attrs) => decodeServiceMessage(attrs));
    });
  }

  listDestinations(service: ServiceKey): Promise<KernelDestination[]> {
    return this.#exclusive(async () => {
      const call = this.#encode("listDestinations", serviceKeyString(service), () =>
        listDestinationsRequest(service),
      );
      const reply = await this.#call(call);
      const family: Family = service.family;
      return this.#genlMessages(reply).map((attrs) => decodeDestinationMessage(attrs, family));
    });
  }

  addService(service: IpvsService): Promise<void> {
    return this.#one({ op: "addService", service });
  }

  updateService(service: IpvsService): Promise<void> {
    return this.#one({ op: "updateService", service });
  }

  deleteService(key: ServiceKey): Promise<void> {
    return this.#one({ op: "deleteService", key });
  }

  addDestination(service: ServiceKey, destination: IpvsDestination): Promise<void> {
    return this.#one({ op: "addDestination", service, destination });
  }

  updateDestination(service: ServiceKey, destination: IpvsDestination): Promise<void> {
    return this.#one({ op: "updateDestination", service, destination });
  }

  deleteDestination(service: ServiceKey, key: DestinationKey): Promise<void> {
    return this.#one({ op: "deleteDestination", service, key });
  }

  apply(operations: readonly Operation[]): Promise<OperationResult[]> {
    return this.#exclusive(async () => {
      const results: OperationResult[] = new Array(operations.length);
      const calls: { index: number; call: Call }[] = [];
      operations.forEach((op, index) => {
        try {
          calls.push({ index, call: this.#opCall(op) });
        } catch (e) {
          if (!(e instanceof IpvsError)) throw e;
          results[index] = { ok: false, error: e };
        }
      });
      for (let start = 0; start < calls.length; start += this.#batchSize) {
        const chunk = calls.slice(start, start + this.#batchSize);
        const replies = await this.#batch(chunk.map((c) => c.call));
        chunk.forEach(({ index, call }, i) => {
          const errno = replies[i]!.errno;
          results[index] =
            errno === 0
              ? { ok: true }
              : { ok: false, error: ipvsError(call.operation, call.object, errnoName(errno), call.op) };
        });
      }
      return results;
    });
  }

  getTimeouts(): Promise<IpvsTimeouts> {
    return this.#exclusive(async () => {
      const reply = await this.#call({ operation: "getTimeouts", object: "", request: getConfigRequest() });
      const [attrs] = this.#genlMessages(reply);
      if (!attrs) throw new IpvsError("getTimeouts", "", "EIO", "the kernel sent no GET_CONFIG reply");
      return decodeTimeouts(attrs);
    });
  }

  setTimeouts(timeouts: Partial<IpvsTimeouts>): Promise<void> {
    return this.#exclusive(async () => {
      await this.#call(this.#encode("setTimeouts", "", () => setConfigRequest(timeouts)));
    });
  }

  getDaemons(): Promise<SyncDaemonConfig[]> {
    return this.#exclusive(async () => {
      const reply = await this.#call({ operation: "getDaemons", object: "", request: getDaemonsRequest() });
      return this.#genlMessages(reply).map((attrs) => decodeDaemonMessage(attrs));
    });
  }

  startDaemon(config: SyncDaemonConfig): Promise<void> {
    return this.#exclusive(async () => {
      const object = `${config.state} sync daemon on ${config.interface}`;
      await this.#call(this.#encode("startDaemon", object, () => newDaemonRequest(config)));
    });
  }

  stopDaemon(state: SyncDaemonState): Promise<void> {
    return this.#exclusive(async () => {
      await this.#call(this.#encode("stopDaemon", `${state} sync daemon`, () => delDaemonRequest(state)));
    });
  }

  getInfo(): Promise<IpvsInfo> {
    return this.#exclusive(async () => {
      const reply = await this.#call({ operation: "getInfo", object: "", request: getInfoRequest() });
      const [attrs] = this.#genlMessages(reply);
      if (!attrs) throw new IpvsError("getInfo", "", "EIO", "the kernel sent no GET_INFO reply");
      return decodeInfo(attrs);
    });
  }

  zero(service?: ServiceKey): Promise<void> {
    return this.#exclusive(async () => {
      const object = service ? serviceKeyString(service) : "";
      await this.#call(this.#encode("zero", object, () => zeroRequest(service)));
    });
  }

  flush(): Promise<void> {
    return this.#exclusive(async () => {
      await this.#call({ operation: "flush", object: "", request: flushRequest() });
    });
  }

  close(): Promise<void> {
    return this.#exclusive(async () => {
      this.#closed = true;
      this.#reset(new IpvsError("close", "", "EIO", "kernel handle closed"));
    });
  }

  // -------------------------------------------------------------------------------------------
  // Requests

  /** Runs fn after every earlier call finished (one exchange in flight per socket). */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(() => {
      if (this.#closed) throw new IpvsError("request", "", "EIO", "kernel handle is closed");
      return fn();
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #encode(operation: string, object: string, build: () => GenlRequest, op?: Operation): Call {
    try {
      return { operation, object, request: build(), ...(op ? { op } : {}) };
    } catch (e) {
      if (e instanceof IpvsEncodeError) throw new IpvsError(operation, object, "EINVAL", e.message);
      throw e;
    }
  }

  #opCall(op: Operation): Call {
    return this.#encode(op.op, operationObject(op), () => encodeOperation(op), op);
  }

  #one(op: Operation): Promise<void> {
    return this.#exclusive(async () => {
      await this.#call(this.#opCall(op));
    });
  }

  /** One request; a non-zero errno becomes an IpvsError. */
  async #call(call: Call): Promise<Reply> {
    const [reply] = await this.#batch([call]);
    if (reply!.errno !== 0) throw ipvsError(call.operation, call.object, errnoName(reply!.errno), call.op);
    return reply!;
  }

  /**
   * Requests in one datagram, one reply each. ENOENT may mean the family id went stale (ip_vs
   * reloaded): then the id is re-resolved and, if it changed, the whole batch is sent again.
   */
  async #batch(calls: Call[]): Promise<Reply[]> {
    const first = calls[0]!;
    // The id is almost always known: skip the extra await (measurable per request under emulation).
    let familyId = this.#familyId ?? (await this.#resolveFamily(first.operation));
    let replies = await this.#exchange(calls, familyId);
    if (replies.some((r) => r.errno === 2)) {
      this.#familyId = undefined;
      const fresh = await this.#resolveFamily(first.operation);
      if (fresh !== familyId) {
        familyId = fresh;
        replies = await this.#exchange(calls, familyId);
      }
    }
    return replies;
  }

  async #resolveFamily(operation: string): Promise<number> {
    if (this.#familyId !== undefined) return this.#familyId;
    const call = { operation, object: "", request: getFamilyRequest(IPVS_GENL_NAME) };
    const [reply] = await this.#exchange([call], GENL_ID_CTRL);
    if (reply!.errno === 2) {
      throw new IpvsUnavailableError(
        operation,
        "",
        "ENOENT",
        "IPVS is not available in this kernel: generic netlink family IPVS not found; load the ip_vs module",
      );
    }
    if (reply!.errno !== 0) throw ipvsError(operation, "", errnoName(reply!.errno));
    const msg = reply!.messages.find((m) => m.type === GENL_ID_CTRL);
    if (!msg) throw new IpvsError(operation, "", "EIO", "no reply to the IPVS family lookup");
    this.#familyId = decodeFamilyId(decodeGenlPayload(msg.payload).attrs);
    return this.#familyId;
  }

  /** Top-level attribute bytes of each generic netlink reply message (NOOPs skipped). */
  #genlMessages(reply: Reply): Buffer[] {
    const out: Buffer[] = [];
    for (const m of reply.messages)
      if (m.type === this.#familyId) out.push(decodeGenlPayload(m.payload).attrs);
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Transport

  #open(): RawSocket {
    if (this.#socket) return this.#socket;
    let socket: RawSocket;
    try {
      socket = this.#createSocket();
    } catch (e) {
      const errno = (e as { errno?: number }).errno;
      throw new IpvsError(
        "open",
        "",
        typeof errno === "number" ? errnoName(errno) : "EIO",
        `cannot open a generic netlink socket: ${(e as Error).message}`,
      );
    }
    socket.unref();
    socket.on("message", (datagram, rinfo) => this.#receive(socket, datagram, rinfo));
    socket.on("error", (err) => {
      if (this.#socket !== socket) return;
      const errno = (err as { errno?: number }).errno;
      this.#reset(
        new IpvsError(
          "netlink",
          "",
          typeof errno === "number" ? errnoName(errno) : "EIO",
          `socket error: ${err.message}`,
        ),
      );
    });
    this.#socket = socket;
    return socket;
  }

  /** Close the socket and fail whatever is in flight. */
  #reset(error: Error): void {
    const socket = this.#socket;
    this.#socket = undefined;
    this.#failPending?.(error);
    this.#pending.clear();
    if (socket) {
      try {
        socket.close();
      } catch {
        // already closed
      }
    }
  }

  #receive(socket: RawSocket, datagram: Buffer, rinfo: MessageInfo): void {
    if (socket !== this.#socket || rinfo.port !== 0) return; // stale socket, or not from the kernel
    let messages: NetlinkReply[];
    try {
      messages = decodeMessages(datagram);
    } catch (e) {
      this.#reset(e as Error);
      return;
    }
    for (const m of messages) {
      const pending = this.#pending.get(m.seq);
      if (!pending) continue; // a late reply to a request that already ended
      this.#progress?.();
      if (m.type === NLMSG.ERROR || m.type === NLMSG.DONE) {
        let errno = 0;
        try {
          errno = m.type === NLMSG.ERROR || m.payload.length >= 4 ? decodeErrorPayload(m.payload) : 0;
        } catch (e) {
          this.#reset(e as Error);
          return;
        }
        this.#pending.delete(m.seq);
        pending.done({ errno, messages: pending.messages });
      } else if (m.type !== NLMSG.NOOP) {
        pending.messages.push(m);
      }
    }
  }

  #nextSeq(): number {
    const seq = this.#seq;
    this.#seq = this.#seq >= 0x7fffffff ? 1 : this.#seq + 1;
    return seq;
  }

  /** Sends every request in one datagram and waits for each one's final message. */
  #exchange(calls: Call[], familyId: number): Promise<Reply[]> {
    const socket = this.#open();
    const seqs = calls.map(() => this.#nextSeq());
    const datagram = Buffer.concat(calls.map((c, i) => frameRequest(c.request, familyId, seqs[i]!)));
    const first = calls[0]!;
    return new Promise<Reply[]>((resolve, reject) => {
      const replies: Reply[] = new Array(calls.length);
      let left = calls.length;
      const finish = (error?: Error) => {
        clearTimeout(timer);
        this.#failPending = undefined;
        this.#progress = undefined;
        for (const seq of seqs) this.#pending.delete(seq);
        socket.unref();
        if (error) reject(error);
        else resolve(replies);
      };
      const timer = setTimeout(() => {
        const what = calls.length === 1 ? "" : ` (batch of ${calls.length})`;
        const error = new IpvsTimeoutError(
          first.operation,
          first.object,
          "ETIMEDOUT",
          `no reply from the kernel for ${this.#timeoutMs} ms${what}; the netlink socket is reopened`,
        );
        finish(error);
        this.#reset(error);
      }, this.#timeoutMs);
      this.#failPending = (error) => finish(error);
      this.#progress = () => timer.refresh();
      seqs.forEach((seq, i) => {
        this.#pending.set(seq, {
          messages: [],
          done: (reply) => {
            replies[i] = reply;
            if (--left === 0) finish();
          },
        });
      });
      socket.ref();
      socket.send(datagram, { port: 0 }, (err) => {
        if (!err) return;
        const errno = (err as { errno?: number }).errno;
        const name: ErrnoName = typeof errno === "number" ? errnoName(errno) : "EIO";
        finish(new IpvsError(first.operation, first.object, name, `sendmsg failed: ${err.message}`));
      });
    });
  }
}
