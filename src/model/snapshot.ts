/**
 * Snapshot: everything computeDesired() looks at, as plain data gathered by a source (informers or
 * manifest files). VirtualServices and RealServers are kept RAW (`unknown`): computeDesired validates
 * them with the API's validate functions, so an invalid object becomes a problem on that object and
 * never blocks the others. Kubernetes core objects are typed with @kubernetes/client-node's
 * interfaces (types only) and read defensively (every field optional in practice).
 */
import type { V1EndpointSlice, V1Endpoints, V1Namespace, V1Service } from "@kubernetes/client-node";
import type { HealthCheck } from "../api/v1alpha1/index.ts";

export interface Snapshot {
  /** ipvs.dev/v1alpha1 VirtualService objects, unvalidated. */
  virtualServices: readonly unknown[];
  /** ipvs.dev/v1alpha1 RealServer objects, unvalidated. */
  realServers: readonly unknown[];
  /** discovery.k8s.io/v1 EndpointSlices (label kubernetes.io/service-name names their Service). */
  endpointSlices: readonly V1EndpointSlice[];
  /** core/v1 Endpoints, used for VirtualServices with backends.source Endpoints. */
  endpoints: readonly V1Endpoints[];
  /** core/v1 Services referenced by backends.serviceRef (for port names and numbers). */
  services: readonly V1Service[];
  /**
   * ipvs.dev/v1alpha1 IPVSAddressPolicy objects, unvalidated, when the address policy is enforced
   * (--address-policy Enforce; an empty list then refuses every VirtualService); undefined: not enforced.
   */
  addressPolicies?: readonly unknown[];
  /**
   * core/v1 Namespaces (only metadata.name and metadata.labels are read), given with addressPolicies for
   * their namespaceSelectors; a namespace that is not in the list has no labels.
   */
  namespaces?: readonly V1Namespace[];
  /**
   * True when the source holds at most one VirtualService and one RealServer per namespace and name, as
   * the API server does (informer caches are keyed by them): computeDesired then does not look for two
   * objects with one name. Manifest files can have them, so their sources leave this unset.
   */
  uniqueNames?: boolean;
}

export const EMPTY_SNAPSHOT: Snapshot = Object.freeze({
  virtualServices: [],
  realServers: [],
  endpointSlices: [],
  endpoints: [],
  services: [],
});

export interface NodeInfo {
  name: string;
  labels: Readonly<Record<string, string>>;
}

/**
 * One backend's health: true healthy, false unhealthy, or a number in (0, 1): healthy and slow-starting
 * after a recovery, at that fraction of its weight (healthCheck.slowStartSeconds).
 */
export type HealthValue = boolean | number;

/**
 * Health results from this node's probers, by healthKey(). A backend with an active health check and no
 * entry yet is in its check's initialState.
 */
export type HealthState = ReadonlyMap<string, HealthValue>;

/** "edge/web|198.51.100.5|8080": the virtual service (namespace/name), the backend address and port. */
export function healthKey(
  virtualService: { namespace: string; name: string },
  address: string,
  port: number,
): string {
  return `${virtualService.namespace}/${virtualService.name}|${address}|${port}`;
}

/** One backend to probe: what the health checker needs, computed with the desired table. */
export interface HealthTarget {
  /** healthKey() of the backend. */
  key: string;
  virtualService: { namespace: string; name: string };
  address: string;
  /** The destination port in the table (0 for fwmark / all-ports services without a port). */
  port: number;
  healthCheck: HealthCheck;
  source: { kind: "RealServer" | "Endpoint"; namespace: string; name: string };
}
