/** TCP connect probe: healthy when the three-way handshake completes (ldirectord/keepalived TCP_CHECK). */
import { connect } from "node:net";
import { describeError, hostPort, type ProbeContext, type ProbeResult, runBounded } from "./probe-result.ts";
import type { TcpProbeSpec } from "./probe-spec.ts";

export function probeTcp(spec: TcpProbeSpec, context: ProbeContext): Promise<ProbeResult> {
  const target = hostPort(spec.address, spec.port);
  return runBounded(
    context,
    (done) => {
      const socket = connect({
        host: spec.address,
        port: spec.port,
        ...(context.localAddress ? { localAddress: context.localAddress } : {}),
      });
      socket.once("connect", () => done({ healthy: true, reason: `connected to ${target}` }));
      socket.once("error", (error) =>
        done({ healthy: false, reason: `connect to ${target}: ${describeError(error)}` }),
      );
      return () => socket.destroy();
    },
    () => `connect to ${target}`,
  );
}
