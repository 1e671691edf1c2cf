// Where `dv sim` and `dv tail` connect: --nats (or NATS_URL) first, then the NATS servers of the
// current context (which `dv dev` records), then nats://127.0.0.1:4222.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { setContext } from "./context.js";
import { DEFAULT_NATS_URL, resolveNats } from "./nats.js";

afterEach(() => {
  vi.unstubAllEnvs();
});

function isolatedConfig(): string {
  const path = join(mkdtempSync(join(tmpdir(), "dv-nats-")), "config.yaml");
  vi.stubEnv("DV_CLI_CONFIG", path);
  return path;
}

describe("the NATS servers of a CLI command", () => {
  it("takes the flag, then the current context's, then the default", async () => {
    const path = isolatedConfig();
    expect(await resolveNats(undefined)).toEqual({
      urls: DEFAULT_NATS_URL,
      source: "the default --nats",
    });

    await setContext({ name: "dev", nats: "nats://127.0.0.1:14222" }, { use: true }, path);
    expect(await resolveNats(undefined)).toEqual({
      urls: "nats://127.0.0.1:14222",
      source: 'the nats of context "dev"',
    });
    expect((await resolveNats("nats://10.0.0.1:4222")).urls).toBe("nats://10.0.0.1:4222");
  });

  it("refuses a context whose nats is not a list of NATS URLs, naming the field", async () => {
    const path = isolatedConfig();
    await expect(
      setContext({ name: "dev", nats: "http://127.0.0.1:4222" }, { use: true }, path),
    ).rejects.toMatchObject({
      issues: [
        expect.objectContaining({ path: ["nats"], message: expect.stringMatching(/NATS URLs/) }),
      ],
    });
    await setContext({ name: "dev", nats: "nats://a:4222,tls://b:4443" }, { use: true }, path);
    expect((await resolveNats(undefined)).urls).toBe("nats://a:4222,tls://b:4443");
  });
});
