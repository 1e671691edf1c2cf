// The fault proxy of the TCP-fault scenario (test/support/tcp-relay.ts), against a real echo
// server on loopback: each fault does to the bytes what it says.
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTcpRelay, type TcpRelay } from "../../test/support/tcp-relay.js";

let echo: Server;
let relay: TcpRelay;
const received: string[] = [];

beforeAll(async () => {
  echo = createServer((s) => {
    s.on("data", (d) => {
      received.push(d.toString());
      s.write(d);
    });
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
  const address = echo.address();
  relay = await startTcpRelay(typeof address === "object" && address ? address.port : 0);
});
afterAll(async () => {
  await relay.close();
  await new Promise<void>((r) => echo.close(() => r()));
});

function open(): Promise<Socket & { replies: string[]; ended: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ port: relay.port, host: "127.0.0.1" });
    const replies: string[] = [];
    s.on("data", (d) => replies.push(d.toString()));
    const ended = new Promise<string>((r) => {
      s.on("error", (e: NodeJS.ErrnoException) => r(e.code ?? "error"));
      s.on("close", () => r("closed"));
    });
    s.once("connect", () => resolve(Object.assign(s, { replies, ended })));
    s.once("error", reject);
  });
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(check: () => boolean, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await sleep(10);
}

describe("the TCP fault proxy", () => {
  it("forwards both ways, holds everything in a blackhole, and delivers it in order when healed", async () => {
    const s = await open();
    s.write("one");
    await until(() => s.replies.join("") === "one");
    expect(s.replies.join("")).toBe("one");
    await relay.fault("blackhole");
    s.write("two");
    await sleep(200);
    expect(received).not.toContain("two");
    expect(s.replies.join("")).toBe("one");
    expect(s.destroyed).toBe(false);
    await relay.heal();
    s.write("three");
    await until(() => s.replies.join("") === "onetwothree");
    expect(s.replies.join("")).toBe("onetwothree");
    s.destroy();
  });

  it("passes the client's bytes but not the server's when half-open, and resets it when healed", async () => {
    const s = await open();
    await relay.fault("half-open");
    s.write("half");
    await until(() => received.includes("half"));
    expect(received).toContain("half");
    await sleep(100);
    expect(s.replies).toEqual([]);
    await relay.heal();
    // The answer it lost cannot be made up for: the connection is reset.
    expect(await s.ended).toBe("ECONNRESET");
  });

  it("delays without reordering", async () => {
    const s = await open();
    await relay.fault("delay", { delayMs: 150 });
    const sent = Date.now();
    s.write("a");
    s.write("b");
    await until(() => s.replies.join("") === "ab");
    // Nothing can arrive before the delay (a lower bound: a slow machine only makes it later).
    expect(Date.now() - sent).toBeGreaterThanOrEqual(150);
    expect(s.replies.join("")).toBe("ab");
    await relay.heal();
    s.destroy();
  });

  it("resets open connections and every new one, and refuses them when cut", async () => {
    const s = await open();
    await relay.fault("reset");
    expect(await s.ended).toBe("ECONNRESET");
    // A new connection is reset as soon as it is accepted (before or after the client's connect).
    const fresh = createConnection({ port: relay.port, host: "127.0.0.1" });
    expect(
      await new Promise((r) => fresh.on("error", (e: NodeJS.ErrnoException) => r(e.code))),
    ).toBe("ECONNRESET");
    await relay.cut();
    await expect(open()).rejects.toMatchObject({ code: "ECONNREFUSED" });
    await relay.heal();
    const healed = await open();
    healed.write("back");
    await until(() => healed.replies.join("") === "back");
    expect(healed.replies.join("")).toBe("back");
    healed.destroy();
  });
});
