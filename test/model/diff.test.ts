import { describe, expect, it } from "vitest";
import type { DesiredTable } from "../../src/model/desired-table.ts";
import { type DiffResult, diff } from "../../src/model/diff.ts";
import type { DrainEntry } from "../../src/model/drain.ts";
import type { OwnershipScope } from "../../src/model/ownership.ts";
import type { KernelTable, ServiceKey } from "../../src/vocabulary/table.ts";
import { fwmark, have, haveDest, NO_SCOPE, tcp, udp, want, wantDest } from "./diff-fixtures.ts";

const NOW = 1_000_000;
const VIP = "192.0.2.10";
const SVC = `TCP ${VIP}:80`;

interface Case {
  name: string;
  desired: DesiredTable;
  actual: KernelTable;
  scope?: OwnershipScope;
  drains?: DrainEntry[];
  now?: number;
  /** Operations summarised as "op service [destination] [weight=N]". */
  ops: string[];
  /** Drift summarised as "Kind service [destination] [field expected->actual] action". */
  drift: string[];
  /** The drain state diff() should return; none when absent. */
  nextDrains?: DrainEntry[];
}

function opText(o: DiffResult["operations"][number]): string {
  switch (o.op) {
    case "addService":
    case "updateService":
      return `${o.op} ${keyText(o.service.key)}`;
    case "deleteService":
      return `${o.op} ${keyText(o.key)}`;
    case "addDestination":
    case "updateDestination":
      return `${o.op} ${keyText(o.service)} ${o.destination.key.address}:${o.destination.key.port} weight=${o.destination.config.weight}`;
    case "deleteDestination":
      return `${o.op} ${keyText(o.service)} ${o.key.address}:${o.key.port}`;
  }
}

function keyText(k: ServiceKey): string {
  return k.kind === "fwmark" ? `FWM ${k.fwmark}` : `${k.protocol} ${k.address}:${k.port}`;
}

function driftText(d: DiffResult["drift"][number]): string {
  return [
    d.kind,
    d.service,
    d.destination,
    d.field ? `${d.field} ${d.expected}->${d.actual}` : undefined,
    d.action,
  ]
    .filter((x) => x !== undefined)
    .join(" ");
}

/** The agent made the services on VIP (they are in its journal) unless a case gives its own scope. */
const MINE: OwnershipScope = { ...NO_SCOPE, journal: [SVC, `UDP ${VIP}:53`] };
const FOREIGN_VIP = "203.0.113.1";
const FOREIGN_SVC = `TCP ${FOREIGN_VIP}:443`;

const cases: Case[] = [
  { name: "empty tables: nothing to do", desired: [], actual: [], ops: [], drift: [] },
  {
    name: "desired key held by a foreign service: not taken over (no scheduler edit, no drain, no add)",
    desired: [
      want(tcp(FOREIGN_VIP, 443), [wantDest("198.51.100.7", 443)], {
        config: { ...have(tcp(FOREIGN_VIP, 443), []).service.config, scheduler: "rr" },
      }),
    ],
    actual: [have(tcp(FOREIGN_VIP, 443), [haveDest("198.51.100.5", 443, {}, { active: 4 })])],
    scope: NO_SCOPE,
    ops: [],
    drift: [`Foreign ${FOREIGN_SVC} Ignored`],
  },
  {
    name: "desired key held by a foreign service, Report policy: still only Foreign",
    desired: [want(tcp(FOREIGN_VIP, 443), [wantDest("198.51.100.7", 443)], { driftPolicy: "Report" })],
    actual: [have(tcp(FOREIGN_VIP, 443), [haveDest("198.51.100.5", 443)])],
    scope: NO_SCOPE,
    ops: [],
    drift: [`Foreign ${FOREIGN_SVC} Ignored`],
  },
  {
    name: "desired key absent from the kernel, outside any scope: added (the caller journals it first)",
    desired: [want(tcp(FOREIGN_VIP, 443), [wantDest("198.51.100.7", 443)])],
    actual: [],
    scope: NO_SCOPE,
    ops: [`addService ${FOREIGN_SVC}`, `addDestination ${FOREIGN_SVC} 198.51.100.7:443 weight=1`],
    drift: [`Missing ${FOREIGN_SVC} Repaired`],
  },
  {
    name: "desired key inside a managed CIDR: adopted and repaired",
    desired: [want(tcp(FOREIGN_VIP, 443), [wantDest("198.51.100.7", 443)])],
    actual: [have(tcp(FOREIGN_VIP, 443), [haveDest("198.51.100.5", 443)])],
    scope: { ...NO_SCOPE, managedCidrs: ["203.0.113.0/24"] },
    ops: [
      `addDestination ${FOREIGN_SVC} 198.51.100.7:443 weight=1`,
      `deleteDestination ${FOREIGN_SVC} 198.51.100.5:443`,
    ],
    drift: [
      `Missing ${FOREIGN_SVC} 198.51.100.7:443 Repaired`,
      `Unexpected ${FOREIGN_SVC} 198.51.100.5:443 Repaired`,
    ],
  },
  {
    name: "desired key in the journal: adopted and repaired",
    desired: [want(tcp(FOREIGN_VIP, 443), [wantDest("198.51.100.5", 443, { weight: 2 })])],
    actual: [have(tcp(FOREIGN_VIP, 443), [haveDest("198.51.100.5", 443)])],
    scope: { ...NO_SCOPE, journal: [FOREIGN_SVC] },
    ops: [`updateDestination ${FOREIGN_SVC} 198.51.100.5:443 weight=2`],
    drift: [`Modified ${FOREIGN_SVC} 198.51.100.5:443 weight 2->1 Repaired`],
  },
  {
    name: "desired fwmark inside the managed range: adopted; outside it: foreign",
    desired: [
      want(fwmark(7), [wantDest("198.51.100.5", 0)]),
      want(fwmark(70), [wantDest("198.51.100.5", 0)]),
    ],
    actual: [have(fwmark(7), []), have(fwmark(70), [])],
    scope: { ...NO_SCOPE, managedFwmarks: [{ from: 1, to: 9 }] },
    ops: ["addDestination FWM 7 198.51.100.5:0 weight=1"],
    drift: ["Missing FWM 7 IPv4 198.51.100.5:0 Repaired", "Foreign FWM 70 IPv4 Ignored"],
  },
  {
    name: "missing service: added with its destinations",
    desired: [want(tcp(VIP, 80), [wantDest("198.51.100.6", 8080), wantDest("198.51.100.5", 8080)])],
    actual: [],
    ops: [
      `addService TCP ${VIP}:80`,
      `addDestination TCP ${VIP}:80 198.51.100.5:8080 weight=1`,
      `addDestination TCP ${VIP}:80 198.51.100.6:8080 weight=1`,
    ],
    drift: [`Missing ${SVC} Repaired`],
  },
  {
    name: "in sync: no operation, no drift",
    desired: [want(tcp(VIP, 80), [wantDest("198.51.100.5", 8080)])],
    actual: [have(tcp(VIP, 80), [haveDest("198.51.100.5", 8080, {}, { active: 3 })])],
    ops: [],
    drift: [],
  },
  {
    name: "weight changed: edited in place",
    desired: [want(tcp(VIP, 80), [wantDest("198.51.100.5", 8080, { weight: 5 })])],
    actual: [have(tcp(VIP, 80), [haveDest("198.51.100.5", 8080, { weight: 1 })])],
    ops: [`updateDestination TCP ${VIP}:80 198.51.100.5:8080 weight=5`],
    drift: [`Modified ${SVC} 198.51.100.5:8080 weight 5->1 Repaired`],
  },
  {
    name: "forwarding and thresholds changed: one update, one drift item per field",
    desired: [
      want(tcp(VIP, 80), [
        wantDest("198.51.100.5", 80, {
          forwarding: "DirectRouting",
          upperThreshold: 100,
          lowerThreshold: 10,
        }),
      ]),
    ],
    actual: [have(tcp(VIP, 80), [haveDest("198.51.100.5", 80)])],
    ops: [`updateDestination TCP ${VIP}:80 198.51.100.5:80 weight=1`],
    drift: [
      `Modified ${SVC} 198.51.100.5:80 forwarding DirectRouting->NAT Repaired`,
      `Modified ${SVC} 198.51.100.5:80 upperThreshold 100->0 Repaired`,
      `Modified ${SVC} 198.51.100.5:80 lowerThreshold 10->0 Repaired`,
    ],
  },
  {
    name: "scheduler changed: updateService, not delete + add",
    desired: [
      want(tcp(VIP, 80), [], { config: { ...have(tcp(VIP, 80), []).service.config, scheduler: "rr" } }),
    ],
    actual: [have(tcp(VIP, 80), [])],
    ops: [`updateService TCP ${VIP}:80`],
    drift: [`Modified ${SVC} scheduler rr->wlc Repaired`],
  },
  {
    name: "persistence changed: flags, timeout and netmask reported by field",
    desired: [
      want(tcp(VIP, 80), [], {
        config: {
          ...have(tcp(VIP, 80), []).service.config,
          flags: { ...have(tcp(VIP, 80), []).service.config.flags, persistent: true },
          timeout: 360,
          netmask: 0xffffff00,
        },
      }),
    ],
    actual: [have(tcp(VIP, 80), [])],
    ops: [`updateService TCP ${VIP}:80`],
    drift: [
      `Modified ${SVC} flags persistent->none Repaired`,
      `Modified ${SVC} persistence.timeout 360->0 Repaired`,
      `Modified ${SVC} persistence.netmask 255.255.255.0->255.255.255.255 Repaired`,
    ],
  },
  {
    name: "tunnel fields are ignored when forwarding is not Tunnel",
    desired: [want(tcp(VIP, 80), [wantDest("198.51.100.5", 80, { forwarding: "NAT" })])],
    actual: [
      have(tcp(VIP, 80), [
        haveDest("198.51.100.5", 80, { forwarding: "NAT", tunnelType: "GUE", tunnelPort: 5555 }),
      ]),
    ],
    ops: [],
    drift: [],
  },
  {
    name: "tunnel fields are compared when forwarding is Tunnel",
    desired: [
      want(tcp(VIP, 80), [
        wantDest("198.51.100.5", 80, { forwarding: "Tunnel", tunnelType: "GUE", tunnelPort: 6080 }),
      ]),
    ],
    actual: [
      have(tcp(VIP, 80), [haveDest("198.51.100.5", 80, { forwarding: "Tunnel", tunnelType: "IPIP" })]),
    ],
    ops: [`updateDestination TCP ${VIP}:80 198.51.100.5:80 weight=1`],
    drift: [
      `Modified ${SVC} 198.51.100.5:80 tunnel.type GUE->IPIP Repaired`,
      `Modified ${SVC} 198.51.100.5:80 tunnel.port 6080->0 Repaired`,
    ],
  },
  {
    name: "foreign service: never touched, reported once",
    desired: [],
    actual: [have(tcp("203.0.113.1", 443), [haveDest("198.51.100.5", 443), haveDest("198.51.100.6", 443)])],
    ops: [],
    drift: ["Foreign TCP 203.0.113.1:443 Ignored"],
  },
  {
    name: "owned by managed CIDR, not desired, idle: deleted (one delete, no per-destination deletes)",
    desired: [],
    actual: [have(tcp(VIP, 80), [haveDest("198.51.100.5", 80)])],
    scope: { ...NO_SCOPE, managedCidrs: ["192.0.2.0/24"] },
    ops: [`deleteService TCP ${VIP}:80`],
    drift: [`Unexpected ${SVC} Repaired`],
  },
  {
    name: "owned by journal: deleted",
    desired: [],
    actual: [have(tcp(VIP, 80), [])],
    scope: { ...NO_SCOPE, journal: [SVC] },
    ops: [`deleteService TCP ${VIP}:80`],
    drift: [`Unexpected ${SVC} Repaired`],
  },
  {
    name: "owned by fwmark range: deleted; a mark outside the range is foreign",
    desired: [],
    actual: [have(fwmark(7), []), have(fwmark(70), [])],
    scope: { ...NO_SCOPE, managedFwmarks: [{ from: 1, to: 9 }] },
    ops: ["deleteService FWM 7"],
    drift: ["Unexpected FWM 7 IPv4 Repaired", "Foreign FWM 70 IPv4 Ignored"],
  },
  {
    name: "removed destination with connections: set to weight 0 and recorded",
    desired: [want(tcp(VIP, 80), [wantDest("198.51.100.5", 80)])],
    actual: [
      have(tcp(VIP, 80), [haveDest("198.51.100.5", 80), haveDest("198.51.100.6", 80, {}, { active: 2 })]),
    ],
    ops: [`updateDestination TCP ${VIP}:80 198.51.100.6:80 weight=0`],
    drift: [`Unexpected ${SVC} 198.51.100.6:80 Repaired`],
    nextDrains: [{ service: SVC, destination: "198.51.100.6:80", startedAt: NOW, timeoutSeconds: 300 }],
  },
  {
    name: "draining destination still has connections: wait quietly",
    desired: [want(tcp(VIP, 80), [])],
    actual: [have(tcp(VIP, 80), [haveDest("198.51.100.6", 80, { weight: 0 }, { inactive: 1 })])],
    drains: [{ service: SVC, destination: "198.51.100.6:80", startedAt: NOW - 10_000, timeoutSeconds: 300 }],
    ops: [],
    drift: [],
    nextDrains: [
      { service: SVC, destination: "198.51.100.6:80", startedAt: NOW - 10_000, timeoutSeconds: 300 },
    ],
  },
  {
    name: "draining destination reached zero connections: deleted",
    desired: [want(tcp(VIP, 80), [])],
    actual: [have(tcp(VIP, 80), [haveDest("198.51.100.6", 80, { weight: 0 })])],
    drains: [{ service: SVC, destination: "198.51.100.6:80", startedAt: NOW - 10_000, timeoutSeconds: 300 }],
    ops: [`deleteDestination TCP ${VIP}:80 198.51.100.6:80`],
    drift: [`Unexpected ${SVC} 198.51.100.6:80 Repaired`],
  },
  {
    name: "drain timeout passed: deleted despite connections",
    desired: [want(tcp(VIP, 80), [], { drainTimeoutSeconds: 30 })],
    actual: [have(tcp(VIP, 80), [haveDest("198.51.100.6", 80, { weight: 0 }, { active: 9 })])],
    drains: [{ service: SVC, destination: "198.51.100.6:80", startedAt: NOW - 30_000, timeoutSeconds: 30 }],
    ops: [`deleteDestination TCP ${VIP}:80 198.51.100.6:80`],
    drift: [`Unexpected ${SVC} 198.51.100.6:80 Repaired`],
  },
  {
    name: "UDP: removed destination is deleted at once",
    desired: [want(udp(VIP, 53), [])],
    actual: [have(udp(VIP, 53), [haveDest("198.51.100.6", 53, {}, { active: 5 })])],
    ops: [`deleteDestination UDP ${VIP}:53 198.51.100.6:53`],
    drift: [`Unexpected UDP ${VIP}:53 198.51.100.6:53 Repaired`],
  },
  {
    name: "drain timeout 0: deleted at once",
    desired: [want(tcp(VIP, 80), [], { drainTimeoutSeconds: 0 })],
    actual: [have(tcp(VIP, 80), [haveDest("198.51.100.6", 80, {}, { active: 5 })])],
    ops: [`deleteDestination TCP ${VIP}:80 198.51.100.6:80`],
    drift: [`Unexpected ${SVC} 198.51.100.6:80 Repaired`],
  },
  {
    name: "restart: unrecorded weight-0 destination with connections is adopted as draining from now",
    desired: [want(tcp(VIP, 80), [])],
    actual: [have(tcp(VIP, 80), [haveDest("198.51.100.6", 80, { weight: 0 }, { active: 1 })])],
    ops: [],
    drift: [`Unexpected ${SVC} 198.51.100.6:80 Repaired`],
    nextDrains: [{ service: SVC, destination: "198.51.100.6:80", startedAt: NOW, timeoutSeconds: 300 }],
  },
  {
    name: "draining destination desired again: weight restored, drain forgotten",
    desired: [want(tcp(VIP, 80), [wantDest("198.51.100.6", 80, { weight: 3 })])],
    actual: [have(tcp(VIP, 80), [haveDest("198.51.100.6", 80, { weight: 0 }, { active: 1 })])],
    drains: [{ service: SVC, destination: "198.51.100.6:80", startedAt: NOW - 1000, timeoutSeconds: 300 }],
    ops: [`updateDestination TCP ${VIP}:80 198.51.100.6:80 weight=3`],
    drift: [`Modified ${SVC} 198.51.100.6:80 weight 3->0 Repaired`],
  },
  {
    name: "whole service removed with busy destinations: drain them, keep the service",
    desired: [],
    actual: [
      have(tcp(VIP, 80), [
        haveDest("198.51.100.5", 80),
        haveDest("198.51.100.6", 80, { weight: 4 }, { active: 1 }),
      ]),
    ],
    scope: { ...NO_SCOPE, journal: [SVC] },
    ops: [
      `updateDestination TCP ${VIP}:80 198.51.100.6:80 weight=0`,
      `deleteDestination TCP ${VIP}:80 198.51.100.5:80`,
    ],
    drift: [
      `Unexpected ${SVC} Repaired`,
      `Unexpected ${SVC} 198.51.100.5:80 Repaired`,
      `Unexpected ${SVC} 198.51.100.6:80 Repaired`,
    ],
    nextDrains: [{ service: SVC, destination: "198.51.100.6:80", startedAt: NOW, timeoutSeconds: 300 }],
  },
  {
    name: "whole service: last drain finished, service deleted",
    desired: [],
    actual: [have(tcp(VIP, 80), [haveDest("198.51.100.6", 80, { weight: 0 })])],
    scope: { ...NO_SCOPE, journal: [SVC] },
    drains: [{ service: SVC, destination: "198.51.100.6:80", startedAt: NOW - 5000, timeoutSeconds: 60 }],
    ops: [`deleteService TCP ${VIP}:80`],
    drift: [`Unexpected ${SVC} Repaired`],
  },
  {
    name: "whole service: recorded drain timeout is kept when the service is no longer desired",
    desired: [],
    actual: [have(tcp(VIP, 80), [haveDest("198.51.100.6", 80, { weight: 0 }, { active: 1 })])],
    scope: { ...NO_SCOPE, journal: [SVC] },
    drains: [{ service: SVC, destination: "198.51.100.6:80", startedAt: NOW - 60_000, timeoutSeconds: 60 }],
    ops: [`deleteService TCP ${VIP}:80`],
    drift: [`Unexpected ${SVC} Repaired`],
  },
  {
    name: "key change (port 80 -> 8080): new entry added first, old one deleted last",
    desired: [want(tcp(VIP, 8080), [wantDest("198.51.100.5", 8080)])],
    actual: [have(tcp(VIP, 80), [haveDest("198.51.100.5", 80)])],
    scope: { ...NO_SCOPE, journal: [SVC] },
    ops: [
      `addService TCP ${VIP}:8080`,
      `addDestination TCP ${VIP}:8080 198.51.100.5:8080 weight=1`,
      `deleteService TCP ${VIP}:80`,
    ],
    drift: [`Unexpected ${SVC} Repaired`, `Missing TCP ${VIP}:8080 Repaired`],
  },
  {
    name: "destination key change (port): add new, delete old",
    desired: [want(tcp(VIP, 80), [wantDest("198.51.100.5", 81)])],
    actual: [have(tcp(VIP, 80), [haveDest("198.51.100.5", 80)])],
    ops: [
      `addDestination TCP ${VIP}:80 198.51.100.5:81 weight=1`,
      `deleteDestination TCP ${VIP}:80 198.51.100.5:80`,
    ],
    drift: [`Missing ${SVC} 198.51.100.5:81 Repaired`, `Unexpected ${SVC} 198.51.100.5:80 Repaired`],
  },
  {
    name: "Report policy: missing service is reported, not created",
    desired: [want(tcp(VIP, 80), [wantDest("198.51.100.5", 80)], { driftPolicy: "Report" })],
    actual: [],
    ops: [],
    drift: [`Missing ${SVC} Reported`],
  },
  {
    name: "Report policy: modified and extra entries are reported, nothing changes, nothing drains",
    desired: [
      want(tcp(VIP, 80), [wantDest("198.51.100.5", 80, { weight: 2 }), wantDest("198.51.100.7", 80)], {
        driftPolicy: "Report",
      }),
    ],
    actual: [
      have(tcp(VIP, 80), [haveDest("198.51.100.5", 80), haveDest("198.51.100.6", 80, {}, { active: 1 })]),
    ],
    ops: [],
    drift: [
      `Modified ${SVC} 198.51.100.5:80 weight 2->1 Reported`,
      `Missing ${SVC} 198.51.100.7:80 Reported`,
      `Unexpected ${SVC} 198.51.100.6:80 Reported`,
    ],
  },
  {
    name: "operation groups in order: service changes, adds, updates, drains, deletes, service deletes",
    desired: [
      want(tcp("192.0.2.20", 80), [wantDest("198.51.100.1", 80)]),
      want(tcp(VIP, 80), [wantDest("198.51.100.5", 80, { weight: 9 }), wantDest("198.51.100.9", 80)], {
        config: { ...have(tcp(VIP, 80), []).service.config, scheduler: "rr" },
      }),
    ],
    actual: [
      have(tcp(VIP, 80), [
        haveDest("198.51.100.5", 80),
        haveDest("198.51.100.6", 80, {}, { active: 1 }),
        haveDest("198.51.100.7", 80),
      ]),
      have(tcp("192.0.2.30", 80), []),
    ],
    scope: { ...NO_SCOPE, managedCidrs: ["192.0.2.0/24"] },
    ops: [
      `updateService TCP ${VIP}:80`,
      "addService TCP 192.0.2.20:80",
      `addDestination TCP ${VIP}:80 198.51.100.9:80 weight=1`,
      "addDestination TCP 192.0.2.20:80 198.51.100.1:80 weight=1",
      `updateDestination TCP ${VIP}:80 198.51.100.5:80 weight=9`,
      `updateDestination TCP ${VIP}:80 198.51.100.6:80 weight=0`,
      `deleteDestination TCP ${VIP}:80 198.51.100.7:80`,
      "deleteService TCP 192.0.2.30:80",
    ],
    drift: [
      `Modified ${SVC} scheduler rr->wlc Repaired`,
      `Modified ${SVC} 198.51.100.5:80 weight 9->1 Repaired`,
      `Missing ${SVC} 198.51.100.9:80 Repaired`,
      `Unexpected ${SVC} 198.51.100.6:80 Repaired`,
      `Unexpected ${SVC} 198.51.100.7:80 Repaired`,
      "Missing TCP 192.0.2.20:80 Repaired",
      "Unexpected TCP 192.0.2.30:80 Repaired",
    ],
    nextDrains: [{ service: SVC, destination: "198.51.100.6:80", startedAt: NOW, timeoutSeconds: 300 }],
  },
];

describe("diff", () => {
  it.each(cases)("$name", (c) => {
    const result = diff(c.desired, c.actual, c.scope ?? MINE, c.drains ?? [], c.now ?? NOW);
    expect(result.operations.map(opText)).toEqual(c.ops);
    expect(result.drift.map(driftText)).toEqual(c.drift);
    expect(result.drains).toEqual(c.nextDrains ?? []);
    expect(result.draining).toBe(result.drains.length);
  });
});

describe("diff: a desired key held by a foreign service", () => {
  it("says in the drift item that the key is held by an entry this agent does not own", () => {
    const result = diff(
      [want(tcp(FOREIGN_VIP, 443), [])],
      [have(tcp(FOREIGN_VIP, 443), [])],
      NO_SCOPE,
      [],
      NOW,
    );
    expect(result.drift).toEqual([
      {
        kind: "Foreign",
        service: FOREIGN_SVC,
        action: "Ignored",
        message: expect.stringMatching(/desired .*held by a kernel service this agent does not own/),
      },
    ]);
  });
});

describe("diff: a desired table with a key or a destination twice (computeDesired never gives one)", () => {
  it("uses the entry whose source sorts first and a destination's first occurrence in canonical order, whatever the input order", () => {
    const web = want(
      tcp(VIP, 80),
      [wantDest("198.51.100.7", 80, { weight: 5 }), wantDest("198.51.100.6", 80)],
      {
        source: { namespace: "edge", name: "web" },
        config: { ...want(tcp(VIP, 80), []).service.config, scheduler: "rr" },
      },
    );
    const api = want(
      tcp(VIP, 80),
      [wantDest("198.51.100.6", 80, { weight: 2 }), wantDest("198.51.100.6", 80, { weight: 3 })],
      { source: { namespace: "edge", name: "api" } },
    );
    for (const desired of [
      [web, api],
      [api, web],
    ]) {
      const result = diff(desired, [], MINE, [], NOW);
      expect(result.operations.map(opText)).toEqual([
        `addService ${SVC}`,
        `addDestination ${SVC} 198.51.100.6:80 weight=2`,
      ]);
      const added = result.operations[0];
      expect(added?.op === "addService" && added.service.config.scheduler).toBe("wlc");
    }
  });
});
