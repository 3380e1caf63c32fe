/**
 * The apiserver's handling of `null` in custom resources, for the runtime validation: a field the schema
 * knows and that is not nullable is removed when its value is null, and then defaulted like an absent
 * field (k8s.io/apiextensions-apiserver, schema/defaulting: PruneNonNullableNullsWithoutDefaults and
 * Default). So `scheduler: null` means the default scheduler and `port: null` means no port. A null in a
 * list stays (and fails validation), and so does a null under a field the schema does not know (it is an
 * unknown field).
 *
 * The walk follows the zod schema, the same one the CRD is generated from. None of the v1alpha1 fields
 * is nullable, so every null under a known field goes.
 */
import type { z } from "zod";

interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  valueType?: z.ZodType;
  element?: z.ZodType;
}

const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** Wrappers that do not change the JSON shape of a value. */
const WRAPPERS = new Set(["optional", "default", "prefault", "nonoptional", "readonly", "catch"]);

/** The schema under optional / default / prefault and the like; undefined when it is nullable. */
function core(schema: z.ZodType): z.ZodType | undefined {
  let s = schema;
  for (;;) {
    const def = defOf(s);
    if (def.type === "nullable") return undefined;
    if (WRAPPERS.has(def.type) && def.innerType) s = def.innerType;
    else if (def.type === "pipe" && def.in) s = def.in;
    else return s;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** The schema of field `key` of an object schema (a property, or the value type of a record). */
function fieldSchema(schema: z.ZodType, key: string): z.ZodType | undefined {
  const def = defOf(schema);
  if (def.type === "object") return def.shape && Object.hasOwn(def.shape, key) ? def.shape[key] : undefined;
  if (def.type === "record") return def.valueType;
  return undefined;
}

/** Whether a null occurs anywhere in a JSON value (most objects have none: they are returned as they are). */
function hasNull(value: unknown): boolean {
  if (value === null) return true;
  if (typeof value !== "object") return false;
  if (Array.isArray(value)) {
    for (const v of value) if (hasNull(v)) return true;
    return false;
  }
  for (const k in value) if (hasNull((value as Record<string, unknown>)[k])) return true;
  return false;
}

/**
 * `value` without the nulls the apiserver would prune under `schema`: a copy when there are any, the
 * value itself when there are none. Never throws.
 */
export function pruneNulls(value: unknown, schema: z.ZodType): unknown {
  return hasNull(value) ? prune(value, schema) : value;
}

function prune(value: unknown, schema: z.ZodType): unknown {
  const s = core(schema);
  if (s === undefined) return value;
  if (Array.isArray(value)) {
    const def = defOf(s);
    return def.type === "array" && def.element ? value.map((v) => prune(v, def.element!)) : value;
  }
  if (!isObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const sub = fieldSchema(s, k);
    if (sub === undefined) {
      out[k] = v; // unknown field: kept for the strict check to report
    } else if (v === null) {
      if (core(sub) === undefined) out[k] = v; // nullable: kept
    } else {
      out[k] = prune(v, sub);
    }
  }
  return out;
}
