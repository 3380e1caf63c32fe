/**
 * vitest globalSetup for the control-plane suite (vitest.cp.config.ts): one control plane serves the
 * whole run. It is started before the first test file and stopped (process groups, SIGTERM then
 * SIGKILL) after the last; test files reach it through `useControlPlane()` (use-control-plane.ts).
 */
import type { TestProject } from "vitest/node";
import { startControlPlane } from "./control-plane.ts";
import "./use-control-plane.ts";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cp = await startControlPlane();
  try {
    const version = JSON.parse(await cp.kubectlOk(["version", "-o", "json"])) as {
      serverVersion: { gitVersion: string };
    };
    console.error(
      `control plane: kube-apiserver ${version.serverVersion.gitVersion}${cp.controllerManager ? " + kube-controller-manager" : ""} at ${cp.server}, ready in ${cp.startupSeconds.toFixed(1)} s`,
    );
    project.provide("controlPlane", cp.info);
  } catch (err) {
    await cp.stop();
    throw err;
  }
  return async () => {
    const t = performance.now();
    await cp.stop();
    console.error(`control plane: stopped in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  };
}
