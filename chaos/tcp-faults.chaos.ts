// Scenario tcp-faults: a TCP fault proxy (test/support/tcp-relay.ts) between the worker process
// and nats-server, and another between the controller process and PostgreSQL. In turn on each
// link: a 200 ms delay, a blackhole, resets, and a half-open connection, each for 6 s (3 s in
// --quick) while tenants create networks; then the link heals. Checked: the system slows down
// but loses nothing — every network acknowledged was provisioned exactly once, every task
// `succeeded`, no dead letter — and it recovers once the proxy heals (the time from heal to every
// task ended is the recovery time).
import { mkdirSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Plane, startPlane } from "../test/support/plane.js";
import { databaseUrl } from "../test/support/template.js";
import { type Fault, startTcpRelay, type TcpRelay } from "../test/support/tcp-relay.js";
import { networkWorkload } from "./support/workload.js";
import { record, size } from "./support/report.js";

const FAULT_MS = size(6_000, 3_000);
const PER_FAULT = size(10, 4);
const FAULTS: readonly Fault[] = ["delay", "blackhole", "reset", "half-open"];
// DV_CHAOS_TCP_ONLY=controller-pg:half-open runs that one phase (to reproduce a failure).
const ONLY = process.env.DV_CHAOS_TCP_ONLY;

let p: Plane;
const proxies: TcpRelay[] = [];
beforeAll(async () => {
  p = await startPlane({ relay: false });
});
afterAll(async () => {
  for (const proxy of proxies) await proxy.close();
  await p.close();
});

describe("TCP faults between the processes and their servers", () => {
  it("slow the system down but lose nothing, and it recovers when the link heals", async () => {
    const pgUrl = new URL(databaseUrl(p.t.name));
    const natsUrl = new URL(p.nats.url);
    const toPg = await startTcpRelay(Number(pgUrl.port));
    const toNats = await startTcpRelay(Number(natsUrl.port));
    proxies.push(toPg, toNats);
    pgUrl.port = String(toPg.port);
    natsUrl.port = String(toNats.port);
    const controller = await p.spawn(["controller"], {
      DATABASE_URL: pgUrl.toString(),
      ...(process.env.DV_CHAOS_TCP_DEBUG ? { DV_LOG_LEVEL: "debug" } : {}),
    });
    const worker = await p.spawn(["worker", "--service", "nett"], {
      NATS_URL: natsUrl.toString(),
    });
    // What the processes said, when a link does not recover.
    const said = async () =>
      JSON.stringify(
        await p.t.admin.query(
          `SELECT application_name, state, wait_event, left(query, 80) AS query, now() - state_change AS for
             FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'dv-%'`,
        ),
        null,
        1,
      ) +
      [controller, worker]
        .map((d) => `${d.stdout().split("\n").slice(-25).join("\n")}\n${d.stderr().slice(-2_000)}`)
        .join("\n---\n");

    const networks = networkWorkload(p);
    const create = (name: string) => networks.create(name);
    for (let i = 0; i < PER_FAULT; i++) await create(`before-${i}`);
    await networks.settle(60_000);

    const recovery: Record<string, number> = {};
    for (const [link, proxy] of [
      ["worker-nats", toNats],
      ["controller-pg", toPg],
    ] as const) {
      for (const fault of FAULTS) {
        if (ONLY && !ONLY.split(",").includes(`${link}:${fault}`)) continue;
        await proxy.fault(fault, { delayMs: 200 });
        for (let i = 0; i < PER_FAULT; i++) {
          await create(`${link}-${fault}-${i}`);
          await new Promise((r) => setTimeout(r, FAULT_MS / PER_FAULT));
        }
        await proxy.heal();
        const { tookMs } = await networks.settle(120_000).catch(async (err: unknown) => {
          mkdirSync(".cache/chaos", { recursive: true });
          writeFileSync(".cache/chaos/tcp-faults-controller.log", controller.stdout());
          writeFileSync(".cache/chaos/tcp-faults-worker.log", worker.stdout());
          throw new Error(`after ${fault} on ${link}: ${String(err)}\n${await said()}`);
        });
        recovery[`${link} ${fault}`] = tookMs;
      }
    }

    const settled = await networks.settle(10_000);
    record({
      scenario: "tcp-faults",
      faults: Object.keys(recovery).length,
      operations: networks.requested.length,
      lost: settled.lost,
      duplicated: settled.duplicated,
      violations: settled.violations,
      recoveryMs: Math.max(...Object.values(recovery)),
      figures: Object.fromEntries(
        Object.entries(recovery).map(([k, v]) => [`recovery ${k} (ms)`, v]),
      ),
    });
    settled.assert();
    // The processes did go through the proxies (and reconnected after the resets).
    expect(toPg.accepted).toBeGreaterThan(1);
    expect(toNats.accepted).toBeGreaterThan(1);
  });
});
