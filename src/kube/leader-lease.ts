/**
 * Leader election over a coordination.k8s.io/v1 Lease (as client-go's leaderelection does): one agent
 * holds the Lease and renews it; when its renewals stop for `leaseDurationSeconds`, another takes it.
 * Optimistic concurrency (resourceVersion) decides races: a 409 means someone else won.
 */
import { CoordinationV1Api, type KubeConfig, type V1Lease } from "@kubernetes/client-node";
import type { Logger } from "../observability/logger.ts";
import { microTime } from "./micro-time.ts";

export interface LeaderLeaseOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  name: string;
  /** This agent's identity (the node name). */
  identity: string;
  leaseDurationSeconds?: number;
  /** How often to renew or try to acquire, in ms (default 5000). */
  renewMs?: number;
  logger?: Logger;
  onChange?: (leader: boolean) => void;
}

export class LeaderLease {
  readonly #o: LeaderLeaseOptions;
  readonly #api: CoordinationV1Api;
  #leader = false;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: LeaderLeaseOptions) {
    this.#o = options;
    this.#api = options.kubeConfig.makeApiClient(CoordinationV1Api);
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  start(): void {
    this.#stopped = false;
    void this.#tick();
  }

  /** Stops renewing; a leader gives the Lease up at once so another agent takes over without waiting. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (this.#leader) {
      this.#set(false);
      await this.#release().catch(() => undefined);
    }
  }

  /** One attempt to acquire or renew; true when this agent holds the Lease afterwards. */
  async tryAcquireOrRenew(now = new Date()): Promise<boolean> {
    const { namespace, name, identity } = this.#o;
    const duration = this.#o.leaseDurationSeconds ?? 15;
    let lease: V1Lease | undefined;
    try {
      lease = await this.#api.readNamespacedLease({ name, namespace });
    } catch (error) {
      if ((error as { code?: number }).code !== 404) throw error;
    }
    const spec = { holderIdentity: identity, leaseDurationSeconds: duration, renewTime: microTime(now) };
    try {
      if (!lease) {
        await this.#api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: { ...spec, acquireTime: microTime(now), leaseTransitions: 0 },
          },
        });
        return true;
      }
      const holder = lease.spec?.holderIdentity ?? "";
      const renewed = lease.spec?.renewTime
        ? new Date(lease.spec.renewTime as unknown as string).getTime()
        : 0;
      const expired = renewed + (lease.spec?.leaseDurationSeconds ?? duration) * 1000 < now.getTime();
      if (holder !== identity && holder !== "" && !expired) return false;
      const transitions = (lease.spec?.leaseTransitions ?? 0) + (holder === identity ? 0 : 1);
      await this.#api.replaceNamespacedLease({
        name,
        namespace,
        body: {
          ...lease,
          spec: {
            ...lease.spec,
            ...spec,
            leaseTransitions: transitions,
            ...(holder === identity ? {} : { acquireTime: microTime(now) }),
          },
        },
      });
      return true;
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (code === 409) return false; // another agent won the race
      throw error;
    }
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    try {
      const acquired = await this.tryAcquireOrRenew();
      // Stopped while the request was in flight: never start leading, and give back what it just took.
      if (this.#stopped) {
        if (acquired) await this.#release().catch(() => undefined);
        return;
      }
      this.#set(acquired);
    } catch (error) {
      this.#o.logger?.warn({ err: String((error as Error).message ?? error) }, "Lease renewal failed");
      this.#set(false);
    }
    if (!this.#stopped) this.#timer = setTimeout(() => void this.#tick(), this.#o.renewMs ?? 5000);
  }

  #set(leader: boolean): void {
    if (leader === this.#leader) return;
    this.#leader = leader;
    this.#o.logger?.info(
      { lease: `${this.#o.namespace}/${this.#o.name}`, leader },
      leader ? "Became the status aggregator" : "No longer the status aggregator",
    );
    this.#o.onChange?.(leader);
  }

  async #release(): Promise<void> {
    const { namespace, name, identity } = this.#o;
    const lease = await this.#api.readNamespacedLease({ name, namespace });
    if (lease.spec?.holderIdentity !== identity) return;
    await this.#api.replaceNamespacedLease({
      name,
      namespace,
      body: { ...lease, spec: { ...lease.spec, holderIdentity: "" } },
    });
  }
}
