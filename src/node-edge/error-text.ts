/** The message of a caught value, for the `errors` lists of the node-edge reports. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
