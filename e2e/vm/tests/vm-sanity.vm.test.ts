import { execFileSync } from "node:child_process";
import { createGenericNetlink, genl } from "netlink";
import { describe, expect, it } from "vitest";

// Proves the test bed itself: the kernel in the VM has IPVS and both clients reach it.
describe("real-kernel test bed", () => {
  it("has IPVS loaded (ipvsadm -Ln prints the kernel's version header)", () => {
    const out = execFileSync("ipvsadm", ["-Ln"], { encoding: "utf8" });
    expect(out.split("\n")[0]).toMatch(/^IP Virtual Server version 1\.2\.1 \(size=\d+\)$/);
  });

  it("resolves the IPVS generic netlink family with the netlink package", async () => {
    const socket = createGenericNetlink();
    try {
      const families = await socket.ctrlRequest(genl.Commands.GET_FAMILY, { familyName: "IPVS" });
      expect(families).toHaveLength(1);
      expect(families[0]?.familyName).toBe("IPVS");
      expect(families[0]?.version).toBe(1);
      expect(families[0]?.familyId).toBeGreaterThanOrEqual(16);
    } finally {
      socket.socket.close();
    }
  });

  it("accepts IPv4 and IPv6 real servers (lo is up, IPv6 enabled)", () => {
    const run = (...args: string[]) => execFileSync("ipvsadm", args, { encoding: "utf8" });
    try {
      run("-A", "-t", "198.51.100.10:80", "-s", "rr");
      run("-a", "-t", "198.51.100.10:80", "-r", "127.0.0.2:8080", "-m");
      run("-A", "-t", "[2001:db8:10::1]:80", "-s", "rr");
      run("-a", "-t", "[2001:db8:10::1]:80", "-r", "[2001:db8::2]:8080", "-m");
      const saved = run("-Sn");
      expect(saved).toContain("-a -t 198.51.100.10:80 -r 127.0.0.2:8080 -m -w 1");
      expect(saved).toContain("-a -t [2001:db8:10::1]:80 -r [2001:db8::2]:8080 -m -w 1");
    } finally {
      run("-C");
    }
  });
});
