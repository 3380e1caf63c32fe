/**
 * Standalone source: reads Kubernetes manifests (files or directories of multi-document YAML or JSON)
 * and sorts the objects the engine uses by kind. Unknown kinds are ignored with a note; documents that
 * do not parse are reported with the file and document number, and the rest still loads.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";

export interface ManifestObjects {
  virtualServices: unknown[];
  realServers: unknown[];
  services: unknown[];
  endpointSlices: unknown[];
  endpoints: unknown[];
  nodes: unknown[];
}

export interface ManifestLoad {
  objects: ManifestObjects;
  /** Informational: objects that were skipped (unknown kinds). */
  notes: string[];
  /** Errors: unreadable files, YAML syntax errors, documents without kind. */
  errors: string[];
}

const KINDS: Record<string, { apiVersions: string[]; bucket: keyof ManifestObjects; namespaced: boolean }> = {
  VirtualService: { apiVersions: ["ipvs.dev/v1alpha1"], bucket: "virtualServices", namespaced: true },
  RealServer: { apiVersions: ["ipvs.dev/v1alpha1"], bucket: "realServers", namespaced: true },
  Service: { apiVersions: ["v1"], bucket: "services", namespaced: true },
  EndpointSlice: { apiVersions: ["discovery.k8s.io/v1"], bucket: "endpointSlices", namespaced: true },
  Endpoints: { apiVersions: ["v1"], bucket: "endpoints", namespaced: true },
  Node: { apiVersions: ["v1"], bucket: "nodes", namespaced: false },
};

const MANIFEST_FILE = /\.(ya?ml|json)$/i;

/** Expands files and directories (recursively, sorted by name) into the manifest files they hold. */
export async function expandPaths(paths: readonly string[]): Promise<{ files: string[]; errors: string[] }> {
  const files: string[] = [];
  const errors: string[] = [];
  for (const path of paths) {
    try {
      const info = await stat(path);
      if (info.isDirectory()) {
        const entries = (await readdir(path, { withFileTypes: true })).sort((a, b) =>
          a.name.localeCompare(b.name),
        );
        const inner = entries
          .filter((e) => e.isDirectory() || (e.isFile() && MANIFEST_FILE.test(e.name)))
          .map((e) => join(path, e.name));
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

/** Parses manifest text (one file) into plain objects; `List` kinds are flattened. */
export function parseManifestText(text: string, origin: string): { objects: unknown[]; errors: string[] } {
  const objects: unknown[] = [];
  const errors: string[] = [];
  parseAllDocuments(text).forEach((doc, index) => {
    if (doc.errors.length > 0) {
      errors.push(`${origin}: document ${index + 1}: ${doc.errors[0]?.message.split("\n")[0]}`);
      return;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return; // empty document
    const flat =
      isObject(value) && value.kind === "List" && Array.isArray(value.items)
        ? (value.items as unknown[])
        : [value];
    objects.push(...flat);
  });
  return { objects, errors };
}

export async function loadManifests(paths: readonly string[]): Promise<ManifestLoad> {
  const objects: ManifestObjects = {
    virtualServices: [],
    realServers: [],
    services: [],
    endpointSlices: [],
    endpoints: [],
    nodes: [],
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
    for (const object of parsed.objects) {
      const sorted = classify(object, file);
      if (sorted.kind === "object") objects[sorted.bucket].push(sorted.object);
      else (sorted.kind === "error" ? errors : notes).push(sorted.message);
    }
  }
  return { objects, notes, errors };
}

type Classified =
  | { kind: "object"; bucket: keyof ManifestObjects; object: unknown }
  | { kind: "note" | "error"; message: string };

function classify(object: unknown, file: string): Classified {
  if (!isObject(object) || typeof object.kind !== "string" || typeof object.apiVersion !== "string") {
    return { kind: "error", message: `${file}: a document without apiVersion and kind` };
  }
  const name = isObject(object.metadata) ? String(object.metadata.name ?? "") : "";
  const entry = KINDS[object.kind];
  if (!entry || !entry.apiVersions.includes(object.apiVersion)) {
    return {
      kind: "note",
      message: `${file}: ignored ${object.apiVersion} ${object.kind} "${name}" (not used here)`,
    };
  }
  if (entry.namespaced) {
    // Like kubectl apply: an object without a namespace lands in "default".
    const metadata = isObject(object.metadata) ? object.metadata : {};
    if (typeof metadata.namespace !== "string" || metadata.namespace === "") {
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
