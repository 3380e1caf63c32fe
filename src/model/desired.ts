/**
 * computeDesired(): from a snapshot of the world to the IPVS table this node should hold.
 *
 * Pure: no I/O, no clock; problems are returned as data and one bad object never blocks the others.
 * Output is deterministic: the table is in canonical order (sort.ts), problems are sorted.
 *
 * Decisions (each rule has a test in test/model/desired*.test.ts):
 * - VirtualServices and RealServers are validated here with the API's validate functions; an invalid
 *   object is reported (Invalid, one problem per issue, with its field path) and skipped.
 * - A missing metadata.namespace means "default" (as kubectl does for manifests without one).
 * - Key conflicts are decided over ALL valid VirtualServices, before node selection, so every node
 *   agrees on the winner: the oldest (metadata.creationTimestamp; none = youngest), then namespace/name.
 *   The others get a Conflict problem and are not programmed anywhere.
 * - nodeSelector (matchLabels + matchExpressions In / NotIn / Exists / DoesNotExist; an empty selector
 *   matches every node) decides whether this node programs the service. Not being selected is not a problem.
 * - A RealServer names a VirtualService in its namespace: none with that name -> NotFound; one that is
 *   invalid or lost a conflict -> Dependency. Cross-object rules (port and family against the service)
 *   come from checkRealServerAgainstService; the kernel also rejects lowerThreshold > upperThreshold
 *   even when upperThreshold is 0 (ERANGE), so that is reported as Invalid here.
 * - Destination ports: address service with NAT: the RealServer port, or the service port when omitted;
 *   with DirectRouting / Tunnel: always the service port (ipvsadm does the same); a RealServer port that
 *   differs (also any port other than 0 on an all-ports service) is Invalid (spec.port) and skipped. A fwmark service has no
 *   port: the RealServer port, or 0 when omitted (what `ipvsadm -a -f N -r ADDR` sends).
 *   Endpoint-derived destinations: the endpoint port with NAT; the service port with DirectRouting /
 *   Tunnel, and an endpoint port that differs is Unsupported (those modes cannot remap ports), so the
 *   endpoints are skipped; 0 for an all-ports (port 0) service and for fwmark services that do not NAT.
 * - enabled: false keeps the destination at weight 0 (administratively drained).
 * - Endpoints: EndpointSlices labelled kubernetes.io/service-name=<name> in the service's namespace whose
 *   addressType is the service's family (also with Tunnel: mixing families needs RealServers); the port
 *   is the slice port whose name (and protocol) is that of the Service port named by serviceRef.port.
 *   serviceRef.port picks the Service port by name, or by number AND protocol (kube-dns has 53/TCP and
 *   53/UDP), or, when omitted, the single port of the service's protocol. A fwmark service has no
 *   protocol: a number must be unique among the Service ports (else name the port), and an omitted
 *   port needs a single-port Service.
 *   Endpoint conditions: ready (unset counts as ready) -> weight backends.weight; not ready but serving and
 *   terminating -> desired with weight 0 and draining: true; otherwise absent. The first address of an
 *   endpoint is used (the addresses of one endpoint are fungible). With backends.source Endpoints:
 *   subsets' addresses are ready, notReadyAddresses are absent.
 * - Services, EndpointSlices and Endpoints are read defensively, one object at a time (kube-objects.ts):
 *   a malformed one is an Invalid problem on THAT object, with its field path ("endpoints[2].addresses"),
 *   and only it (or only the malformed endpoint / address inside it) is skipped; the VirtualService, its
 *   RealServers and the other slices are still planned. A malformed Service leaves the VirtualService
 *   without endpoints (Dependency problem on it). Malformed addresses are reported, never dropped
 *   silently; in an EndpointSlice an address of another family than its addressType is malformed.
 * - A destination listed by a RealServer and by endpoints: the RealServer wins (Duplicate problem on it).
 *   Two RealServers with one destination: the older wins (Duplicate problem on the other).
 * - Health: the RealServer's healthCheck, else the service's; type None or none = always healthy. With no
 *   result yet, a backend is in its check's initialState. Unhealthy: onFailure Quiesce -> weight 0,
 *   Remove -> absent.
 * - Sorry server (keepalived's sorry_server): added (weight 1, the service's forwarding) when a
 *   sorryServer is set and NO backend is healthy. A backend (RealServer or endpoint) is healthy when it
 *   is enabled, not draining (terminating endpoint) and, if it has an active health check, its result
 *   (or, before the first one, its initialState) is healthy; without a health check it counts as healthy.
 *   Its weight does not matter: a healthy RealServer at weight 0 is the user's choice, not an outage.
 *   While the sorry server is active the other destinations stay as they are (quiesced, disabled and
 *   draining ones at weight 0, as keepalived keeps quiesced servers); unhealthy ones with onFailure
 *   Remove are absent as always. A sorry server whose address:port is also a real server of the service
 *   is a Duplicate problem on the VirtualService and is not used: the real server keeps its settings.
 *   A sorryServer.port the forwarding cannot honour is reported whether or not the sorry server is needed.
 * - Kernel mapping: schedulerFlags sh-fallback / mh-fallback -> schedFlag1, sh-port / mh-port -> schedFlag2;
 *   persistence -> flags.persistent, timeout, netmask (IPv4 dotted mask as a number, IPv6 prefix length)
 *   and engine. Non-persistent services get timeout 0 and netmask 0xffffffff (IPv4) or 128 (IPv6), which is
 *   what ipvsadm sends by default, so the table reads back the same.
 * - Cost: linear in the snapshot apart from sorting. Services, Endpoints and EndpointSlices are looked up
 *   through an index (kube-objects.ts indexCoreObjects), never by scanning the snapshot per
 *   VirtualService; objects are serialized (JSON) only to order two objects that share a name.
 */
import {
  checkRealServerAgainstService,
  type HealthCheck,
  type RealServer,
  specFamily,
  type VirtualService,
  type VirtualServiceSpec,
  validateRealServer,
  validateVirtualService,
} from "../api/v1alpha1/index.ts";
import { ipFamily, ipv4MaskToNumber } from "../vocabulary/addresses.ts";
import { ipv4Value, sortByServiceKey, sortDestinations } from "../vocabulary/order.ts";
import { rememberedPerObject } from "../vocabulary/remembered.ts";
import {
  type DestinationConfig,
  type DestinationKey,
  destinationKeyString,
  type Family,
  NO_TUNNEL,
  type ServiceConfig,
  type ServiceKey,
  serviceKeyString,
} from "../vocabulary/table.ts";
import { type AddressPolicy, compileAddressPolicy } from "./address-policy.ts";
import type { DesiredDestination, DesiredEntry, DesiredTable, ObjectSource } from "./desired-table.ts";
import {
  type CoreObjectIndex,
  canonicalAddress,
  type EndpointConditions,
  indexCoreObjects,
  type ObjectIssue,
  type PortView,
  readEndpointSlice,
  readEndpoints,
  readService,
  SERVICE_NAME_LABEL,
} from "./kube-objects.ts";
import { matchesLabelSelector } from "./label-selector.ts";
import { normalizeProblems, type Problem, type ProblemObject } from "./problems.ts";
import {
  type HealthState,
  type HealthTarget,
  type HealthValue,
  healthKey,
  type NodeInfo,
  type Snapshot,
} from "./snapshot.ts";

export interface DesiredResult {
  table: DesiredTable;
  problems: Problem[];
  /** Backends of the programmed services that have an active health check, in canonical order. */
  healthTargets: HealthTarget[];
}

export { SERVICE_NAME_LABEL };

/**
 * computeDesired with no prober results: every backend with a healthCheck counts as healthy (plan and
 * apply run no probes; the agent until probers exist). `initial` puts those backends in their checks'
 * initialState; it is `result` itself when no backend has a health check.
 */
export function computeDesiredAssumingHealthy(
  snapshot: Snapshot,
  node: NodeInfo,
  options: ComputeOptions = {},
): { result: DesiredResult; initial: DesiredResult } {
  const initial = computeDesired(snapshot, node, new Map(), options);
  if (initial.healthTargets.length === 0) return { result: initial, initial };
  const healthy = new Map(initial.healthTargets.map((t) => [t.key, true]));
  return { result: computeDesired(snapshot, node, healthy, options), initial };
}

export interface ComputeOptions {
  /**
   * Every valid VirtualService, whatever its nodeSelector says: what the cluster asks of its real
   * servers (the DR real-server role), not what this node programs.
   */
  everyNode?: boolean;
}

export function computeDesired(
  snapshot: Snapshot,
  node: NodeInfo,
  health: HealthState = new Map(),
  options: ComputeOptions = {},
): DesiredResult {
  const problems: Problem[] = [];
  const healthTargets: HealthTarget[] = [];

  const policy = snapshot.addressPolicies ? compileAddressPolicyOnce(snapshot.addressPolicies) : undefined;
  // Two objects of one kind, namespace and name are looked for only where a source can have them.
  const named = <T extends { raw: unknown; ref: ObjectSource }>(objects: T[], kind: ProblemObject["kind"]) =>
    snapshot.uniqueNames ? objects : dedupeByName(objects, kind, problems);
  const services = acceptVirtualServices(
    named(snapshot.virtualServices.map(readVirtualServiceOnce), "VirtualService"),
    problems,
    policy,
    policy && labelsByNamespace(snapshot.namespaces),
  );
  const realServers = collectRealServers(
    named(snapshot.realServers.map(readRealServerOnce), "RealServer"),
    services,
    problems,
  );
  const core = indexCoreObjects(snapshot);
  const configs = new DestinationConfigs();

  const table: DesiredTable = [];
  const accepted = services.accepted;
  for (let i = 0; i < accepted.length; i++) {
    const vs = accepted[i] as AcceptedVirtualService;
    if (!options.everyNode && !matchesLabelSelector(vs.object.spec.nodeSelector, node.labels)) continue;
    try {
      table.push(
        entryOf(
          vs,
          realServers.get(vs.ref.namespace, vs.ref.name) ?? [],
          core,
          health,
          problems,
          healthTargets,
          configs,
        ),
      );
    } catch (error) {
      problems.push({
        kind: "Internal",
        object: { kind: "VirtualService", ...vs.ref },
        message: `could not be processed: ${error instanceof Error ? error.message : String(error)}`,
      });
    }
  }

  healthTargets.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  // Entries come with their destinations in canonical order (entryOf); only the services are sorted.
  return {
    table: sortByServiceKey(table, (e) => e.service.key),
    problems: normalizeProblems(problems),
    healthTargets,
  };
}

// ---- VirtualServices ------------------------------------------------------------------------------

// Snapshot objects are never modified (informer caches replace them), so a verdict holds per object.
/**
 * A snapshot object as computeDesired reads it: who it is, its age and its verdict. Made once per object
 * (rememberedPerObject), so a later sync reads names and verdicts without making anything.
 */
interface ReadObject<T, R extends ObjectSource = ObjectSource> {
  raw: unknown;
  ref: R;
  created: number;
  /** The validated object, or undefined when `issues` says why not. */
  object: T | undefined;
  issues: readonly { path: string; message: string }[];
}

/** A RealServer's ref is also the source of its destination (one object for both). */
type RealServerRef = ObjectSource & { kind: "RealServer" };

function readObject<T, R extends ObjectSource>(
  raw: unknown,
  ref: R,
  verdict: { ok: true; value: T } | { ok: false; issues: readonly { path: string; message: string }[] },
): ReadObject<T, R> {
  return verdict.ok
    ? { raw, ref, created: createdAt(raw), object: verdict.value, issues: NO_ISSUES }
    : { raw, ref, created: createdAt(raw), object: undefined, issues: verdict.issues };
}

const readVirtualServiceOnce = rememberedPerObject((raw) =>
  readObject(raw, rawRef(raw), validateVirtualService(raw)),
);
const readRealServerOnce = rememberedPerObject((raw): ReadObject<RealServer, RealServerRef> => {
  const meta = metadataOf(raw);
  const ref: RealServerRef = { kind: "RealServer", namespace: namespaceIn(meta), name: nameIn(meta) };
  return readObject(raw, ref, validateRealServer(raw));
});
const readEndpointSliceOnce = {
  IPv4: rememberedPerObject((o) => readEndpointSlice(o, "IPv4")),
  IPv6: rememberedPerObject((o) => readEndpointSlice(o, "IPv6")),
};

interface AcceptedVirtualService {
  ref: ObjectSource;
  /** refText(ref) */
  refText: string;
  object: VirtualService;
  key: ServiceKey;
  keyText: string;
  created: number;
}

interface VirtualServiceIndex {
  accepted: AcceptedVirtualService[];
  /** Every VirtualService of the snapshot by namespace and name, valid or not: whether it is accepted. */
  known: ByName<boolean>;
}

/** One compilation per list of policies (the agent's snapshots reuse the list while it is unchanged). */
let compiledPolicy: { of: readonly unknown[]; policy: AddressPolicy } | undefined;
function compileAddressPolicyOnce(objects: readonly unknown[]): AddressPolicy {
  if (compiledPolicy?.of !== objects) compiledPolicy = { of: objects, policy: compileAddressPolicy(objects) };
  return compiledPolicy.policy;
}

/** Namespace name -> labels, read defensively (labels that are not strings are left out). */
function labelsByNamespace(
  namespaces: Snapshot["namespaces"],
): Map<string, Readonly<Record<string, string>>> {
  const out = new Map<string, Readonly<Record<string, string>>>();
  for (const ns of namespaces ?? []) {
    const name = ns?.metadata?.name;
    if (typeof name !== "string") continue;
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(ns.metadata?.labels ?? {})) if (typeof v === "string") labels[k] = v;
    out.set(name, labels);
  }
  return out;
}

function acceptVirtualServices(
  named: readonly ReadObject<VirtualService>[],
  problems: Problem[],
  policy?: AddressPolicy,
  namespaceLabels?: ReadonlyMap<string, Readonly<Record<string, string>>>,
): VirtualServiceIndex {
  const known = new ByName<boolean>();
  const valid: AcceptedVirtualService[] = [];
  for (let i = 0; i < named.length; i++) {
    const { ref, created, object, issues } = named[i] as ReadObject<VirtualService>;
    known.set(ref.namespace, ref.name, false);
    if (object === undefined) {
      for (const issue of issues) problems.push(invalid("VirtualService", ref, issue.path, issue.message));
      continue;
    }
    const key = serviceKeyOf(object.spec);
    const refusal = policy?.refusal(ref.namespace, key, namespaceLabels?.get(ref.namespace));
    if (refusal !== undefined) {
      problems.push({
        kind: "NotAllowed",
        object: { kind: "VirtualService", ...ref },
        field: key.kind === "fwmark" ? "spec.firewallMark" : "spec.address",
        message: refusal,
      });
      continue;
    }
    valid.push({ ref, refText: refText(ref), object, key, keyText: serviceKeyString(key), created });
  }

  const byKey = new Map<string, AcceptedVirtualService[]>();
  for (const vs of valid) pushTo(byKey, vs.keyText, vs);
  const accepted: AcceptedVirtualService[] = [];
  for (const group of byKey.values()) {
    if (group.length > 1) group.sort(byAgeThenName);
    const winner = group[0];
    if (!winner) continue;
    accepted.push(winner);
    known.set(winner.ref.namespace, winner.ref.name, true);
    for (const loser of group.slice(1)) {
      problems.push({
        kind: "Conflict",
        object: { kind: "VirtualService", ...loser.ref },
        field: loser.key.kind === "fwmark" ? "spec.firewallMark" : "spec.address",
        message: `IPVS service ${loser.keyText} is already claimed by the older VirtualService ${winner.refText}`,
      });
    }
  }
  return { accepted, known };
}

function serviceKeyOf(spec: VirtualServiceSpec): ServiceKey {
  const family = specFamily(spec) ?? "IPv4";
  if (spec.firewallMark !== undefined) return { kind: "fwmark", family, fwmark: spec.firewallMark };
  return {
    kind: "address",
    family,
    protocol: spec.protocol ?? "TCP",
    address: canonicalAddress(spec.address ?? ""),
    port: spec.port ?? 0,
  };
}

export function serviceConfigOf(spec: VirtualServiceSpec, family: Family): ServiceConfig {
  const flags = spec.schedulerFlags ?? [];
  const p = spec.persistence;
  let netmask = family === "IPv4" ? 0xffffffff : 128;
  if (p)
    netmask = family === "IPv4" ? ipv4MaskToNumber(p.netmask ?? "255.255.255.255") : (p.prefixLength ?? 128);
  return {
    scheduler: spec.scheduler,
    flags: {
      persistent: p !== undefined,
      onePacket: spec.onePacket,
      schedFlag1: flags.includes("sh-fallback") || flags.includes("mh-fallback"),
      schedFlag2: flags.includes("sh-port") || flags.includes("mh-port"),
      schedFlag3: false,
    },
    timeout: p ? p.timeoutSeconds : 0,
    netmask,
    persistenceEngine: p?.engine ?? "",
  };
}

// ---- RealServers ----------------------------------------------------------------------------------

type AcceptedRealServer = ReadObject<RealServer, RealServerRef> & { object: RealServer };

/**
 * Valid RealServers by the namespace and name of an accepted VirtualService, oldest first. Each is
 * compared with the last one filed for its VirtualService as it is filed (RealServers read from a
 * cache mostly come in order), and only the lists found out of order are sorted at the end.
 */
function collectRealServers(
  named: readonly ReadObject<RealServer, RealServerRef>[],
  services: VirtualServiceIndex,
  problems: Problem[],
): ByName<AcceptedRealServer[]> {
  const byService = new ByName<AcceptedRealServer[]>();
  const outOfOrder = new Set<AcceptedRealServer[]>();
  for (let i = 0; i < named.length; i++) {
    const rs = named[i] as ReadObject<RealServer, RealServerRef>;
    const { ref, object } = rs;
    if (object === undefined) {
      for (const issue of rs.issues) problems.push(invalid("RealServer", ref, issue.path, issue.message));
      continue;
    }
    const spec = object.spec;
    if (spec.upperThreshold === 0 && spec.lowerThreshold > 0) {
      problems.push(
        invalid(
          "RealServer",
          ref,
          "spec.lowerThreshold",
          "the kernel rejects a lowerThreshold above upperThreshold (ERANGE), also when upperThreshold is 0 (no limit); set upperThreshold too",
        ),
      );
      continue;
    }
    const vsName = spec.virtualServiceRef.name;
    const state = services.known.get(ref.namespace, vsName);
    if (state === true) {
      const list = byService.get(ref.namespace, vsName);
      if (!list) byService.set(ref.namespace, vsName, [rs as AcceptedRealServer]);
      else {
        if (byAgeThenRefName(list[list.length - 1] as AcceptedRealServer, rs as AcceptedRealServer) > 0)
          outOfOrder.add(list);
        list.push(rs as AcceptedRealServer);
      }
      continue;
    }
    const target = `${ref.namespace}/${vsName}`;
    if (state === undefined) {
      problems.push({
        kind: "NotFound",
        object: ref,
        field: "spec.virtualServiceRef.name",
        message: `VirtualService ${target} not found`,
      });
      continue;
    }
    problems.push({
      kind: "Dependency",
      object: ref,
      field: "spec.virtualServiceRef.name",
      message: `VirtualService ${target} is not accepted (invalid or in conflict), so this real server is not programmed`,
    });
  }
  for (const list of outOfOrder) list.sort(byAgeThenRefName);
  return byService;
}

/** Values by namespace and name: finding one makes no "namespace/name" text. */
class ByName<V> {
  readonly #namespaces = new Map<string, Map<string, V>>();

  get(namespace: string, name: string): V | undefined {
    return this.#namespaces.get(namespace)?.get(name);
  }

  set(namespace: string, name: string, value: V): void {
    const names = this.#namespaces.get(namespace);
    if (names) names.set(name, value);
    else this.#namespaces.set(namespace, new Map([[name, value]]));
  }
}

// ---- one service ----------------------------------------------------------------------------------

/** What buildEntry made of one VirtualService, with everything it read. */
interface RememberedEntry {
  /** The objects it read besides the VirtualService: its RealServers, Service, EndpointSlices / Endpoints. */
  inputs: readonly unknown[];
  /** The health it read, per health key. */
  health: readonly (readonly [string, HealthValue | undefined])[];
  entry: DesiredEntry;
  problems: readonly Problem[];
  healthTargets: readonly HealthTarget[];
}

/**
 * Per validated VirtualService (the same object while its raw object is unchanged: validation is
 * remembered per object), its last entry. Reused while the VirtualService reads the very same objects
 * and health values, so a sync after one change rebuilds one entry, and unchanged entries keep their
 * identity (the reconciler diffs only the entries that changed).
 */
const rememberedEntries = new WeakMap<object, RememberedEntry>();

function entryOf(
  vs: AcceptedVirtualService,
  realServers: readonly AcceptedRealServer[],
  core: CoreObjectIndex,
  health: HealthState,
  problems: Problem[],
  healthTargets: HealthTarget[],
  configs: DestinationConfigs,
): DesiredEntry {
  const inputs = entryInputs(vs, realServers, core);
  const last = rememberedEntries.get(vs.object);
  if (
    last &&
    last.inputs.length === inputs.length &&
    last.inputs.every((o, i) => o === inputs[i]) &&
    last.health.every(([k, v]) => health.get(k) === v)
  ) {
    problems.push(...last.problems);
    healthTargets.push(...last.healthTargets);
    return last.entry;
  }
  const problemsBefore = problems.length;
  const targetsBefore = healthTargets.length;
  const built = buildEntry(vs, realServers, core, health, problems, healthTargets, configs);
  const entry: DesiredEntry = { service: built.service, destinations: sortDestinations(built.destinations) };
  const targets = healthTargets.slice(targetsBefore);
  rememberedEntries.set(vs.object, {
    inputs,
    health: targets.map((t) => [t.key, health.get(t.key)] as const),
    entry,
    problems: problems.slice(problemsBefore),
    healthTargets: targets,
  });
  return entry;
}

function entryInputs(
  vs: AcceptedVirtualService,
  realServers: readonly AcceptedRealServer[],
  core: CoreObjectIndex,
): unknown[] {
  const inputs: unknown[] = realServers.map((rs) => rs.object);
  const backends = vs.object.spec.backends;
  if (backends) {
    const { namespace } = vs.ref;
    const name = backends.serviceRef.name;
    inputs.push(core.service(namespace, name));
    if (backends.source === "Endpoints") inputs.push(core.endpoints(namespace, name));
    else for (const s of core.endpointSlices(namespace, name)) inputs.push(s.slice);
  }
  return inputs;
}

/**
 * The destinations of one entry while it is built, by destination key (see candidateKey): the
 * RealServers' first, then the endpoints'. What a destination needs besides itself (its health check,
 * whether it is disabled) is kept only for the few that have it.
 */
class Candidates {
  readonly destinations: DesiredDestination[] = [];
  readonly #keys: (number | string)[] = [];
  /** #keys by key, made once there are more than a few (a scan of a few keys is cheaper than a map). */
  #index: Map<number | string, number> | undefined;
  /** Health checks by slot, once one destination has one. */
  #healthChecks: (HealthCheck | undefined)[] | undefined;
  /** Slots of RealServers with enabled: false (kept at weight 0, never a healthy backend). */
  #disabled: Set<number> | undefined;

  /** The slot of the destination with this key, or -1. */
  find(key: number | string): number {
    if (this.#index) return this.#index.get(key) ?? -1;
    return this.#keys.indexOf(key);
  }

  add(
    key: number | string,
    destination: DesiredDestination,
    healthCheck: HealthCheck | undefined,
    enabled: boolean,
  ): void {
    const slot = this.#keys.length;
    this.#keys.push(key);
    if (this.#index) this.#index.set(key, slot);
    else if (slot >= SCANNED_KEYS) this.#index = new Map(this.#keys.map((k, i) => [k, i]));
    this.destinations.push(destination);
    if (healthCheck !== undefined) {
      this.#healthChecks ??= [];
      this.#healthChecks[slot] = healthCheck;
    }
    if (!enabled) {
      this.#disabled ??= new Set();
      this.#disabled.add(slot);
    }
  }

  get hasHealthChecks(): boolean {
    return this.#healthChecks !== undefined;
  }

  healthCheck(slot: number): HealthCheck | undefined {
    return this.#healthChecks?.[slot];
  }

  enabled(slot: number): boolean {
    return this.#disabled === undefined || !this.#disabled.has(slot);
  }
}

/** Up to this many candidates are found by a scan. */
const SCANNED_KEYS = 16;

/**
 * A destination key as a map key that is equal for two keys exactly when their destinationKeyString is:
 * an IPv4 key with a dotted-quad address and a port 0..65535 (nearly all) is one number (no text is
 * built), any other key its destinationKeyString. The two kinds never meet: the text of a number-keyed
 * key could only come from another such key.
 */
function candidateKey(key: DestinationKey): number | string {
  if (key.family === "IPv4" && Number.isInteger(key.port) && key.port >= 0 && key.port <= 65535) {
    const value = ipv4Value(key.address);
    if (value !== undefined) return value * 65536 + key.port;
  }
  return destinationKeyString(key);
}

function buildEntry(
  vs: AcceptedVirtualService,
  realServers: readonly AcceptedRealServer[],
  core: CoreObjectIndex,
  health: HealthState,
  problems: Problem[],
  healthTargets: HealthTarget[],
  configs: DestinationConfigs,
): DesiredEntry {
  const spec = vs.object.spec;
  const vsObject: ProblemObject = { kind: "VirtualService", ...vs.ref };
  const candidates = new Candidates();
  const serviceForwarding = configs.forwarding(spec.forwarding);

  for (let i = 0; i < realServers.length; i++) {
    const rs = realServers[i] as AcceptedRealServer;
    const issues = checkRealServerAgainstService(spec, rs.object.spec);
    const allPorts = allPortsIssues(spec, rs.object.spec);
    if (issues.length > 0 || allPorts.length > 0) {
      for (const issue of [...issues, ...allPorts])
        problems.push(invalid("RealServer", rs.ref, issue.path, issue.message));
      continue;
    }
    const d = realServerDestination(vs, rs, serviceForwarding, configs);
    const ck = candidateKey(d.key);
    const owner = candidates.find(ck);
    if (owner >= 0) {
      problems.push({
        kind: "Duplicate",
        object: rs.ref,
        field: "spec.address",
        message: `real server ${destinationKeyString(d.key)} is already defined by the older RealServer ${refText((candidates.destinations[owner] as DesiredDestination).source)}; this one is ignored`,
      });
      continue;
    }
    candidates.add(ck, d, rs.object.spec.healthCheck ?? spec.healthCheck, rs.object.spec.enabled);
  }
  /** Slots below this are RealServers', the others endpoints'. */
  const fromRealServers = candidates.destinations.length;

  if (spec.backends) addEndpointDestinations(vs, core, problems, configs, candidates);

  const all = candidates.destinations;
  // Without health checks every candidate is a destination: the list itself is used.
  const destinations: DesiredDestination[] = candidates.hasHealthChecks ? [] : all;
  let healthyBackends = 0;
  for (let i = 0; i < all.length; i++) {
    const d = all[i] as DesiredDestination;
    const check = candidates.healthCheck(i);
    const enabled = candidates.enabled(i);
    if (!check || check.type === "None" || d.draining) {
      if (destinations !== all) destinations.push(d);
      if (enabled && !d.draining) healthyBackends++;
      continue;
    }
    const key = healthKey(vs.ref, d.key.address, d.key.port);
    healthTargets.push({
      key,
      virtualService: vs.ref,
      address: d.key.address,
      port: d.key.port,
      healthCheck: check,
      source: {
        kind: i < fromRealServers ? "RealServer" : "Endpoint",
        namespace: d.source.namespace,
        name: d.source.name,
      },
    });
    const value = health.get(key);
    const healthy = value === undefined ? check.initialState === "Healthy" : value !== false;
    if (healthy) {
      const weight = typeof value === "number" ? slowStartWeight(d.config.weight, value) : d.config.weight;
      destinations.push(
        weight === d.config.weight ? d : { ...d, config: configs.withWeight(d.config, weight) },
      );
      if (enabled) healthyBackends++;
    } else if (check.onFailure === "Quiesce")
      destinations.push({ ...d, config: configs.withWeight(d.config, 0) });
  }

  const service = {
    key: vs.key,
    config: serviceConfigOf(spec, vs.key.family),
    source: vs.ref,
    driftPolicy: spec.driftPolicy,
    drainTimeoutSeconds: spec.drain.timeoutSeconds,
  };

  const sorry = sorryDestination(vs, vsObject, problems, configs);
  if (sorry) {
    const clash = candidates.find(candidateKey(sorry.key));
    if (clash >= 0) {
      const from = (candidates.destinations[clash] as DesiredDestination).source;
      problems.push({
        kind: "Duplicate",
        object: vsObject,
        field: "spec.sorryServer.address",
        message: `the sorry server ${destinationKeyString(sorry.key)} is also a real server (${from.kind} ${from.namespace}/${from.name}); it is not used as the sorry server and keeps the real server's settings`,
      });
    } else if (healthyBackends === 0) {
      destinations.push(sorry);
    }
  }
  return { service, destinations };
}

/**
 * The weight of a recovered backend during its slow start: the declared weight times the fraction,
 * rounded up and at least 1 (0 stays 0: a quiescent real server is the user's choice).
 */
export function slowStartWeight(weight: number, fraction: number): number {
  if (weight === 0 || fraction >= 1) return weight;
  return Math.max(1, Math.ceil(weight * Math.max(0, fraction)));
}

/**
 * DirectRouting / Tunnel cannot change the destination port, so on an all-ports service (port 0) the
 * destination port is 0: a RealServer asking for another port is reported and skipped, exactly like a
 * port that differs from a non-zero service port (checkRealServerAgainstService covers that case).
 */
function allPortsIssues(
  spec: VirtualServiceSpec,
  rsSpec: RealServer["spec"],
): readonly { path: string; message: string }[] {
  const method = rsSpec.forwarding?.method ?? spec.forwarding.method;
  if (spec.firewallMark !== undefined || spec.port !== 0 || method === "NAT") return NO_ISSUES;
  if (rsSpec.port === undefined || rsSpec.port === 0) return NO_ISSUES;
  return [
    {
      path: "spec.port",
      message: `with forwarding ${method} on an all-ports service (port 0) the port must be 0 or omitted: these modes cannot change the destination port`,
    },
  ];
}

const NO_ISSUES: readonly { path: string; message: string }[] = Object.freeze([]);

type ForwardingConfig = Pick<
  DestinationConfig,
  "forwarding" | "tunnelType" | "tunnelPort" | "tunnelChecksum"
>;

function forwardingConfig(forwarding: VirtualServiceSpec["forwarding"]): ForwardingConfig {
  if (forwarding.method !== "Tunnel") return { forwarding: forwarding.method, ...NO_TUNNEL };
  const t = forwarding.tunnel;
  const type = t?.type ?? "IPIP";
  return {
    forwarding: "Tunnel",
    tunnelType: type,
    tunnelPort: type === "GUE" ? (t?.port ?? 0) : 0,
    tunnelChecksum: t?.checksum ?? "None",
  };
}

/** One forwarding config of DestinationConfigs, with the destination configs made from it. */
interface SharedForwarding extends ForwardingConfig {
  /** By weight, for thresholds 0 (nearly all). */
  readonly byWeight: Map<number, DestinationConfig>;
  /** By "weight upper lower". */
  readonly byLimits: Map<string, DestinationConfig>;
}

/**
 * The destination configs of one computeDesired call, each distinct value made once and frozen: the
 * destinations of a table have few distinct configs (a forwarding method and a handful of weights), so
 * they share them instead of holding one object each. Nothing modifies a desired config (a new weight is
 * a new config), and freezing them makes sure of it.
 */
class DestinationConfigs {
  readonly #forwardings = new Map<string, SharedForwarding>();

  forwarding(forwarding: VirtualServiceSpec["forwarding"]): SharedForwarding {
    return this.#shared(forwardingConfig(forwarding));
  }

  config(
    f: SharedForwarding,
    weight: number,
    upperThreshold: number,
    lowerThreshold: number,
  ): DestinationConfig {
    if (upperThreshold === 0 && lowerThreshold === 0) {
      let config = f.byWeight.get(weight);
      if (config === undefined) {
        config = makeConfig(f, weight, 0, 0);
        f.byWeight.set(weight, config);
      }
      return config;
    }
    const k = `${weight} ${upperThreshold} ${lowerThreshold}`;
    let config = f.byLimits.get(k);
    if (config === undefined) {
      config = makeConfig(f, weight, upperThreshold, lowerThreshold);
      f.byLimits.set(k, config);
    }
    return config;
  }

  /** `config` with another weight. */
  withWeight(config: DestinationConfig, weight: number): DestinationConfig {
    return this.config(this.#shared(config), weight, config.upperThreshold, config.lowerThreshold);
  }

  #shared(f: ForwardingConfig): SharedForwarding {
    const k = `${f.forwarding} ${f.tunnelType} ${f.tunnelPort} ${f.tunnelChecksum}`;
    let shared = this.#forwardings.get(k);
    if (shared === undefined) {
      shared = {
        forwarding: f.forwarding,
        tunnelType: f.tunnelType,
        tunnelPort: f.tunnelPort,
        tunnelChecksum: f.tunnelChecksum,
        byWeight: new Map(),
        byLimits: new Map(),
      };
      this.#forwardings.set(k, shared);
    }
    return shared;
  }
}

/** A frozen DestinationConfig, its keys in the order the engine has always written them. */
function makeConfig(
  f: ForwardingConfig,
  weight: number,
  upperThreshold: number,
  lowerThreshold: number,
): DestinationConfig {
  return Object.freeze({
    forwarding: f.forwarding,
    tunnelType: f.tunnelType,
    tunnelPort: f.tunnelPort,
    tunnelChecksum: f.tunnelChecksum,
    weight,
    upperThreshold,
    lowerThreshold,
  });
}

/** `serviceForwarding`: configs.forwarding(vs.object.spec.forwarding), made once per service. */
function realServerDestination(
  vs: AcceptedVirtualService,
  rs: AcceptedRealServer,
  serviceForwarding: SharedForwarding,
  configs: DestinationConfigs,
): DesiredDestination {
  const s = rs.object.spec;
  const forwarding = s.forwarding ?? vs.object.spec.forwarding;
  const f = s.forwarding ? configs.forwarding(s.forwarding) : serviceForwarding;
  // canonicalAddress and ipFamily, reading a dotted quad once.
  const dottedQuad = ipv4Value(s.address) !== undefined;
  const address = dottedQuad ? s.address : canonicalAddress(s.address);
  let port: number;
  if (vs.key.kind === "fwmark") port = s.port ?? 0;
  else if (forwarding.method === "NAT") port = s.port ?? vs.key.port;
  else port = vs.key.port;
  return {
    key: { family: (dottedQuad ? "IPv4" : ipFamily(address)) ?? vs.key.family, address, port },
    config: configs.config(f, s.enabled ? s.weight : 0, s.upperThreshold, s.lowerThreshold),
    source: rs.ref,
  };
}

function sorryDestination(
  vs: AcceptedVirtualService,
  vsObject: ProblemObject,
  problems: Problem[],
  configs: DestinationConfigs,
): DesiredDestination | undefined {
  const spec = vs.object.spec;
  const sorry = spec.sorryServer;
  if (!sorry) return undefined;
  let port: number;
  if (vs.key.kind === "fwmark") port = sorry.port ?? 0;
  else if (spec.forwarding.method === "NAT") port = sorry.port ?? vs.key.port;
  else {
    if (sorry.port !== undefined && sorry.port !== vs.key.port) {
      problems.push({
        kind: "Invalid",
        object: vsObject,
        field: "spec.sorryServer.port",
        message: `with forwarding ${spec.forwarding.method} the sorry server port must equal the service port ${vs.key.port} or be omitted`,
      });
      return undefined;
    }
    port = vs.key.port;
  }
  const address = canonicalAddress(sorry.address);
  return {
    key: { family: ipFamily(address) ?? vs.key.family, address, port },
    config: configs.config(configs.forwarding(spec.forwarding), 1, 0, 0),
    source: { kind: "SorryServer", ...vs.ref },
  };
}

// ---- endpoints ------------------------------------------------------------------------------------

/** One endpoint address found for a service: its port, whether it is ready (else draining) and its source. */
type AddEndpoint = (
  address: string,
  port: number,
  ready: boolean,
  source: DesiredDestination["source"],
) => void;

/**
 * The endpoints' destinations, added to `candidates` (which holds the RealServers' until then): an
 * endpoint a RealServer also lists is reported there (the RealServer's settings are used); the same
 * address in two slices (e.g. while a slice is replaced) is one destination, ready beating draining.
 */
function addEndpointDestinations(
  vs: AcceptedVirtualService,
  core: CoreObjectIndex,
  problems: Problem[],
  configs: DestinationConfigs,
  candidates: Candidates,
): void {
  const spec = vs.object.spec;
  const backends = spec.backends;
  if (!backends) return;
  const vsObject: ProblemObject = { kind: "VirtualService", ...vs.ref };
  const ref = backends.serviceRef;
  const svc = core.service(vs.ref.namespace, ref.name);
  if (svc === undefined) {
    problems.push({
      kind: "NotFound",
      object: vsObject,
      field: "spec.backends.serviceRef.name",
      message: `Service ${vs.ref.namespace}/${ref.name} not found`,
    });
    return;
  }
  const serviceRef = { namespace: vs.ref.namespace, name: ref.name };
  const read = readService(svc);
  reportIssues("Service", serviceRef, read.issues, problems);
  if (!read.value) {
    problems.push({
      kind: "Dependency",
      object: vsObject,
      field: "spec.backends.serviceRef.name",
      message: `Service ${refText(serviceRef)} is malformed (see its problems), so no endpoints are used`,
    });
    return;
  }
  const servicePort = resolveServicePort(
    refText(serviceRef),
    read.value.ports,
    ref.port,
    vs.key.kind === "address" ? vs.key.protocol : undefined,
  );
  if (typeof servicePort === "string") {
    problems.push({
      kind: "Invalid",
      object: vsObject,
      field: "spec.backends.serviceRef.port",
      message: servicePort,
    });
    return;
  }

  const forwarding = spec.forwarding;
  const shared = configs.forwarding(forwarding);
  const readyConfig = configs.config(shared, backends.weight, 0, 0);
  const drainingConfig = configs.config(shared, 0, 0, 0);
  const family = vs.key.family;
  const fromRealServers = candidates.destinations.length;
  let mismatched: Set<number> | undefined;
  const add: AddEndpoint = (address, endpointPort, ready, source) => {
    let port: number;
    if (vs.key.kind === "fwmark") port = forwarding.method === "NAT" ? endpointPort : 0;
    else if (vs.key.port === 0) port = 0;
    else if (forwarding.method === "NAT") port = endpointPort;
    else {
      if (endpointPort !== vs.key.port) {
        mismatched ??= new Set();
        mismatched.add(endpointPort);
        return;
      }
      port = vs.key.port;
    }
    const key = { family, address, port };
    const d: DesiredDestination = ready
      ? { key, config: readyConfig, source }
      : { key, config: drainingConfig, source, draining: true };
    const ck = candidateKey(key);
    const slot = candidates.find(ck);
    if (slot < 0) {
      candidates.add(ck, d, spec.healthCheck, true);
      return;
    }
    const existing = candidates.destinations[slot] as DesiredDestination;
    if (slot < fromRealServers) {
      const owner = existing.source;
      problems.push({
        kind: "Duplicate",
        object: { kind: "RealServer", namespace: owner.namespace, name: owner.name },
        field: "spec.address",
        message: `real server ${destinationKeyString(key)} is also an endpoint of Service ${vs.ref.namespace}/${ref.name}; the RealServer's settings are used`,
      });
      return;
    }
    if (existing.draining && ready) candidates.destinations[slot] = d;
  };

  if (backends.source === "Endpoints") fromEndpoints(core, vs, ref.name, servicePort, problems, add);
  else fromEndpointSlices(core, vs, ref.name, servicePort, problems, add);

  if (mismatched) {
    const list = [...mismatched].sort((a, b) => a - b).join(", ");
    problems.push({
      kind: "Unsupported",
      object: vsObject,
      field: "spec.backends.serviceRef.port",
      message: `endpoints listen on port ${list} but forwarding ${forwarding.method} cannot change the service port ${vs.key.kind === "address" ? vs.key.port : 0}; those endpoints are not used`,
    });
  }
}

type ServicePort = PortView & { port: number };

/**
 * The Service port serviceRef.port names, for a virtual service of `protocol` (undefined: fwmark, which
 * has no protocol). By name: that port, whose protocol must be the service's. By number: the port with
 * that number AND protocol (kube-dns has 53/TCP and 53/UDP); a fwmark service takes the number only when
 * one port has it, otherwise the port must be named. Omitted: the single port of that protocol (fwmark:
 * the single port).
 */
function resolveServicePort(
  name: string,
  ports: readonly ServicePort[],
  port: number | string | undefined,
  protocol: string | undefined,
): ServicePort | string {
  const fits = (p: ServicePort) => protocol === undefined || p.protocol === protocol;
  const which = protocol === undefined ? "" : `${protocol} `;
  if (port === undefined) {
    const candidates = ports.filter(fits);
    if (candidates.length === 1 && candidates[0]) return candidates[0];
    return `Service ${name} has ${candidates.length} ${which}ports: name one in serviceRef.port`;
  }
  if (typeof port === "string") {
    const match = ports.find((p) => p.name === port);
    if (!match) return `Service ${name} has no port ${JSON.stringify(port)}`;
    if (!fits(match))
      return `Service port ${portText(match)} is ${match.protocol} but the virtual service is ${protocol}`;
    return match;
  }
  const numbered = ports.filter((p) => p.port === port);
  const candidates = numbered.filter(fits);
  if (candidates.length === 1 && candidates[0]) return candidates[0];
  if (candidates.length > 1) {
    const names = candidates.map(portText).join(", ");
    return `Service ${name} has more than one port ${port} (${names}): name one in serviceRef.port`;
  }
  if (numbered.length > 0) {
    const protocols = [...new Set(numbered.map((p) => p.protocol))].join(", ");
    return `Service ${name} has port ${port} only for ${protocols} but the virtual service is ${protocol}`;
  }
  return `Service ${name} has no port ${port}`;
}

function portText(p: ServicePort): string {
  return p.name ? `${p.name} (${p.port}/${p.protocol})` : `${p.port}/${p.protocol}`;
}

/** The port of `ports` that carries the Service port: same name and protocol. */
function matchingPort(ports: readonly PortView[], servicePort: ServicePort): number | undefined {
  return ports.find((p) => p.name === servicePort.name && p.protocol === servicePort.protocol)?.port;
}

function fromEndpointSlices(
  core: CoreObjectIndex,
  vs: AcceptedVirtualService,
  serviceName: string,
  servicePort: ServicePort,
  problems: Problem[],
  add: AddEndpoint,
): void {
  const mine = sortByTextThenJson(
    core
      .endpointSlices(vs.ref.namespace, serviceName)
      .filter(({ slice }) => isRecord(slice) && slice.addressType === vs.key.family),
    // By name, then by content: two slices can only share a name when they come from files.
    (x) => x.meta.name,
    (x) => x.slice,
  );
  for (const { slice, meta } of mine) {
    const ref = { namespace: vs.ref.namespace, name: meta.name || UNNAMED };
    const read = readEndpointSliceOnce[vs.key.family](slice);
    reportIssues("EndpointSlice", ref, read.issues, problems);
    if (!read.value) continue;
    const port = matchingPort(read.value.ports, servicePort);
    if (port === undefined) continue;
    // One source for all the destinations of this slice.
    const source = { kind: "Endpoint" as const, namespace: ref.namespace, name: ref.name };
    const { addresses, conditions } = read.value;
    for (let i = 0; i < addresses.length; i++) {
      const address = addresses[i] as string;
      const c = conditions[i] as EndpointConditions;
      if (c.ready !== false) add(address, port, true, source);
      else if (c.serving === true && c.terminating === true) add(address, port, false, source);
    }
  }
}

function fromEndpoints(
  core: CoreObjectIndex,
  vs: AcceptedVirtualService,
  serviceName: string,
  servicePort: ServicePort,
  problems: Problem[],
  add: AddEndpoint,
): void {
  const ep = core.endpoints(vs.ref.namespace, serviceName);
  if (ep === undefined) return;
  const ref = { namespace: vs.ref.namespace, name: serviceName };
  const read = readEndpoints(ep);
  reportIssues("Endpoints", ref, read.issues, problems);
  if (!read.value) return;
  const source = { kind: "Endpoint" as const, namespace: ref.namespace, name: ref.name };
  for (const subset of read.value.subsets) {
    const port = matchingPort(subset.ports, servicePort);
    if (port === undefined) continue;
    for (const address of subset.addresses) {
      // core/v1 Endpoints of a dual-stack Service list one family; the other is simply not ours.
      if (ipFamily(address) === vs.key.family) add(address, port, true, source);
    }
  }
}

function reportIssues(
  kind: "Service" | "EndpointSlice" | "Endpoints",
  ref: ObjectSource,
  issues: readonly ObjectIssue[],
  problems: Problem[],
): void {
  for (const issue of issues) problems.push(invalid(kind, ref, issue.field, issue.message));
}

// ---- helpers --------------------------------------------------------------------------------------

const UNNAMED = "<unnamed>";

const NO_METADATA: Readonly<Record<string, unknown>> = Object.freeze({});

function metadataOf(raw: unknown): Readonly<Record<string, unknown>> {
  return isRecord(raw) && isRecord(raw.metadata) ? raw.metadata : NO_METADATA;
}

function namespaceIn(meta: Readonly<Record<string, unknown>>): string {
  return typeof meta.namespace === "string" && meta.namespace !== "" ? meta.namespace : "default";
}

function nameIn(meta: Readonly<Record<string, unknown>>): string {
  return typeof meta.name === "string" && meta.name !== "" ? meta.name : UNNAMED;
}

function rawRef(raw: unknown): ObjectSource {
  const meta = metadataOf(raw);
  return { namespace: namespaceIn(meta), name: nameIn(meta) };
}

function createdAt(raw: unknown): number {
  const t = metadataOf(raw).creationTimestamp;
  const ms = t instanceof Date ? t.getTime() : typeof t === "string" ? Date.parse(t) : Number.NaN;
  return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function refText(ref: ObjectSource): string {
  return `${ref.namespace}/${ref.name}`;
}

function pushTo<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function byAgeThenName(
  a: { created: number; refText: string },
  b: { created: number; refText: string },
): number {
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  return compareText(a.refText, b.refText);
}

/**
 * byAgeThenName for objects of one namespace (the RealServers of one VirtualService): "namespace/name"
 * texts with one namespace compare as their names do.
 */
function byAgeThenRefName(a: AcceptedRealServer, b: AcceptedRealServer): number {
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  return compareText(a.ref.name, b.ref.name);
}

function invalid(kind: ProblemObject["kind"], ref: ObjectSource, path: string, message: string): Problem {
  return { kind: "Invalid", object: { kind, ...ref }, ...(path ? { field: path } : {}), message };
}

/**
 * Two objects with one namespace/name (possible from manifest files, not from the API server, so not
 * looked for when the snapshot says `uniqueNames`): the first in a fixed order (by their JSON text) is
 * used, the others are reported. Keeps the output independent of input order. When every name is
 * different (the usual case) nothing is sorted: the objects come in input order, and nothing that uses
 * them depends on that order (it sorts by name).
 */
function dedupeByName<T extends { raw: unknown; ref: ObjectSource }>(
  named: T[],
  kind: ProblemObject["kind"],
  problems: Problem[],
): T[] {
  const seen = new ByName<true>();
  let shared = false;
  for (let i = 0; i < named.length; i++) {
    const { namespace, name } = (named[i] as T).ref;
    if (seen.get(namespace, name)) {
      shared = true;
      break;
    }
    seen.set(namespace, name, true);
  }
  if (!shared) return named;
  const kept = new Set<string>();
  const out: T[] = [];
  for (const x of sortByTextThenJson(
    named,
    (y) => refText(y.ref),
    (y) => y.raw,
  )) {
    if (x.ref.name === UNNAMED) {
      // Without a name it fails validation anyway; let each one be reported for what it is.
      out.push(x);
      continue;
    }
    const text = refText(x.ref);
    if (kept.has(text)) {
      problems.push({
        kind: "Duplicate",
        object: { kind, namespace: x.ref.namespace, name: x.ref.name },
        message: `more than one ${kind} named ${text}; only one is used`,
      });
      continue;
    }
    kept.add(text);
    out.push(x);
  }
  return out;
}

/**
 * `items` sorted by `text`, ties broken by the JSON text of `raw` (stable for equal JSON). The JSON text
 * is computed only for items whose `text` ties, so the common case (unique names) costs no stringify.
 */
function sortByTextThenJson<T>(items: readonly T[], text: (x: T) => string, raw: (x: T) => unknown): T[] {
  if (items.length < 2) return items.slice();
  const decorated = items.map((item) => ({ item, text: text(item), json: undefined as string | undefined }));
  const json = (x: (typeof decorated)[number]) => {
    x.json ??= safeJson(raw(x.item));
    return x.json;
  };
  decorated.sort((a, b) => compareText(a.text, b.text) || compareText(json(a), json(b)));
  return decorated.map((x) => x.item);
}

function safeJson(x: unknown): string {
  try {
    return JSON.stringify(x) ?? "";
  } catch {
    return "";
  }
}
