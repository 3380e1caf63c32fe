/**
 * Defensive readers of the Kubernetes core objects computeDesired() uses: Service, EndpointSlice and
 * core/v1 Endpoints. The API server validates these, but manifest files (plan / apply -f) can hold
 * anything, and the snapshot types are only a promise. Each reader looks at ONE object and returns
 * what it could read plus the issues it found (field path + message), so a malformed object becomes a
 * problem on that object instead of an exception that would drop the whole VirtualService.
 *
 * Granularity (the smallest unit that can be skipped without guessing):
 * - Service: any malformed part (spec, spec.ports, one port) -> the whole Service is unusable.
 * - EndpointSlice: malformed ports or a non-list `endpoints` -> the whole slice is skipped; a malformed
 *   endpoint (not an object, addresses not a list of strings, first address not an address of the
 *   slice's addressType, a condition that is not a boolean) -> only that endpoint is skipped.
 * - Endpoints: malformed subsets or ports -> the whole object is skipped; an address entry without a
 *   valid IP -> only that address is skipped. (An IP of the other family is legitimate there and is
 *   left to the caller, which ignores it.)
 * Pure: no I/O; never throws, whatever it is given.
 */
import { canonicalIp, ipFamily } from "../vocabulary/addresses.ts";
import { ipv4Value } from "../vocabulary/order.ts";
import type { Family } from "../vocabulary/table.ts";
import type { Snapshot } from "./snapshot.ts";

/** The label of an EndpointSlice that names its Service. */
export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

export interface ObjectIssue {
  /** Path inside the object: "endpoints[2].addresses". */
  field: string;
  message: string;
}

export interface Read<T> {
  /** Undefined when the object is unusable as a whole. */
  value: T | undefined;
  issues: ObjectIssue[];
}

export interface ObjectMeta {
  namespace: string;
  name: string;
  labels: Readonly<Record<string, unknown>>;
}

export interface PortView {
  /** "" when unnamed. */
  name: string;
  /** Undefined only for an EndpointSlice port without a number ("all ports"). */
  port: number | undefined;
  protocol: string;
}

export interface ServiceView {
  ports: (PortView & { port: number })[];
}

export interface EndpointConditions {
  readonly ready: boolean | undefined;
  readonly serving: boolean | undefined;
  readonly terminating: boolean | undefined;
}

export interface EndpointView extends EndpointConditions {
  /** Canonical form of the endpoint's first address. */
  address: string;
}

/**
 * The usable endpoints of a slice as two lists, one slot per endpoint (no object per endpoint: the views
 * of every slice are kept while the slice is, see desired.ts); endpointViews() gives them as objects.
 */
export interface SliceView {
  ports: PortView[];
  /** Canonical form of each endpoint's first address. */
  addresses: string[];
  /** Each endpoint's conditions, shared: one frozen object per combination. */
  conditions: EndpointConditions[];
}

/** The endpoints of a slice view, one object each. */
export function endpointViews(view: SliceView): EndpointView[] {
  return view.addresses.map((address, i) => ({ address, ...(view.conditions[i] as EndpointConditions) }));
}

const CONDITION_VALUES = [undefined, true, false] as const;
/** Every combination of conditions, at index 9 x ready + 3 x serving + terminating (conditionIndex). */
const CONDITIONS: readonly EndpointConditions[] = CONDITION_VALUES.flatMap((ready) =>
  CONDITION_VALUES.flatMap((serving) =>
    CONDITION_VALUES.map((terminating) => Object.freeze({ ready, serving, terminating })),
  ),
);

function conditionIndex(v: boolean | undefined): number {
  return v === undefined ? 0 : v ? 1 : 2;
}

export interface EndpointsSubsetView {
  ports: (PortView & { port: number })[];
  /** Canonical addresses of `addresses` (ready), any family. */
  addresses: string[];
}

export interface EndpointsView {
  subsets: EndpointsSubsetView[];
}

const PROTOCOLS = ["TCP", "UDP", "SCTP"];

/** namespace (default "default"), name ("" when absent) and labels of any value; never throws. */
export function objectMeta(raw: unknown): ObjectMeta {
  const meta = isRecord(raw) && isRecord(raw.metadata) ? raw.metadata : {};
  return {
    namespace: typeof meta.namespace === "string" && meta.namespace !== "" ? meta.namespace : "default",
    name: typeof meta.name === "string" ? meta.name : "",
    labels: isRecord(meta.labels) ? meta.labels : {},
  };
}

/** An EndpointSlice with its metadata as objectMeta() reads it. */
export interface IndexedSlice {
  slice: unknown;
  meta: ObjectMeta;
}

/**
 * Where computeDesired() looks core objects up, so each lookup is one map access instead of a scan of
 * the whole snapshot. Answers are exactly what a scan in snapshot order gives: a Service or Endpoints
 * is the FIRST object with that namespace and name (objectMeta(): namespace "default", name "" when
 * absent); the EndpointSlices of a Service are all those of its namespace whose kubernetes.io/service-name
 * label is that name, in snapshot order. Each map is built on first use.
 */
export interface CoreObjectIndex {
  service(namespace: string, name: string): unknown;
  endpoints(namespace: string, name: string): unknown;
  endpointSlices(namespace: string, serviceName: string): readonly IndexedSlice[];
}

export function indexCoreObjects(
  snapshot: Pick<Snapshot, "services" | "endpoints" | "endpointSlices">,
): CoreObjectIndex {
  let services: NamespacedMap<unknown> | undefined;
  let endpoints: NamespacedMap<unknown> | undefined;
  let slices: NamespacedMap<IndexedSlice[]> | undefined;
  const firstByName = (objects: readonly unknown[]): NamespacedMap<unknown> => {
    const map = new NamespacedMap<unknown>();
    for (const object of objects) {
      const meta = objectMeta(object);
      if (!map.has(meta.namespace, meta.name)) map.set(meta.namespace, meta.name, object);
    }
    return map;
  };
  return {
    service(namespace, name) {
      services ??= firstByName(snapshot.services);
      return services.get(namespace, name);
    },
    endpoints(namespace, name) {
      endpoints ??= firstByName(snapshot.endpoints);
      return endpoints.get(namespace, name);
    },
    endpointSlices(namespace, serviceName) {
      if (!slices) {
        slices = new NamespacedMap<IndexedSlice[]>();
        for (const slice of snapshot.endpointSlices) {
          const meta = objectMeta(slice);
          const label = meta.labels[SERVICE_NAME_LABEL];
          if (typeof label !== "string") continue;
          const list = slices.get(meta.namespace, label);
          if (list) list.push({ slice, meta });
          else slices.set(meta.namespace, label, [{ slice, meta }]);
        }
      }
      return slices.get(namespace, serviceName) ?? [];
    },
  };
}

/** A map keyed by (namespace, name) without joining them into one string (names may hold any character). */
class NamespacedMap<T> {
  readonly #byNamespace = new Map<string, Map<string, T>>();

  has(namespace: string, name: string): boolean {
    return this.#byNamespace.get(namespace)?.has(name) ?? false;
  }

  get(namespace: string, name: string): T | undefined {
    return this.#byNamespace.get(namespace)?.get(name);
  }

  set(namespace: string, name: string, value: T): void {
    let inner = this.#byNamespace.get(namespace);
    if (!inner) {
      inner = new Map();
      this.#byNamespace.set(namespace, inner);
    }
    inner.set(name, value);
  }
}

/**
 * canonicalIp() (throws on what is not an address), without re-printing an IPv4 address that net.isIPv4
 * accepts: that text is already canonical (no leading zeros, no other spelling), and it is the common case.
 */
export function canonicalAddress(address: string): string {
  return ipv4Value(address) !== undefined ? address : canonicalIp(address);
}

export function readService(raw: unknown): Read<ServiceView> {
  const issues: ObjectIssue[] = [];
  const spec = isRecord(raw) ? raw.spec : undefined;
  if (spec !== undefined && spec !== null && !isRecord(spec)) {
    return {
      value: undefined,
      issues: [{ field: "spec", message: `must be an object, not ${describe(spec)}` }],
    };
  }
  const rawPorts = isRecord(spec) ? spec.ports : undefined;
  const ports = readPorts(rawPorts, "spec.ports", true, issues) as ServiceView["ports"];
  return issues.length > 0 ? { value: undefined, issues } : { value: { ports }, issues };
}

export function readEndpointSlice(raw: unknown, family: Family): Read<SliceView> {
  const issues: ObjectIssue[] = [];
  const record = isRecord(raw) ? raw : {};
  const ports = readPorts(record.ports, "ports", false, issues);
  const rawEndpoints = record.endpoints ?? [];
  if (!Array.isArray(rawEndpoints)) {
    issues.push({ field: "endpoints", message: `must be a list, not ${describe(rawEndpoints)}` });
  }
  if (issues.length > 0) return { value: undefined, issues };

  const usable: string[] = [];
  const conditionsOf: EndpointConditions[] = [];
  const list = rawEndpoints as unknown[];
  // A plain loop, the field path built only for an issue: this runs once per endpoint of the cluster.
  for (let i = 0; i < list.length; i++) {
    if (!(i in list)) continue; // a hole, skipped as forEach skips it
    const e = list[i];
    if (!isRecord(e)) {
      issues.push({
        field: `endpoints[${i}]`,
        message: `must be an object, not ${describe(e)}; this endpoint is skipped`,
      });
      continue;
    }
    const addresses = e.addresses;
    if (!Array.isArray(addresses) || addresses.length === 0 || typeof addresses[0] !== "string") {
      issues.push({
        field: `endpoints[${i}].addresses`,
        message: `must be a non-empty list of addresses, not ${describe(addresses)}; this endpoint is skipped`,
      });
      continue;
    }
    const first = addresses[0];
    // ipv4Value reads exactly the dotted quads net.isIPv4 accepts, which are canonical already.
    const dottedQuad = ipv4Value(first) !== undefined;
    if ((dottedQuad ? "IPv4" : ipFamily(first)) !== family) {
      issues.push({
        field: `endpoints[${i}].addresses[0]`,
        message: `${JSON.stringify(first)} is not an ${family} address (the slice's addressType); this endpoint is skipped`,
      });
      continue;
    }
    const conditions = e.conditions ?? {};
    if (!isRecord(conditions)) {
      issues.push({
        field: `endpoints[${i}].conditions`,
        message: `must be an object, not ${describe(conditions)}; this endpoint is skipped`,
      });
      continue;
    }
    const ready = condition(conditions, "ready", i, issues);
    if (ready === null) continue;
    const serving = condition(conditions, "serving", i, issues);
    if (serving === null) continue;
    const terminating = condition(conditions, "terminating", i, issues);
    if (terminating === null) continue;
    usable.push(dottedQuad ? first : canonicalIp(first));
    conditionsOf.push(
      CONDITIONS[
        9 * conditionIndex(ready) + 3 * conditionIndex(serving) + conditionIndex(terminating)
      ] as EndpointConditions,
    );
  }
  return { value: { ports, addresses: usable, conditions: conditionsOf }, issues };
}

/** An endpoint condition: its value, undefined when unset (or null), null when malformed (reported). */
function condition(
  conditions: Record<string, unknown>,
  c: "ready" | "serving" | "terminating",
  i: number,
  issues: ObjectIssue[],
): boolean | undefined | null {
  const v = conditions[c];
  if (v === undefined || v === null) return undefined;
  if (typeof v === "boolean") return v;
  issues.push({
    field: `endpoints[${i}].conditions.${c}`,
    message: `must be true or false, not ${describe(v)}; this endpoint is skipped`,
  });
  return null;
}

export function readEndpoints(raw: unknown): Read<EndpointsView> {
  const issues: ObjectIssue[] = [];
  const rawSubsets = (isRecord(raw) ? raw.subsets : undefined) ?? [];
  if (!Array.isArray(rawSubsets)) {
    return {
      value: undefined,
      issues: [{ field: "subsets", message: `must be a list, not ${describe(rawSubsets)}` }],
    };
  }
  const subsets: EndpointsSubsetView[] = [];
  const addressIssues: ObjectIssue[] = [];
  rawSubsets.forEach((s, i) => {
    const at = `subsets[${i}]`;
    if (!isRecord(s)) {
      issues.push({ field: at, message: `must be an object, not ${describe(s)}` });
      return;
    }
    const ports = readPorts(s.ports, `${at}.ports`, true, issues) as EndpointsSubsetView["ports"];
    const rawAddresses = s.addresses ?? [];
    if (!Array.isArray(rawAddresses)) {
      issues.push({ field: `${at}.addresses`, message: `must be a list, not ${describe(rawAddresses)}` });
      return;
    }
    const addresses: string[] = [];
    rawAddresses.forEach((a, j) => {
      const ip = isRecord(a) ? a.ip : undefined;
      if (typeof ip !== "string" || !ipFamily(ip)) {
        addressIssues.push({
          field: `${at}.addresses[${j}].ip`,
          message: `${describe(ip)} is not an IP address; this address is skipped`,
        });
        return;
      }
      addresses.push(canonicalAddress(ip));
    });
    subsets.push({ ports, addresses });
  });
  if (issues.length > 0) return { value: undefined, issues: [...issues, ...addressIssues] };
  return { value: { subsets }, issues: addressIssues };
}

/**
 * A list of ports ({name?, port, protocol?}); problems go to `issues`. `numberRequired`: Service and
 * Endpoints ports need a number; an EndpointSlice port may omit it (all ports).
 */
function readPorts(raw: unknown, path: string, numberRequired: boolean, issues: ObjectIssue[]): PortView[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    issues.push({ field: path, message: `must be a list, not ${describe(raw)}` });
    return [];
  }
  const out: PortView[] = [];
  raw.forEach((p, i) => {
    const at = `${path}[${i}]`;
    if (!isRecord(p)) {
      issues.push({ field: at, message: `must be an object, not ${describe(p)}` });
      return;
    }
    const name = p.name ?? "";
    const protocol = p.protocol ?? "TCP";
    const port = p.port ?? undefined;
    let ok = true;
    if (typeof name !== "string") {
      issues.push({ field: `${at}.name`, message: `must be a string, not ${describe(name)}` });
      ok = false;
    }
    if (typeof protocol !== "string" || !PROTOCOLS.includes(protocol)) {
      issues.push({
        field: `${at}.protocol`,
        message: `must be TCP, UDP or SCTP, not ${describe(protocol)}`,
      });
      ok = false;
    }
    const validNumber = typeof port === "number" && Number.isInteger(port) && port >= 1 && port <= 65535;
    if (port === undefined ? numberRequired : !validNumber) {
      issues.push({ field: `${at}.port`, message: `must be a port number 1..65535, not ${describe(port)}` });
      ok = false;
    }
    if (ok)
      out.push({ name: name as string, port: port as number | undefined, protocol: protocol as string });
  });
  return out;
}

function describe(x: unknown): string {
  if (x === undefined) return "nothing";
  if (x === null) return "null";
  if (Array.isArray(x)) return "a list";
  if (typeof x === "object") return "an object";
  const text = typeof x === "string" ? JSON.stringify(x) : String(x);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}
