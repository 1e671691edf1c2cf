import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { type ListOptions, parseLabelSelector } from "../kernel/index.js";
import { RequestError } from "./problems.js";

/** Bytes of the HMAC-SHA256 kept in a cursor (128 bits: forging one is out of reach). */
const MAC_BYTES = 16;

/**
 * The `nextCursor`s of the API's lists, opaque and tamper-evident: the position in the list
 * (`<base64url position>.<base64url MAC>`), signed with HMAC-SHA256 over the route it was given
 * out for. A cursor changed in any way, made up, or given out by another list is a 400 naming
 * `/querystring/cursor`, so no list ever reads a position it did not write (a made-up position
 * reached the database as a malformed UUID, a 500). The key is shared by every API replica of
 * one database (`runtime.signing_keys`), so a cursor from one is good at another.
 */
export class Cursors {
  readonly #key: Uint8Array;

  constructor(key: Uint8Array) {
    if (key.length < 32) throw new Error("a cursor key needs at least 32 bytes");
    this.#key = key;
  }

  /** Cursors signed with a key of this process only (no database: the OpenAPI document). */
  static random(): Cursors {
    return new Cursors(new Uint8Array(randomBytes(32)));
  }

  /** The `nextCursor` that continues the request's list after `after`; none on the last page. */
  next(request: FastifyRequest, after: string | undefined): string | undefined {
    if (after === undefined) return undefined;
    const position = Buffer.from(after, "utf8").toString("base64url");
    return `${position}.${this.#mac(request, position).toString("base64url")}`;
  }

  /**
   * The position a `cursor` this route gave out names.
   *
   * @throws {RequestError} 400 naming `/querystring/cursor` for anything else.
   */
  after(request: FastifyRequest, cursor: string | undefined): string | undefined {
    if (cursor === undefined) return undefined;
    const [position, mac, ...rest] = cursor.split(".");
    if (position && mac && rest.length === 0) {
      const given = Buffer.from(mac, "base64url");
      const expected = this.#mac(request, position);
      // A base64url string decodes whatever it holds: compare the re-encoding too, so a cursor
      // with another spelling of the same bytes is not a second valid cursor.
      if (
        given.length === expected.length &&
        timingSafeEqual(given, expected) &&
        given.toString("base64url") === mac
      ) {
        return Buffer.from(position, "base64url").toString("utf8");
      }
    }
    throw new RequestError(
      400,
      "invalid-request",
      "The request is not valid",
      "the cursor is not one this list gave out",
      {
        errors: [
          {
            pointer: "/querystring/cursor",
            message: "pass back the nextCursor of the previous page of the same list, unchanged",
          },
        ],
      },
    );
  }

  /** List options from the `limit`, `cursor` and `labelSelector` query parameters. */
  options(
    request: FastifyRequest,
    query: { limit: number; cursor?: string | undefined; labelSelector?: string | undefined },
  ): ListOptions {
    return {
      limit: query.limit,
      after: this.after(request, query.cursor),
      labels: query.labelSelector ? parseLabelSelector(query.labelSelector) : [],
    };
  }

  #mac(request: FastifyRequest, position: string): Buffer {
    // Bound to the route (its template, not the URL): a cursor of the audit trail is no cursor
    // of a project list, whose positions are of another shape.
    const route = `${request.method} ${request.routeOptions.url ?? ""}`;
    return createHmac("sha256", this.#key)
      .update(`${route}\n${position}`)
      .digest()
      .subarray(0, MAC_BYTES);
  }
}
