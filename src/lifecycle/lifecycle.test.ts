import { describe, expect, it } from "vitest";
import { createLogger } from "../observability/index.js";
import { Lifecycle, StoppedError } from "./index.js";

const log = createLogger({ level: "silent", service: "test", datacenterId: "dc1" });

describe("Lifecycle", () => {
  it("stops resources newest first, once", async () => {
    const order: string[] = [];
    const lifecycle = new Lifecycle(log);
    lifecycle.add("db", async () => void order.push("db"));
    lifecycle.add("nats", async () => void order.push("nats"));
    lifecycle.add("http", async () => void order.push("http"));
    await Promise.all([lifecycle.stop("test"), lifecycle.stop("again")]);
    expect(order).toEqual(["http", "nats", "db"]);
  });

  it("stops a resource registered after stopping began, and waits for it", async () => {
    const order: string[] = [];
    const lifecycle = new Lifecycle(log);
    lifecycle.add("http", async () => void order.push("http"));
    const stopping = lifecycle.stop("signal during startup");
    expect(() => lifecycle.throwIfStopping()).toThrow(StoppedError);
    lifecycle.add("late", async () => {
      await new Promise((r) => setTimeout(r, 20));
      order.push("late");
    });
    await lifecycle.stop("again");
    await stopping;
    expect(order).toEqual(["http", "late"]);
  });

  it("does not let one stuck or failing resource keep the others open", async () => {
    const order: string[] = [];
    const lifecycle = new Lifecycle(log, 30);
    lifecycle.add("db", async () => void order.push("db"));
    lifecycle.add("stuck", () => new Promise<void>(() => undefined));
    lifecycle.add("broken", () => Promise.reject(new Error("boom")));
    await lifecycle.stop("test");
    expect(order).toEqual(["db"]);
  });
});
