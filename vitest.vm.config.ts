import { defineConfig } from "vitest/config";

// The real-kernel suite: runs inside the test-bed VM (e2e/vm/run-suite.sh), one file at a
// time, because every file shares the one kernel IPVS table. The project is read-only in
// the VM, so vitest's cache goes to /tmp (a tmpfs there).
export default defineConfig({
  cacheDir: "/tmp/vitest-vm-cache",
  test: {
    include: ["e2e/**/*.vm.test.ts"],
    exclude: ["node_modules/**"],
    pool: "forks",
    // One process for every file: the modules (the project's sources, vitest's own) are loaded and
    // transformed once, not once per file, which under software emulation took minutes per run.
    isolate: false,
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
  },
});
