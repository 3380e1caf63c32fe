import { defineConfig } from "vitest/config";

// The component suite against a real control plane (e2e/control-plane/): one etcd + kube-apiserver
// + kube-controller-manager for the whole run, started by the globalSetup from the binaries that
// e2e/control-plane/build.sh builds (npm run test:cp runs it first; cached, it is a no-op).
export default defineConfig({
  test: {
    include: ["e2e/control-plane/**/*.cp.test.ts"],
    exclude: ["node_modules/**"],
    globalSetup: ["e2e/control-plane/global-setup.ts"],
    // One cluster for the run and agents that watch every namespace: files run one after another, so
    // one file's objects never change what another file's agent sees mid-test.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
  },
});
