/**
 * `compute`, remembered per object: the agent reads every object of its caches on every sync, and an
 * informer replaces an object on change rather than editing it. So objects given to the returned
 * function must never be modified afterwards (a modified object would keep its first result), and the
 * results it returns are shared: read them, never modify them. Non-objects are computed every time.
 * Results are objects, so one look-up tells a remembered result from none.
 */
export function rememberedPerObject<R extends object>(compute: (obj: unknown) => R): (obj: unknown) => R {
  const results = new WeakMap<object, R>();
  return (obj) => {
    if (typeof obj !== "object" || obj === null) return compute(obj);
    const known = results.get(obj);
    if (known !== undefined) return known;
    const result = compute(obj);
    results.set(obj, result);
    return result;
  };
}
