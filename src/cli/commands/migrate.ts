import type { Command } from "commander";
import { loadConfig } from "../../config/index.js";
import { Lifecycle } from "../../lifecycle/index.js";
import { createLogger } from "../../observability/index.js";

/** Adds `dv migrate`: bring the database schema up to date, then exit. */
export function registerMigrate(program: Command): void {
  program
    .command("migrate")
    .description(
      "apply pending database migrations (all in one transaction) to DATABASE_URL, or to the embedded dev database when it is unset",
    )
    .option("-c, --config <file>", "YAML configuration file (default: $DV_CONFIG)")
    .option("--status", "only show which migrations are applied")
    .addHelpText(
      "after",
      "\nExamples:\n  DATABASE_URL=postgres://dv@db/dataverket dv migrate\n  dv migrate --status\n",
    )
    .action(async (flags: { config?: string; status?: boolean }) => {
      const config = loadConfig({ file: flags.config });
      const [{ openDatabase }, { migrationStatus, runMigrations }] = await Promise.all([
        import("../../app/index.js"),
        import("../../db/index.js"),
      ]);
      const log = createLogger({
        level: "warn",
        service: "dv-migrate",
        datacenterId: config.datacenterId,
      });
      const lifecycle = new Lifecycle(log);
      try {
        const db = await openDatabase({
          config,
          log,
          lifecycle,
          readiness: [],
          role: "migrate",
          embedded: true,
          migrate: false,
        });
        const before = await migrationStatus(db);
        if (!flags.status) await runMigrations(db);
        const after = flags.status ? before : await migrationStatus(db);
        const applied = after.applied - before.applied;
        process.stdout.write(
          `${db.target}: ${after.applied} of ${after.available} migrations applied` +
            `${flags.status ? "" : ` (${applied} now)`}; latest ${after.latest ?? "none"}\n`,
        );
      } finally {
        await lifecycle.stop("done");
      }
    });
}
