/**
 * A small stand-in for the apiserver's handling of a CRD schema, for tests: pruning of unknown fields
 * (reported as errors under kubectl's default strict field validation), pruning of nulls, defaulting,
 * the OpenAPI value checks (type, enum, bounds, pattern, required, list types) and the CEL
 * x-kubernetes-validations evaluated with @bufbuild/cel. It works on the generated CRD schema only,
 * independently of the zod schemas, so comparing the two finds drift.
 */

import { isIP } from "node:net";
import { CelScalar, celFunc, isCelError, run } from "@bufbuild/cel";

export type Schema = { [key: string]: unknown };

/**
 * Kubernetes CEL `isIP(string)` (k8s.io/apiserver/pkg/cel/library/ip.go): IPv4 or IPv6, no zone,
 * IPv4-mapped IPv6 rejected. Implemented here independently of the production helper, via WHATWG URL
 * normalization (which prints a mapped address as ::ffff:hhhh:hhhh).
 */
export function k8sIsIP(text: string): boolean {
  if (text.includes("%")) return false;
  const kind = isIP(text);
  if (kind === 4) return true;
  if (kind !== 6) return false;
  const host = new URL(`http://[${text}]/`).hostname;
  return !/^\[::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}\]$/.test(host);
}

const FUNCS = [celFunc("isIP", [CelScalar.STRING], CelScalar.BOOL, (s: string) => k8sIsIP(s))];

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Structural pruning (apiextensions-apiserver schema/pruning): fields an object schema does not list
 * (and that no additionalProperties schema or x-kubernetes-preserve-unknown-fields covers) are removed.
 * Their paths go to `pruned`: under fieldValidation=Strict, kubectl apply's default since Kubernetes 1.27,
 * the apiserver rejects the request with "unknown field" for each of them instead of dropping them.
 */
export function pruneUnknown(schema: Schema, value: unknown, pruned: string[] = [], path = ""): unknown {
  if (Array.isArray(value)) {
    return isObj(schema.items)
      ? value.map((v, i) => pruneUnknown(schema.items as Schema, v, pruned, `${path}[${i}]`))
      : value;
  }
  if (!isObj(value) || schema["x-kubernetes-preserve-unknown-fields"] === true) return value;
  const props = schema.properties as Record<string, Schema> | undefined;
  const additional = isObj(schema.additionalProperties) ? (schema.additionalProperties as Schema) : undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const sub = props?.[k] ?? additional;
    if (sub === undefined) pruned.push(`${path}.${k}`);
    else out[k] = pruneUnknown(sub, v, pruned, `${path}.${k}`);
  }
  return out;
}

/** A field's schema: its property, else the additionalProperties schema (getSchemaForField). */
function fieldSchema(schema: Schema | undefined, k: string): Schema | undefined {
  const props = schema?.properties as Record<string, Schema> | undefined;
  if (props && Object.hasOwn(props, k)) return props[k];
  return isObj(schema?.additionalProperties) ? (schema.additionalProperties as Schema) : undefined;
}

const isNonNullableNull = (v: unknown, s: Schema | undefined) =>
  v === null && s !== undefined && s.nullable !== true;

/**
 * PruneNonNullableNullsWithoutDefaults (schema/defaulting/prunenulls.go): a null under a known,
 * non-nullable field without a default is removed; one with a default is left for applyDefaults. Nulls
 * in lists and under unknown fields stay.
 */
export function pruneNulls(schema: Schema | undefined, value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = isObj(schema?.items) ? (schema.items as Schema) : undefined;
    return value.map((v) => pruneNulls(items, v));
  }
  if (!isObj(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const sub = fieldSchema(schema, k);
    if (isNonNullableNull(v, sub) && sub?.default === undefined) continue;
    out[k] = pruneNulls(sub, v);
  }
  return out;
}

/**
 * Structural defaulting as the apiserver does it (schema/defaulting/algorithm.go): defaults of absent
 * fields and of non-nullable nulls, recursively.
 */
export function applyDefaults(schema: Schema, value: unknown): unknown {
  if (isObj(value)) {
    const out: Record<string, unknown> = { ...value };
    const props = (schema.properties as Record<string, Schema> | undefined) ?? {};
    for (const [k, sub] of Object.entries(props)) {
      if ((out[k] === undefined || isNonNullableNull(out[k], sub)) && sub.default !== undefined)
        out[k] = structuredClone(sub.default);
      if (out[k] !== undefined) out[k] = applyDefaults(sub, out[k]);
    }
    if (isObj(schema.additionalProperties)) {
      for (const k of Object.keys(out)) out[k] = applyDefaults(schema.additionalProperties as Schema, out[k]);
    }
    return out;
  }
  if (Array.isArray(value) && isObj(schema.items))
    return value.map((v) => applyDefaults(schema.items as Schema, v));
  return value;
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** The OpenAPI checks the apiserver applies to a value; returns error strings ("path: message"). */
export function openApiErrors(schema: Schema, value: unknown, path = "", out: string[] = []): string[] {
  const err = (m: string) => out.push(`${path || "<root>"}: ${m}`);
  if (schema["x-kubernetes-int-or-string"] === true) {
    if (!(typeof value === "string" || Number.isInteger(value))) err("must be an integer or a string");
  } else {
    switch (schema.type) {
      case "object":
        if (!isObj(value)) {
          err("must be an object");
          return out;
        }
        break;
      case "array":
        if (!Array.isArray(value)) {
          err("must be an array");
          return out;
        }
        break;
      case "string":
        if (typeof value !== "string") {
          err("must be a string");
          return out;
        }
        break;
      case "integer":
        if (!Number.isInteger(value)) {
          err("must be an integer");
          return out;
        }
        break;
      case "boolean":
        if (typeof value !== "boolean") {
          err("must be a boolean");
          return out;
        }
        break;
      default:
        err(`unknown type ${String(schema.type)}`);
    }
  }
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) err("not in enum");
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) err("below minimum");
    if (typeof schema.maximum === "number" && value > schema.maximum) err("above maximum");
  }
  if (typeof value === "string") {
    const len = [...value].length;
    if (typeof schema.minLength === "number" && len < schema.minLength) err("too short");
    if (typeof schema.maxLength === "number" && len > schema.maxLength) err("too long");
    if (typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(value)) err("pattern");
    if (schema.format === "date-time" && !DATE_TIME.test(value)) err("not a date-time");
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === "number" && value.length < schema.minItems) err("too few items");
    if (typeof schema.maxItems === "number" && value.length > schema.maxItems) err("too many items");
    const listType = schema["x-kubernetes-list-type"];
    if (listType === "set" && new Set(value.map((v) => JSON.stringify(v))).size !== value.length)
      err("duplicate");
    if (listType === "map") {
      const keys = schema["x-kubernetes-list-map-keys"] as string[];
      const seen = value.map((v) => JSON.stringify(keys.map((k) => (isObj(v) ? v[k] : undefined))));
      if (new Set(seen).size !== seen.length) err("duplicate map key");
    }
    value.forEach((v, i) => {
      openApiErrors(schema.items as Schema, v, `${path}[${i}]`, out);
    });
  }
  if (isObj(value)) {
    for (const r of (schema.required as string[] | undefined) ?? [])
      if (value[r] === undefined) err(`${r} required`);
    const props = schema.properties as Record<string, Schema> | undefined;
    for (const [k, v] of Object.entries(value)) {
      const sub =
        props?.[k] ??
        (isObj(schema.additionalProperties) ? (schema.additionalProperties as Schema) : undefined);
      if (sub) openApiErrors(sub, v, `${path}.${k}`, out); // unknown fields are pruned, not errors
    }
  }
  return out;
}

/** JSON value -> CEL input: objects become Maps, integers bigints (all numbers in these CRDs are integers). */
export function toCel(value: unknown): unknown {
  if (typeof value === "number") return BigInt(value);
  if (Array.isArray(value)) return value.map(toCel);
  if (isObj(value)) return new Map(Object.entries(value).map(([k, v]) => [k, toCel(v)]));
  return value;
}

/** Evaluates every x-kubernetes-validations rule on the present nodes; returns the failed messages. */
export function celErrors(
  schema: Schema,
  value: unknown,
  oldValue?: unknown,
  path = "",
  out: string[] = [],
): string[] {
  if (value === undefined) return out;
  for (const v of (schema["x-kubernetes-validations"] as { rule: string; message: string }[] | undefined) ??
    []) {
    const transition = /\boldSelf\b/.test(v.rule);
    if (transition && oldValue === undefined) continue; // transition rules run on updates only
    const bindings: Record<string, unknown> = { self: toCel(value) };
    if (transition) bindings.oldSelf = toCel(oldValue);
    // biome-ignore lint/suspicious/noExplicitAny: CEL bindings are dynamic
    const r = run(v.rule, bindings as any, { funcs: FUNCS });
    if (isCelError(r)) out.push(`${path || "<root>"}: CEL error in ${v.rule}: ${r.message}`);
    else if (r !== true) out.push(`${path || "<root>"}: ${v.message}`);
  }
  if (isObj(value)) {
    const props = (schema.properties as Record<string, Schema> | undefined) ?? {};
    for (const [k, sub] of Object.entries(props)) {
      celErrors(sub, value[k], isObj(oldValue) ? oldValue[k] : undefined, `${path}.${k}`, out);
    }
  }
  if (Array.isArray(value) && isObj(schema.items)) {
    // Old values of list items are correlated only for map lists in Kubernetes; no transition rules there.
    value.forEach((v, i) => {
      celErrors(schema.items as Schema, v, undefined, `${path}[${i}]`, out);
    });
  }
  return out;
}

/**
 * The request's field validation: Strict (kubectl apply's default) rejects unknown fields, Ignore
 * (`kubectl apply --validate=false`, and every client that does not ask) silently prunes them.
 */
export type FieldValidation = "Strict" | "Ignore";

/** The object as the apiserver stores it: unknown fields and nulls pruned, defaults applied. */
export function admitted(schema: Schema, value: unknown, pruned: string[] = []): unknown {
  return applyDefaults(schema, pruneNulls(schema, pruneUnknown(schema, value, pruned)));
}

/** What the apiserver would say about `value` (pruned and defaulted first), as a list of errors. */
export function apiserverErrors(
  schema: Schema,
  value: unknown,
  oldValue?: unknown,
  fieldValidation: FieldValidation = "Strict",
): string[] {
  const pruned: string[] = [];
  const defaulted = admitted(schema, value, pruned);
  const oldDefaulted = oldValue === undefined ? undefined : admitted(schema, oldValue);
  const errors = fieldValidation === "Strict" ? pruned.map((p) => `${p}: unknown field`) : [];
  const typeErrors = openApiErrors(schema, defaulted);
  if (typeErrors.length > 0) return [...errors, ...typeErrors]; // CEL is not reached with invalid types
  return [...errors, ...celErrors(schema, defaulted, oldDefaulted)];
}
