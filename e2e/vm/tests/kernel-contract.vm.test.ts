/**
 * The IpvsKernel contract against the real kernel: NetlinkIpvsKernel inside the throwaway VM
 * (e2e/vm/run-in-vm.sh). The VM's IPVS table is empty and nobody else uses it, so flushing
 * before the suite is safe here (never on a real host).
 */
import { beforeAll } from "vitest";
import { NetlinkIpvsKernel } from "../../../src/kernel/netlink-kernel.ts";
import { defineKernelContract, KERNEL_6_1_SCHEDULERS } from "../../../test/kernel/contract.ts";

beforeAll(async () => {
  const kernel = new NetlinkIpvsKernel();
  await kernel.flush();
  await kernel.close();
});

defineKernelContract(
  "NetlinkIpvsKernel (real kernel)",
  async () => new NetlinkIpvsKernel({ timeoutMs: 10000 }),
  {
    schedulers: KERNEL_6_1_SCHEDULERS,
    daemonInterface: "lo",
  },
);
