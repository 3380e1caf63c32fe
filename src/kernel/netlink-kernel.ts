/**
 * NetlinkIpvsKernel: IpvsKernel over generic netlink, using the `netlink` package's raw socket
 * (its request() helper can't batch, loses errnos, has no default timeout and keeps multipart
 * state per socket, so sequencing, ACK matching and timeouts live here).
 *
 * - The "IPVS" family id is resolved lazily and re-resolved when a request fails with ENOENT
 *   (a stale id after ip_vs was reloaded); a missing family gives IpvsUnavailableError.
 * - One exchange in flight per socket (promise queue); every exchange has a timeout, after which
 *   the socket is closed and a new one opened on the next call.
 * - apply() sends up to `batchSize` requests in one datagram (fewer when the receive buffer is small,
 *   see batchSizeFor); the kernel processes them in order inside sendmsg(). Only the last request of
 *   a datagram asks for an ACK: the kernel answers the others only when they fail, so silence before
 *   the last ACK means success. One failure does not stop the rest. A transport failure (timeout,
 *   socket error, sendmsg failure) never throws out of apply(): requests answered keep their result,
 *   requests sent but unanswered are `unknown`, requests not sent (and later chunks) fail.
 * - readTable() dumps the services, then every service's destinations over `readConcurrency`
 *   sockets at once (the kernel runs one dump per socket at a time), and decodes entry by entry.
 */
import { readFileSync } from "node:fs";
import type { MessageInfo } from "netlink";
import { RawNetlinkSocket } from "netlink";
import type { Operation } from "../vocabulary/operations.ts";
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
  KernelTable,
  ServiceKey,
  SyncDaemonConfig,
  SyncDaemonState,
  UndecodableEntry,
} from "../vocabulary/table.ts";
import { serviceKeyString } from "../vocabulary/table.ts";
import { ipvsError, operationObject, transportFailureResult } from "./error-hints.ts";
import type { ErrnoName } from "./errors.ts";
import { errnoName, IpvsError, IpvsTimeoutError, IpvsUnavailableError } from "./errors.ts";
import type { NetlinkReply } from "./ipvs-decode.ts";
import {
  decodeDaemonMessage,
  decodeDestinationEntry,
  decodeDestinationEntryAt,
  decodeFamilyId,
  decodeGenlPayload,
  decodeInfo,
  decodeServiceEntry,
  decodeTimeouts,
  describeDestinationEntry,
  describeServiceEntry,
  errnoAt,
  messageSeq,
  messageType,
  replyAt,
  walkMessages,
} from "./ipvs-decode.ts";
import type { GenlRequest } from "./ipvs-encode.ts";
import {
  delDaemonRequest,
  destinationDumpFrames,
  encodeOperation,
  flushRequest,
  frameRequests,
  getConfigRequest,
  getDaemonsRequest,
  getFamilyRequest,
  getInfoRequest,
  IpvsEncodeError,
  listDestinationsRequest,
  listServicesRequest,
  newDaemonRequest,
  setConfigRequest,
  zeroRequest,
} from "./ipvs-encode.ts";
import type { IpvsKernel, OperationResult, ReadTableOptions } from "./ipvs-kernel.ts";
import { GENL_HDRLEN, GENL_ID_CTRL, IPVS_GENL_NAME, NLMSG, NLMSG_HDRLEN } from "./ipvs-protocol.ts";

const NETLINK_GENERIC = 16;

/**
 * Most requests in one apply() datagram. The kernel runs every request of a datagram inside sendmsg()
 * and queues each answer (an ACK, or an error echoing the request) on the socket before sendmsg()
 * returns, so the answers of one datagram must fit the socket's receive buffer. Past it the kernel
 * drops them and the socket reports ENOBUFS (the requests are still applied: their results are then
 * unknown). Measured in the test-bed VM (Linux 6.1): every answer to our requests takes 768 bytes of
 * receive buffer (skb truesize: one answer per skb; the same for an ACK and for an error echoing a
 * 164-byte request), and the default rmem_max (212992) gives SO_RCVBUF 425984, i.e. 554 answers.
 * 256 was measured safe there. Only failures and the last request of a datagram are answered (see
 * frameRequest), so a batch of successes takes almost no buffer; batchSizeFor sizes for all failing.
 */
export const MAX_BATCH_SIZE = 256;

/** Receive-buffer bytes of one answer, measured (see MAX_BATCH_SIZE). */
export const ANSWER_TRUESIZE = 768;

/**
 * Requests per datagram for a receive buffer of `rcvbuf` bytes (SO_RCVBUF as getsockopt reports it,
 * i.e. already doubled by the kernel): answers may fill half of it, so a larger answer (an error
 * echoing a request past ~190 bytes takes the next slab, 1280 bytes) still fits; never more than
 * `requested` or MAX_BATCH_SIZE, never less than 1.
 * 425984 (default rmem_max) -> 256; 131072 -> 85; 16384 -> 10.
 */
export function batchSizeFor(rcvbuf: number, requested = MAX_BATCH_SIZE): number {
  const fits = Math.floor(rcvbuf / (2 * ANSWER_TRUESIZE));
  return Math.max(1, Math.min(requested, MAX_BATCH_SIZE, fits));
}

/** net.core.rmem_max; the kernel's default when it cannot be read. */
function readRmemMax(): number {
  try {
    const value = Number(readFileSync("/proc/sys/net/core/rmem_max", "utf8").trim());
    return Number.isFinite(value) && value > 0 ? value : 212992;
  } catch {
    return 212992;
  }
}

/** The part of the netlink package's RawNetlinkSocket this module uses (a seam for tests). */
export interface RawSocket {
  send(msg: Uint8Array | Uint8Array[], options: { port?: number }, cb: (err?: Error) => void): void;
  on(event: "message", listener: (msg: Buffer, rinfo: MessageInfo) => void): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
  close(): void;
  ref(): void;
  unref(): void;
  /** getsockopt(SO_RCVBUF): the receive buffer the kernel granted (the netlink package has it). */
  getRecvBufferSize?(): number;
}

export interface NetlinkIpvsKernelOptions {
  /** Timeout in ms of an exchange without any reply message arriving (default 5000). */
  timeoutMs?: number;
  /**
   * Requests per datagram in apply() (default and maximum MAX_BATCH_SIZE; 1 = unbatched). Fewer
   * when the socket's receive buffer cannot hold that many answers (batchSizeFor).
   */
  batchSize?: number;
  /** SO_RCVBUF to ask for, so a batch's ACKs fit (default 4 MiB; the kernel caps it at rmem_max). */
  recvBufferSize?: number;
  /**
   * Destination lists readTable() dumps at once, one socket each (default 64; 1 = one at a time).
   * Each dump costs a sendmsg and two receive callbacks; with many sockets one event-loop turn
   * serves many of them (in the VM, 1000 services x 4, medians of 10 reads without counters:
   * 927 ms with 4 sockets, 999 with 16, 967 with 32, 854 with 64; about 1.7 s with 1).
   */
  readConcurrency?: number;
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
  /**
   * Takes each reply message other than the final one in place (payload = buf[from, to)) instead
   * of collecting it in `messages`: a dump read entry by entry without a Buffer per message.
   */
  entry?: (buf: Buffer, type: number, from: number, to: number) => void;
}

/**
 * What one exchange ended with. `replies[i]` is the end of request i when it arrived (or, for a
 * request sent without NLM_F_ACK, when a later answer proved it succeeded). On a transport failure
 * `failure` is set, and a request without a reply was sent but not answered (`sent`), or never sent.
 */
interface Outcome {
  replies: (Reply | undefined)[];
  /** An IpvsError, or the IpvsDecodeError of a reply that does not parse. */
  failure?: Error;
  sent: boolean;
}

const SUCCESS: Reply = Object.freeze({ errno: 0, messages: [] }) as Reply;

/** A request plus what to say about it in errors. */
interface Call {
  readonly operation: string;
  readonly object: string;
  readonly request: GenlRequest;
  readonly op?: Operation;
  /** A longer silence allowed for this request (the kernel answers some only after slow work). */
  readonly timeoutMs?: number;
}

/**
 * Stopping a sync daemon waits for its kernel thread to exit (kthread_stop), and starting one for it to
 * bind its socket: seconds under load, over 10 s in an emulated VM. Their answers get this long.
 */
const DAEMON_TIMEOUT_MS = 60_000;

/** The Call of a plan operation: the object's text is only needed for an error, so it is built then. */
/** The result of every operation the kernel confirmed (one shared object: results are read-only). */
const APPLIED: OperationResult = Object.freeze({ ok: true });

class OperationCall implements Call {
  readonly op: Operation;
  readonly request: GenlRequest;
  constructor(op: Operation, request: GenlRequest) {
    this.op = op;
    this.request = request;
  }
  get operation(): string {
    return this.op.op;
  }
  get object(): string {
    return operationObject(this.op);
  }
}

export class NetlinkIpvsKernel implements IpvsKernel {
  readonly #timeoutMs: number;
  readonly #batchSize: number;
  readonly #recvBufferSize: number;
  readonly #readConcurrency: number;
  readonly #createSocket: () => RawSocket;
  #socket: RawSocket | undefined;
  /** The receive buffer of #socket (bytes), read once per socket. */
  #socketRcvbuf: number | undefined;
  /** Extra sockets readTable() dumps destination lists on (kept open between reads). */
  #lanes: RawSocket[] = [];
  readonly #pending = new Map<number, Pending>();
  #failPending: ((error: Error) => void) | undefined;
  /** Restarts the exchange's timeout: it measures silence, so a long dump that keeps arriving lives on. */
  #progress: (() => void) | undefined;
  /**
   * Set while an exchange runs on the main socket: called on ENOBUFS (the kernel dropped answers
   * because the receive buffer was full) instead of failing at once, to read the answers still queued.
   */
  #overrun: ((error: IpvsError) => void) | undefined;
  #seq = 1;
  #familyId: number | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: NetlinkIpvsKernelOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#batchSize = Math.min(MAX_BATCH_SIZE, Math.max(1, Math.floor(options.batchSize ?? MAX_BATCH_SIZE)));
    this.#recvBufferSize = options.recvBufferSize ?? 4 * 1024 * 1024;
    this.#readConcurrency = Math.max(1, Math.floor(options.readConcurrency ?? 64));
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

  /**
   * One GET_SERVICE dump, then every service's GET_DEST dump, decoded entry by entry.
   *
   * Rule for a service with an undecodable destination: the whole service is reported undecodable
   * (one entry per such destination, each naming the service, its key and the destination) and left
   * out of the table, so nothing of it is touched. Reading it as a service with fewer destinations
   * would let a sync add, weigh or delete destinations next to one it cannot see.
   */
  readTable(options: ReadTableOptions = {}): Promise<KernelSnapshot> {
    const withStats = options.stats ?? true;
    return this.#exclusive(async () => {
      const reply = await this.#call({ operation: "readTable", object: "", request: listServicesRequest() });
      const undecodable: UndecodableEntry[] = [];
      const services: KernelService[] = [];
      for (const m of reply.messages) {
        if (m.type !== this.#familyId) continue;
        const attrs = genlAttrs(m.payload);
        const entry = attrs ? decodeServiceEntry(attrs, withStats) : NO_GENL_HEADER;
        if (entry.ok) {
          services.push(entry.value);
          continue;
        }
        const { key, text } = attrs
          ? describeServiceEntry(attrs)
          : { key: undefined, text: "a service entry" };
        undecodable.push({ service: text, ...(key ? { key } : {}), reason: entry.reason });
      }
      const lists = await this.#dumpDestinations(services, withStats);
      const table: KernelTable = [];
      services.forEach((service, i) => {
        const list = lists[i]!;
        if (list.undecodable.length === 0) {
          table.push({ service, destinations: list.destinations });
          return;
        }
        for (const u of list.undecodable) {
          undecodable.push({
            service: serviceKeyString(service.key),
            key: service.key,
            destination: u.destination,
            reason: u.reason,
          });
        }
      });
      return { table, undecodable };
    });
  }

  /** The services that decode (readTable() reports the others). */
  listServices(): Promise<KernelService[]> {
    return this.#exclusive(async () => {
      const reply = await this.#call({
        operation: "listServices",
        object: "",
        request: listServicesRequest(),
      });
      const services: KernelService[] = [];
      for (const attrs of this.#genlMessages(reply)) {
        const entry = decodeServiceEntry(attrs);
        if (entry.ok) services.push(entry.value);
      }
      return services;
    });
  }

  /** The destinations that decode (readTable() reports the others). */
  listDestinations(service: ServiceKey): Promise<KernelDestination[]> {
    return this.#exclusive(async () => {
      const call = this.#encode("listDestinations", serviceKeyString(service), () =>
        listDestinationsRequest(service),
      );
      const reply = await this.#call(call);
      const family: Family = service.family;
      const destinations: KernelDestination[] = [];
      for (const attrs of this.#genlMessages(reply)) {
        const entry = decodeDestinationEntry(attrs, family);
        if (entry.ok) destinations.push(entry.value);
      }
      return destinations;
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
      let failure: Error | undefined;
      let size = this.#batchSize;
      try {
        if (calls.length > 0) size = batchSizeFor(this.#receiveBuffer(), this.#batchSize);
      } catch (e) {
        if (!(e instanceof IpvsError)) throw e;
        failure = e; // the socket could not be opened: nothing is sent
      }
      for (let start = 0; start < calls.length; start += size) {
        const chunk = calls.slice(start, start + size);
        // After a transport failure the kernel's state is unknown: later chunks are not sent.
        const outcome: Outcome = failure
          ? { replies: [], failure, sent: false }
          : await this.#batch(
              chunk.map((c) => c.call),
              false,
            );
        chunk.forEach(({ index, call }, i) => {
          const reply = outcome.replies[i];
          if (reply) {
            results[index] =
              reply.errno === 0
                ? APPLIED
                : {
                    ok: false,
                    error: ipvsError(call.operation, call.object, errnoName(reply.errno), call.op),
                  };
          } else {
            results[index] = transportFailureResult(
              call.operation,
              call.object,
              outcome.failure!,
              outcome.sent,
            );
          }
        });
        failure ??= outcome.failure;
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
      const call = this.#encode("startDaemon", object, () => newDaemonRequest(config));
      await this.#call({ ...call, timeoutMs: Math.max(this.#timeoutMs, DAEMON_TIMEOUT_MS) });
    });
  }

  /**
   * DEL_DAEMON goes without NLM_F_ACK, followed in the same datagram by a GET_DAEMON dump. When the
   * kernel stops a thread that had not started running yet, kthread_stop() returns -EINTR and
   * netlink_rcv_skb() sends no answer at all for that request (seen in the VM: a start followed
   * at once by a stop). A failure is still answered; silence followed by the dump's answer is
   * success, and the dump confirms the daemon is gone.
   */
  stopDaemon(state: SyncDaemonState): Promise<void> {
    return this.#exclusive(async () => {
      const object = `${state} sync daemon`;
      const stop = this.#encode("stopDaemon", object, () => delDaemonRequest(state));
      const list: Call = { operation: "stopDaemon", object, request: getDaemonsRequest() };
      const outcome = await this.#batch(
        [{ ...stop, timeoutMs: Math.max(this.#timeoutMs, DAEMON_TIMEOUT_MS) }, list],
        false,
      );
      const [stopped, listed] = outcome.replies;
      if (stopped && stopped.errno !== 0) throw ipvsError("stopDaemon", object, errnoName(stopped.errno));
      if (!stopped || !listed) throw outcome.failure!;
      if (listed.errno !== 0) throw ipvsError("stopDaemon", object, errnoName(listed.errno));
      const running = this.#genlMessages(listed).map((attrs) => decodeDaemonMessage(attrs));
      if (running.some((d) => d.state === state)) {
        throw new IpvsError(
          "stopDaemon",
          object,
          "EIO",
          "the kernel still lists the daemon after stopping it",
        );
      }
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
      this.#closeLanes();
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
    let request: GenlRequest;
    try {
      request = encodeOperation(op);
    } catch (e) {
      if (e instanceof IpvsEncodeError) throw new IpvsError(op.op, operationObject(op), "EINVAL", e.message);
      throw e;
    }
    return new OperationCall(op, request);
  }

  #one(op: Operation): Promise<void> {
    return this.#exclusive(async () => {
      await this.#call(this.#opCall(op));
    });
  }

  /** One request; a non-zero errno becomes an IpvsError, a transport failure its IpvsError. */
  async #call(call: Call): Promise<Reply> {
    const outcome = await this.#batch([call], true);
    const reply = outcome.replies[0];
    if (!reply) throw outcome.failure!;
    if (reply.errno !== 0) throw ipvsError(call.operation, call.object, errnoName(reply.errno), call.op);
    return reply;
  }

  /**
   * Requests in one datagram, one reply each. ENOENT may mean the family id went stale (ip_vs
   * reloaded): then the id is re-resolved and, if it changed, the whole batch is sent again (a stale
   * id reaches no IPVS code, so nothing of the first send was applied). Never rejects with an
   * IpvsError: a family lookup that fails is an outcome with nothing sent.
   */
  async #batch(calls: Call[], ackEach: boolean): Promise<Outcome> {
    const first = calls[0]!;
    let familyId: number;
    try {
      // The id is almost always known: skip the extra await (measurable per request under emulation).
      familyId = this.#familyId ?? (await this.#resolveFamily(first.operation));
    } catch (e) {
      if (!(e instanceof IpvsError)) throw e;
      return { replies: [], failure: e, sent: false };
    }
    let outcome = await this.#exchange(calls, familyId, ackEach);
    if (!outcome.failure && outcome.replies.some((r) => r?.errno === 2)) {
      this.#familyId = undefined;
      let fresh: number;
      try {
        fresh = await this.#resolveFamily(first.operation);
      } catch (e) {
        if (!(e instanceof IpvsError)) throw e;
        return outcome; // keep the kernel's answers (ENOENT) rather than the lookup's failure
      }
      if (fresh !== familyId) outcome = await this.#exchange(calls, fresh, ackEach);
    }
    return outcome;
  }

  async #resolveFamily(operation: string): Promise<number> {
    if (this.#familyId !== undefined) return this.#familyId;
    const call = { operation, object: "", request: getFamilyRequest(IPVS_GENL_NAME) };
    const outcome = await this.#exchange([call], GENL_ID_CTRL, true);
    const reply = outcome.replies[0];
    if (!reply) throw outcome.failure!;
    if (reply.errno === 2) {
      throw new IpvsUnavailableError(
        operation,
        "",
        "ENOENT",
        "IPVS is not available in this kernel: generic netlink family IPVS not found; load the ip_vs module",
      );
    }
    if (reply.errno !== 0) throw ipvsError(operation, "", errnoName(reply.errno));
    const msg = reply.messages.find((m) => m.type === GENL_ID_CTRL);
    if (!msg) throw new IpvsError(operation, "", "EIO", "no reply to the IPVS family lookup");
    this.#familyId = decodeFamilyId(decodeGenlPayload(msg.payload).attrs);
    return this.#familyId;
  }

  /** SO_RCVBUF of the socket (getsockopt), or what the kernel grants for the size asked for. */
  #receiveBuffer(): number {
    const socket = this.#open();
    if (this.#socketRcvbuf === undefined) {
      let granted: number | undefined;
      try {
        granted = socket.getRecvBufferSize?.();
      } catch {
        granted = undefined;
      }
      // Without getsockopt: the kernel caps the request at rmem_max and doubles it (SO_RCVBUF).
      this.#socketRcvbuf =
        typeof granted === "number" && granted > 0
          ? granted
          : 2 * Math.min(this.#recvBufferSize, readRmemMax());
    }
    return this.#socketRcvbuf;
  }

  /**
   * The GET_DEST dump of every service, each entry decoded in place as it arrives (an entry that
   * does not decode is described instead). Up to `readConcurrency` dumps run at once, one per socket
   * (the kernel refuses a second dump on a socket with EBUSY while one runs); each socket starts its
   * next dump from the receive callback that ends the previous one. The read fails when no reply
   * arrives for a whole timeout period.
   */
  #dumpDestinations(services: KernelService[], withStats: boolean): Promise<DestinationList[]> {
    const lists: DestinationList[] = services.map(() => ({ destinations: [], undecodable: [] }));
    if (services.length === 0) return Promise.resolve(lists);
    const familyId = this.#familyId!;
    const laneCount = Math.min(this.#readConcurrency, services.length);
    let sockets: RawSocket[];
    try {
      sockets = [this.#open(), ...this.#openLanes(laneCount - 1)];
    } catch (e) {
      return Promise.reject(e);
    }
    let frames: { bytes: Buffer; offsets: Uint32Array };
    try {
      frames = destinationDumpFrames(
        services.map((s) => s.key),
        familyId,
        services.map(() => this.#nextSeq()),
      );
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<DestinationList[]>((resolve, reject) => {
      let next = 0;
      let running = 0;
      const seqs = new Set<number>();
      let ended = false;
      const finish = (error?: Error) => {
        if (ended) return;
        ended = true;
        this.#settle(timer, seqs, sockets);
        if (error) {
          this.#reset(error);
          this.#closeLanes();
          reject(error);
        } else {
          resolve(lists);
        }
      };
      const start = (socket: RawSocket): void => {
        if (ended) return;
        if (next >= services.length) {
          if (running === 0) finish();
          return;
        }
        const i = next++;
        const key = services[i]!.key;
        const family = key.family;
        const list = lists[i]!;
        const frame = frames.bytes.subarray(frames.offsets[i], frames.offsets[i + 1]);
        const seq = messageSeq(frame, 0);
        seqs.add(seq);
        running++;
        this.#pending.set(seq, {
          messages: NO_MESSAGES,
          entry: (buf, type, from, to) => {
            if (type !== familyId) return;
            if (to - from < GENL_HDRLEN) {
              list.undecodable.push({ destination: "a destination entry", reason: NO_GENL_HEADER.reason });
              return;
            }
            const entry = decodeDestinationEntryAt(buf, from + GENL_HDRLEN, to, family, withStats);
            if (typeof entry !== "string") list.destinations.push(entry);
            else {
              const attrs = buf.subarray(from + GENL_HDRLEN, to);
              list.undecodable.push({ destination: describeDestinationEntry(attrs, family), reason: entry });
            }
          },
          done: (reply) => {
            seqs.delete(seq);
            running--;
            if (reply.errno !== 0) {
              finish(ipvsError("readTable", serviceKeyString(key), errnoName(reply.errno)));
              return;
            }
            start(socket);
          },
        });
        const sendFailed = (err: Error) =>
          finish(
            new IpvsError("readTable", serviceKeyString(key), errnoOf(err), `sendmsg failed: ${err.message}`),
          );
        try {
          socket.send(frame, { port: 0 }, (err) => {
            if (err) sendFailed(err);
          });
        } catch (e) {
          sendFailed(e as Error); // this runs in the socket's receive callback: never throw from here
        }
      };
      // Silence is checked once per timeout period, not re-armed per datagram (a timer list
      // operation each, thousands per read): a read fails after one to two periods without a reply.
      let replies = 0;
      let seen = 0;
      const timer = setTimeout(() => {
        if (replies !== seen) {
          seen = replies;
          timer.refresh();
          return;
        }
        finish(
          new IpvsTimeoutError(
            "readTable",
            "",
            "ETIMEDOUT",
            `no reply from the kernel for ${this.#timeoutMs} ms; the netlink socket is reopened`,
          ),
        );
      }, this.#timeoutMs);
      this.#failPending = (error) => finish(error);
      this.#progress = () => {
        replies++;
      };
      for (const socket of sockets) {
        socket.ref();
        start(socket);
      }
    });
  }

  /** The end of an exchange: its timer, its sequence numbers and its sockets' hold on the event loop. */
  #settle(timer: NodeJS.Timeout, seqs: Iterable<number>, sockets: RawSocket[]): void {
    clearTimeout(timer);
    this.#failPending = undefined;
    this.#progress = undefined;
    this.#overrun = undefined;
    for (const seq of seqs) this.#pending.delete(seq);
    for (const socket of sockets) socket.unref();
  }

  #openLanes(count: number): RawSocket[] {
    while (this.#lanes.length < count) this.#lanes.push(this.#openSocket());
    return this.#lanes.slice(0, count);
  }

  #closeLanes(): void {
    const lanes = this.#lanes;
    this.#lanes = [];
    for (const socket of lanes) closeLater(socket);
  }

  /** Top-level attribute bytes of each generic netlink reply message (NOOPs skipped). */
  #genlMessages(reply: Reply): Buffer[] {
    const out: Buffer[] = [];
    for (const m of reply.messages) {
      if (m.type !== this.#familyId) continue;
      const attrs = genlAttrs(m.payload);
      if (attrs) out.push(attrs);
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Transport

  #open(): RawSocket {
    if (this.#socket) return this.#socket;
    this.#socket = this.#openSocket();
    this.#socketRcvbuf = undefined;
    return this.#socket;
  }

  /** A new socket whose replies go to #receive and whose errors fail what is in flight. */
  #openSocket(): RawSocket {
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
    socket.unref(); // These listeners run inside the netlink addon's native callbacks, where an exception aborts the
    // process (std::terminate): they must never throw. Anything unexpected fails what is in flight.
    socket.on("message", (datagram, rinfo) => {
      try {
        this.#receive(socket, datagram, rinfo);
      } catch (e) {
        this.#fail(socket, e instanceof Error ? e : new Error(String(e)));
      }
    });
    socket.on("error", (err) => {
      try {
        if (!this.#isCurrent(socket)) return;
        const error = new IpvsError("netlink", "", errnoOf(err), `socket error: ${err.message}`);
        if (error.errno === "ENOBUFS" && socket === this.#socket && this.#overrun) this.#overrun(error);
        else this.#fail(socket, error);
      } catch {
        // nothing more can be done here
      }
    });
    return socket;
  } /** A socket failed: close it (and the read lanes) and fail whatever is in flight. */
  #fail(socket: RawSocket, error: Error): void {
    if (socket === this.#socket) this.#reset(error);
    else {
      this.#closeLanes();
      this.#failPending?.(error);
    }
  }

  #isCurrent(socket: RawSocket): boolean {
    return socket === this.#socket || this.#lanes.includes(socket);
  }

  /** Close the socket and fail whatever is in flight. */
  #reset(error: Error): void {
    const socket = this.#socket;
    this.#socket = undefined;
    this.#failPending?.(error);
    this.#pending.clear();
    if (socket) closeLater(socket);
  }

  #receive(socket: RawSocket, datagram: Buffer, rinfo: MessageInfo): void {
    if (rinfo.port !== 0 || !this.#isCurrent(socket)) return; // not from the kernel, or a stale socket
    this.#answered = false;
    try {
      walkMessages(datagram, this.#receiveMessage, this);
    } catch (e) {
      this.#fail(socket, e as Error);
      return;
    }
    if (this.#answered) this.#progress?.();
  }

  /** Set by #receiveMessage when a message of the datagram answered a request in flight. */
  #answered = false;

  /** One message of a datagram (walkMessages visitor: `self` is the kernel handle). */
  readonly #receiveMessage = (self: NetlinkIpvsKernel, buf: Buffer, at: number, length: number): void => {
    const seq = messageSeq(buf, at);
    const pending = self.#pending.get(seq);
    if (!pending) return; // a late reply to a request that already ended
    self.#answered = true;
    const type = messageType(buf, at);
    const from = at + NLMSG_HDRLEN;
    const to = at + length;
    if (type === NLMSG.ERROR || type === NLMSG.DONE) {
      const errno = type === NLMSG.ERROR || to - from >= 4 ? errnoAt(buf, from, to) : 0;
      self.#pending.delete(seq);
      pending.done({ errno, messages: pending.messages });
    } else if (type !== NLMSG.NOOP) {
      if (pending.entry) pending.entry(buf, type, from, to);
      else pending.messages.push(replyAt(buf, at, length));
    }
  };

  #nextSeq(): number {
    const seq = this.#seq;
    this.#seq = this.#seq >= 0x7fffffff ? 1 : this.#seq + 1;
    return seq;
  }

  /**
   * Sends every request in one datagram and waits for each one's final message. With `ackEach`
   * false only the last request asks for an ACK; the others are answered only when they fail.
   * Never rejects: a timeout, a socket error or a failed sendmsg ends in an Outcome with `failure`.
   */
  #exchange(calls: Call[], familyId: number, ackEach: boolean): Promise<Outcome> {
    const first = calls[0]!;
    const timeoutMs = Math.max(this.#timeoutMs, ...calls.map((c) => c.timeoutMs ?? 0));
    let socket: RawSocket;
    try {
      socket = this.#open();
    } catch (e) {
      if (e instanceof IpvsError) return Promise.resolve({ replies: [], failure: e, sent: false });
      throw e;
    }
    const n = calls.length;
    const seqs = calls.map(() => this.#nextSeq());
    const acked = calls.map((c, i) => ackEach || c.request.dump || i === n - 1);
    const datagram = frameRequests(
      calls.map((c) => c.request),
      familyId,
      seqs,
      acked,
    );
    return new Promise<Outcome>((resolve) => {
      const replies: (Reply | undefined)[] = new Array(n);
      let sent = true;
      /** Index of the last request answered: answers arrive in request order. */
      let answered = -1;
      let ended = false;
      const finish = (failure?: Error) => {
        if (ended) return;
        ended = true;
        this.#settle(timer, seqs, [socket]);
        if (failure) fillSilent(answered);
        resolve(failure ? { replies, failure, sent } : { replies, sent });
      };
      // The kernel queues the answers of a datagram in request order, and once it drops one (a full
      // receive buffer) it drops every later one of that datagram. So a request sent without
      // NLM_F_ACK and followed by an answer to a later request did not fail: it succeeded.
      const fillSilent = (upTo: number) => {
        for (let j = 0; j < upTo; j++) if (!replies[j] && !acked[j]) replies[j] = SUCCESS;
      };
      const timer = setTimeout(() => {
        const what = n === 1 ? "" : ` (batch of ${n})`;
        const error = new IpvsTimeoutError(
          first.operation,
          first.object,
          "ETIMEDOUT",
          `no reply from the kernel for ${timeoutMs} ms${what}; the netlink socket is reopened`,
        );
        finish(error);
        this.#reset(error);
      }, timeoutMs);
      this.#failPending = (error) => finish(error);
      let received = 0;
      this.#progress = () => {
        received++;
        timer.refresh();
      };
      // ENOBUFS: the kernel dropped the answers that did not fit, and recvmsg() reports that before
      // the answers still queued (sock_error comes first). All of them were queued inside sendmsg(),
      // so read until an event-loop turn brings no more, then end with what arrived.
      this.#overrun = (error) => {
        let seen = -1;
        const drained = () => {
          if (ended) return;
          if (received !== seen) {
            seen = received;
            setImmediate(drained);
            return;
          }
          finish(error);
          this.#reset(error);
        };
        setImmediate(drained);
      };
      seqs.forEach((seq, i) => {
        this.#pending.set(seq, {
          messages: [],
          done: (reply) => {
            replies[i] = reply;
            answered = Math.max(answered, i);
            if (i !== n - 1) return;
            fillSilent(i);
            if (replies.every((r) => r !== undefined)) finish();
          },
        });
      });
      const sendFailed = (err: Error) => {
        // sendmsg to the kernel is all or nothing: a failed send reached no IPVS code.
        sent = false;
        finish(new IpvsError(first.operation, first.object, errnoOf(err), `sendmsg failed: ${err.message}`));
      };
      socket.ref();
      try {
        socket.send(datagram, { port: 0 }, (err) => {
          if (err) sendFailed(err);
        });
      } catch (e) {
        sendFailed(e as Error);
      }
    });
  }
}

function errnoOf(err: Error): ErrnoName {
  const errno = (err as { errno?: number }).errno;
  return typeof errno === "number" ? errnoName(errno) : "EIO";
}

/**
 * Closes a socket on the next turn of the event loop. This may run inside one of the addon's native
 * callbacks (or the microtasks after one), and the addon's poll handler goes on using the socket's
 * watcher after the callback returns when the socket was also waiting to write: closed there, it
 * would dereference a freed watcher. It is detached already, so nothing it still delivers is read.
 */
function closeLater(socket: RawSocket): void {
  setImmediate(() => {
    try {
      socket.close();
    } catch {
      // already closed
    }
  });
}

/** The attributes of a generic netlink payload; undefined when it is shorter than the genl header. */
function genlAttrs(payload: Buffer): Buffer | undefined {
  return payload.length < 4 ? undefined : payload.subarray(4);
}
const NO_GENL_HEADER = { ok: false, reason: "message shorter than the generic netlink header" } as const;

/** One service's destinations as readTable() dumped them: those that decode, and the others described. */
interface DestinationList {
  destinations: KernelDestination[];
  undecodable: { destination: string; reason: string }[];
}

/** The messages of a request whose replies go to its `entry` callback (nothing is ever added). */
const NO_MESSAGES: NetlinkReply[] = Object.freeze([]) as unknown as NetlinkReply[];
