/**
 * Reading the whole kernel table through any IpvsKernel: services first, then every destination list
 * requested at once (NetlinkIpvsKernel serialises them on its socket; the fake answers at once).
 */
import type { KernelSnapshot, KernelTable } from "../model/table.ts";
import type { IpvsKernel } from "./ipvs-kernel.ts";

/** The decodable table only (tests, benchmarks, the ipvsadm cross-check). */
export async function readKernelTable(kernel: IpvsKernel): Promise<KernelTable> {
  return (await kernel.readTable()).table;
}

/** readTable() built from listServices() + listDestinations(), for implementations that decode everything. */
export async function readTableByListing(kernel: IpvsKernel): Promise<KernelSnapshot> {
  const services = await kernel.listServices();
  const destinations = await Promise.all(services.map((service) => kernel.listDestinations(service.key)));
  return {
    table: services.map((service, i) => ({ service, destinations: destinations[i]! })),
    undecodable: [],
  };
}
