export type { Database, Dialect, Orm, Unlisten } from "./database.js";
export { type OpenPgliteOptions, openPglite } from "./pglite.js";
export { type ConnectPostgresOptions, connectPostgres, postgresStartupError } from "./postgres.js";
