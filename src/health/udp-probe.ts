/**
 * UDP probe over a connected socket (so the kernel reports an ICMP port unreachable for it as
 * ECONNREFUSED on the socket). Two forms:
 * - with `expect`: send the payload, healthy when a reply that matches arrives before the timeout
 *   (keepalived UDP_CHECK with require_reply); other replies are ignored and named in the timeout reason.
 * - without: healthy when no ICMP port unreachable comes back within quietMs (capped at half the timeout),
 *   or at once when anything replies. This is what the API's "UDP (send and expect no ICMP error)" means
 *   today. It proves little: a firewall that drops ICMP, or a host that is down (no ICMP at all without
 *   a neighbour), look healthy; use an expected reply where the protocol has one.
 */
import { createSocket } from "node:dgram";
import { isIPv6 } from "node:net";
import { compileRegex } from "./http-probe.ts";
import { describeError, hostPort, type ProbeContext, type ProbeResult, runBounded } from "./probe-result.ts";
import type { UdpExpect, UdpProbeSpec } from "./probe-spec.ts";

export function probeUdp(spec: UdpProbeSpec, context: ProbeContext): Promise<ProbeResult> {
  const target = hostPort(spec.address, spec.port);
  let stage = `UDP ${target}`;
  return runBounded(
    context,
    (done) => {
      const matcher = spec.expect ? replyMatcher(spec.expect) : undefined;
      if (matcher instanceof Error) {
        done({
          healthy: false,
          reason: `expected reply is not a valid regular expression: ${matcher.message}`,
        });
        return () => {};
      }
      const socket = createSocket({ type: isIPv6(spec.address) ? "udp6" : "udp4" });
      let quiet: NodeJS.Timeout | undefined;
      let mismatches = 0;
      socket.on("error", (error: NodeJS.ErrnoException) => {
        const icmp = error.code === "ECONNREFUSED";
        done({
          healthy: false,
          reason: icmp
            ? `UDP ${target}: ICMP port unreachable (ECONNREFUSED)`
            : `UDP ${target}: ${describeError(error)}`,
        });
      });
      socket.on("message", (reply: Buffer) => {
        if (!matcher) done({ healthy: true, reason: `UDP ${target}: reply of ${reply.length} bytes` });
        else if (matcher(reply)) done({ healthy: true, reason: `UDP ${target}: expected reply received` });
        else {
          mismatches++;
          stage = `UDP ${target}: waiting for the expected reply (${mismatches} other replies)`;
        }
      });
      socket.bind({ port: 0, ...(context.localAddress ? { address: context.localAddress } : {}) }, () => {
        socket.connect(spec.port, spec.address, () => {
          stage = matcher ? `UDP ${target}: waiting for the expected reply` : `UDP ${target}`;
          socket.send(spec.payload, (error) => {
            if (error) {
              done({ healthy: false, reason: `UDP ${target}: send: ${describeError(error)}` });
              return;
            }
            if (matcher) return;
            const quietMs = Math.max(1, Math.min(spec.quietMs, Math.floor(context.timeoutMs / 2)));
            // The verdict waits one more turn (setImmediate runs after the poll phase): when the event
            // loop was busy, the timer can be due before an ICMP error already queued is read.
            quiet = setTimeout(
              () =>
                setImmediate(() =>
                  done({ healthy: true, reason: `UDP ${target}: no ICMP error within ${quietMs} ms` }),
                ),
              quietMs,
            );
          });
        });
      });
      return () => {
        clearTimeout(quiet);
        try {
          socket.close();
        } catch {
          // already closed
        }
      };
    },
    () => stage,
  );
}

function replyMatcher(expect: UdpExpect): ((reply: Buffer) => boolean) | Error {
  if ("bytes" in expect) {
    const bytes = Buffer.from(expect.bytes);
    return (reply) => reply.equals(bytes);
  }
  const regex = compileRegex(expect.regex);
  if (regex instanceof Error) return regex;
  // latin1 maps every byte to one character, so expressions can match binary replies too.
  return (reply) => regex.test(reply.toString("latin1"));
}
