import { randomBytes } from "node:crypto";
import { eq } from "drizzle-orm";
import {
  ContextRole,
  ContextStore,
  type Database,
  inTransaction,
  SqlState,
  sqlStateOf,
} from "../../db/index.js";
import { signingKeys } from "./schema.js";

/**
 * Secrets every process of one database shares (`runtime.signing_keys`): the first process that
 * asks for one by name makes it, every other reads the same.
 */
export class SigningKeyStore extends ContextStore {
  constructor(db: Database) {
    super(db, ContextRole.runtime);
  }

  /**
   * The key named `name` (32 bytes), made now when there is none yet; undefined when there is
   * none and the database refuses writes (a replica whose primary never made it).
   */
  async get(name: string): Promise<Uint8Array | undefined> {
    const read = async (): Promise<string | undefined> => {
      const [row] = await this.reading(undefined, (q) =>
        q
          .select({ secret: signingKeys.secret })
          .from(signingKeys)
          .where(eq(signingKeys.name, name)),
      );
      return row?.secret;
    };
    let secret = await read();
    if (secret === undefined) {
      try {
        // Two processes starting at once: the first insert wins, the other reads what it wrote.
        await inTransaction(this.db, (tx) =>
          this.inTx(tx, (q) =>
            q
              .insert(signingKeys)
              .values({ name, secret: randomBytes(32).toString("base64url") })
              .onConflictDoNothing(),
          ),
        );
      } catch (err) {
        if (sqlStateOf(err) === SqlState.ReadOnlyTransaction) return undefined;
        throw err;
      }
      secret = await read();
    }
    return secret === undefined ? undefined : new Uint8Array(Buffer.from(secret, "base64url"));
  }
}
