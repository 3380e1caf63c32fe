/**
 * Kubernetes Events (events.k8s.io/v1) for what the agent did, rate-limited and aggregated:
 * the same event (object, reason, note) within `seriesWindowMs` updates one Event's series count
 * instead of creating another, and at most `burst` new Events per object are created per minute.
 * Failures to record are logged and never stop a sync.
 */
import { EventsV1Api, type EventsV1Event, type KubeConfig } from "@kubernetes/client-node";
import type { EventIntent } from "../model/sync-events.ts";
import type { Logger } from "../observability/logger.ts";
import { microTime } from "./micro-time.ts";

export interface EventSink {
  record(events: readonly EventIntent[]): Promise<void>;
}

interface Seen {
  name: string;
  namespace: string;
  count: number;
  firstAt: number;
  lastAt: number;
}

export class KubernetesEventRecorder implements EventSink {
  readonly #api: EventsV1Api;
  readonly #instance: string;
  readonly #logger: Logger | undefined;
  readonly #seen = new Map<string, Seen>();
  readonly #created = new Map<string, number[]>();
  readonly #windowMs: number;
  readonly #burst: number;
  /** Events created and series updates sent (tests, metrics). */
  created = 0;
  updated = 0;
  dropped = 0;

  constructor(options: {
    kubeConfig: KubeConfig;
    nodeName: string;
    logger?: Logger;
    seriesWindowMs?: number;
    burst?: number;
  }) {
    this.#api = options.kubeConfig.makeApiClient(EventsV1Api);
    this.#instance = options.nodeName;
    this.#logger = options.logger;
    this.#windowMs = options.seriesWindowMs ?? 10 * 60_000;
    this.#burst = options.burst ?? 10;
  }

  async record(events: readonly EventIntent[]): Promise<void> {
    for (const e of events) {
      try {
        await this.#one(e, Date.now());
      } catch (error) {
        this.#logger?.warn(
          { err: String((error as Error).message ?? error), reason: e.reason },
          "Recording an Event failed",
        );
      }
    }
  }

  async #one(e: EventIntent, now: number): Promise<void> {
    const object = `${e.regarding.kind}/${e.regarding.namespace}/${e.regarding.name}`;
    const key = `${object}|${e.reason}|${e.note}`;
    const seen = this.#seen.get(key);
    if (seen && now - seen.lastAt < this.#windowMs) {
      seen.count++;
      seen.lastAt = now;
      const current = await this.#api.readNamespacedEvent({ name: seen.name, namespace: seen.namespace });
      await this.#api.replaceNamespacedEvent({
        name: seen.name,
        namespace: seen.namespace,
        body: {
          ...current,
          series: { count: seen.count, lastObservedTime: microTime(new Date(now)) },
        } as EventsV1Event,
      });
      this.updated++;
      return;
    }
    const recent = (this.#created.get(object) ?? []).filter((t) => now - t < 60_000);
    if (recent.length >= this.#burst) {
      this.dropped++;
      return;
    }
    recent.push(now);
    this.#created.set(object, recent);
    const name =
      `${e.regarding.name}.${now.toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`.slice(
        0,
        253,
      );
    await this.#api.createNamespacedEvent({
      namespace: e.regarding.namespace,
      body: {
        metadata: { name, namespace: e.regarding.namespace },
        eventTime: microTime(new Date(now)),
        type: e.type,
        reason: e.reason,
        action: e.action,
        note: e.note,
        reportingController: "ipvs.dev/agent",
        reportingInstance: this.#instance,
        regarding: {
          apiVersion: "ipvs.dev/v1alpha1",
          kind: e.regarding.kind,
          namespace: e.regarding.namespace,
          name: e.regarding.name,
        },
      } as EventsV1Event,
    });
    this.created++;
    this.#seen.set(key, { name, namespace: e.regarding.namespace, count: 1, firstAt: now, lastAt: now });
  }
}
