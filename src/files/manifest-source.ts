/**
 * Standalone source: reads Kubernetes manifests (files or directories of multi-document YAML or JSON)
 * and sorts the objects the engine uses by kind. Unknown kinds are ignored with a note; documents that
 * do not parse or are not Kubernetes objects are reported with the file and document number, and the
 * rest still loads.
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

/** Parses manifest text (one file) into plain objects with their location; `List` kinds are flattened. */
export function parseManifestText(
  text: string,
  origin: string,
): { documents: LocatedObject[]; errors: string[] } {
  const documents: LocatedObject[] = [];
  const errors: string[] = [];
  parseAllDocuments(text).forEach((doc, index) => {
    const where = `${origin}: document ${index + 1}`;
    if (doc.errors.length > 0) {
      errors.push(`${where}: ${doc.errors[0]?.message.split("\n")[0]}`);
      return;
    }
    const value: unknown = doc.toJS();
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
