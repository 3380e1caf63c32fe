import { afterEach, describe, expect, it, vi } from "vitest";
import { collectGarbageAfterLargeSync, LARGE_SYNC_OPERATIONS } from "../../src/observability/gc.ts";

const global = globalThis as { gc?: () => void };
const original = global.gc;
afterEach(() => {
  global.gc = original;
});

describe("collectGarbageAfterLargeSync", () => {
  it("collects after a large sync when Node exposes gc, and only then", () => {
    const gc = vi.fn();
    global.gc = gc;
    expect(collectGarbageAfterLargeSync(LARGE_SYNC_OPERATIONS - 1)).toBe(false);
    expect(gc).not.toHaveBeenCalled();
    expect(collectGarbageAfterLargeSync(LARGE_SYNC_OPERATIONS)).toBe(true);
    expect(gc).toHaveBeenCalledTimes(1);
  });

  it("does nothing without --expose-gc", () => {
    global.gc = undefined;
    expect(collectGarbageAfterLargeSync(10 * LARGE_SYNC_OPERATIONS)).toBe(false);
  });
});
