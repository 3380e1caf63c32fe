/**
 * FakeIpvsKernel: an in-memory IPVS table with the kernel's semantics and errnos, for tests of
 * everything above the kernel edge. It passes the same contract suite as NetlinkIpvsKernel
 * (test/kernel/contract.ts); where the two disagree, the real kernel is right and this file changes.
 *
 * Checks run in the kernel's order (net/netfilter/ipvs/ip_vs_ctl.c, ip_vs_genl_set_cmd):
 * encode/parse (EINVAL) -> service lookup (ESRCH / EEXIST) -> scheduler and PE modules (ENOENT) ->
 * IPv6 netmask (EINVAL); for destinations: family rules (EINVAL) -> weight and thresholds (ERANGE) ->
 * GUE port (EINVAL) -> destination lookup (EEXIST / ENOENT) -> address type (EINVAL).
 *
 * Like the kernel (ip_vs_ctl.c adds a destination with list_add_rcu() at the head of the service's
 * list, and the dump walks the list from the head), destinations are listed newest first; an update
 * keeps a destination's place. Test hooks inject what the real kernel shows only rarely: errnos
 * (failNext), a transport failure in the middle of apply() (failTransport), entries the decoder
 * cannot read (injectUndecodable), and a reboot.
 */
import { ipToBytes } from "../vocabulary/addresses.ts";
import { type Operation, type OperationKind, operationServiceKey } from "../vocabulary/operations.ts";
import type {
  DestinationKey,
  IpvsDestination,
  IpvsInfo,
  IpvsService,
  IpvsStats,
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
import { destinationKeyString, IPVS_SCHEDULERS, serviceKeyString } from "../vocabulary/table.ts";
import { ipvsError, operationObject, transportFailureResult } from "./error-hints.ts";
import type { ErrnoName } from "./errors.ts";
import { IpvsError, IpvsTimeoutError } from "./errors.ts";
import { encodeOperation, IpvsEncodeError, newDaemonRequest } from "./ipvs-encode.ts";
import type { IpvsKernel, OperationResult, ReadTableOptions } from "./ipvs-kernel.ts";

/** Schedulers of a stock kernel (twos arrived in 6.2). */
export const DEFAULT_SCHEDULERS: readonly string[] = IPVS_SCHEDULERS;

export interface FakeIpvsKernelOptions {
  /** Scheduler modules that "load"; others give ENOENT like a missing ip_vs_<name> module. */
  schedulers?: readonly string[];
  /** Persistence engines that load (default ["sip"]). */
  persistenceEngines?: readonly string[];
  /** Interfaces a sync daemon may bind to; others give ENODEV. */
  interfaces?: readonly string[];
  /** Connection table size reported by getInfo (kernel default 4096). */
  connectionTableSize?: number;
}

/** A transport failure injected into the next apply() (see FakeIpvsKernel.failTransport). */
export interface TransportFailure {
  /** Operations that run normally (their ACKs arrive) before the failure. */
  after: number;
  /** Operations after those that are sent but whose ACK is lost: reported unknown (default 1). */
  unknown?: number;
  /**
   * Whether the unknown operations were applied by the kernel (default true), or a choice per
   * operation (its index in the apply() call). The rest are not sent.
   */
  unknownApplied?: boolean | ((index: number) => boolean);
  /** The failure's errno (default ETIMEDOUT, reported as IpvsTimeoutError). */
  errno?: ErrnoName;
}

/** Which call an injected fault applies to: a plan operation kind or another method's name. */
export type FaultTarget = OperationKind | Exclude<keyof IpvsKernel, "apply" | "close"> | "any";

interface DestState {
  destination: IpvsDestination;
  active: number;
  inactive: number;
  persistent: number;
  stats: IpvsStats;
}

interface ServiceState {
  service: IpvsService;
  dests: Map<string, DestState>;
  stats: IpvsStats;
}

function zeroStats(): IpvsStats {
  return {
    connections: 0n,
    inPackets: 0n,
    outPackets: 0n,
    inBytes: 0n,
    outBytes: 0n,
    cps: 0n,
    inPps: 0n,
    outPps: 0n,
    inBps: 0n,
    outBps: 0n,
  };
}

/** The kernel's ip_vs_new_dest address check: unicast (or local) only. */
function unicastDestination(key: DestinationKey): boolean {
  const b = ipToBytes(key.address);
  if (key.family === "IPv4") {
    if (b[0] === 0) return false; // zeronet
    if (b.every((x) => x === 255)) return false; // limited broadcast
    if (b[0]! >= 224 && b[0]! <= 239) return false; // multicast
    return true;
  }
  if (b.every((x) => x === 0)) return false; // ::
  if (b[0] === 0xff) return false; // multicast
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return false; // link-local
  return true;
}

export class FakeIpvsKernel implements IpvsKernel {
  readonly #services = new Map<string, ServiceState>();
  readonly #schedulers: Set<string>;
  readonly #pes: Set<string>;
  readonly #interfaces: Set<string>;
  readonly #connTabSize: number;
  readonly #daemons = new Map<SyncDaemonState, SyncDaemonConfig>();
  readonly #faults: { target: FaultTarget; errno: ErrnoName; remaining: number }[] = [];
  readonly #transportFailures: TransportFailure[] = [];
  /** Injected undecodable entries: by service key (the key is taken) and without a key. */
  readonly #undecodable = new Map<string, UndecodableEntry[]>();
  #undecodableWithoutKey: UndecodableEntry[] = [];
  #timeouts: IpvsTimeouts = { tcp: 900, tcpFin: 120, udp: 300 };
  #closed = false;

  constructor(options: FakeIpvsKernelOptions = {}) {
    this.#schedulers = new Set(options.schedulers ?? DEFAULT_SCHEDULERS);
    this.#pes = new Set(options.persistenceEngines ?? ["sip"]);
    this.#interfaces = new Set(options.interfaces ?? ["lo", "eth0", "dummy0"]);
    this.#connTabSize = options.connectionTableSize ?? 4096;
  }

  // -------------------------------------------------------------------------------------------
  // Test hooks

  /** Make the next `times` calls of `target` fail with `errno` (they change nothing). */
  failNext(target: FaultTarget, errno: ErrnoName, times = 1): void {
    this.#faults.push({ target, errno, remaining: times });
  }

  /**
   * Make the next apply() meet a transport failure (a lost ACK, a timeout, a socket error): the
   * first `after` operations run as usual, the next `unknown` are reported `unknown` (and applied or
   * not, as chosen), the rest are not sent. apply() still resolves, as NetlinkIpvsKernel's does.
   */
  failTransport(failure: TransportFailure): void {
    this.#transportFailures.push(failure);
  }

  /**
   * Add an entry the decoder cannot read, as readTable() reports it. With a `key` it takes that
   * key like a foreign service: addService of the key gives EEXIST, deleteService removes it. With
   * a `destination` as well it stands for an unreadable destination of that service (if the service
   * exists here, readTable() leaves the whole service out of the table, as NetlinkIpvsKernel does;
   * listServices() still lists it and listDestinations() lists the destinations that decode).
   * Without a `destination` it is an unreadable service: listServices() does not list it.
   * Operations on the key other than add and delete succeed and change nothing visible.
   */
  injectUndecodable(entry: UndecodableEntry): void {
    const copy = structuredClone(entry);
    if (!copy.key) {
      this.#undecodableWithoutKey.push(copy);
      return;
    }
    const id = serviceKeyString(copy.key);
    this.#undecodable.set(id, [...(this.#undecodable.get(id) ?? []), copy]);
  }

  /** A reboot: an empty table, default timeouts, no daemons, nothing injected (faults stay armed). */
  reboot(): void {
    this.#services.clear();
    this.#daemons.clear();
    this.#undecodable.clear();
    this.#undecodableWithoutKey = [];
    this.#timeouts = { tcp: 900, tcpFin: 120, udp: 300 };
  }

  /** Simulate a scheduler module appearing or disappearing. */
  setSchedulerAvailable(name: string, available: boolean): void {
    if (available) this.#schedulers.add(name);
    else this.#schedulers.delete(name);
  }

  /** Set a destination's connection counters (e.g. to test draining a weight-0 destination). */
  setConnections(
    service: ServiceKey,
    key: DestinationKey,
    counters: { active?: number; inactive?: number; persistent?: number },
  ): void {
    const dest = this.#services.get(serviceKeyString(service))?.dests.get(destinationKeyString(key));
    if (!dest) {
      throw new Error(
        `setConnections: no destination ${destinationKeyString(key)} in ${serviceKeyString(service)}`,
      );
    }
    dest.active = counters.active ?? dest.active;
    dest.inactive = counters.inactive ?? dest.inactive;
    dest.persistent = counters.persistent ?? dest.persistent;
  }

  /** Number of services held (for assertions). */
  get serviceCount(): number {
    return this.#services.size;
  }

  // -------------------------------------------------------------------------------------------
  // IpvsKernel

  /**
   * Through listServices() and listDestinations() (so a test that replaces or faults them shapes
   * the dump too), leaving out a service with an injected undecodable entry as a whole.
   */
  async readTable(options: ReadTableOptions = {}): Promise<KernelSnapshot> {
    this.#enter("readTable", "");
    const withStats = options.stats ?? true;
    const table: KernelTable = [];
    for (const service of await this.listServices()) {
      if (this.#undecodable.has(serviceKeyString(service.key))) continue; // reported whole below
      const destinations = await this.listDestinations(service.key);
      if (!withStats) {
        delete service.stats;
        for (const d of destinations) delete d.stats;
      }
      table.push({ service, destinations });
    }
    const undecodable = [...this.#undecodable.values()].flat().concat(this.#undecodableWithoutKey);
    return { table, undecodable: structuredClone(undecodable) };
  }

  async listServices(): Promise<KernelService[]> {
    this.#enter("listServices", "");
    const out: KernelService[] = [];
    for (const [id, svc] of this.#services) {
      if (this.#undecodable.get(id)?.some((e) => e.destination === undefined)) continue;
      out.push(this.#serviceCopy(svc));
    }
    return out;
  }

  async listDestinations(service: ServiceKey): Promise<KernelDestination[]> {
    this.#enter("listDestinations", serviceKeyString(service));
    const svc = this.#services.get(serviceKeyString(service));
    return svc ? this.#destinationCopies(svc) : [];
  }

  async addService(service: IpvsService): Promise<void> {
    this.#run({ op: "addService", service });
  }

  async updateService(service: IpvsService): Promise<void> {
    this.#run({ op: "updateService", service });
  }

  async deleteService(key: ServiceKey): Promise<void> {
    this.#run({ op: "deleteService", key });
  }

  async addDestination(service: ServiceKey, destination: IpvsDestination): Promise<void> {
    this.#run({ op: "addDestination", service, destination });
  }

  async updateDestination(service: ServiceKey, destination: IpvsDestination): Promise<void> {
    this.#run({ op: "updateDestination", service, destination });
  }

  async deleteDestination(service: ServiceKey, key: DestinationKey): Promise<void> {
    this.#run({ op: "deleteDestination", service, key });
  }

  async apply(operations: readonly Operation[]): Promise<OperationResult[]> {
    this.#checkOpen("apply");
    const failure = this.#transportFailures.shift();
    const run = (op: Operation): OperationResult => {
      try {
        this.#run(op);
        return { ok: true };
      } catch (e) {
        if (e instanceof IpvsError) return { ok: false, error: e };
        throw e;
      }
    };
    if (!failure) return operations.map(run);
    const errno = failure.errno ?? "ETIMEDOUT";
    const Class = errno === "ETIMEDOUT" ? IpvsTimeoutError : IpvsError;
    const error = new Class("apply", "", errno, "injected transport failure");
    const unknownEnd = failure.after + (failure.unknown ?? 1);
    const applied = failure.unknownApplied ?? true;
    return operations.map((op, i) => {
      if (i < failure.after) return run(op);
      if (i < unknownEnd && (typeof applied === "function" ? applied(i) : applied)) run(op);
      return transportFailureResult(op.op, operationObject(op), error, i < unknownEnd);
    });
  }

  async getTimeouts(): Promise<IpvsTimeouts> {
    this.#enter("getTimeouts", "");
    return { ...this.#timeouts };
  }

  async setTimeouts(timeouts: Partial<IpvsTimeouts>): Promise<void> {
    this.#enter("setTimeouts", "");
    const next = { ...this.#timeouts };
    for (const field of ["tcp", "tcpFin", "udp"] as const) {
      const v = timeouts[field];
      if (v === undefined || v === 0) continue;
      // The kernel stores jiffies in an int: more than INT_MAX/HZ (HZ=250 on Debian) is EINVAL.
      if (!Number.isInteger(v) || v < 0 || v > Math.floor(0x7fffffff / 250)) {
        throw ipvsError("setTimeouts", "", "EINVAL");
      }
      next[field] = v;
    }
    this.#timeouts = next;
  }

  async getDaemons(): Promise<SyncDaemonConfig[]> {
    this.#enter("getDaemons", "");
    return [...this.#daemons.values()].map((d) => ({ ...d }));
  }

  async startDaemon(config: SyncDaemonConfig): Promise<void> {
    const object = `${config.state} sync daemon on ${config.interface}`;
    this.#enter("startDaemon", object);
    try {
      newDaemonRequest(config);
    } catch (e) {
      if (e instanceof IpvsEncodeError) throw new IpvsError("startDaemon", object, "EINVAL", e.message);
      throw e;
    }
    if (this.#hasMixedFamilyDestinations()) throw ipvsError("startDaemon", object, "EINVAL");
    if (this.#daemons.has(config.state)) throw ipvsError("startDaemon", object, "EEXIST");
    if (!this.#interfaces.has(config.interface)) throw ipvsError("startDaemon", object, "ENODEV");
    this.#daemons.set(config.state, {
      ...config,
      maxLength: config.maxLength ?? 1472,
      group: config.group ?? "224.0.0.81",
      port: config.port ?? 8848,
      ttl: config.ttl ?? 1,
    });
  }

  async stopDaemon(state: SyncDaemonState): Promise<void> {
    const object = `${state} sync daemon`;
    this.#enter("stopDaemon", object);
    if (!this.#daemons.delete(state)) throw ipvsError("stopDaemon", object, "ESRCH");
  }

  async getInfo(): Promise<IpvsInfo> {
    this.#enter("getInfo", "");
    return { versionCode: 0x010201, version: "1.2.1", connectionTableSize: this.#connTabSize };
  }

  async zero(service?: ServiceKey): Promise<void> {
    const object = service ? serviceKeyString(service) : "";
    this.#enter("zero", object);
    const targets = service ? [this.#services.get(serviceKeyString(service))] : [...this.#services.values()];
    for (const svc of targets) {
      if (!svc) throw ipvsError("zero", object, "ESRCH");
      svc.stats = zeroStats();
      for (const d of svc.dests.values()) d.stats = zeroStats();
    }
  }

  async flush(): Promise<void> {
    this.#enter("flush", "");
    this.#services.clear();
    this.#undecodable.clear();
    this.#undecodableWithoutKey = [];
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  // -------------------------------------------------------------------------------------------
  // Internals

  #checkOpen(operation: string): void {
    if (this.#closed) throw new IpvsError(operation, "", "EIO", "kernel handle is closed");
  }

  /** Open check plus fault injection for one call. */
  #enter(operation: string, object: string, op?: Operation): void {
    this.#checkOpen(operation);
    const i = this.#faults.findIndex((f) => f.target === operation || f.target === "any");
    if (i < 0) return;
    const fault = this.#faults[i]!;
    fault.remaining--;
    if (fault.remaining <= 0) this.#faults.splice(i, 1);
    throw ipvsError(operation, object, fault.errno, op);
  }

  #serviceCopy(svc: ServiceState): KernelService {
    return { ...structuredClone(svc.service), stats: { ...svc.stats } };
  }

  /** Newest first, as the kernel lists them (list_add_rcu at the head; an update keeps the place). */
  #destinationCopies(svc: ServiceState): KernelDestination[] {
    return [...svc.dests.values()].reverse().map((d) => ({
      ...structuredClone(d.destination),
      activeConnections: d.active,
      inactiveConnections: d.inactive,
      persistentConnections: d.persistent,
      stats: { ...d.stats },
    }));
  }

  #hasMixedFamilyDestinations(): boolean {
    for (const svc of this.#services.values()) {
      for (const d of svc.dests.values())
        if (d.destination.key.family !== svc.service.key.family) return true;
    }
    return false;
  }

  #run(op: Operation): void {
    const object = operationObject(op);
    this.#enter(op.op, object, op);
    const fail = (errno: ErrnoName) => ipvsError(op.op, object, errno, op);
    try {
      encodeOperation(op);
    } catch (e) {
      if (e instanceof IpvsEncodeError) throw new IpvsError(op.op, object, "EINVAL", e.message);
      throw e;
    }
    const id = serviceKeyString(operationServiceKey(op));
    const svc = this.#services.get(id);
    if (!svc && this.#undecodable.has(id)) {
      // A foreign entry this side cannot read: the key is taken; delete removes it, the rest is a no-op.
      if (op.op === "addService") throw fail("EEXIST");
      if (op.op === "deleteService") this.#undecodable.delete(id);
      return;
    }

    if (op.op === "addService" || op.op === "updateService") {
      if (op.op === "addService" && svc) throw fail("EEXIST");
      if (op.op === "updateService" && !svc) throw fail("ESRCH");
      const { config, key } = op.service;
      if (config.scheduler !== "none" && !this.#schedulers.has(config.scheduler)) throw fail("ENOENT");
      if (config.persistenceEngine !== "" && !this.#pes.has(config.persistenceEngine)) throw fail("ENOENT");
      if (key.family === "IPv6" && (config.netmask < 1 || config.netmask > 128)) throw fail("EINVAL");
      const service = structuredClone(op.service);
      if (svc) svc.service = service;
      else this.#services.set(serviceKeyString(key), { service, dests: new Map(), stats: zeroStats() });
      return;
    }
    if (!svc) throw fail("ESRCH");
    if (op.op === "deleteService") {
      this.#services.delete(id);
      this.#undecodable.delete(id);
      return;
    }
    if (op.op === "deleteDestination") {
      if (!svc.dests.delete(destinationKeyString(op.key))) throw fail("ENOENT");
      return;
    }
    const { key, config } = op.destination;
    if (key.family !== svc.service.key.family) {
      if (this.#daemons.size > 0 || config.forwarding !== "Tunnel") throw fail("EINVAL");
    }
    if (config.weight > 0x7fffffff) throw fail("ERANGE");
    if (config.lowerThreshold > config.upperThreshold) throw fail("ERANGE");
    if (config.tunnelType === "GUE" && config.tunnelPort === 0) throw fail("EINVAL");
    const existing = svc.dests.get(destinationKeyString(key));
    if (op.op === "addDestination") {
      if (existing) throw fail("EEXIST");
      if (!unicastDestination(key)) throw fail("EINVAL");
      svc.dests.set(destinationKeyString(key), {
        destination: structuredClone(op.destination),
        active: 0,
        inactive: 0,
        persistent: 0,
        stats: zeroStats(),
      });
      return;
    }
    if (!existing) throw fail("ENOENT");
    existing.destination = structuredClone(op.destination);
  }
}
