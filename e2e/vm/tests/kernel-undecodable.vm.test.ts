/**
 * Entries the decoder cannot read, made in the real kernel (inside the test-bed VM): Linux 6.1 accepts
 * over generic netlink a service of protocol 51 (AH), destinations with forwarding methods 5 and 7
 * (FWD_METHOD is only masked with 0x7) and a tunnel type 9. readTable() must report each of them
 * and read the rest; the fake kernel, given the same entries, must report the same.
 */
import { RawNetlinkSocket } from "netlink";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeIpvsKernel } from "../../../src/kernel/fake-kernel.ts";
import {
  decodeErrorPayload,
  decodeFamilyId,
  decodeGenlPayload,
  decodeMessages,
} from "../../../src/kernel/ipvs-decode.ts";
import { encodeOperation, frameRequest, getFamilyRequest } from "../../../src/kernel/ipvs-encode.ts";
import {
  GENL_ID_CTRL,
  IPVS_CMD_ATTR,
  IPVS_DEST_ATTR,
  IPVS_SVC_ATTR,
  NLMSG,
} from "../../../src/kernel/ipvs-protocol.ts";
import { NetlinkIpvsKernel } from "../../../src/kernel/netlink-kernel.ts";
import type { Operation } from "../../../src/vocabulary/operations.ts";
import type { IpvsDestination, IpvsService, ServiceKey } from "../../../src/vocabulary/table.ts";
import { NO_FLAGS, NO_TUNNEL } from "../../../src/vocabulary/table.ts";
import { attributeDataAt } from "../../../test/kernel/attribute-at.ts";
import { plainTable } from "./vm-helpers.ts";

/** Sends one request whose encoded bytes `patch` may change (the attribute at `path`); resolves its errno. */
class RawIpvs {
  readonly #socket = new RawNetlinkSocket(16, { recvBufferSize: 1 << 20, sendBufferSize: 1 << 20 });
  readonly #waiting = new Map<number, (errno: number) => void>();
  #family = 0;
  #seq = 100;

  constructor() {
    this.#socket.on("error", () => undefined);
    this.#socket.on("message", (datagram: Buffer) => {
      for (const m of decodeMessages(datagram)) {
        if (m.type === GENL_ID_CTRL) this.#family = decodeFamilyId(decodeGenlPayload(m.payload).attrs);
        if (m.type === NLMSG.ERROR) this.#waiting.get(m.seq)?.(decodeErrorPayload(m.payload));
      }
    });
  }

  #exchange(frame: Buffer, seq: number): Promise<number> {
    return new Promise((resolve) => {
      this.#waiting.set(seq, resolve);
      this.#socket.send(frame, { port: 0 }, () => undefined);
    });
  }

  async open(): Promise<void> {
    await this.#exchange(frameRequest(getFamilyRequest("IPVS"), GENL_ID_CTRL, 1), 1);
  }

  send(op: Operation, path: number[], write: (b: Buffer, at: number) => void): Promise<number> {
    const seq = ++this.#seq;
    const frame = frameRequest(encodeOperation(op), this.#family, seq);
    // the attributes start after nlmsghdr (16 bytes) and genlmsghdr (4)
    write(frame, attributeDataAt(frame, path, 20));
    return this.#exchange(frame, seq);
  }

  close(): void {
    this.#socket.close();
  }
}

const key = (port: number): ServiceKey => ({
  kind: "address",
  family: "IPv4",
  protocol: "TCP",
  address: "192.0.2.50",
  port,
});
const service = (port: number): IpvsService => ({
  key: key(port),
  config: { scheduler: "rr", flags: { ...NO_FLAGS }, timeout: 0, netmask: 0xffffffff, persistenceEngine: "" },
});
const dest = (n: number): IpvsDestination => ({
  key: { family: "IPv4", address: `198.51.100.${n}`, port: 80 },
  config: { forwarding: "NAT", weight: 1, upperThreshold: 0, lowerThreshold: 0, ...NO_TUNNEL },
});
const S = IPVS_CMD_ATTR.SERVICE;
const D = IPVS_CMD_ATTR.DEST;

describe("entries the decoder cannot read, in the real kernel", () => {
  let kernel: NetlinkIpvsKernel;

  beforeAll(async () => {
    kernel = new NetlinkIpvsKernel({ timeoutMs: 10000 });
    await kernel.flush();
    await kernel.addService(service(80));
    const raw = new RawIpvs();
    await raw.open();
    const errnos = [
      // TCP 192.0.2.50:81 sent with protocol 51 (AH)
      await raw.send({ op: "addService", service: service(81) }, [S, IPVS_SVC_ATTR.PROTOCOL], (b, at) =>
        b.writeUInt16LE(51, at),
      ),
      await raw.send(
        { op: "addDestination", service: key(80), destination: dest(1) },
        [D, IPVS_DEST_ATTR.FWD_METHOD],
        (b, at) => b.writeUInt32LE(5, at),
      ),
      await raw.send(
        { op: "addDestination", service: key(80), destination: dest(2) },
        [D, IPVS_DEST_ATTR.TUN_TYPE],
        (b, at) => b.writeUInt8(9, at),
      ),
    ];
    raw.close();
    expect(errnos).toEqual([0, 0, 0]); // the kernel took every one of them
    await kernel.addService(service(82));
    await kernel.addDestination(key(82), dest(3));
    await kernel.addDestination(key(80), dest(4));
  });

  afterAll(async () => {
    await kernel.flush();
    await kernel.close();
  });

  const expected = [
    { service: "protocol 51 192.0.2.50:81", reason: "service PROTOCOL 51 is not TCP, UDP or SCTP" },
    {
      service: "TCP 192.0.2.50:80",
      key: key(80),
      destination: "198.51.100.2:80",
      reason: "destination TUN_TYPE 9 is not known",
    },
    {
      service: "TCP 192.0.2.50:80",
      key: key(80),
      destination: "198.51.100.1:80",
      reason: "destination FWD_METHOD 5 is not known",
    },
  ];

  it("readTable reports each unreadable entry and reads the rest exactly", async () => {
    const { table, undecodable } = await kernel.readTable();
    expect(undecodable).toEqual(expect.arrayContaining(expected));
    expect(undecodable).toHaveLength(expected.length);
    // TCP :80 has a readable destination too, but is left out whole
    expect(plainTable(table)).toEqual([{ service: service(82), destinations: [dest(3)] }]);
  });

  it("listServices and listDestinations return what decodes and nothing else", async () => {
    expect((await kernel.listServices()).map((s) => s.key)).toEqual(
      expect.arrayContaining([key(80), key(82)]),
    );
    expect(await kernel.listServices()).toHaveLength(2);
    expect((await kernel.listDestinations(key(80))).map((d) => d.key.address)).toEqual(["198.51.100.4"]);
  });

  it("the key of a service with an unreadable destination is taken (EEXIST)", async () => {
    const [result] = await kernel.apply([{ op: "addService", service: service(80) }]);
    expect(result?.ok === false && result.error.errno).toBe("EEXIST");
  });

  it("the fake kernel, given the same entries, reads the same", async () => {
    const fake = new FakeIpvsKernel();
    await fake.addService(service(82));
    await fake.addDestination(key(82), dest(3));
    await fake.addService(service(80));
    await fake.addDestination(key(80), dest(4));
    for (const entry of expected) fake.injectUndecodable(entry);
    const [real, simulated] = [await kernel.readTable(), await fake.readTable()];
    expect(plainTable(simulated.table)).toEqual(plainTable(real.table));
    expect(simulated.undecodable).toEqual(expect.arrayContaining(real.undecodable));
    expect(simulated.undecodable).toHaveLength(real.undecodable.length);
    const [result] = await fake.apply([{ op: "addService", service: service(80) }]);
    expect(result?.ok === false && result.error.errno).toBe("EEXIST");
  });
});
