/** Runs the CLI in-process (no Node start per call) and captures stdout, stderr and the exit status. */
import { vi } from "vitest";
import { main } from "../../src/cli/run.ts";

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `fn` with process.stdout/stderr captured. */
export async function captureOutput(fn: () => Promise<number>): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await fn();
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

export function runCli(args: string[]): Promise<CliRun> {
  return captureOutput(() => main(args));
}
