/**
 * DNS probe: one query (name, record type) to the real server's address and port, through node:dns's
 * Resolver (c-ares) with one try and the probe's timeout. Healthy when the server answers NOERROR with at
 * least one record of the type and, with `expect`, that value is among them. NXDOMAIN, an empty answer,
 * SERVFAIL and REFUSED are failures: a DNS backend that no longer knows the name it is checked with has
 * lost its zone, even though it is up.
 */
import { Resolver } from "node:dns/promises";
import { isIPv6 } from "node:net";
import { hostPort, type ProbeContext, type ProbeResult, runBounded } from "./probe-result.ts";
import type { DnsProbeSpec } from "./probe-spec.ts";

const ERROR_TEXT: Readonly<Record<string, string>> = {
  ENOTFOUND: "NXDOMAIN (name not found)",
  ENODATA: "no records of the type (NOERROR, empty answer)",
  ESERVFAIL: "SERVFAIL",
  EREFUSED: "REFUSED",
  ENOTIMP: "NOTIMP",
  EFORMERR: "FORMERR",
  EBADRESP: "malformed response",
  ETIMEOUT: "no answer (timeout)",
  ECONNREFUSED: "connection refused (ICMP port unreachable)",
};

export function probeDns(spec: DnsProbeSpec, context: ProbeContext): Promise<ProbeResult> {
  const server = hostPort(spec.address, spec.port);
  const what = `DNS ${spec.query.type} ${spec.query.name} @${server}`;
  return runBounded(
    context,
    (done) => {
      const resolver = new Resolver({ timeout: Math.max(1, context.timeoutMs), tries: 1 });
      if (context.localAddress) {
        if (isIPv6(context.localAddress)) resolver.setLocalAddress(undefined, context.localAddress);
        else resolver.setLocalAddress(context.localAddress);
      }
      resolver.setServers([server]);
      resolver.resolve(spec.query.name, spec.query.type).then(
        (records: unknown) => {
          const answers = (Array.isArray(records) ? records : [records]).map(answerText);
          if (answers.length === 0) done({ healthy: false, reason: `${what}: empty answer` });
          else if (spec.expect === undefined || answers.includes(spec.expect)) {
            done({ healthy: true, reason: `${what}: ${answers.slice(0, 4).join(", ")}` });
          } else {
            done({
              healthy: false,
              reason: `${what}: answer ${answers.slice(0, 4).join(", ")} does not include ${spec.expect}`,
            });
          }
        },
        (error: NodeJS.ErrnoException) => {
          const code = error.code ?? "";
          done({
            healthy: false,
            reason: `${what}: ${ERROR_TEXT[code] ?? `${code} ${error.message}`.trim()}`,
          });
        },
      );
      return () => resolver.cancel();
    },
    () => what,
  );
}

/** One record as text, for comparison with `expect` and for the reason. */
function answerText(record: unknown): string {
  if (typeof record === "string") return record;
  if (Array.isArray(record)) return record.join("");
  if (record && typeof record === "object") {
    const r = record as Record<string, unknown>;
    if ("exchange" in r) return `${r.priority} ${r.exchange}`;
    if ("weight" in r) return `${r.priority} ${r.weight} ${r.port} ${r.name}`;
    if ("nsname" in r) return `${r.nsname} ${r.hostmaster} ${r.serial}`;
    if ("critical" in r) {
      const tag = Object.keys(r).find((k) => k !== "critical");
      return `${r.critical} ${tag} ${tag ? r[tag] : ""}`;
    }
    return JSON.stringify(record);
  }
  return String(record);
}
