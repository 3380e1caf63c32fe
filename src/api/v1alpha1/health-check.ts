/** The active health check of a VirtualService (and its per-RealServer override). */
import { z } from "zod";
import { portNumber, withRules } from "./common.ts";

export const HealthCheckTypeSchema = z.enum(["None", "TCP", "HTTP", "HTTPS", "UDP", "Exec"]).meta({
  description:
    "Probe kind: None (no probing, every real server counts as healthy), TCP (connect), HTTP, HTTPS, UDP (send and expect no ICMP error), Exec (run a command on the node).",
});

const HTTP_ONLY = ["path", "host", "expectStatus", "expectBody"] as const;

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
