import { Command } from "commander";
import { packageVersion } from "../meta/index.js";
import { registerCatalog } from "./commands/catalog.js";
import { registerApply } from "./commands/apply.js";
import { registerAudit } from "./commands/audit.js";
import { registerCompletion } from "./commands/completion.js";
import { registerConfig } from "./commands/config.js";
import { registerDb } from "./commands/db.js";
import { registerDev } from "./commands/dev.js";
import { registerDlq } from "./commands/dlq.js";
import { registerLeases } from "./commands/leases.js";
import { registerQuota } from "./commands/quota.js";
import { registerMigrate } from "./commands/migrate.js";
import { registerResources } from "./commands/resources.js";
import { registerRoles } from "./commands/roles.js";
import { registerSim } from "./commands/sim.js";
import { registerTail } from "./commands/tail.js";
import { registerTasks } from "./commands/tasks.js";
import { registerToken } from "./commands/token.js";

/** The version printed by `dv --version`. */
export const VERSION = packageVersion();

/** Builds the `dv` command tree. Each command lives in `commands/` and registers itself here. */
export function buildProgram(): Command {
  const program = new Command("dv")
    .description("Dataverket control plane and operator CLI")
    .version(VERSION)
    .option("--verbose", "print stack traces for unexpected errors")
    .showSuggestionAfterError(true)
    .exitOverride();
  registerApply(program);
  registerAudit(program);
  registerCompletion(program);
  registerConfig(program);
  registerDb(program);
  registerDev(program);
  registerDlq(program);
  registerLeases(program);
  registerQuota(program);
  registerMigrate(program);
  registerResources(program);
  registerCatalog(program); // after registerResources: it adds to `dv get`
  registerRoles(program);
  registerSim(program);
  registerTail(program);
  registerTasks(program);
  registerToken(program);
  return program;
}
