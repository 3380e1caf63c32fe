/** The active health check of a VirtualService (and its per-RealServer override). */
import { z } from "zod";
import { portNumber, withRules } from "./common.ts";

export const HealthCheckTypeSchema = z.enum(["None", "TCP", "HTTP", "HTTPS", "UDP", "DNS", "Exec"]).meta({
  description:
    "Probe kind: None (no probing, every real server counts as healthy), TCP (connect), HTTP, HTTPS, UDP (send a datagram; healthy on the expected reply, or without one when no ICMP port unreachable comes back), DNS (a query to the real server), Exec (run a command on the node).",
});

const HTTP_ONLY = ["path", "host", "expectStatus", "expectBody"] as const;

/** Record types a DNS health check can ask for. */
export const DNS_RECORD_TYPES = [
  "A",
  "AAAA",
  "CNAME",
  "MX",
  "NS",
  "PTR",
  "SOA",
  "SRV",
  "TXT",
  "CAA",
] as const;

const hex = (description: string) =>
  z
    .string()
    .min(2)
    .max(2048)
    .regex(/^([0-9a-fA-F]{2})+$/, "must be pairs of hexadecimal digits")
    .meta({ description });

const TlsSchema = withRules(
  z.strictObject({
    verify: z.boolean().default(false).meta({
      description:
        "Verify the certificate chain and name (keepalived and ldirectord do not): off by default, since backends mostly have self-signed certificates.",
    }),
    ca: z.string().min(1).max(65536).optional().meta({
      description:
        "PEM text of the CA certificate(s) to trust when verifying; absent: the public CAs Node.js ships.",
    }),
    serverName: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[A-Za-z0-9.-]+$/)
      .optional()
      .meta({
        description: "SNI name, and the name the certificate must carry; absent: the Host header's name.",
      }),
  }),
  "HTTPS only: TLS settings of the probe.",
  [
    {
      rule: "!has(self.ca) || self.verify",
      message: "ca is only used with verify: true",
      fieldPath: ".ca",
      check: (t) => t.ca === undefined || t.verify,
    },
  ],
);

const UdpSchema = withRules(
  z.strictObject({
    payload: z.string().max(1024).optional().meta({ description: "The datagram, as text." }),
    payloadHex: hex(
      "The datagram as hexadecimal bytes (keepalived UDP_CHECK payload), for binary protocols.",
    ).optional(),
    expectReply: z.string().min(1).max(1024).optional().meta({
      description: "Regular expression the reply must match (read as latin1 text); absent: no reply needed.",
    }),
    expectReplyHex: hex(
      "The exact reply, as hexadecimal bytes (keepalived UDP_CHECK require_reply).",
    ).optional(),
  }),
  "UDP only: what to send and what to expect. Without an expected reply, a real server is healthy when no ICMP port unreachable comes back within a second.",
  [
    {
      rule: "!(has(self.payload) && has(self.payloadHex))",
      message: "payload and payloadHex are mutually exclusive",
      fieldPath: ".payloadHex",
      check: (u) => !(u.payload !== undefined && u.payloadHex !== undefined),
    },
    {
      rule: "!(has(self.expectReply) && has(self.expectReplyHex))",
      message: "expectReply and expectReplyHex are mutually exclusive",
      fieldPath: ".expectReplyHex",
      check: (u) => !(u.expectReply !== undefined && u.expectReplyHex !== undefined),
    },
  ],
);

const DnsSchema = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[A-Za-z0-9_.-]+$/)
      .meta({ description: "The name to ask the real server about." }),
    type: z
      .enum(DNS_RECORD_TYPES)
      .default("A")
      .meta({ description: "Record type: A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT or CAA." }),
    expectAnswer: z.string().min(1).max(1024).optional().meta({
      description:
        "Healthy only when this value is among the answers (an address for A/AAAA, a name for CNAME/NS/PTR, 'priority exchange' for MX, the joined strings for TXT); absent: any answer.",
    }),
  })
  .meta({
    description:
      "DNS only (and required there): the query; NXDOMAIN, no answer, SERVFAIL and REFUSED are failures.",
  });

export const HealthCheckSchema = withRules(
  z.strictObject({
    type: HealthCheckTypeSchema,
    port: portNumber(
      "Port to probe; default: the real server's port. Not allowed with type None or Exec.",
    ).optional(),
    path: z
      .string()
      .min(1)
      .max(2048)
      .regex(/^\/\S*$/)
      .optional()
      .meta({
        description: "HTTP(S) only: request path (ldirectord request=), starting with '/'; absent means '/'.",
      }),
    host: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[A-Za-z0-9.:[\]-]+$/)
      .optional()
      .meta({ description: "HTTP(S) only: Host header; absent means the real server's address." }),
    expectStatus: z
      .array(
        z
          .string()
          .regex(/^[1-5][0-9]{2}(-[1-5][0-9]{2})?$/)
          .meta({ description: "A status code (200) or an inclusive range (200-399)." }),
      )
      .min(1)
      .max(16)
      .optional()
      .meta({ description: "HTTP(S) only: accepted status codes or ranges; absent means 200-399." }),
    expectBody: z.string().min(1).max(1024).optional().meta({
      description: "HTTP(S) only: regular expression the response body must match (ldirectord receive=).",
    }),
    tls: TlsSchema.optional(),
    udp: UdpSchema.optional(),
    dns: DnsSchema.optional(),
    command: z
      .array(z.string().max(4096).meta({ description: "One argument." }))
      .min(1)
      .max(64)
      .optional()
      .meta({
        description:
          "Exec only (and required there): argv run on the node; exit status 0 means healthy. The real server's address and port are in $IPVS_RS_ADDRESS and $IPVS_RS_PORT.",
      }),
    intervalSeconds: z
      .int()
      .min(1)
      .max(3600)
      .default(10)
      .meta({ description: "Seconds between the start of two probes." }),
    timeoutSeconds: z
      .int()
      .min(1)
      .max(3600)
      .default(5)
      .meta({ description: "Seconds before a probe counts as failed; at most intervalSeconds." }),
    riseCount: z
      .int()
      .min(1)
      .max(100)
      .default(2)
      .meta({ description: "Consecutive successes for an unhealthy real server to become healthy." }),
    fallCount: z
      .int()
      .min(1)
      .max(100)
      .default(3)
      .meta({ description: "Consecutive failures for a healthy real server to become unhealthy." }),
    initialState: z.enum(["Healthy", "Unhealthy"]).default("Unhealthy").meta({
      description: "State before the first probe result (keepalived 'alpha' is Unhealthy).",
    }),
    slowStartSeconds: z.int().min(0).max(3600).default(0).meta({
      description:
        "After a real server recovers, its weight ramps up from 1 to the declared weight over this many seconds (in tenths), so a recovered backend is not flooded; 0: the whole weight at once.",
    }),
    onFailure: z.enum(["Quiesce", "Remove"]).default("Quiesce").meta({
      description:
        "What an unhealthy real server gets: Quiesce (weight 0, existing connections continue; ldirectord quiescent=yes) or Remove (deleted from the IPVS table).",
    }),
  }),
  "Active health check run from every node that programs the service.",
  [
    ...HTTP_ONLY.map((f) => ({
      rule: `!has(self.${f}) || self.type == 'HTTP' || self.type == 'HTTPS'`,
      message: `${f} is only allowed with type HTTP or HTTPS`,
      fieldPath: `.${f}`,
      check: (s: { type: string; [k: string]: unknown }) =>
        s[f] === undefined || s.type === "HTTP" || s.type === "HTTPS",
    })),
    {
      rule: "!has(self.tls) || self.type == 'HTTPS'",
      message: "tls is only allowed with type HTTPS",
      fieldPath: ".tls",
      check: (s) => s.tls === undefined || s.type === "HTTPS",
    },
    {
      rule: "!has(self.udp) || self.type == 'UDP'",
      message: "udp is only allowed with type UDP",
      fieldPath: ".udp",
      check: (s) => s.udp === undefined || s.type === "UDP",
    },
    {
      rule: "(self.type == 'DNS') == has(self.dns)",
      message: "dns is required with type DNS and only allowed there",
      fieldPath: ".dns",
      check: (s) => (s.type === "DNS") === (s.dns !== undefined),
    },
    {
      rule: "self.type != 'Exec' || has(self.command)",
      message: "command is required with type Exec",
      fieldPath: ".command",
      check: (s) => s.type !== "Exec" || s.command !== undefined,
    },
    {
      rule: "!has(self.command) || self.type == 'Exec'",
      message: "command is only allowed with type Exec",
      fieldPath: ".command",
      check: (s) => s.command === undefined || s.type === "Exec",
    },
    {
      rule: "!has(self.port) || (self.type != 'None' && self.type != 'Exec')",
      message: "port is not allowed with type None or Exec",
      fieldPath: ".port",
      check: (s) => s.port === undefined || (s.type !== "None" && s.type !== "Exec"),
    },
    {
      rule: "self.timeoutSeconds <= self.intervalSeconds",
      message: "timeoutSeconds must not exceed intervalSeconds",
      fieldPath: ".timeoutSeconds",
      check: (s) => s.timeoutSeconds <= s.intervalSeconds,
    },
  ],
);

export type HealthCheck = z.output<typeof HealthCheckSchema>;
export type HealthCheckInput = z.input<typeof HealthCheckSchema>;
