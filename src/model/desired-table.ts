/**
 * The desired IPVS table of one node: the output of computeDesired() and the input of diff().
 * Plain kernel values (IpvsService / IpvsDestination) plus where each entry came from and the
 * per-service policies diff() needs.
 */
import type { IpvsDestination, IpvsService, IpvsTableEntry } from "../vocabulary/table.ts";

/** Repair: converge the kernel to the desired table. Report: observe-only (report drift, change nothing). */
export type DriftPolicy = "Repair" | "Report";

export interface ObjectSource {
  namespace: string;
  name: string;
}

export interface DesiredService extends IpvsService {
  /** The VirtualService this entry comes from. */
  source: ObjectSource;
  driftPolicy: DriftPolicy;
  /** How long a removed destination may drain (weight 0) before it is deleted; 0 = delete at once. */
  drainTimeoutSeconds: number;
}

export type DestinationSourceKind = "RealServer" | "Endpoint" | "SorryServer";

export interface DesiredDestination extends IpvsDestination {
  /**
   * RealServer: the RealServer object. Endpoint: the EndpointSlice (or Endpoints) object that listed
   * the address. SorryServer: the VirtualService.
   */
  source: ObjectSource & { kind: DestinationSourceKind };
  /** True for an endpoint that is terminating but still serving: desired, with weight 0. */
  draining?: boolean;
}

export type DesiredEntry = IpvsTableEntry<DesiredService, DesiredDestination>;
export type DesiredTable = DesiredEntry[];
