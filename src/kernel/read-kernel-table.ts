/**
 * Reading the whole kernel table through any IpvsKernel. NetlinkIpvsKernel.readTable() does its own
 * dump (several destination lists at once, entry-by-entry decoding) and FakeIpvsKernel its own
 * simulation; readTableByListing() is the generic fallback for another implementation.
 */
import type { KernelSnapshot, KernelTable } from "../vocabulary/table.ts";
import type { IpvsKernel } from "./ipvs-kernel.ts";

/** The decodable table only (tests, benchmarks, the ipvsadm cross-check). */
export async function readKernelTable(kernel: IpvsKernel): Promise<KernelTable> {
  return (await kernel.readTable()).table;
}

/**
 * readTable() built from listServices() + listDestinations(), for an implementation that decodes
 * everything (it can report nothing undecodable: listing returns only what decodes).
 */
export async function readTableByListing(kernel: IpvsKernel): Promise<KernelSnapshot> {
  const services = await kernel.listServices();
  const destinations = await Promise.all(services.map((service) => kernel.listDestinations(service.key)));
  return {
    table: services.map((service, i) => ({ service, destinations: destinations[i]! })),
    undecodable: [],
  };
}
