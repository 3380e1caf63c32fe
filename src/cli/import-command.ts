/**
 * `ipvs-operator import [FILE|-] [--from FORMAT]`: reads a description of an IPVS table (`ipvsadm -Sn`
 * output, an `ipvsadm -R` script, an `ipvsadm -Ln` listing) and writes VirtualService and RealServer
 * YAML that `plan` turns back into the same table.
 * Exit status: 0; 2 usage (including a format that cannot be told: give --from); 1 the input cannot be
 * read; 3 when some lines or entries could not be imported (reported on stderr, the rest is written).
 *
 * Each input format is a reader in READERS; a new one (keepalived.conf, ldirectord.cf) is one more entry.
 * A reader hands back a table (importResources turns it into objects) or the objects themselves.
 */

import { globSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { text } from "node:stream/consumers";
import { importKeepalived } from "../import/keepalived.ts";
import { importLdirectord } from "../import/ldirectord.ts";
import { importResources, renderResourcesYaml } from "../model/import-resources.ts";
import { looksLikeListingLine, parseIpvsadmList } from "../model/ipvsadm-list-parse.ts";
import { parseIpvsadmSave, tokenize } from "../model/ipvsadm-parse.ts";
import { FALLBACK_SERVICE_NAMES, parseEtcServices, type ServicePortLookup } from "../model/service-names.ts";
import type { IpvsTable } from "../vocabulary/table.ts";
import { CliError } from "./cli-error.ts";
import { parseOptions } from "./options.ts";

/** What a reader hands back: the table it read and what it could not read (line numbers of its input). */
export interface ImportReading {
  table: IpvsTable;
  problems: { line: number; message: string }[];
}

/**
 * What a reader that writes the objects itself hands back: a configuration (ldirectord.cf) says more
 * than a table (health checks, sorry servers), so it names, validates and reports on its own.
 */
export interface ObjectsReading {
  objects: Record<string, unknown>[];
  /** "FILE:LINE: message": invalid input, or what was not imported (exit status 3). */
  problems: string[];
  /** "FILE:LINE: message": what has no equivalent in the API (reported; exit status 0). */
  notes: string[];
}

export interface ReaderContext {
  /** The file given, or "-" for stdin (a reader that follows includes resolves them from here). */
  source: string;
  /** Port names (getservbyname over /etc/services). */
  servicePort: ServicePortLookup;
  /** --namespace and --name-prefix, for readers that write the objects themselves. */
  namespace?: string;
  namePrefix?: string;
}

interface Reader {
  /** One line for --help. */
  describe: string;
  read(
    input: string,
    context: ReaderContext,
  ): ImportReading | ObjectsReading | Promise<ImportReading | ObjectsReading>;
}

const READERS = {
  "ipvsadm-save": {
    describe: "ipvsadm -Sn / -S output, or an ipvsadm -R script (lines may continue with a backslash)",
    read: (input, context) => parseIpvsadmSave(input, { servicePort: context.servicePort }),
  },
  "ipvsadm-list": {
    describe: "ipvsadm -Ln / -L listings, with or without --thresholds or --persistent-conn, several merged",
    read: (input, context) => parseIpvsadmList(input, { servicePort: context.servicePort }),
  },
  ldirectord: {
    describe: "ldirectord.cf (never detected: give --from ldirectord); health checks and fallbacks too",
    read: (input, context) => {
      const r = importLdirectord(input, {
        file: context.source === "-" ? "stdin" : context.source,
        servicePort: context.servicePort,
        ...(context.namespace !== undefined ? { namespace: context.namespace } : {}),
        ...(context.namePrefix !== undefined ? { namePrefix: context.namePrefix } : {}),
      });
      return { objects: r.objects, problems: r.errors.map(noteText), notes: r.report.map(noteText) };
    },
  },
  keepalived: {
    describe: "keepalived.conf (never detected: give --from keepalived); checkers and sorry servers too",
    read: (input, context) => {
      const r = importKeepalived(input, {
        file: context.source === "-" ? "stdin" : context.source,
        // include files, relative to the including file (keepalived reads them the same way)
        readFile: (path) => {
          try {
            return readFileSync(path, "utf8");
          } catch {
            return undefined;
          }
        },
        glob: (pattern) => globSync(pattern).sort(),
        ...(context.namespace !== undefined ? { namespace: context.namespace } : {}),
        ...(context.namePrefix !== undefined ? { namePrefix: context.namePrefix } : {}),
      });
      return { objects: r.objects, problems: r.errors.map(noteText), notes: r.report.map(noteText) };
    },
  },
} satisfies Record<string, Reader>;

/** "FILE:LINE: message" of a configuration reader's note or error. */
function noteText(n: { file: string; line: number; message: string }): string {
  return `${n.file}:${n.line}: ${n.message}`;
}

export type ImportFormat = keyof typeof READERS;
const FORMATS = Object.keys(READERS) as ImportFormat[];

const HELP = `Usage: ipvs-operator import [FILE|-] [--from FORMAT] [--namespace NS] [--name-prefix PREFIX]

Reads a description of an IPVS table from FILE or stdin and prints VirtualService and RealServer
manifests that 'plan' turns back into the same table. Example:
  ipvsadm -Sn | ipvs-operator import --namespace edge > lb.yaml

--from FORMAT (default: detected from the text)
${FORMATS.map((f) => `  ${f.padEnd(14)} ${READERS[f].describe}`).join("\n")}

ldirectord: virtual/virtual6 blocks with real/real6, scheduler, persistent, netmask, protocol, ops,
schedflags; checktype, service, request, receive, virtualhost, checkport, checkinterval, the timeouts,
failurecount and quiescent become healthCheck, fallback/fallback6 the sorryServer. What has no
equivalent (emailalert, logfile, ping, ...) is listed on stderr as 'note: FILE:LINE: ...'; invalid
lines as 'problem: FILE:LINE: ...' (exit 3).

keepalived: virtual_server (address port, fwmark, group with virtual_server_group ranges) with lb_algo,
lb_kind, persistence, protocol, sorry_server and real_server (weight, thresholds, inhibit_on_failure);
TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, DNS_CHECK and MISC_CHECK become healthCheck; include files are
followed. VRRP, quorum, notify scripts and the rest are listed as notes.

Port names (ipvsadm without -n) are looked up in /etc/services; host names are not resolved (a line
with one is a problem). A listing does not show thresholds (add the 'ipvsadm -Ln --thresholds'
listing to the same input) nor the tunnel type (imported as ipip, reported).

Exit status: 0; 3 when some lines or entries could not be imported (each reported on stderr as
'problem: ...', everything else is still written); 2 usage, or a format that cannot be detected;
1 the input cannot be read.
`;

/**
 * The format of a text, by its lines: listing lines ("IP Virtual Server version", "Prot LocalAddress:Port",
 * "TCP  addr:port sched", "  -> ...") or ipvsadm command lines ("-A ...", "ipvsadm -a ..."). A text with
 * neither is read as ipvsadm-save (empty, or every line reported); one with both cannot be told.
 */
export function detectImportFormat(input: string): ImportFormat | { error: string } {
  let listing: number | undefined;
  let save: number | undefined;
  input.split("\n").forEach((raw, index) => {
    if (looksLikeListingLine(raw)) listing ??= index + 1;
    else if (tokenize(raw)[0]?.startsWith("-")) save ??= index + 1;
  });
  if (listing !== undefined && save !== undefined) {
    return {
      error: `the input has both ipvsadm listing lines (line ${listing}) and ipvsadm command lines (line ${save}): give --from ipvsadm-list or --from ipvsadm-save`,
    };
  }
  return listing !== undefined ? "ipvsadm-list" : "ipvsadm-save";
}

async function servicePortLookup(): Promise<ServicePortLookup> {
  try {
    return parseEtcServices(await readFile("/etc/services", "utf8"));
  } catch {
    return parseEtcServices(FALLBACK_SERVICE_NAMES);
  }
}

export async function importCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(
    "import",
    args,
    { namespace: { type: "string" }, "name-prefix": { type: "string" }, from: { type: "string" } },
    true,
  );
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length > 1) throw new CliError("import: give at most one file (or - for stdin)");
  const from = values.from;
  if (from !== undefined && !(FORMATS as string[]).includes(from)) {
    throw new CliError(`import: --from must be one of ${FORMATS.join(", ")}, not ${JSON.stringify(from)}`);
  }
  const source = positionals[0] ?? "-";
  let input: string;
  try {
    input = source === "-" ? await text(process.stdin) : await readFile(source, "utf8");
  } catch (error) {
    throw new CliError(`import: cannot read ${source}: ${(error as NodeJS.ErrnoException).code ?? error}`, 1);
  }
  let format = from as ImportFormat | undefined;
  if (format === undefined) {
    const detected = detectImportFormat(input);
    if (typeof detected !== "string") throw new CliError(`import: ${detected.error}`);
    format = detected;
  }
  const parsed = await READERS[format].read(input, {
    source,
    servicePort: await servicePortLookup(),
    ...(values.namespace ? { namespace: values.namespace } : {}),
    ...(values["name-prefix"] ? { namePrefix: values["name-prefix"] } : {}),
  });
  if ("objects" in parsed) {
    for (const note of parsed.notes) process.stderr.write(`note: ${note}\n`);
    for (const problem of parsed.problems) process.stderr.write(`problem: ${problem}\n`);
    process.stdout.write(renderResourcesYaml(parsed.objects));
    return parsed.problems.length > 0 ? 3 : 0;
  }
  for (const problem of parsed.problems)
    process.stderr.write(`problem: line ${problem.line}: ${problem.message}\n`);
  const imported = importResources(parsed.table, {
    ...(values.namespace ? { namespace: values.namespace } : {}),
    ...(values["name-prefix"] ? { namePrefix: values["name-prefix"] } : {}),
  });
  for (const p of imported.problems) process.stderr.write(`problem: ${p.subject}: ${p.message}\n`);
  process.stdout.write(renderResourcesYaml(imported.objects));
  return parsed.problems.length + imported.problems.length > 0 ? 3 : 0;
}
