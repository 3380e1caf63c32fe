/**
 * Human explanations of the errnos IPVS returns. The errno space is overloaded (ENOENT can mean
 * "no such destination" or "no such scheduler module"), so the hint depends on the operation.
 * Shared by NetlinkIpvsKernel and FakeIpvsKernel so both produce the same messages.
 */
import type { Operation } from "../vocabulary/operations.ts";
import { destinationKeyString, serviceKeyString } from "../vocabulary/table.ts";
import type { ErrnoName } from "./errors.ts";
import { IpvsError } from "./errors.ts";
import type { OperationResult } from "./ipvs-kernel.ts";

/** The object an operation is about, as IpvsError.object: "TCP 192.0.2.10:80 -> 198.51.100.5:8080". */
export function operationObject(op: Operation): string {
  switch (op.op) {
    case "addService":
    case "updateService":
      return serviceKeyString(op.service.key);
    case "deleteService":
      return serviceKeyString(op.key);
    case "addDestination":
    case "updateDestination":
      return `${serviceKeyString(op.service)} -> ${destinationKeyString(op.destination.key)}`;
    case "deleteDestination":
      return `${serviceKeyString(op.service)} -> ${destinationKeyString(op.key)}`;
  }
}

function serviceHint(op: Operation): { scheduler: string; pe: string } | undefined {
  if (op.op === "addService" || op.op === "updateService") {
    return { scheduler: op.service.config.scheduler, pe: op.service.config.persistenceEngine };
  }
  return undefined;
}

/** Why the kernel might have said `errno` to `operation`; undefined when nothing useful can be said. */
export function errnoHint(operation: string, errno: ErrnoName, op?: Operation): string | undefined {
  const isDest = operation.includes("Destination");
  switch (errno) {
    case "EEXIST":
      return isDest ? "the destination already exists" : "the virtual service already exists";
    case "ESRCH":
      return "the virtual service does not exist";
    case "ENOENT": {
      if (isDest) return "the destination does not exist";
      const svc = op ? serviceHint(op) : undefined;
      if (svc) {
        const pe = svc.pe ? ` or persistence engine module ip_vs_pe_${svc.pe}` : "";
        return `scheduler module ip_vs_${svc.scheduler}${pe} not available in this kernel`;
      }
      return "not found (IPVS family, scheduler module or entry)";
    }
    case "EINVAL":
      if (isDest) {
        return (
          "destination rejected: the address must be unicast (IPv4 needs a routing table, e.g. lo up), " +
          "a GUE tunnel needs a port, and a destination of another family needs Tunnel forwarding " +
          "and no running sync daemon"
        );
      }
      if (operation.includes("Service")) {
        return "service rejected: invalid field (an IPv6 persistence netmask must be a prefix length 1..128)";
      }
      return "invalid argument";
    case "ERANGE":
      return "weight must be 0..2147483647 and the lower threshold must not exceed the upper threshold";
    case "EPERM":
      return "needs CAP_NET_ADMIN in the host's initial user namespace";
    case "EAFNOSUPPORT":
      return "address family not supported (is IPv6 disabled?)";
    case "ENODEV":
      return "no such network interface";
    default:
      return undefined;
  }
}

/** An IpvsError with the hint for its errno. */
export function ipvsError(operation: string, object: string, errno: ErrnoName, op?: Operation): IpvsError {
  return new IpvsError(operation, object, errno, errnoHint(operation, errno, op));
}

/**
 * The result of an operation a transport failure left without an answer: `unknown` when it was sent
 * (it may or may not have been applied), failed when it was never sent. The error has the failure's
 * class (IpvsTimeoutError, IpvsUnavailableError...) and errno, and names the operation and object.
 * Shared by NetlinkIpvsKernel and FakeIpvsKernel (which injects such failures).
 */
export function transportFailureResult(
  operation: string,
  object: string,
  failure: Error,
  sent: boolean,
): OperationResult {
  const errno = failure instanceof IpvsError ? failure.errno : "EIO";
  const Class = failure instanceof IpvsError ? (failure.constructor as typeof IpvsError) : IpvsError;
  if (sent) {
    const detail = `sent, but the kernel's answer was lost (${failure.message}); it may or may not have been applied`;
    return { ok: false, error: new Class(operation, object, errno, detail), unknown: true };
  }
  return { ok: false, error: new Class(operation, object, errno, `not sent (${failure.message})`) };
}
