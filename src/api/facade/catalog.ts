import {
  CatalogReads,
  type DatacenterOffer,
  type NetworkPoolFree,
  type ServerCount,
} from "../../contexts/inventory/index.js";
import { type PlatformObject, PlatformStore } from "../../contexts/platform/index.js";
import type { Database } from "../../db/index.js";
import { NotFoundError, type Page } from "../../kernel/index.js";
import { type CallContext, requireOperator } from "./scope.js";

/** A platform kind of the catalog. */
export type CatalogKind = "Datacenter" | "MachineClass" | "NetworkPool" | "ServerPool";

/** A platform object of the catalog with what is free of it now. */
export interface CatalogEntry {
  readonly object: PlatformObject;
  /** A datacenter's pools, classes and storage. */
  readonly offer?: DatacenterOffer;
  /** A network pool's free VLANs and addresses. */
  readonly network?: NetworkPoolFree;
  /** A server pool's servers, or a machine class's, by pool and class. */
  readonly servers?: readonly ServerCount[];
}

/** What a catalog list is asked for: a page after a name, maybe of one datacenter only. */
export interface CatalogListOptions {
  readonly limit: number;
  readonly after?: string | undefined;
  readonly datacenter?: string | undefined;
}

/** `items` after `after` by name, `limit` of them, with the name to continue after. */
function pageOf<T>(items: readonly T[], nameOf: (t: T) => string, o: CatalogListOptions): Page<T> {
  const after = o.after;
  // Ordered by code point here, not by the database's collation, so that `>` continues it.
  const rest = items
    .filter((i) => after === undefined || nameOf(i) > after)
    .sort((a, b) => (nameOf(a) < nameOf(b) ? -1 : nameOf(a) > nameOf(b) ? 1 : 0));
  const page = rest.slice(0, o.limit);
  const last = page.at(-1);
  return rest.length > o.limit && last !== undefined
    ? { items: page, next: nameOf(last) }
    : { items: page };
}

/**
 * The catalog: the platform objects a tenant may name in a request — datacenters, machine
 * classes, network pools, server pools — with their conditions and what is free of them now,
 * readable by every caller; and every platform object with its full status, for operators.
 *
 * Every read is a fixed number of statements (the kind's objects, then grouped counts of the
 * inventory), whatever the number of objects: the platform configuration is dozens of objects,
 * so a list reads them all and pages by name in memory.
 */
export class CatalogFacade {
  readonly #platform: PlatformStore;
  readonly #reads: CatalogReads;

  constructor(deps: { db: Database }) {
    this.#platform = new PlatformStore(deps.db);
    this.#reads = new CatalogReads(deps.db);
  }

  /** A page of the catalog's objects of `kind`, by name. */
  async listCatalog(
    _ctx: CallContext,
    kind: CatalogKind,
    options: CatalogListOptions,
  ): Promise<Page<CatalogEntry>> {
    const entries = await this.#entries(kind);
    const dc = options.datacenter;
    const inDatacenter =
      dc === undefined
        ? entries
        : entries.filter((e) =>
            kind === "MachineClass"
              ? (e.servers ?? []).some((s) => s.datacenter === dc && s.total > 0)
              : kind === "Datacenter"
                ? e.object.name === dc
                : e.object.spec.datacenter === dc,
          );
    return pageOf(inDatacenter, (e) => e.object.name, options);
  }

  /** @throws {NotFoundError} naming the object when the platform has none of that name. */
  async getCatalog(_ctx: CallContext, kind: CatalogKind, name: string): Promise<CatalogEntry> {
    const entry = (await this.#entries(kind)).find((e) => e.object.name === name);
    if (!entry) throw new NotFoundError(kind, `"${name}"`);
    return entry;
  }

  /** A page of the platform objects of `kind` as recorded, full status (operators). */
  async listPlatform(
    ctx: CallContext,
    kind: string,
    options: CatalogListOptions,
  ): Promise<Page<PlatformObject>> {
    requireOperator(ctx, "read the platform configuration");
    return pageOf(await this.#platform.list(kind), (o) => o.name, options);
  }

  /** @throws {NotFoundError} */
  async getPlatform(ctx: CallContext, kind: string, name: string): Promise<PlatformObject> {
    requireOperator(ctx, "read the platform configuration");
    const found = (await this.#platform.list(kind)).find((o) => o.name === name);
    if (!found) throw new NotFoundError(kind, `"${name}"`);
    return found;
  }

  async #entries(kind: CatalogKind): Promise<CatalogEntry[]> {
    const objects = await this.#platform.list(kind);
    switch (kind) {
      case "Datacenter": {
        const offers = await this.#reads.datacenters();
        return objects.map((object) => {
          const offer = offers.get(object.name);
          return offer ? { object, offer } : { object };
        });
      }
      case "NetworkPool": {
        const free = await this.#reads.networkPools();
        return objects.map((object) => {
          const network = free.get(object.name);
          return network ? { object, network } : { object };
        });
      }
      case "ServerPool": {
        const counts = await this.#reads.servers();
        return objects.map((object) => ({
          object,
          servers: counts.filter((c) => c.pool === object.name),
        }));
      }
      case "MachineClass": {
        const counts = await this.#reads.servers();
        return objects.map((object) => ({
          object,
          servers: counts.filter((c) => c.machineClass === object.name),
        }));
      }
    }
  }
}
