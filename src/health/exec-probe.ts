/**
 * Exec probe: argv run on the node, healthy on exit status 0 (ldirectord checktype=external, keepalived
 * MISC_CHECK). It runs as the agent, i.e. as root on every node that programs the service, so it runs
 * only when the node's agent configuration enables it AND argv[0] is one of the allowlisted absolute
 * paths; anything else fails with a reason and is never started. The command sees only PATH and the real
 * server in IPVS_RS_ADDRESS / IPVS_RS_PORT (not the agent's environment, which holds its credentials'
 * locations). It runs in a process group of its own, killed (SIGKILL) as a whole on timeout or cancel,
 * so a shell's children do not outlive it.
 */
import { spawn } from "node:child_process";
import { isAbsolute, normalize } from "node:path";
import {
  describeError,
  EXEC_DISABLED,
  type ExecPolicy,
  type ProbeContext,
  type ProbeResult,
  runBounded,
} from "./probe-result.ts";
import type { ExecProbeSpec } from "./probe-spec.ts";

export const EXEC_DISABLED_REASON = "exec health checks are disabled on this node";

const OUTPUT_TAIL = 512;
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Why this argv may not run under the policy, or undefined when it may. */
export function execRefusal(command: readonly string[], policy: ExecPolicy): string | undefined {
  if (!policy.enabled) return `${EXEC_DISABLED_REASON} (the agent configuration does not enable them)`;
  const program = command[0];
  if (program === undefined || program === "") return "exec health check has an empty command";
  if (!isAbsolute(program) || normalize(program) !== program) {
    return `exec health check command ${program} is not an absolute, normalized path`;
  }
  if (!policy.allowedCommands.includes(program)) {
    return `exec health check command ${program} is not in this node's allowlist`;
  }
  return undefined;
}

export function probeExec(spec: ExecProbeSpec, context: ProbeContext): Promise<ProbeResult> {
  const program = spec.command[0] ?? "";
  let stage = `exec ${program}`;
  return runBounded(
    context,
    (done) => {
      const refusal = execRefusal(spec.command, context.exec ?? EXEC_DISABLED);
      if (refusal !== undefined) {
        done({ healthy: false, reason: refusal });
        return () => {};
      }
      const child = spawn(program, spec.command.slice(1), {
        env: {
          PATH: process.env.PATH ?? DEFAULT_PATH,
          IPVS_RS_ADDRESS: spec.address,
          IPVS_RS_PORT: String(spec.port),
        },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      });
      stage = `exec ${program}: running`;
      let output = "";
      const keep = (chunk: Buffer): void => {
        output = (output + chunk.toString("utf8")).slice(-OUTPUT_TAIL);
      };
      child.stdout?.on("data", keep);
      child.stderr?.on("data", keep);
      child.once("error", (error) =>
        done({ healthy: false, reason: `exec ${program}: ${describeError(error)}` }),
      );
      child.once("close", (code, signal) => {
        const tail = output.trim() ? `: ${output.trim().split("\n").slice(-3).join(" | ")}` : "";
        if (code === 0) done({ healthy: true, reason: `exec ${program}: exit status 0` });
        else if (signal) done({ healthy: false, reason: `exec ${program}: killed by ${signal}${tail}` });
        else done({ healthy: false, reason: `exec ${program}: exit status ${code}${tail}` });
      });
      return () => {
        if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
          try {
            process.kill(-child.pid, "SIGKILL");
          } catch {
            child.kill("SIGKILL");
          }
        }
        child.stdout?.destroy();
        child.stderr?.destroy();
      };
    },
    () => stage,
  );
}
