/**
 * Standalone source: reads Kubernetes manifests (files or directories of multi-document YAML or JSON)
 * and sorts the objects the engine uses by kind. Unknown kinds are ignored with a note; documents that
 * do not parse or are not Kubernetes objects are reported with the file and document number, and the
 * rest still loads.
 *
 * Two YAML parsers, one meaning. The `yaml` package is the reference: its YAML 1.2 core schema decides
 * what a document means, and its messages are the ones reported. It is also slow (about 2 MB/s: 10 s for
 * 10,000 virtual services x 10 real servers), so a file is first read with js-yaml (about 10x faster),
 * configured to give the same values: the 1.2 core schema without merge keys, and mapping keys turned
 * into strings as `yaml` does (null -> ""). The reference parser reads the file instead when js-yaml
 * fails (every error message comes from `yaml`) and when the text uses a construct on which the two
 * were seen to differ (see REFERENCE_ONLY); test/files/manifest-parsers.test.ts holds both to the same
 * results on generated and fuzzed texts.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { CORE_SCHEMA, defineMappingTag, loadAll } from "js-yaml";
import { parseAllDocuments } from "yaml";

export interface ManifestObjects {
  virtualServices: unknown[];
  realServers: unknown[];
  services: unknown[];
  endpointSlices: unknown[];
  endpoints: unknown[];
  nodes: unknown[];
  addressPolicies: unknown[];
  /** core/v1 Namespaces: their labels, for IPVSAddressPolicy namespaceSelectors (agent --from-dir). */
  namespaces: unknown[];
}

export interface ManifestLoad {
  objects: ManifestObjects;
  /** Informational: objects that were skipped (unknown kinds). */
  notes: string[];
  /** Errors: unreadable files, YAML syntax errors, documents that are not usable objects. */
  errors: string[];
}

/** One object of a manifest and where it was: "dir/a.yaml: document 2" (", item 3" inside a List). */
export interface LocatedObject {
  object: unknown;
  where: string;
}

const IPVS_GROUP = "ipvs.dev";
const KINDS: Record<string, { apiVersions: string[]; bucket: keyof ManifestObjects; namespaced: boolean }> = {
  VirtualService: { apiVersions: [`${IPVS_GROUP}/v1alpha1`], bucket: "virtualServices", namespaced: true },
  RealServer: { apiVersions: [`${IPVS_GROUP}/v1alpha1`], bucket: "realServers", namespaced: true },
  Service: { apiVersions: ["v1"], bucket: "services", namespaced: true },
  EndpointSlice: { apiVersions: ["discovery.k8s.io/v1"], bucket: "endpointSlices", namespaced: true },
  Endpoints: { apiVersions: ["v1"], bucket: "endpoints", namespaced: true },
  Node: { apiVersions: ["v1"], bucket: "nodes", namespaced: false },
  IPVSAddressPolicy: {
    apiVersions: [`${IPVS_GROUP}/v1alpha1`],
    bucket: "addressPolicies",
    namespaced: false,
  },
  Namespace: { apiVersions: ["v1"], bucket: "namespaces", namespaced: false },
};

const MANIFEST_FILE = /\.(ya?ml|json)$/i;

/** Expands files and directories (recursively, sorted by name) into the manifest files they hold. */
export async function expandPaths(paths: readonly string[]): Promise<{ files: string[]; errors: string[] }> {
  const files: string[] = [];
  const errors: string[] = [];
  for (const path of paths) {
    try {
      const info = await stat(path); // follows symbolic links
      if (info.isDirectory()) {
        const names = (await readdir(path)).sort((a, b) => a.localeCompare(b));
        const inner: string[] = [];
        for (const name of names) {
          const full = join(path, name);
          const isDirectory = await stat(full).then(
            (s) => s.isDirectory(),
            () => false, // a broken link: reported below if it looks like a manifest
          );
          if (isDirectory || MANIFEST_FILE.test(name)) inner.push(full);
        }
        const sub = await expandPaths(inner);
        files.push(...sub.files);
        errors.push(...sub.errors);
      } else {
        files.push(path);
      }
    } catch (error) {
      errors.push(`${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  }
  return { files, errors };
}

/** Which parser reads a text: "auto" (js-yaml when it is safe, else `yaml`) or only the reference. */
export type ManifestParser = "auto" | "reference";

/** One document: its value, or the reference parser's first error. */
type ParsedDocument = { value: unknown } | { error: string };

/**
 * Parses manifest text (one file) into plain objects with their location; `List` kinds are flattened.
 * `documentsPerPiece`: how many documents js-yaml reads at a time (see parseFast; tests cut at every one).
 */
export function parseManifestText(
  text: string,
  origin: string,
  parser: ManifestParser = "auto",
  documentsPerPiece = DOCUMENTS_PER_PIECE,
): { documents: LocatedObject[]; errors: string[] } {
  const documents: LocatedObject[] = [];
  const errors: string[] = [];
  const parsed = (parser === "auto" ? parseFast(text, documentsPerPiece) : undefined) ?? parseReference(text);
  parsed.forEach((doc, index) => {
    const where = `${origin}: document ${index + 1}`;
    if ("error" in doc) {
      errors.push(`${where}: ${doc.error}`);
      return;
    }
    const value = doc.value;
    if (value === null || value === undefined) return; // empty document
    if (isObject(value) && value.kind === "List" && Array.isArray(value.items)) {
      documents.push(
        ...value.items.map((item, i) => ({ object: item as unknown, where: `${where}, item ${i + 1}` })),
      );
    } else {
      documents.push({ object: value, where });
    }
  });
  return { documents, errors };
}

function parseReference(text: string): ParsedDocument[] {
  return parseAllDocuments(text).map((doc): ParsedDocument => {
    if (doc.errors.length > 0) return { error: `${doc.errors[0]?.message.split("\n")[0]}` };
    try {
      return { value: doc.toJS() };
    } catch (error) {
      // Reported at conversion, not parse: an alias without its anchor, an alias loop, too many aliases.
      return { error: `${(error as Error).message.split("\n")[0]}` };
    }
  });
}

/**
 * Constructs on which js-yaml 5 and `yaml` 2 were seen to disagree (value, error or document count), so a
 * text using any of them goes to the reference parser: directives and document end markers ("%", "...")
 * at the start of a line, an indented "---" or "...", tags, aliases, anchors, explicit keys and reserved
 * indicators (! * & ? % @ `) at the start of a token, empty mapping keys, block scalar indentation
 * indicators ("|2"), escaped line breaks in double quotes, text after a quoted sequence entry, tabs,
 * carriage returns, and numbers that may overflow to Infinity (long digit runs, three-digit exponents). Usually none of them is in a manifest; a false alarm only costs time.
 * Each pattern comes with a cheaper test that must hold for it to match: one regular expression with all
 * of them took a third of the parse time of 21 MB. The cheap tests avoid searching for what nearly every
 * line has (a space, a line break, a ":" after a word): they look for the rare part and check around it.
 */
const REFERENCE_ONLY: readonly { may: (text: string) => boolean; pattern: RegExp }[] = [
  { may: (t) => t.includes("\t") || t.includes("\r"), pattern: /[\t\r]/ },
  { may: (t) => /[!*&%@`?]/.test(t), pattern: /(?:^|[\s[{,"'])[!*&%@`?]/m },
  { may: (t) => occursAfter(t, "...", (c) => c === NONE || c === NEWLINE), pattern: /^\.\.\./m },
  {
    may: (t) => occursAfter(t, "---", (c) => c === SPACE) || occursAfter(t, "...", (c) => c === SPACE),
    pattern: /^[ ]+(?:---|\.\.\.)(?:\s|$)/m,
  },
  { may: (t) => t.startsWith(":") || /[\s[{,]:/.test(t), pattern: /(?:^|[\s[{,]):(?:\s|$|[,\]}])/m },
  { may: (t) => /[|>][-+]?\d/.test(t), pattern: /(?:^|\s)[|>][-+]?\d/m },
  { may: (t) => t.includes("\\\n") || t.includes("\\\r"), pattern: /\\\r?\n/ },
  { may: (t) => t.includes("0x"), pattern: /0x[0-9a-fA-F]{200}/ },
  // A sequence entry "- 'x' y: b": js-yaml reads "y" as a key of the parent mapping, yaml rejects it.
  {
    may: (t) => /-[ ]+['"]/.test(t),
    pattern: /-[ ]+(?:'[^'\n]*(?:''[^'\n]*)*'|"[^"\\\n]*(?:\\.[^"\\\n]*)*")[ ]*[^\s:,\]}#]/,
  },
  { may: (t) => /[eE][-+]?\d{3}/.test(t) || hasDigitRun(t, 200), pattern: /\d{200}|[eE][-+]?\d{3}/ },
];

const NONE = -1;
const NEWLINE = 10;
const SPACE = 32;

/** Whether `needle` occurs where the character before it (NONE at the start) passes `before`. */
function occursAfter(text: string, needle: string, before: (code: number) => boolean): boolean {
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + 1)) {
    if (before(i === 0 ? NONE : text.charCodeAt(i - 1))) return true;
  }
  return false;
}

/** Whether `text` has `length` ASCII digits in a row: such a run covers one of every length/2 positions. */
function hasDigitRun(text: string, length: number): boolean {
  const isDigit = (i: number) => {
    const c = text.charCodeAt(i);
    return c >= 48 && c <= 57;
  };
  const step = Math.max(1, Math.floor(length / 2));
  for (let p = step - 1; p < text.length; p += step) {
    if (!isDigit(p)) continue;
    let start = p;
    while (start > 0 && isDigit(start - 1)) start--;
    let end = p + 1;
    while (end < text.length && isDigit(end)) end++;
    if (end - start >= length) return true;
  }
  return false;
}

/** Mappings as `yaml` builds them: plain objects, keys as String(key) except null -> "". */
const mapTag = defineMappingTag("tag:yaml.org,2002:map", {
  create: (): Record<string, unknown> => ({}),
  identify: () => false,
  addPair: (map, key, value) => {
    if (key !== null && typeof key === "object") return "a collection as a mapping key";
    const k = stringKey(key);
    // "__proto__" and other inherited names become own properties, as in `yaml`.
    if (k in map)
      Object.defineProperty(map, k, { value, enumerable: true, configurable: true, writable: true });
    else map[k] = value;
    return "";
  },
  // Duplicates by the string key: at least as strict as `yaml` (equal values), so a file js-yaml accepts
  // has no duplicate `yaml` would reject; one `yaml` accepts ("1" and '1') falls back to the reference.
  has: (map, key) => (key !== null && typeof key === "object" ? false : Object.hasOwn(map, stringKey(key))),
  keys: (map) => Object.keys(map),
  get: (map, key) => (Object.hasOwn(map, stringKey(key)) ? map[stringKey(key)] : null),
});
const FAST_SCHEMA = CORE_SCHEMA.withTags(mapTag);

function stringKey(key: unknown): string {
  return key === null ? "" : String(key);
}

/** Whether js-yaml may read the text (it may still fail, and then the reference parser reads it). */
export function fastParserMayRead(text: string): boolean {
  return !REFERENCE_ONLY.some((c) => c.may(text) && c.pattern.test(text)) && !hasLongKeyLine(text);
}

/**
 * How many documents js-yaml reads at a time. It builds the event list of all it reads before it makes
 * the values; for a whole 2 MB file that list outlives many young-generation collections, and reading
 * 100 documents at a time made 21 MB about a third faster.
 */
const DOCUMENTS_PER_PIECE = 100;

/**
 * The documents as js-yaml reads them, or undefined when the reference parser must read the text. The
 * text is read in pieces cut before document start markers, which end a document wherever they are (a
 * scalar or collection left open before one is an error either way, and then the reference reads it).
 */
function parseFast(text: string, documentsPerPiece: number): ParsedDocument[] | undefined {
  if (!fastParserMayRead(text)) return undefined;
  try {
    const documents: ParsedDocument[] = [];
    for (const piece of pieces(text, documentsPerPiece)) {
      for (const value of loadAll(piece, { schema: FAST_SCHEMA, maxAliases: 0 })) documents.push({ value });
    }
    return documents;
  } catch {
    return undefined;
  }
}

/**
 * `text` cut before every `every`-th document start marker: "---" at the start of a line, followed by a
 * space, a line break or the end of the text (tabs and carriage returns never reach js-yaml).
 */
function pieces(text: string, every: number): string[] {
  const out: string[] = [];
  let start = 0;
  let markers = 0;
  for (let i = text.indexOf("\n---"); i >= 0; i = text.indexOf("\n---", i + 4)) {
    const next = i + 4 < text.length ? text.charCodeAt(i + 4) : NONE;
    if (next !== NONE && next !== SPACE && next !== NEWLINE) continue;
    if (++markers % every !== 0) continue;
    out.push(text.slice(start, i + 1));
    start = i + 1;
  }
  out.push(text.slice(start));
  return out;
}

/**
 * A line over 1024 characters that may hold an implicit key that long: its first ":" indicator is far
 * in, or it has more than one. (A long value after a short key, such as a JSON annotation, is fine.)
 */
function hasLongKeyLine(text: string): boolean {
  // `yaml` rejects an implicit key longer than 1024 characters; js-yaml takes it.
  for (let start = 0; start < text.length; ) {
    // The lines from `start` up to the last line break within 1024 characters are short: skip them.
    const last = text.lastIndexOf("\n", start + 1024);
    if (last >= start) {
      start = last + 1;
      continue;
    }
    const newline = text.indexOf("\n", start);
    const end = newline < 0 ? text.length : newline;
    if (end - start > 1024) {
      const indicators = [...text.slice(start, end).matchAll(/:(?=\s|$)/g)].map((m) => m.index);
      if (indicators.length !== 1 || (indicators[0] ?? 0) > 1000) return true;
    }
    start = end + 1;
  }
  return false;
}

export async function loadManifests(paths: readonly string[]): Promise<ManifestLoad> {
  const objects: ManifestObjects = {
    virtualServices: [],
    realServers: [],
    services: [],
    endpointSlices: [],
    endpoints: [],
    nodes: [],
    addressPolicies: [],
    namespaces: [],
  };
  const notes: string[] = [];
  const { files, errors } = await expandPaths(paths);
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      errors.push(`${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
      continue;
    }
    const parsed = parseManifestText(text, file);
    errors.push(...parsed.errors);
    for (const document of parsed.documents) {
      const sorted = classify(document);
      if (sorted.kind === "object") objects[sorted.bucket].push(sorted.object);
      else (sorted.kind === "error" ? errors : notes).push(sorted.message);
    }
  }
  return { objects, notes, errors };
}

type Classified =
  | { kind: "object"; bucket: keyof ManifestObjects; object: unknown }
  | { kind: "note" | "error"; message: string };

function classify({ object, where }: LocatedObject): Classified {
  if (!isObject(object) || typeof object.kind !== "string" || typeof object.apiVersion !== "string") {
    return { kind: "error", message: `${where}: not a Kubernetes object (apiVersion and kind are required)` };
  }
  const metadata = isObject(object.metadata) ? object.metadata : {};
  const name = typeof metadata.name === "string" ? metadata.name : "";
  const entry = KINDS[object.kind];
  if (!entry || !entry.apiVersions.includes(object.apiVersion)) {
    if (object.apiVersion.split("/")[0] === IPVS_GROUP) {
      // Our own group: a wrong version or kind is a mistake, not something to skip quietly.
      const known = Object.entries(KINDS)
        .filter(([, k]) => k.apiVersions[0]?.startsWith(IPVS_GROUP))
        .map(([k, v]) => `${v.apiVersions[0]} ${k}`);
      return {
        kind: "error",
        message: `${where}: ${object.apiVersion} ${object.kind} "${name}" is not served here (known: ${known.join(", ")})`,
      };
    }
    return {
      kind: "note",
      message: `${where}: ignored ${object.apiVersion} ${object.kind} "${name}" (not used here)`,
    };
  }
  if (entry.namespaced) {
    if (metadata.namespace !== undefined && typeof metadata.namespace !== "string") {
      return {
        kind: "error",
        message: `${where}: ${object.kind} "${name}": metadata.namespace must be a string`,
      };
    }
    // Like kubectl apply: an object without a namespace lands in "default".
    if (metadata.namespace === undefined || metadata.namespace === "") {
      return {
        kind: "object",
        bucket: entry.bucket,
        object: { ...object, metadata: { ...metadata, namespace: "default" } },
      };
    }
  }
  return { kind: "object", bucket: entry.bucket, object };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
