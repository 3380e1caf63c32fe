/**
 * A full garbage collection between syncs, when Node was started with `--expose-gc` (bin/ipvs-operator
 * does; decision 0007): a sync that programmed a large table leaves tens of MiB of garbage, which V8
 * would otherwise collect at some later moment, quite possibly in the middle of the next change. A
 * no-op without the flag (tests, a user's own `node` command line).
 */
/** Operations (or kernel entries read) from which a sync counts as large. */
export const LARGE_SYNC_OPERATIONS = 10_000;

/** True when it collected. */
export function collectGarbageAfterLargeSync(operations: number): boolean {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc || operations < LARGE_SYNC_OPERATIONS) return false;
  gc();
  return true;
}
