import { type Command, Option } from "commander";
import type { RoleOptions, RunningRole } from "../../app/index.js";
import { loadConfig, systemSearchPath } from "../../config/index.js";
import { Lifecycle, StoppedError, stopOnSignals } from "../../lifecycle/index.js";
import { WORKER_SERVICES, type WorkerService } from "../../messaging/index.js";
import { packageRoot } from "../../meta/index.js";
import { createLogger } from "../../observability/index.js";
import { configOverrides, type ProcessFlags } from "../flags.js";

/** The control plane, loaded only by the commands that run it. */
const app = () => import("../../app/index.js");

async function run(
  service: string,
  flags: ProcessFlags,
  start: (options: RoleOptions) => Promise<RunningRole>,
): Promise<void> {
  const config = loadConfig({ file: flags.config, overrides: configOverrides(flags) });
  const { openTracing } = await app();
  const log = createLogger({ level: config.log.level, service, datacenterId: config.datacenterId });
  const lifecycle = new Lifecycle(log);
  const stopped = stopOnSignals(lifecycle, log);
  await openTracing({
    config,
    log,
    lifecycle,
    serviceName: service.replace(/^dv-/, "dataverket-"),
  });
  try {
    const running = await start({
      config,
      log,
      lifecycle,
      repoRoot: packageRoot(),
      searchPath: systemSearchPath(),
    });
    log.info({ url: running.url }, `${running.summary} ready`);
  } catch (err) {
    if (!(err instanceof StoppedError)) {
      await lifecycle.stop("startup failed");
      throw err;
    }
  }
  await stopped;
}

const common = (command: Command): Command =>
  command
    .option("-c, --config <file>", "YAML configuration file (default: $DV_CONFIG)")
    .option(
      "-p, --port <port>",
      "port of /healthz, /readyz and /metrics (and the API) (default: $DV_HTTP_PORT or 8080)",
    );

/** Adds the process roles `dv api`, `dv controller` and `dv worker`. */
export function registerRoles(program: Command): void {
  common(program.command("api"))
    .description(
      "run the public API /api/v1 (needs DATABASE_URL and DV_AUTH_JWKS_URL or DV_AUTH_PUBLIC_KEY_FILE)",
    )
    .addHelpText(
      "after",
      "\nExample:\n  DATABASE_URL=postgres://dv@db/dataverket DV_AUTH_JWKS_URL=https://idp/jwks dv api --port 8080\n",
    )
    .action((flags: ProcessFlags) =>
      run("dv-api", flags, async (o) => (await app()).startApiRole(o)),
    );

  common(program.command("controller"))
    .description(
      "run the controllers: leases, reconcilers, outbox relay, dead-letter processor (needs DATABASE_URL and NATS_URL)",
    )
    .addHelpText(
      "after",
      "\nExample:\n  DATABASE_URL=postgres://dv@db/dataverket NATS_URL=nats://nats:4222 dv controller --port 9091\n",
    )
    .action((flags: ProcessFlags) =>
      run("dv-controller", flags, async (o) => (await app()).startControllerRole(o)),
    );

  common(program.command("worker"))
    .description("run a domain worker with the simulated driver (needs DATABASE_URL and NATS_URL)")
    .addOption(
      new Option("-s, --service <service>", "which domain service")
        .choices([...WORKER_SERVICES])
        .makeOptionMandatory(),
    )
    .addHelpText(
      "after",
      "\nExample:\n  DATABASE_URL=postgres://dv@db/dataverket NATS_URL=nats://nats:4222 dv worker --service nett --port 9092\n",
    )
    .action((flags: ProcessFlags & { service: WorkerService }) =>
      run(`dv-worker-${flags.service}`, flags, async (options) =>
        (await app()).startWorkerRole({ ...options, service: flags.service }),
      ),
    );
}
