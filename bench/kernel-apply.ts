/**
 * Programs N services x M destinations three ways and prints the times and ratios:
 * NetlinkIpvsKernel.apply() unbatched (batchSize 1), batched (default and 512), and `ipvsadm -R`.
 * Needs a kernel with IPVS and CAP_NET_ADMIN; run it in the test-bed VM:
 *   e2e/vm/run-in-vm.sh -- node bench/kernel-apply.ts [services] [destinations]
 * It flushes the IPVS table between runs: never run it on a host with real services.
 */
import { spawnSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import { NetlinkIpvsKernel } from "../src/kernel/netlink-kernel.ts";
import type { Operation } from "../src/model/plan.ts";
import type { ServiceKey } from "../src/model/table.ts";
import { NO_FLAGS, NO_TUNNEL } from "../src/model/table.ts";

const services = Number(process.argv[2] ?? 1000);
const dests = Number(process.argv[3] ?? 4);

function plan(): Operation[] {
  const ops: Operation[] = [];
  for (let i = 0; i < services; i++) {
    const key: ServiceKey = {
      kind: "address",
      family: "IPv4",
      protocol: "TCP",
      address: `10.${(i >> 8) & 0xff}.${i & 0xff}.1`,
      port: 80,
    };
    ops.push({
      op: "addService",
      service: {
        key,
        config: {
          scheduler: "wlc",
          flags: { ...NO_FLAGS },
          timeout: 0,
          netmask: 0xffffffff,
          persistenceEngine: "",
        },
      },
    });
    for (let j = 0; j < dests; j++) {
      ops.push({
        op: "addDestination",
        service: key,
        destination: {
          key: { family: "IPv4", address: `198.51.100.${j + 1}`, port: 8080 },
          config: { forwarding: "NAT", weight: 1, upperThreshold: 0, lowerThreshold: 0, ...NO_TUNNEL },
        },
      });
    }
  }
  return ops;
}

function ipvsadmText(ops: Operation[]): string {
  return ops
    .map((op) => {
      if (op.op === "addService" && op.service.key.kind === "address") {
        return `-A -t ${op.service.key.address}:${op.service.key.port} -s wlc`;
      }
      if (op.op === "addDestination" && op.service.kind === "address") {
        const d = op.destination.key;
        return `-a -t ${op.service.address}:${op.service.port} -r ${d.address}:${d.port} -m -w 1`;
      }
      throw new Error(`bench: unexpected operation ${op.op}`);
    })
    .join("\n");
}

async function flush(): Promise<void> {
  const k = new NetlinkIpvsKernel();
  await k.flush();
  await k.close();
}

async function timeApply(batchSize: number, ops: Operation[]): Promise<number> {
  await flush();
  const kernel = new NetlinkIpvsKernel({ batchSize, timeoutMs: 60_000 });
  await kernel.getInfo(); // resolve the family outside the timed part
  const t0 = performance.now();
  const results = await kernel.apply(ops);
  const ms = performance.now() - t0;
  const failed = results.filter((r) => !r.ok);
  if (failed.length) throw new Error(`batchSize ${batchSize}: ${failed.length} operations failed`);
  await kernel.close();
  return ms;
}

async function timeDump(): Promise<number> {
  const kernel = new NetlinkIpvsKernel({ timeoutMs: 60_000 });
  await kernel.getInfo();
  const t0 = performance.now();
  const list = await kernel.listServices();
  for (const s of list) await kernel.listDestinations(s.key);
  const ms = performance.now() - t0;
  await kernel.close();
  return ms;
}

const ops = plan();
const results: Record<string, number> = {};
results["apply batchSize=1"] = await timeApply(1, ops);
results["apply batchSize=128"] = await timeApply(128, ops);
results["apply batchSize=512"] = await timeApply(512, ops);
results["dump services+destinations"] = await timeDump();
await flush();
const text = ipvsadmText(ops);
const t0 = performance.now();
const r = spawnSync("ipvsadm", ["-R"], { input: text, encoding: "utf8" });
results["ipvsadm -R"] = performance.now() - t0;
if (r.status !== 0) throw new Error(`ipvsadm -R failed: ${r.stderr}`);
await flush();

const base = results["ipvsadm -R"]!;
process.stdout.write(`${services} services x ${dests} destinations = ${ops.length} operations\n`);
for (const [name, ms] of Object.entries(results)) {
  const per = (ms / ops.length) * 1000;
  process.stdout.write(
    `${name.padEnd(28)} ${ms.toFixed(0).padStart(7)} ms  ${per.toFixed(0).padStart(5)} us/op  x${(ms / base).toFixed(2)} of ipvsadm -R\n`,
  );
}
