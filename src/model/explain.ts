/**
 * explain(): why a VIP, a service key or a real server address is in, or not in, one node's desired
 * table, in plain sentences. Pure (value in, sentences out): the CLI (explain-command.ts) reads the
 * manifests and the journal.
 *
 * It never decides anything itself: the table and the problems come from computeDesired (both health
 * assumptions, as plan computes them); matchesLabelSelector, ownershipRule and the API's validation are the same
 * functions the engine uses. What computeDesired does not export (the conflict order, which endpoints it
 * skipped and why) is re-read here from the same objects with the same public readers, only to word the
 * reasons; whether the target is in the table is always read from computeDesired's table.
 */
import {
  type LabelSelector,
  specFamily,
  type VirtualService,
  validateRealServer,
  validateVirtualService,
} from "../api/v1alpha1/index.ts";
import { ipFamily } from "../vocabulary/addresses.ts";
import {
  destinationKeyString,
  type Family,
  hostPort,
  type Protocol,
  type ServiceKey,
  serviceKeyString,
} from "../vocabulary/table.ts";
import { computeDesiredAssumingHealthy, type DesiredResult } from "./desired.ts";
import type { DesiredDestination, DesiredEntry } from "./desired-table.ts";
import type { DrainEntry } from "./drain.ts";
import { canonicalAddress, endpointViews, indexCoreObjects, readEndpointSlice } from "./kube-objects.ts";
import { matchesLabelSelector } from "./label-selector.ts";
import { cidrContains, type FwmarkRange, ownershipRule, parseCidr } from "./ownership.ts";
import type { Problem } from "./problems.ts";
import type { NodeInfo, Snapshot } from "./snapshot.ts";

/** What `explain` is asked about. */
export type ExplainTarget =
  /** A service key: "TCP 192.0.2.10:80" (also "tcp/192.0.2.10:80"). */
  | { kind: "key"; protocol: Protocol; address: string; port: number }
  /** "FWM 7", "FWM 7 IPv6", "fwmark/7"; no family: either. */
  | { kind: "fwmark"; fwmark: number; family?: Family }
  /** A bare address or address:port: a VIP, a real server, or both. */
  | { kind: "address"; address: string; port?: number };

export interface ExplainJournal {
  /** serviceKeyString() of the services the tool programmed. */
  services: readonly string[];
  owners: Readonly<Record<string, string>>;
  drains: readonly DrainEntry[];
  bootId?: string | undefined;
}

export interface ExplainInput {
  snapshot: Snapshot;
  node: NodeInfo;
  /** As plan's --health: backends with a health check taken as healthy, or in their initialState. */
  health: "healthy" | "initial";
  managedCidrs: readonly string[];
  managedFwmarks: readonly FwmarkRange[];
  /** The ownership journal (--state-file); undefined when none was given. */
  journal?: ExplainJournal | undefined;
  /** This machine's boot id; undefined when unknown (the journal is then taken as of this boot). */
  currentBootId?: string | undefined;
  /** Milliseconds, for drain ages. */
  now: number;
}

export interface Explanation {
  /** True when the target is in the desired table (exit 0). */
  inTable: boolean;
  /** The explanation, one sentence or bullet per line; "" separates paragraphs. */
  lines: string[];
}

// ---- target ---------------------------------------------------------------------------------------

/** Parses TARGET; a string is the reason it is not one. */
export function parseTarget(text: string): ExplainTarget | string {
  const t = text.trim();
  const fw = /^(?:fwm|fwmark)[/ ]+(\d+)(?:[/ ]+(ipv4|ipv6))?$/i.exec(t);
  if (fw) {
    const fwmark = Number(fw[1]);
    if (fwmark < 1 || fwmark > 0xffffffff) return `firewall mark ${fw[1]} is not within 1..4294967295`;
    const family = fw[2] ? (fw[2].toLowerCase() === "ipv6" ? "IPv6" : "IPv4") : undefined;
    return family ? { kind: "fwmark", fwmark, family } : { kind: "fwmark", fwmark };
  }
  const keyed = /^(tcp|udp|sctp)[/ ]+(.+)$/i.exec(t);
  if (keyed) {
    const hp = parseHostPort(keyed[2] ?? "");
    if (typeof hp === "string") return hp;
    if (hp.port === undefined) return `a service key needs a port: ${keyed[1]?.toUpperCase()} ADDRESS:PORT`;
    const protocol = (keyed[1] ?? "").toUpperCase() as Protocol;
    return { kind: "key", protocol, address: hp.address, port: hp.port };
  }
  const hp = parseHostPort(t);
  if (typeof hp === "string") return hp;
  return hp.port === undefined
    ? { kind: "address", address: hp.address }
    : { kind: "address", address: hp.address, port: hp.port };
}

function parseHostPort(text: string): { address: string; port?: number } | string {
  let host = text;
  let port: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracket) {
    host = bracket[1] ?? "";
    port = bracket[2];
  } else if (text.split(":").length === 2) {
    [host = "", port] = text.split(":");
  }
  if (!ipFamily(host)) {
    return `"${text}" is not an address, ADDRESS:PORT, a service key (TCP ADDRESS:PORT) or a firewall mark (FWM N)`;
  }
  const address = canonicalAddress(host);
  if (port === undefined) return { address };
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return `port "${port}" is not within 0..65535`;
  return { address, port: Number(port) };
}

export function targetText(target: ExplainTarget): string {
  if (target.kind === "fwmark") return `FWM ${target.fwmark}${target.family ? ` ${target.family}` : ""}`;
  const family = ipFamily(target.address) ?? "IPv4";
  if (target.kind === "key") return `${target.protocol} ${hostPort(target.address, target.port, family)}`;
  return target.port === undefined ? target.address : hostPort(target.address, target.port, family);
}

// ---- the objects, as explain reads them ------------------------------------------------------------

interface Ref {
  namespace: string;
  name: string;
}

interface VsView {
  ref: Ref;
  text: string;
  raw: unknown;
  /** The validated object; undefined when invalid. */
  object: VirtualService | undefined;
  /** The key (from the validated spec, else read loosely from the raw one; undefined if unreadable). */
  key: ServiceKey | undefined;
  created: number;
}

function refOf(raw: unknown): Ref {
  const meta = record(record(raw).metadata);
  const namespace = typeof meta.namespace === "string" && meta.namespace !== "" ? meta.namespace : "default";
  const name = typeof meta.name === "string" && meta.name !== "" ? meta.name : "<unnamed>";
  return { namespace, name };
}

function createdAt(raw: unknown): number {
  const t = record(record(raw).metadata).creationTimestamp;
  const ms = t instanceof Date ? t.getTime() : typeof t === "string" ? Date.parse(t) : Number.NaN;
  return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms;
}

function looseKey(spec: Record<string, unknown>, family: Family | undefined): ServiceKey | undefined {
  const fam: Family =
    family ??
    (spec.family === "IPv6"
      ? "IPv6"
      : typeof spec.address === "string"
        ? (ipFamily(spec.address) ?? "IPv4")
        : "IPv4");
  if (typeof spec.firewallMark === "number")
    return { kind: "fwmark", family: fam, fwmark: spec.firewallMark };
  if (typeof spec.address !== "string" || !ipFamily(spec.address)) return undefined;
  const protocol = (typeof spec.protocol === "string" ? spec.protocol : "TCP") as Protocol;
  const port = typeof spec.port === "number" ? spec.port : 0;
  return { kind: "address", family: fam, protocol, address: canonicalAddress(spec.address), port };
}

function viewVirtualServices(raws: readonly unknown[]): VsView[] {
  return raws.map((raw) => {
    const ref = refOf(raw);
    const result = validateVirtualService(raw);
    const object = result.ok ? result.value : undefined;
    const spec = object ? (object.spec as unknown as Record<string, unknown>) : record(record(raw).spec);
    const family = object ? (specFamily(object.spec) ?? "IPv4") : undefined;
    return {
      ref,
      text: `${ref.namespace}/${ref.name}`,
      raw,
      object,
      key: looseKey(spec, family),
      created: createdAt(raw),
    };
  });
}

// ---- explain ---------------------------------------------------------------------------------------

export function explain(target: ExplainTarget, input: ExplainInput): Explanation {
  const { result, initial } = computeDesiredAssumingHealthy(input.snapshot, input.node);
  const chosen = input.health === "healthy" ? result : initial;
  const other = input.health === "healthy" ? initial : result;
  const ctx: Context = {
    input,
    target,
    chosen,
    other,
    services: viewVirtualServices(input.snapshot.virtualServices),
    problemsOf: problemIndex(chosen.problems),
  };
  const lines: string[] = [];
  const node = input.node.name;
  const what = targetText(target);

  const asService = ctx.services.filter((v) => v.key !== undefined && keyMatches(target, v.key));
  const backendOf = target.kind === "address" ? servicesWithBackend(ctx, target) : [];
  const entries = chosen.table.filter((e) => keyMatches(target, e.service.key));
  const destinations =
    target.kind === "address"
      ? chosen.table.flatMap((e) =>
          e.destinations
            .filter((d) => addressMatches(target, d.key.address, d.key.port))
            .map((d) => ({ e, d })),
        )
      : [];
  const inTable = entries.length > 0 || destinations.length > 0;

  // Summary.
  if (entries.length > 0) {
    for (const e of entries)
      lines.push(
        `${what} is in node ${node}'s table: ${entryText(e)}, from VirtualService ${refText(e.service.source)}.`,
      );
  }
  for (const { e, d } of destinations)
    lines.push(
      `${what} is in node ${node}'s table as real server ${destinationText(d)} of ${serviceKeyString(e.service.key)}.`,
    );
  if (!inTable) lines.push(`${what} is NOT in node ${node}'s table.`);
  if (asService.length === 0 && backendOf.length === 0) {
    lines.push(
      target.kind === "address"
        ? `No VirtualService has the address ${target.address}${target.port === undefined ? "" : ` and port ${target.port}`}, and no RealServer, endpoint or sorry server of one has it.`
        : `No VirtualService has the key ${what}.`,
    );
  }

  for (const vs of asService) {
    lines.push("", ...explainService(ctx, vs, undefined));
  }
  for (const vs of backendOf) {
    if (asService.includes(vs)) continue;
    lines.push("", ...explainService(ctx, vs, target as Extract<ExplainTarget, { kind: "address" }>));
  }

  // Ownership of the key(s) in question.
  const keys = ownershipKeys(ctx, asService);
  if (keys.length > 0) lines.push("", ...keys.flatMap((k) => ownershipLines(ctx, k)));
  const drains = drainLines(ctx, target);
  if (drains.length > 0) lines.push("", ...drains);
  return { inTable, lines };
}

export function formatExplanation(explanation: Explanation): string {
  return `${explanation.lines.join("\n")}\n`;
}

// ---- one VirtualService ------------------------------------------------------------------------------

interface Context {
  input: ExplainInput;
  target: ExplainTarget;
  chosen: DesiredResult;
  other: DesiredResult;
  services: VsView[];
  problemsOf: (kind: string, ref: Ref) => Problem[];
}

/** `focus`: only the backends at that address (the target is a real server), else all of them. */
function explainService(
  ctx: Context,
  vs: VsView,
  focus: Extract<ExplainTarget, { kind: "address" }> | undefined,
): string[] {
  const out: string[] = [];
  const keyText = vs.key ? serviceKeyString(vs.key) : "(no readable key)";
  out.push(`VirtualService ${vs.text} (${keyText}):`);
  const own = ctx.problemsOf("VirtualService", vs.ref);
  if (!vs.object) {
    out.push("- it is invalid, so no node programs it:");
    for (const p of own) out.push(`  - ${p.field ? `${p.field}: ` : ""}${p.message}`);
    return out;
  }
  for (const p of own.filter((x) => x.kind === "Duplicate" && !x.field)) out.push(`- ${p.message}.`);

  // Conflict: the engine decides over all valid VirtualServices, oldest first, then namespace/name.
  const rivals = ctx.services.filter(
    (o) => o !== vs && o.object && o.key && vs.key && serviceKeyString(o.key) === serviceKeyString(vs.key),
  );
  const lost = own.find((p) => p.kind === "Conflict");
  if (lost) {
    out.push(`- it loses the conflict for ${keyText}: ${lost.message} (${ageReason(vs, rivals)}).`);
    out.push("- so no node programs it.");
    return out;
  }
  if (rivals.length > 0) {
    out.push(
      `- it wins the key ${keyText} over ${rivals.map((r) => `VirtualService ${r.text}`).join(", ")} (${ageReason(vs, rivals)}); the others are programmed on no node.`,
    );
  }

  // Node selection.
  const selector = vs.object.spec.nodeSelector;
  const node = ctx.input.node;
  if (!matchesLabelSelector(selector, node.labels)) {
    out.push(
      `- its nodeSelector does not select node ${node.name}: ${unmetRequirements(selector, node.labels).join("; ")} (node labels: ${labelsText(node.labels)}).`,
    );
    out.push("- so this node does not program it (not a problem: other nodes may).");
    return out;
  }
  out.push(
    selector &&
      (Object.keys(selector.matchLabels ?? {}).length > 0 || (selector.matchExpressions ?? []).length > 0)
      ? `- its nodeSelector selects node ${node.name}.`
      : `- it has no nodeSelector, so every node programs it.`,
  );

  const entry = ctx.chosen.table.find((e) => sameRef(e.service.source, vs.ref));
  if (!entry) {
    out.push("- it is not in the table (see the problems below).");
  } else {
    out.push(`- it is in the table as ${entryText(entry)}.`);
  }
  for (const p of own.filter((x) => x.kind !== "Conflict" && !(x.kind === "Duplicate" && !x.field)))
    out.push(`- problem (${p.kind}): ${p.field ? `${p.field}: ` : ""}${p.message}`);

  out.push(...backendLines(ctx, vs, entry, focus));
  return out;
}

function ageReason(vs: VsView, rivals: VsView[]): string {
  const all = [vs, ...rivals].sort((a, b) =>
    a.created !== b.created
      ? a.created < b.created
        ? -1
        : 1
      : a.text < b.text
        ? -1
        : a.text > b.text
          ? 1
          : 0,
  );
  const winner = all[0];
  const runnerUp = all[1];
  if (!winner || !runnerUp) return "no rival";
  if (winner.created !== runnerUp.created) {
    return `the older one wins: ${winner.text} was created ${stamp(winner.created)}, ${runnerUp.text} ${stamp(runnerUp.created)}`;
  }
  return `same creation time (${stamp(winner.created)}), so namespace/name decides: ${winner.text} sorts first`;
}

function stamp(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : "without a creationTimestamp";
}

// ---- backends ----------------------------------------------------------------------------------------

const MAX_LISTED = 20;

function backendLines(
  ctx: Context,
  vs: VsView,
  entry: DesiredEntry | undefined,
  focus: Extract<ExplainTarget, { kind: "address" }> | undefined,
): string[] {
  const out: string[] = [];
  const wanted = (address: string, port?: number) => !focus || addressMatches(focus, address, port);
  const spec = vs.object?.spec;
  if (!spec) return out;
  const otherEntry = ctx.other.table.find((e) => sameRef(e.service.source, vs.ref));
  const listed = new Set<string>();

  // What is in the table.
  const inTable = (entry?.destinations ?? []).filter((d) => wanted(d.key.address, d.key.port));
  for (const d of inTable.slice(0, MAX_LISTED)) {
    listed.add(destinationKeyString(d.key));
    out.push(`- real server ${destinationText(d)}${healthNote(ctx, d, otherEntry)}.`);
  }
  if (inTable.length > MAX_LISTED) out.push(`- ... and ${inTable.length - MAX_LISTED} more real servers.`);
  if (entry && !focus && entry.destinations.length === 0) out.push("- it has no real servers in the table.");
  // Health: destinations present only under the other assumption (plan's --health).
  const explained = new Set<string>();
  for (const d of otherEntry?.destinations ?? []) {
    const dk = destinationKeyString(d.key);
    if (listed.has(dk) || !wanted(d.key.address, d.key.port)) continue;
    listed.add(dk);
    explained.add(`${d.source.kind}|${refText(d.source)}`);
    if (d.source.kind === "SorryServer") {
      out.push(
        ctx.input.health === "healthy"
          ? `- its sorry server ${dk} is not in the table: backends with a health check count as passing here; before their first probes (initialState) none is healthy and the agent programs the sorry server.`
          : `- its sorry server ${dk} is not in the table: some backend is healthy in its initialState.`,
      );
    } else {
      out.push(
        ctx.input.health === "initial"
          ? `- real server ${dk} (${sourceText(d)}) is absent: its health check starts Unhealthy (initialState) with onFailure Remove, and no probe has run (--health healthy counts it as passing).`
          : `- real server ${dk} (${sourceText(d)}) is absent here but present in its initialState.`,
      );
    }
  }

  // RealServers of this VirtualService that are not in the table.
  for (const raw of ctx.input.snapshot.realServers) {
    const ref = refOf(raw);
    const rsSpec = record(record(raw).spec);
    if (ref.namespace !== vs.ref.namespace || record(rsSpec.virtualServiceRef).name !== vs.ref.name) continue;
    const address =
      typeof rsSpec.address === "string" && ipFamily(rsSpec.address)
        ? canonicalAddress(rsSpec.address)
        : undefined;
    const port = typeof rsSpec.port === "number" ? rsSpec.port : undefined;
    if (focus && (address === undefined || !addressMatches(focus, address, port ?? focus.port))) continue;
    const inEntry = entry?.destinations.some((d) => d.source.kind === "RealServer" && sameRef(d.source, ref));
    if (inEntry || explained.has(`RealServer|${refText(ref)}`)) continue;
    const problems = ctx.problemsOf("RealServer", ref);
    if (problems.length > 0) {
      for (const p of problems)
        out.push(
          `- RealServer ${refText(ref)} is not used (${p.kind}): ${p.field ? `${p.field}: ` : ""}${p.message}`,
        );
    } else if (!validateRealServer(raw).ok) {
      out.push(`- RealServer ${refText(ref)} is invalid and not used.`);
    } else if (!entry) {
      out.push(`- RealServer ${refText(ref)} is not used because its VirtualService is not in the table.`);
    } else {
      out.push(
        `- RealServer ${refText(ref)} (${address}) is absent: its health check counts as failing (initialState Unhealthy, onFailure Remove) until a probe passes.`,
      );
    }
  }

  // Endpoints behind spec.backends.
  const backends = spec.backends;
  if (backends)
    out.push(...endpointLines(ctx, vs, entry, backends.serviceRef.name, backends.source, wanted, !!focus));
  if (spec.sorryServer && wanted(canonicalAddress(spec.sorryServer.address), spec.sorryServer.port)) {
    const active = entry?.destinations.some((d) => d.source.kind === "SorryServer");
    out.push(
      active
        ? "- its sorry server is in the table because no backend is healthy."
        : `- its sorry server ${spec.sorryServer.address} is not in the table: it is used only while no backend is healthy.`,
    );
  }
  return out;
}

function endpointLines(
  ctx: Context,
  vs: VsView,
  entry: DesiredEntry | undefined,
  serviceName: string,
  source: "EndpointSlice" | "Endpoints",
  wanted: (address: string, port?: number) => boolean,
  focused: boolean,
): string[] {
  const out: string[] = [];
  const family = vs.key?.family ?? "IPv4";
  const ns = vs.ref.namespace;
  if (source === "Endpoints") {
    out.push(
      `- backends come from the Endpoints ${ns}/${serviceName} (ready addresses only; notReadyAddresses are absent).`,
    );
    return out;
  }
  const core = indexCoreObjects(ctx.input.snapshot);
  const slices = core.endpointSlices(ns, serviceName);
  if (slices.length === 0) out.push(`- there are no EndpointSlices of Service ${ns}/${serviceName}.`);
  let absent = 0;
  for (const { slice, meta } of slices) {
    const addressType = record(slice).addressType;
    if (addressType !== family) {
      const theirs = addressType === "IPv6" || addressType === "IPv4" ? addressType : undefined;
      const listing = theirs ? (readEndpointSlice(slice, theirs).value?.addresses ?? []) : [];
      if (!focused || listing.some((address) => wanted(address)))
        out.push(
          `- EndpointSlice ${ns}/${meta.name} has addressType ${String(addressType)}, the service is ${family}: it is not used.`,
        );
      continue;
    }
    const read = readEndpointSlice(slice, family);
    const mine = (read.value ? endpointViews(read.value) : []).filter((e) => wanted(e.address));
    for (const issue of read.issues)
      out.push(`- EndpointSlice ${ns}/${meta.name} ${issue.field}: ${issue.message} (skipped).`);
    for (const e of mine) {
      const inEntry = entry?.destinations.find(
        (d) => d.source.kind === "Endpoint" && d.key.address === e.address && d.source.name === meta.name,
      );
      const conditions = `ready ${e.ready ?? "unset"}, serving ${e.serving ?? "unset"}, terminating ${e.terminating ?? "unset"}`;
      if (inEntry) {
        // Listed with the table; for a real server target, say which conditions made it so.
        if (focused)
          out.push(
            `- endpoint ${e.address} of EndpointSlice ${ns}/${meta.name}: ${conditions} -> weight ${inEntry.config.weight}${inEntry.draining ? " (draining)" : ""}.`,
          );
        continue;
      }
      const why =
        e.ready === false && !(e.serving === true && e.terminating === true)
          ? "not ready and not a serving terminating endpoint, so it is absent"
          : entry
            ? "it is absent (see the problems above: port, duplicate or health)"
            : "its VirtualService is not in the table";
      if (absent++ < MAX_LISTED)
        out.push(`- endpoint ${e.address} of EndpointSlice ${ns}/${meta.name} (${conditions}): ${why}.`);
    }
  }
  if (absent > MAX_LISTED) out.push(`- ... and ${absent - MAX_LISTED} more endpoints not in the table.`);
  return out;
}

function healthNote(ctx: Context, d: DesiredDestination, otherEntry: DesiredEntry | undefined): string {
  const other = otherEntry?.destinations.find(
    (x) => destinationKeyString(x.key) === destinationKeyString(d.key),
  );
  if (other && other.config.weight === d.config.weight) return "";
  const then = other ? `weight ${other.config.weight}` : "absent";
  return ctx.input.health === "healthy"
    ? `; it has a health check, taken as passing (no probes run here): before its first probe the agent programs it ${then} (its initialState)`
    : `; it has a health check and is in its initialState (no probe yet); once the check passes it is ${then}`;
}

// ---- which VirtualServices have the target as a backend ----------------------------------------------

function servicesWithBackend(ctx: Context, target: Extract<ExplainTarget, { kind: "address" }>): VsView[] {
  const found = new Set<string>();
  for (const e of ctx.chosen.table)
    for (const d of e.destinations)
      if (addressMatches(target, d.key.address, d.key.port)) found.add(refText(e.service.source));
  for (const raw of ctx.input.snapshot.realServers) {
    const spec = record(record(raw).spec);
    if (typeof spec.address !== "string" || !ipFamily(spec.address)) continue;
    const port = typeof spec.port === "number" ? spec.port : target.port;
    if (!addressMatches(target, canonicalAddress(spec.address), port)) continue;
    const name = record(spec.virtualServiceRef).name;
    if (typeof name === "string") found.add(`${refOf(raw).namespace}/${name}`);
  }
  const core = indexCoreObjects(ctx.input.snapshot);
  for (const vs of ctx.services) {
    const spec = vs.object?.spec;
    if (!spec) continue;
    if (
      spec.sorryServer &&
      addressMatches(target, canonicalAddress(spec.sorryServer.address), spec.sorryServer.port ?? target.port)
    )
      found.add(vs.text);
    if (!spec.backends || spec.backends.source !== "EndpointSlice") continue;
    for (const { slice } of core.endpointSlices(vs.ref.namespace, spec.backends.serviceRef.name)) {
      const fam = record(slice).addressType === "IPv6" ? "IPv6" : "IPv4";
      const read = readEndpointSlice(slice, fam);
      if (read.value?.addresses.some((address) => addressMatches({ ...target, port: undefined }, address)))
        found.add(vs.text);
    }
  }
  return ctx.services.filter((v) => found.has(v.text));
}

// ---- ownership and drains ------------------------------------------------------------------------------

function ownershipKeys(ctx: Context, asService: VsView[]): ServiceKey[] {
  const t = ctx.target;
  if (t.kind === "key") {
    const { protocol, address, port } = t;
    return [{ kind: "address", family: ipFamily(address) ?? "IPv4", protocol, address, port }];
  }
  if (t.kind === "fwmark") return [{ kind: "fwmark", family: t.family ?? "IPv4", fwmark: t.fwmark }];
  const seen = new Map<string, ServiceKey>();
  for (const v of asService) if (v.key) seen.set(serviceKeyString(v.key), v.key);
  return [...seen.values()];
}

function journalOwns(ctx: Context): { services: Set<string>; note?: string } {
  const j = ctx.input.journal;
  if (!j) return { services: new Set() };
  const current = ctx.input.currentBootId;
  if (current !== undefined && j.bootId !== current) {
    return {
      services: new Set(),
      note:
        j.bootId === undefined
          ? "the journal has no boot id (an older version wrote it), so its entries own nothing"
          : `the journal was written in another boot (${j.bootId}), so its entries own nothing now`,
    };
  }
  return { services: new Set(j.services) };
}

function ownershipLines(ctx: Context, key: ServiceKey): string[] {
  const keyText = serviceKeyString(key);
  const journal = journalOwns(ctx);
  const out: string[] = [`Ownership of ${keyText}:`];
  if (journal.note) out.push(`- ${journal.note}.`);
  if (!ctx.input.journal) out.push("- no --state-file given: the ownership journal was not consulted.");
  const rule = ownershipRule({
    managedCidrs: ctx.input.managedCidrs,
    managedFwmarks: ctx.input.managedFwmarks,
    journal: [...journal.services],
  });
  if (journal.services.has(keyText)) {
    const owner = ctx.input.journal?.owners[keyText];
    out.push(
      `- the journal records it: this tool programmed it${owner ? ` (for VirtualService ${owner})` : ""}, so apply manages the kernel entry.`,
    );
  } else if (key.kind === "address") {
    const cidr = ctx.input.managedCidrs.find((c) => {
      const parsed = parseCidr(c);
      return parsed !== undefined && cidrContains(parsed, key.address);
    });
    if (cidr)
      out.push(
        `- ${key.address} is inside --managed-cidr ${cidr}, so apply manages an existing kernel entry at this key.`,
      );
  } else {
    const range = ctx.input.managedFwmarks.find((r) => key.fwmark >= r.from && key.fwmark <= r.to);
    if (range)
      out.push(
        `- mark ${key.fwmark} is inside --managed-fwmarks ${range.from}-${range.to}, so apply manages an existing kernel entry at this key.`,
      );
  }
  if (!rule(key)) {
    out.push(
      "- it is not owned: if the kernel already holds a service at this key that this tool did not create (keepalived, kube-proxy), apply reports it as Foreign and never changes or deletes it; if the key is free, apply creates it and records it in the journal.",
    );
  }
  const desired = ctx.chosen.table.some((e) => serviceKeyString(e.service.key) === keyText);
  if (!desired && rule(key))
    out.push("- it is owned but not desired: apply drains and deletes a kernel entry at this key.");
  return out;
}

function drainLines(ctx: Context, target: ExplainTarget): string[] {
  const drains = ctx.input.journal && journalOwns(ctx).note === undefined ? ctx.input.journal.drains : [];
  const out: string[] = [];
  for (const d of drains) {
    const [service = "", destination = ""] = [d.service, d.destination];
    const hit =
      target.kind === "address"
        ? service.includes(` ${hostPortPrefix(target.address)}`) ||
          destination.startsWith(hostPortPrefix(target.address))
        : service === targetText(target) ||
          (target.kind === "fwmark" &&
            target.family === undefined &&
            service === `FWM ${target.fwmark} IPv4`);
    if (!hit) continue;
    if (target.kind === "address" && target.port !== undefined) {
      const fam = ipFamily(target.address) ?? "IPv4";
      const hp = hostPort(target.address, target.port, fam);
      if (!service.endsWith(` ${hp}`) && destination !== hp) continue;
    }
    const age = Math.max(0, Math.round((ctx.input.now - d.startedAt) / 1000));
    const left = Math.max(0, d.timeoutSeconds - age);
    out.push(
      `Drain: ${destination} of ${service} is draining (weight 0) for ${age} s; apply deletes it when its connections reach 0, at the latest in ${left} s (timeout ${d.timeoutSeconds} s).`,
    );
  }
  return out;
}

function hostPortPrefix(address: string): string {
  return ipFamily(address) === "IPv6" ? `[${address}]:` : `${address}:`;
}

// ---- helpers ---------------------------------------------------------------------------------------

function keyMatches(target: ExplainTarget, key: ServiceKey): boolean {
  if (target.kind === "fwmark")
    return (
      key.kind === "fwmark" &&
      key.fwmark === target.fwmark &&
      (!target.family || key.family === target.family)
    );
  if (key.kind !== "address") return false;
  if (target.kind === "key")
    return key.protocol === target.protocol && key.address === target.address && key.port === target.port;
  return key.address === target.address && (target.port === undefined || key.port === target.port);
}

function addressMatches(
  target: Extract<ExplainTarget, { kind: "address" }>,
  address: string,
  port?: number,
): boolean {
  return (
    address === target.address && (target.port === undefined || port === undefined || port === target.port)
  );
}

function unmetRequirements(
  selector: LabelSelector | undefined,
  labels: Readonly<Record<string, string>>,
): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(selector?.matchLabels ?? {})) {
    if (!Object.hasOwn(labels, k)) out.push(`matchLabels wants ${k}=${v}, the node has no label ${k}`);
    else if (labels[k] !== v) out.push(`matchLabels wants ${k}=${v}, the node has ${k}=${labels[k]}`);
  }
  for (const e of selector?.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = has ? labels[e.key] : undefined;
    const values = (e.values ?? []).join(",");
    const now = has ? `the node has ${e.key}=${value}` : `the node has no label ${e.key}`;
    if (e.operator === "In" && (!has || !(e.values ?? []).includes(value ?? "")))
      out.push(`${e.key} In (${values}) is not met: ${now}`);
    if (e.operator === "NotIn" && has && (e.values ?? []).includes(value ?? ""))
      out.push(`${e.key} NotIn (${values}) is not met: ${now}`);
    if (e.operator === "Exists" && !has) out.push(`${e.key} Exists is not met: ${now}`);
    if (e.operator === "DoesNotExist" && has) out.push(`${e.key} DoesNotExist is not met: ${now}`);
  }
  return out;
}

function labelsText(labels: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
  return pairs.length > 0 ? pairs.join(",") : "none";
}

function entryText(e: DesiredEntry): string {
  const n = e.destinations.length;
  return `${serviceKeyString(e.service.key)} (scheduler ${e.service.config.scheduler}, ${n} real server${n === 1 ? "" : "s"})`;
}

function destinationText(d: DesiredDestination): string {
  const drained = d.draining ? ", draining: its endpoint is terminating but still serving" : "";
  return `${destinationKeyString(d.key)} weight ${d.config.weight} ${d.config.forwarding} (${sourceText(d)}${drained})`;
}

function sourceText(d: DesiredDestination): string {
  const kind =
    d.source.kind === "Endpoint"
      ? "endpoint of EndpointSlice"
      : d.source.kind === "SorryServer"
        ? "sorry server of VirtualService"
        : "RealServer";
  return `${kind} ${d.source.namespace}/${d.source.name}`;
}

function problemIndex(problems: readonly Problem[]): (kind: string, ref: Ref) => Problem[] {
  const map = new Map<string, Problem[]>();
  for (const p of problems) {
    const k = `${p.object.kind}|${p.object.namespace}/${p.object.name}`;
    const list = map.get(k);
    if (list) list.push(p);
    else map.set(k, [p]);
  }
  return (kind, ref) => map.get(`${kind}|${ref.namespace}/${ref.name}`) ?? [];
}

function refText(ref: Ref): string {
  return `${ref.namespace}/${ref.name}`;
}

function sameRef(a: Ref, b: Ref): boolean {
  return a.namespace === b.namespace && a.name === b.name;
}

function record(x: unknown): Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x) ? (x as Record<string, unknown>) : {};
}
