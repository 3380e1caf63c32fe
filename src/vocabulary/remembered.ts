/**
 * `compute`, remembered per object: the agent reads every object of its caches on every sync, and an
 * informer replaces an object on change rather than editing it. So objects given to the returned
 * function must never be modified afterwards (a modified object would keep its first result), and the
 * results it returns are shared: read them, never modify them. Non-objects are computed every time.
 */
export function rememberedPerObject<R>(compute: (obj: unknown) => R): (obj: unknown) => R {
  const results = new WeakMap<object, R>();
  return (obj) => {
    if (typeof obj !== "object" || obj === null) return compute(obj);
    if (results.has(obj)) return results.get(obj) as R;
    const result = compute(obj);
    results.set(obj, result);
    return result;
  };
}
