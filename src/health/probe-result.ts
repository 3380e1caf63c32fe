/**
 * What every prober takes and returns, and the one place that bounds a probe in time: runBounded()
 * arms the timeout (AbortSignal.timeout), listens to the caller's signal (the monitor aborts a probe
 * whose target went away), measures the duration, settles once, and always releases the probe's
 * resources (socket, request, child process) through the cleanup the prober returns.
 */
import { isIPv6 } from "node:net";

export interface ProbeResult {
  healthy: boolean;
  /** Why, in words for status and Events: "HTTP 503, expected 200-399", "connect: ECONNREFUSED". */
  reason: string;
  durationMs: number;
}

/** Who may run Exec probes on this node (agent configuration, never the API). */
export interface ExecPolicy {
  enabled: boolean;
  /** Absolute paths argv[0] must equal; anything else is refused without being run. */
  allowedCommands: readonly string[];
}

export const EXEC_DISABLED: ExecPolicy = Object.freeze({ enabled: false, allowedCommands: [] });

export interface ProbeContext {
  /** The probe fails with "no answer within N ms" when it has not finished by then. */
  timeoutMs: number;
  /** Aborts the probe at once (the target was removed, the monitor stopped); the result says "cancelled". */
  signal?: AbortSignal;
  /**
   * Source address for the probe's socket (of the target's family), e.g. the node's own address where
   * the kernel would otherwise pick a VIP (see HealthMonitorOptions.sourceAddress).
   */
  localAddress?: string;
  /** Exec probes only; absent: disabled. */
  exec?: ExecPolicy;
}

/** A prober's verdict before timing is added. */
export interface Verdict {
  healthy: boolean;
  reason: string;
}

/**
 * Starts a probe and settles it once: with the first verdict `start` reports through `done`, or a
 * failure on timeout or abort. `start` returns the cleanup that frees what it opened; it runs after
 * every outcome. `stage()` names what the probe was waiting for, for the timeout reason.
 */
export function runBounded(
  context: ProbeContext,
  start: (done: (verdict: Verdict) => void) => () => void,
  stage: () => string,
): Promise<ProbeResult> {
  const began = performance.now();
  return new Promise<ProbeResult>((resolve) => {
    let settled = false;
    let cleanup: (() => void) | undefined;
    const timeout = AbortSignal.timeout(Math.max(1, context.timeoutMs));
    const finish = (verdict: Verdict): void => {
      if (settled) return;
      settled = true;
      timeout.removeEventListener("abort", onTimeout);
      context.signal?.removeEventListener("abort", onCancel);
      try {
        cleanup?.();
      } catch {
        // A cleanup that throws (a socket already closed) changes nothing about the verdict.
      }
      resolve({ ...verdict, durationMs: Math.round((performance.now() - began) * 10) / 10 });
    };
    const onTimeout = (): void =>
      finish({ healthy: false, reason: `${stage()}: no answer within ${context.timeoutMs} ms` });
    const onCancel = (): void => finish({ healthy: false, reason: `${stage()}: probe cancelled` });
    if (context.signal?.aborted) {
      onCancel();
      return;
    }
    timeout.addEventListener("abort", onTimeout, { once: true });
    context.signal?.addEventListener("abort", onCancel, { once: true });
    try {
      const release = start(finish);
      if (settled) release();
      else cleanup = release;
    } catch (error) {
      finish({ healthy: false, reason: `${stage()}: ${describeError(error)}` });
    }
  });
}

/** "ECONNREFUSED" style codes first, then the message when it adds something. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  if (code && !error.message.includes(code)) return `${code}: ${error.message}`;
  return error.message;
}

/** address:port, IPv6 in brackets. */
export function hostPort(address: string, port: number): string {
  return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}
