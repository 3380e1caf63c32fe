/**
 * VipBinder: keeps the VIP dummy interface (default ipvs0) holding exactly the addresses the agent
 * wants, one diff per sync: read the link and its addresses, planVips(), run the actions in order.
 * Never throws for what the kernel says: failures come back as `errors` (and the next sync retries).
 * One sync at a time per binder (the agent's runner already serialises syncs).
 */

import { errorText } from "./error-text.ts";
import { type RtAddress, type RtLink, type RtLinkInfo, TUNNEL_DEVICE, type TunnelKind } from "./rt-link.ts";
import {
  DEFAULT_VIP_INTERFACE,
  planVips,
  sortByAddress,
  VIP_ADDRESS_PROTOCOL,
  type VipAction,
  type VipDrift,
  type VipOwnership,
  type VipPrevious,
} from "./vip-plan.ts";

type AddressAction = Extract<VipAction, { kind: "addAddress" | "deleteAddress" }>;

/** Address changes in flight at once (well inside a socket receive buffer's worth of ACKs). */
const ADDRESS_WINDOW = 32;

/** Runs `fn` over `items`, at most `window` at a time; results in the items' order. */
async function inWindows<T, R>(
  items: readonly T[],
  window: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += window) {
    out.push(...(await Promise.all(items.slice(i, i + window).map(fn))));
  }
  return out;
}

export interface VipBinderOptions {
  /** Default "ipvs0". */
  interfaceName?: string;
  /** "protocol" (default; Linux >= 5.18) or "journal" (older kernels; see `journal`). */
  ownership?: VipOwnership;
  /** IFA_PROTO marker (default VIP_ADDRESS_PROTOCOL, 73). */
  protocol?: number;
  /** Ownership "journal": the addresses the agent had bound, as the caller persisted them (`owned`). */
  journal?: readonly string[];
  /** The interface is the node's own (the loopback): never created, of any kind (see planVips). */
  existingLink?: boolean;
  /**
   * The interface is this tunnel kind's fallback device (interfaceName is then TUNNEL_DEVICE[kind]),
   * made to exist through the kernel's module for the kind; default: a dummy of the agent's own.
   */
  tunnel?: TunnelKind;
}

export interface VipReport {
  interface: string;
  /** The link exists (after the sync). */
  present: boolean;
  up: boolean;
  /** Addresses the agent holds on the interface after the sync (persist these for ownership "journal"). */
  owned: string[];
  /** Addresses on the interface that are not the agent's ("address/prefix"). */
  foreign: string[];
  added: string[];
  removed: string[];
  drift: VipDrift[];
  errors: string[];
}

export class VipBinder {
  readonly #link: RtLink;
  readonly #name: string;
  readonly #ownership: VipOwnership;
  readonly #protocol: number;
  #journal: Set<string>;
  #previous: VipPrevious | undefined;
  readonly #existingLink: boolean;
  readonly #tunnel: TunnelKind | undefined;

  constructor(link: RtLink, options: VipBinderOptions = {}) {
    this.#link = link;
    this.#tunnel = options.tunnel;
    this.#name = options.tunnel
      ? TUNNEL_DEVICE[options.tunnel]
      : (options.interfaceName ?? DEFAULT_VIP_INTERFACE);
    this.#ownership = options.ownership ?? "protocol";
    this.#protocol = options.protocol ?? VIP_ADDRESS_PROTOCOL;
    this.#journal = new Set(options.journal ?? []);
    this.#existingLink = options.existingLink ?? false;
    if (this.#ownership === "protocol" && (this.#protocol < 1 || this.#protocol > 255)) {
      throw new RangeError(`VIP address protocol must be 1..255, got ${this.#protocol}`);
    }
  }

  get interfaceName(): string {
    return this.#name;
  }

  /** The tunnel kind whose fallback device this binder keeps; undefined for a dummy or the loopback. */
  get tunnel(): TunnelKind | undefined {
    return this.#tunnel;
  }

  /** Brings the interface to exactly `wanted` (plus what is foreign on it), repairing drift. */
  async sync(wanted: readonly string[]): Promise<VipReport> {
    return this.#run(wanted, true);
  }

  /** The same report without changing anything (a dry run: drift is what a sync would repair). */
  async observe(wanted: readonly string[]): Promise<VipReport> {
    return this.#run(wanted, false);
  }

  async #read(): Promise<{ link: RtLinkInfo | undefined; addresses: RtAddress[] }> {
    const link = await this.#link.getLink(this.#name);
    const addresses = link ? await this.#link.listAddresses(link.index) : [];
    return { link, addresses };
  }

  async #run(wanted: readonly string[], apply: boolean): Promise<VipReport> {
    const report: VipReport = {
      interface: this.#name,
      present: false,
      up: false,
      owned: [],
      foreign: [],
      added: [],
      removed: [],
      drift: [],
      errors: [],
    };
    let observed: { link: RtLinkInfo | undefined; addresses: RtAddress[] };
    try {
      observed = await this.#read();
    } catch (e) {
      report.errors.push(`reading ${this.#name}: ${errorText(e)}`);
      return report;
    }
    const plan = planVips({
      interfaceName: this.#name,
      wanted,
      observed,
      rule: { ownership: this.#ownership, protocol: this.#protocol, journal: this.#journal },
      ...(this.#previous ? { previous: this.#previous } : {}),
      ...(this.#existingLink ? { existingLink: true } : {}),
      ...(this.#tunnel ? { linkKind: this.#tunnel } : {}),
    });
    report.drift = plan.drift;
    report.foreign = plan.foreign;
    report.errors.push(...plan.problems);
    const owned = new Set(plan.kept);
    let link = observed.link;
    report.present = link !== undefined;
    report.up = link?.up ?? false;
    if (!apply) {
      report.owned = sortAddresses([...owned]);
      return report;
    }
    const failed = new Set<VipAction>();
    /** Runs one action; the error text on failure (reported in plan order, whatever order they end in). */
    const run = async (action: VipAction): Promise<string | undefined> => {
      try {
        link = await this.#act(action, link);
        return undefined;
      } catch (e) {
        failed.add(action);
        return `${describeAction(action, this.#name, this.#tunnel)}: ${errorText(e)}`;
      }
    };
    // Link actions one by one (nothing else can work without the link), then the deletions, then the
    // additions, each a window of requests in flight at once.
    for (const action of plan.actions) {
      if (action.kind !== "createLink" && action.kind !== "setUp") continue;
      const error = await run(action);
      if (error) report.errors.push(error);
      if (error && action.kind === "createLink") break;
    }
    for (const kind of ["deleteAddress", "addAddress"] as const) {
      if (link === undefined) break;
      const batch = plan.actions.filter((a): a is AddressAction => a.kind === kind);
      const errors = await inWindows(batch, ADDRESS_WINDOW, run);
      batch.forEach((action, i) => {
        const error = errors[i];
        if (error) report.errors.push(error);
        else if (action.kind === "addAddress") {
          owned.add(action.address);
          report.added.push(action.address);
        } else report.removed.push(`${action.address}/${action.prefixLength}`);
      });
    }
    // An action that failed leaves its drift unrepaired: say so.
    for (const d of report.drift) {
      if (d.action !== "Repaired") continue;
      const repairedBy = plan.actions.filter((a) =>
        d.kind === "AddressMissing"
          ? a.kind === "addAddress" && `${a.address}/${a.prefixLength}` === d.object
          : a.kind === "createLink" || a.kind === "setUp",
      );
      if (repairedBy.some((a) => failed.has(a)) || (link === undefined && d.kind !== "Foreign")) {
        d.action = "Ignored";
        d.message = "repair failed (see errors)";
      }
    }
    report.present = link !== undefined;
    report.up = link?.up ?? false;
    report.owned = sortAddresses([...owned]);
    report.added = sortAddresses(report.added);
    this.#previous = { linkPresent: link !== undefined, bound: new Set(owned) };
    if (this.#ownership === "journal") this.#journal = new Set(owned);
    return report;
  }

  async #act(action: VipAction, link: RtLinkInfo | undefined): Promise<RtLinkInfo | undefined> {
    switch (action.kind) {
      case "createLink":
        return this.#tunnel
          ? await this.#link.ensureTunnelDevice(this.#tunnel)
          : await this.#link.createDummy(action.name);
      case "setUp":
        await this.#link.setUp(mustHave(link, this.#name).index);
        return { ...mustHave(link, this.#name), up: true };
      case "addAddress":
        await this.#link.addAddress(mustHave(link, this.#name).index, {
          address: action.address,
          prefixLength: action.prefixLength,
          protocol: this.#protocol, // also with the journal ownership: a later kernel upgrade can switch to "protocol"
          noDad: action.family === "IPv6",
        });
        return link;
      case "deleteAddress":
        await this.#link.deleteAddress(mustHave(link, this.#name).index, action);
        return link;
    }
  }
}

function mustHave(link: RtLinkInfo | undefined, name: string): RtLinkInfo {
  if (!link) throw new Error(`${name} does not exist`);
  return link;
}

function describeAction(action: VipAction, name: string, tunnel: TunnelKind | undefined): string {
  switch (action.kind) {
    case "createLink":
      return tunnel ? `loading the ${tunnel} module for ${name}` : `creating dummy interface ${name}`;
    case "setUp":
      return `setting ${name} up`;
    case "addAddress":
      return `adding ${action.address}/${action.prefixLength} to ${name}`;
    case "deleteAddress":
      return `removing ${action.address}/${action.prefixLength} from ${name}`;
  }
}

/** IPv4 first, then IPv6, each in address order. */
function sortAddresses(addresses: string[]): string[] {
  return sortByAddress(addresses, (a) => a);
}
