/**
 * The Kubernetes source: informers (client-node's ListWatch) for VirtualService, RealServer, Service,
 * EndpointSlice, the agent's own Node, and core/v1 Endpoints only while some VirtualService reads them;
 * with the address policy enforced, also IPVSAddressPolicy and core/v1 Namespace (for the labels that
 * namespaceSelectors match; a label change is a change like any other).
 *
 * - Bounded memory: every object is stripped before it is cached (managedFields, the last-applied
 *   annotation and the status of Services are dropped; see strip()), by a list function that strips the
 *   list and a Watch wrapper that strips each event, so the informer cache only ever holds the slim form.
 * - Recovery: ListWatch relists on 410 Gone and reconnects after its 30 s inactivity timeout (a silently
 *   dead watch); on any other error it stops, and this source restarts it with exponential backoff and
 *   jitter; after a 429 Too Many Requests it waits what the server's Retry-After says instead (as
 *   client-go does, up to 10 times in a row; then the backoff again). While a cache has not listed since it (re)started, `incomplete` says so (no removals).
 * - start() resolves only when every cache has listed once, so no kernel change happens before that.
 */
import { createHash } from "node:crypto";
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  Watch,
} from "@kubernetes/client-node";
import type { Snapshot } from "../model/snapshot.ts";
import type { Logger } from "../observability/logger.ts";
import type { SnapshotSource, SourceChange, SourceState } from "../sources/snapshot-source.ts";

export const IPVS_GROUP = "ipvs.dev";
export const IPVS_VERSION = "v1alpha1";
/** Objects per list request (the apiserver's chunking); pages are stripped one by one. */
const LIST_PAGE_SIZE = 500;

/**
 * A list function for ListWatch that reads in pages of LIST_PAGE_SIZE (one consistent snapshot: every
 * page has the list's resourceVersion) and strips each page before fetching the next, so a large
 * cluster's list never holds every full object at once.
 */
export function pagedList(
  fetchPage: (page: { limit: number; _continue?: string }) => Promise<unknown>,
): () => Promise<KubernetesListObject<KubernetesObject>> {
  return async () => {
    const items: KubernetesObject[] = [];
    let token: string | undefined;
    let page: KubernetesListObject<KubernetesObject>;
    do {
      page = (await fetchPage({
        limit: LIST_PAGE_SIZE,
        ...(token ? { _continue: token } : {}),
      })) as KubernetesListObject<KubernetesObject>;
      for (const item of page.items ?? []) items.push(strip(item));
      // Typed lists say `_continue`, custom-object lists (plain JSON) `continue`.
      const meta = page.metadata as { _continue?: string; continue?: string } | undefined;
      token = meta?._continue || meta?.continue || undefined;
    } while (token);
    return { ...page, items };
  };
}

export interface KubernetesSourceOptions {
  kubeConfig: KubeConfig;
  nodeName: string;
  logger?: Logger;
  /** First restart delay after a watch error, in ms (default 1000; doubles up to maxBackoffMs). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Enforce the address policy: watch IPVSAddressPolicy objects and Namespaces (list + watch, for the
   * policies' namespaceSelectors) and put them into the snapshot.
   */
  addressPolicies?: boolean;
}

/** The KubeConfig for a path, else the in-cluster service account, else the default locations. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

type Lister = () => Promise<KubernetesListObject<KubernetesObject>>;

interface Resource {
  name: string;
  path: string;
  list: Lister;
  fieldSelector?: string;
  informer?: ListWatch<KubernetesObject>;
  /** Listed since its last (re)start. */
  listed: boolean;
  restarts: number;
  /** 429s in a row since the last list (each waited out as the server's Retry-After said). */
  throttles?: number;
  /** Errors reported by the informer so far. */
  errors: number;
  timer?: NodeJS.Timeout;
}

/** Retry-After answers honoured in a row before the exponential backoff takes over (client-go's maxRetries). */
const MAX_THROTTLED_RETRIES = 10;

/**
 * For a 429 Too Many Requests: how long the server asked to wait, in ms (its Retry-After, 1-60 s, plus
 * up to 20% jitter; 1 s when it gave none: a failed watch reports only its status code). Undefined for
 * any other error.
 */
export function retryAfterMs(error: unknown): number | undefined {
  const e = error as { code?: unknown; statusCode?: unknown; headers?: Record<string, unknown> } | undefined;
  if (e?.code !== 429 && e?.statusCode !== 429) return undefined;
  const header = e.headers?.["retry-after"] ?? e.headers?.["Retry-After"];
  const seconds = typeof header === "string" && /^\d+$/.test(header.trim()) ? Number(header) : 1;
  // At least 1 s, and a little jitter, so that the informers of every node do not return in one step.
  return Math.round(Math.min(Math.max(seconds, 1), 60) * 1000 * (1 + Math.random() * 0.2));
}

/** Drops what the engine never reads, so caches stay small (and JSON-plain: no Date objects). */
export function strip<T>(object: T): T {
  const o = JSON.parse(JSON.stringify(object)) as {
    kind?: string;
    metadata?: { managedFields?: unknown; annotations?: Record<string, string> };
    status?: unknown;
  };
  if (o.metadata) {
    delete o.metadata.managedFields;
    if (o.metadata.annotations) {
      delete o.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"];
      if (Object.keys(o.metadata.annotations).length === 0) delete o.metadata.annotations;
    }
  }
  if (o.kind === "Service") delete o.status;
  return o as T;
}

/** A digest of the object as the engine reads it (status and resourceVersion left out). */
function withoutStatus(o: KubernetesObject & { status?: unknown }): string {
  const { status: _status, ...rest } = o;
  const text = JSON.stringify({ ...rest, metadata: { ...o.metadata, resourceVersion: undefined } });
  return createHash("sha1").update(text).digest("base64");
}

/** A Watch whose events reach the informer already stripped. */
export class StrippingWatch extends Watch {
  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    return super.watch(path, queryParams, (phase, object, raw) => callback(phase, strip(object), raw), done);
  }
}

export class KubernetesSource implements SnapshotSource {
  readonly #options: KubernetesSourceOptions;
  readonly #watch: Watch;
  readonly #resources: Record<
    | "virtualServices"
    | "realServers"
    | "services"
    | "endpointSlices"
    | "node"
    | "endpoints"
    | "addressPolicies"
    | "namespaces",
    Resource
  >;
  readonly #listeners: ((change?: SourceChange) => void)[] = [];
  /** EndpointSlice names by the Service they belong to ("namespace/name"), and the reverse. */
  readonly #slicesByService = new Map<string, Set<string>>();
  readonly #serviceOfSlice = new Map<string, string>();
  #synced = false;
  #stopped = false;

  constructor(options: KubernetesSourceOptions) {
    this.#options = options;
    const kc = options.kubeConfig;
    this.#watch = new StrippingWatch(kc);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const ipvs = (plural: string): Resource => ({
      name: plural,
      path: `/apis/${IPVS_GROUP}/${IPVS_VERSION}/${plural}`,
      list: pagedList((page) =>
        custom.listClusterCustomObject({ group: IPVS_GROUP, version: IPVS_VERSION, plural, ...page }),
      ),
      listed: false,
      restarts: 0,
      errors: 0,
    });
    const nodeSelector = `metadata.name=${options.nodeName}`;
    this.#resources = {
      virtualServices: ipvs("virtualservices"),
      realServers: ipvs("realservers"),
      addressPolicies: ipvs("ipvsaddresspolicies"),
      services: {
        name: "services",
        path: "/api/v1/services",
        list: pagedList((page) => core.listServiceForAllNamespaces(page)),
        listed: false,
        restarts: 0,
        errors: 0,
      },
      endpointSlices: {
        name: "endpointslices",
        path: "/apis/discovery.k8s.io/v1/endpointslices",
        list: pagedList((page) => discovery.listEndpointSliceForAllNamespaces(page)),
        listed: false,
        restarts: 0,
        errors: 0,
      },
      node: {
        name: "node",
        path: "/api/v1/nodes",
        fieldSelector: nodeSelector,
        list: pagedList((page) => core.listNode({ fieldSelector: nodeSelector, ...page })),
        listed: false,
        restarts: 0,
        errors: 0,
      },
      namespaces: {
        name: "namespaces",
        path: "/api/v1/namespaces",
        list: pagedList((page) => core.listNamespace(page)),
        listed: false,
        restarts: 0,
        errors: 0,
      },
      endpoints: {
        name: "endpoints",
        path: "/api/v1/endpoints",
        list: pagedList((page) => core.listEndpointsForAllNamespaces(page)),
        listed: false,
        restarts: 0,
        errors: 0,
      },
    };
  }

  get synced(): boolean {
    return this.#synced;
  }

  onChange(listener: (change?: SourceChange) => void): void {
    this.#listeners.push(listener);
  }

  readonly changes = {
    endpointSlicesOf: (service: string): Snapshot["endpointSlices"] => {
      const informer = this.#resources.endpointSlices.informer;
      const names = this.#slicesByService.get(service);
      if (!informer || !names) return [];
      const namespace = service.slice(0, service.indexOf("/"));
      const slices: Snapshot["endpointSlices"][number][] = [];
      for (const name of names) {
        const slice = informer.get(name, namespace);
        if (slice) slices.push(slice as unknown as Snapshot["endpointSlices"][number]);
      }
      return slices;
    },
    incomplete: (): string[] => this.#incomplete(),
  };

  async start(): Promise<void> {
    this.#stopped = false;
    const always = [
      this.#resources.virtualServices,
      this.#resources.realServers,
      this.#resources.services,
      this.#resources.endpointSlices,
      this.#resources.node,
      ...(this.#options.addressPolicies ? [this.#resources.addressPolicies, this.#resources.namespaces] : []),
    ];
    await Promise.all(always.map((r) => this.#startResource(r)));
    this.#updateEndpointsInformer();
    const endpoints = this.#resources.endpoints;
    if (endpoints.informer && !endpoints.listed) await this.#waitListed(endpoints);
    this.#synced = true;
    this.#changed();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const r of Object.values(this.#resources)) {
      clearTimeout(r.timer);
      await r.informer?.stop();
    }
  }

  current(): SourceState {
    const items = (r: Resource) => (r.informer ? [...r.informer.list()] : []);
    const node = items(this.#resources.node)[0] as
      | { metadata?: { labels?: Record<string, string> } }
      | undefined;
    const incomplete = this.#incomplete();
    const snapshot: Snapshot = {
      virtualServices: items(this.#resources.virtualServices),
      realServers: items(this.#resources.realServers),
      services: items(this.#resources.services) as unknown as Snapshot["services"],
      endpointSlices: items(this.#resources.endpointSlices) as unknown as Snapshot["endpointSlices"],
      endpoints: items(this.#resources.endpoints) as unknown as Snapshot["endpoints"],
      // Informer caches hold one object per namespace and name.
      uniqueNames: true,
      ...(this.#options.addressPolicies
        ? {
            addressPolicies: items(this.#resources.addressPolicies),
            namespaces: items(this.#resources.namespaces) as unknown as Snapshot["namespaces"],
          }
        : {}),
    };
    return {
      snapshot,
      node: { name: this.#options.nodeName, labels: node?.metadata?.labels ?? {} },
      incomplete,
    };
  }

  #incomplete(): string[] {
    return Object.values(this.#resources)
      .filter((r) => r.informer && !r.listed)
      .map((r) => `the ${r.name} cache is (re)loading`);
  }

  /** The Endpoints informer runs only while some VirtualService reads core/v1 Endpoints. */
  #updateEndpointsInformer(): void {
    const wanted = [...(this.#resources.virtualServices.informer?.list() ?? [])].some(
      (vs) => (vs as { spec?: { backends?: { source?: string } } }).spec?.backends?.source === "Endpoints",
    );
    const r = this.#resources.endpoints;
    if (wanted && !r.informer && !this.#stopped) {
      this.#options.logger?.info(
        { resource: r.name },
        "Starting the Endpoints informer: a VirtualService reads core/v1 Endpoints",
      );
      void this.#startResource(r).then(() => this.#changed());
    } else if (!wanted && r.informer) {
      this.#options.logger?.info(
        { resource: r.name },
        "Stopping the Endpoints informer: no VirtualService reads them",
      );
      const informer = r.informer;
      r.informer = undefined;
      r.listed = false;
      void informer.stop();
    }
  }

  #startResource(r: Resource): Promise<void> {
    const informer = new ListWatch<KubernetesObject>(
      r.path,
      this.#watch,
      r.list,
      false,
      undefined,
      r.fieldSelector,
    );
    r.informer = informer;
    r.listed = false;
    const changed = () => {
      if (r === this.#resources.virtualServices) this.#updateEndpointsInformer();
      this.#changed();
    };
    if (r === this.#resources.endpointSlices) {
      informer.on("add", (slice) => this.#sliceChanged(slice, false));
      informer.on("update", (slice) => this.#sliceChanged(slice, false));
      informer.on("delete", (slice) => this.#sliceChanged(slice, true));
    } else if (r === this.#resources.virtualServices || r === this.#resources.realServers) {
      // The engine never reads their status: a status-only write (the aggregator's, one per object and
      // change) is no change, or every agent would resync once per VirtualService the aggregator writes.
      const seen = new Map<string, string>(); // namespace/name -> digest (~100 bytes an object)
      const ofInterest = (o: KubernetesObject) => {
        const key = `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;
        const print = withoutStatus(o);
        if (seen.get(key) === print) return false;
        seen.set(key, print);
        return true;
      };
      informer.on("add", (o) => ofInterest(o) && changed());
      informer.on("update", (o) => ofInterest(o) && changed());
      informer.on("delete", (o) => {
        seen.delete(`${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`);
        changed();
      });
    } else {
      informer.on("add", changed);
      informer.on("update", changed);
      informer.on("delete", changed);
    }
    informer.on("error", (error: unknown) => {
      r.errors++;
      if (this.#stopped || r.informer !== informer) return;
      r.listed = false;
      const throttled = retryAfterMs(error);
      const honoured = throttled !== undefined && (r.throttles ?? 0) < MAX_THROTTLED_RETRIES;
      if (honoured) r.throttles = (r.throttles ?? 0) + 1;
      const delay = honoured ? throttled : this.#backoff(r.restarts++);
      this.#options.logger?.warn(
        { resource: r.name, err: String((error as Error)?.message ?? error), retryInMs: delay },
        "Watch failed; restarting the informer",
      );
      this.#changed();
      clearTimeout(r.timer);
      r.timer = setTimeout(() => {
        if (this.#stopped || r.informer !== informer) return;
        void this.#begin(r, informer).then((ok) => ok && this.#changed());
      }, delay);
    });
    return this.#begin(r, informer).then((ok) => (ok ? undefined : this.#waitListed(r)));
  }

  /**
   * One start of an informer: true when it listed and watches. ListWatch reports a failed list through
   * its error callback (which schedules the next try) and still resolves start(), so errors are counted.
   */
  async #begin(r: Resource, informer: ListWatch<KubernetesObject>): Promise<boolean> {
    const before = r.errors;
    await informer.start().catch(() => undefined);
    if (r.errors !== before || r.informer !== informer) return false;
    r.listed = true;
    r.restarts = 0;
    r.throttles = 0;
    return true;
  }

  #waitListed(r: Resource): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (r.listed || this.#stopped || !r.informer) resolve();
        else setTimeout(check, 50);
      };
      check();
    });
  }

  #backoff(attempt: number): number {
    const base = this.#options.backoffMs ?? 1000;
    const max = this.#options.maxBackoffMs ?? 30_000;
    const delay = Math.min(max, base * 2 ** attempt);
    return Math.round(delay * (0.8 + Math.random() * 0.4));
  }

  /**
   * Keeps the Service -> EndpointSlices index and says which Service's slices changed; a slice that
   * moved to another Service (its label changed) or belongs to none is reported as any change.
   */
  #sliceChanged(slice: KubernetesObject, deleted: boolean): void {
    const namespace = slice.metadata?.namespace ?? "";
    const name = slice.metadata?.name ?? "";
    const sliceKey = `${namespace}/${name}`;
    const label = slice.metadata?.labels?.["kubernetes.io/service-name"];
    const service = label === undefined || deleted ? undefined : `${namespace}/${label}`;
    const before = this.#serviceOfSlice.get(sliceKey);
    if (before !== undefined && before !== service) {
      this.#serviceOfSlice.delete(sliceKey);
      const names = this.#slicesByService.get(before);
      names?.delete(name);
      if (names?.size === 0) this.#slicesByService.delete(before);
    }
    if (service !== undefined && before !== service) {
      this.#serviceOfSlice.set(sliceKey, service);
      const names = this.#slicesByService.get(service);
      if (names) names.add(name);
      else this.#slicesByService.set(service, new Set([name]));
    }
    const one = service ?? (deleted ? before : undefined);
    this.#changed(before === undefined || before === service || deleted ? one : undefined);
  }

  #changed(service?: string): void {
    const change: SourceChange | undefined =
      service === undefined ? undefined : { kind: "EndpointSlices", service };
    for (const listener of this.#listeners) listener(change);
  }
}
