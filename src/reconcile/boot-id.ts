/**
 * The kernel's boot id (a random UUID the kernel makes at every boot). It is not namespaced, so the
 * agent in a container and the CLI on the host read the same value. The ownership journal records it:
 * entries from another boot own nothing.
 */
import { readFile } from "node:fs/promises";

export const BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id";

export async function readBootId(path = BOOT_ID_PATH): Promise<string> {
  return (await readFile(path, "utf8")).trim();
}
