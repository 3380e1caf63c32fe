/**
 * A plan is an ordered list of kernel operations. diff() produces it; IpvsKernel.apply() executes it.
 */
import type { DestinationKey, IpvsDestination, IpvsService, ServiceKey } from "./table.ts";

export type Operation =
  | { op: "addService"; service: IpvsService }
  | { op: "updateService"; service: IpvsService }
  | { op: "deleteService"; key: ServiceKey }
  | { op: "addDestination"; service: ServiceKey; destination: IpvsDestination }
  | { op: "updateDestination"; service: ServiceKey; destination: IpvsDestination }
  | { op: "deleteDestination"; service: ServiceKey; key: DestinationKey };

export type OperationKind = Operation["op"];

/** The key of the service an operation is about. */
export function operationServiceKey(operation: Operation): ServiceKey {
  switch (operation.op) {
    case "addService":
    case "updateService":
      return operation.service.key;
    case "deleteService":
      return operation.key;
    default:
      return operation.service;
  }
}
