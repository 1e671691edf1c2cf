// Test services listen below the kernel's range for outgoing connections (32768–60999 on Linux):
// a port picked there could be held by an outgoing connection before the service binds it.
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { freePort, portIsFree } from "./ports.js";

describe("freePort", () => {
  it("hands out ports below 32768 that a listener can take", async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(1024);
      expect(port).toBeLessThan(32768);
    }
    const port = ports[0] as number;
    const server = createServer();
    await new Promise<void>((resolve) => server.listen({ port, host: "127.0.0.1" }, resolve));
    try {
      expect(await portIsFree(port)).toBe(false);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
