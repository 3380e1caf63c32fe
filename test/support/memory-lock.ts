/** A NodeLock inside one process (tests with several Reconcilers sharing one journal). */
import type { NodeLock } from "../../src/reconcile/node-lock.ts";

export class MemoryNodeLock implements NodeLock {
  #tail: Promise<void> = Promise.resolve();
  /** How many writers held it at once, at most (must stay 1). */
  mostHolders = 0;
  #holders = 0;

  async acquire(): Promise<() => Promise<void>> {
    let release!: () => void;
    const previous = this.#tail;
    this.#tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    await previous;
    this.#holders++;
    this.mostHolders = Math.max(this.mostHolders, this.#holders);
    return async () => {
      this.#holders--;
      release();
    };
  }
}
