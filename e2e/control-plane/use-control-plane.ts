/** The control plane that global-setup.ts started for this test run, with kubectl and newNamespace. */
import { inject } from "vitest";
import { type ControlPlaneClient, type ControlPlaneInfo, connectControlPlane } from "./control-plane.ts";

declare module "vitest" {
  export interface ProvidedContext {
    controlPlane: ControlPlaneInfo;
  }
}

export function useControlPlane(): ControlPlaneClient {
  return connectControlPlane(inject("controlPlane"));
}
