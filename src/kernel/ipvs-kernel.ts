/**
 * IpvsKernel: the narrow interface the rest of the code uses to read and program IPVS.
 * Two implementations pass one contract suite: NetlinkIpvsKernel (generic netlink) and FakeIpvsKernel.
 */
import type { Operation } from "../vocabulary/operations.ts";
import type {
  DestinationKey,
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
} from "../vocabulary/table.ts";
import type { IpvsError } from "./errors.ts";

/**
 * Outcome of one operation of a batch: ok, or the typed error the kernel gave for it. `unknown: true`
 * means the request was sent but its acknowledgement was lost (a transport failure): it may or may not
 * have been applied, so the caller must re-read the kernel before relying on either.
 */
export type OperationResult = { ok: true } | { ok: false; error: IpvsError; unknown?: boolean };

/** What readTable() decodes besides the table itself. */
export interface ReadTableOptions {
  /**
   * The packet and byte counters (`stats` of services and destinations; default true). A sync
   * compares configuration only and reads without them: no counter objects for a large table.
   */
  stats?: boolean;
}

export interface IpvsKernel {
  /**
   * The whole table in one read, decoded entry by entry: an entry that cannot be decoded is returned
   * in `undecodable` with the reason (never thrown), and the rest of the table is still read.
   */
  readTable(options?: ReadTableOptions): Promise<KernelSnapshot>;
  /** The services that decode (see readTable for the ones that do not). */
  listServices(): Promise<KernelService[]>;
  /** Destinations of one service with connection counters; [] for a service that does not exist. */
  listDestinations(service: ServiceKey): Promise<KernelDestination[]>;
  addService(service: IpvsService): Promise<void>;
  updateService(service: IpvsService): Promise<void>;
  deleteService(key: ServiceKey): Promise<void>;
  addDestination(service: ServiceKey, destination: IpvsDestination): Promise<void>;
  updateDestination(service: ServiceKey, destination: IpvsDestination): Promise<void>;
  deleteDestination(service: ServiceKey, key: DestinationKey): Promise<void>;
  /**
   * Runs operations in order (several per sendmsg where the implementation can) and reports
   * each one's result; a failed operation does not stop the ones after it. Never rejects for a
   * transport failure: the operations it hit are reported failed (not sent) or unknown (sent, ack lost).
   */
  apply(operations: readonly Operation[]): Promise<OperationResult[]>;
  getTimeouts(): Promise<IpvsTimeouts>;
  /** 0 for a field leaves it unchanged (kernel semantics). */
  setTimeouts(timeouts: Partial<IpvsTimeouts>): Promise<void>;
  getDaemons(): Promise<SyncDaemonConfig[]>;
  startDaemon(config: SyncDaemonConfig): Promise<void>;
  stopDaemon(state: SyncDaemonState): Promise<void>;
  getInfo(): Promise<IpvsInfo>;
  /** Zero the counters of one service, or of everything when no key is given. */
  zero(service?: ServiceKey): Promise<void>;
  /** Delete every service in the network namespace. Only for an explicit user command, never the agent. */
  flush(): Promise<void>;
  close(): Promise<void>;
}
