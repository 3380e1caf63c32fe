/**
 * This node's addresses and the interface each is on, as the DR real-server role needs them
 * (planDirectRoutingRealServer). Read with os.networkInterfaces() (getifaddrs: the interfaces that are
 * up), in the agent's network namespace.
 */
import { networkInterfaces } from "node:os";
import { canonicalIp } from "../vocabulary/addresses.ts";

export type LocalAddresses = () => Map<string, string>;

/**
 * Address (canonical) -> interface name, leaving out loopback addresses and the interfaces named in
 * `skip` (the VIP interface and the loopback: the agent's own VIPs are not real-server addresses).
 */
export function readLocalAddresses(skip: ReadonlySet<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    if (skip.has(name)) continue;
    for (const a of addresses ?? []) {
      if (a.internal) continue;
      const address = canonicalIp(a.address);
      if (!out.has(address)) out.set(address, name);
    }
  }
  return out;
}
