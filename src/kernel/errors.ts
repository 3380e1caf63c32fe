/**
 * Typed errors of the kernel edge. Every failure names the operation, the object and the errno.
 */

/** errno names the IPVS netlink family can return, with their (Linux) numbers. */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ERANGE: 34,
  EMSGSIZE: 90,
  EPROTONOSUPPORT: 93,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  ENOBUFS: 105,
  ETIMEDOUT: 110,
} as const;
export type ErrnoName = keyof typeof ERRNO | `E${number}`;

export function errnoName(errno: number): ErrnoName {
  const n = Math.abs(errno);
  for (const [name, value] of Object.entries(ERRNO)) if (value === n) return name as ErrnoName;
  return `E${n}`;
}

/** A request the kernel (or the fake) rejected. */
export class IpvsError extends Error {
  override readonly name = "IpvsError";
  /** The operation, e.g. "addService", "listDestinations". */
  readonly operation: string;
  /** The object it was about, e.g. "TCP 192.0.2.10:80 -> 198.51.100.5:8080"; "" for global operations. */
  readonly object: string;
  readonly errno: ErrnoName;
  constructor(operation: string, object: string, errno: ErrnoName, detail?: string) {
    super(`${operation} ${object}${object ? " " : ""}failed: ${errno}${detail ? ` (${detail})` : ""}`);
    this.operation = operation;
    this.object = object;
    this.errno = errno;
  }
}

/** IPVS is not available: the generic netlink family "IPVS" does not exist (module not loaded). */
export class IpvsUnavailableError extends IpvsError {}

/** No reply within the request timeout. */
export class IpvsTimeoutError extends IpvsError {}

/** A reply that does not decode (truncated attribute, wrong length, missing key). */
export class IpvsDecodeError extends Error {
  override readonly name = "IpvsDecodeError";
}
