/** Where the ownership journal lives on a node (a hostPath in the DaemonSet). */
export const DEFAULT_STATE_FILE = "/var/lib/ipvs-operator/journal.json";

/** --state-file, else $IPVS_OPERATOR_STATE_FILE, else DEFAULT_STATE_FILE. */
export function statePath(
  flag: string | undefined,
  env: Record<string, string | undefined> = process.env,
): string {
  return flag ?? env.IPVS_OPERATOR_STATE_FILE ?? DEFAULT_STATE_FILE;
}
