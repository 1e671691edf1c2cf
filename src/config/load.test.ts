import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, ConfigFileError, loadConfig } from "./index.js";

const cwd = "/srv/dv";

function fileWith(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "dv-config-"));
  const path = join(dir, "dv.yaml");
  writeFileSync(path, text);
  return path;
}

function problemsOf(fn: () => unknown): { source: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  it("runs on embedded defaults when nothing is set", () => {
    const config = loadConfig({ env: {}, cwd });
    expect(config.http).toEqual({ host: "127.0.0.1", port: 8080, bodyLimitBytes: 1024 * 1024 });
    expect(config.database.url).toBeUndefined();
    expect(config.nats.url).toBeUndefined();
    expect(config.database.pgliteDir).toBe("/srv/dv/.cache/dev/pglite");
    expect(config.platform.configDir).toBe("/srv/dv/config/platform");
    expect(config.datacenterId).toBe("dc1");
  });

  it("takes the environment over the file, and flags over both", () => {
    const file = fileWith("http:\n  port: 9000\n  host: 0.0.0.0\nlog:\n  level: debug\n");
    const config = loadConfig({
      env: { DV_HTTP_PORT: "9100", DATABASE_URL: "postgres://u@db:5432/dv" },
      file,
      cwd,
    });
    expect(config.http.port).toBe(9100);
    expect(config.http.host).toBe("0.0.0.0");
    expect(config.log.level).toBe("debug");
    expect(config.database.url).toBe("postgres://u@db:5432/dv");
    const flagged = loadConfig({
      env: { DV_HTTP_PORT: "9100" },
      file,
      cwd,
      overrides: [{ path: ["http", "port"], value: "9200", source: "--port" }],
    });
    expect(flagged.http.port).toBe(9200);
  });

  it("treats an empty variable as unset", () => {
    expect(loadConfig({ env: { DATABASE_URL: "", DV_HTTP_PORT: "" }, cwd }).http.port).toBe(8080);
  });

  it("reports every bad value at once, each named by its variable and what is allowed", () => {
    const problems = problemsOf(() =>
      loadConfig({
        env: {
          DV_HTTP_PORT: "80a",
          DV_LOG_LEVEL: "loud",
          DATABASE_URL: "mysql://admin:hunter2@db/dv",
          DV_DATACENTER_ID: "Oslo_1",
        },
        cwd,
      }),
    );
    const bySource = Object.fromEntries(problems.map((p) => [p.source, p.message]));
    expect(Object.keys(bySource).sort()).toEqual(
      ["DATABASE_URL", "DV_DATACENTER_ID", "DV_HTTP_PORT", "DV_LOG_LEVEL"].sort(),
    );
    expect(bySource.DV_HTTP_PORT).toBe('must be an integer from 0 to 65535 (got "80a")');
    expect(bySource.DV_LOG_LEVEL).toContain("must be one of trace, debug, info");
    expect(bySource.DATABASE_URL).toContain("postgres://");
    // The password of a rejected URL never reaches the terminal.
    expect(bySource.DATABASE_URL).not.toContain("hunter2");
    expect(bySource.DV_DATACENTER_ID).toContain("DNS label");
  });

  it("rejects a port out of range and names the flag that set it", () => {
    const problems = problemsOf(() =>
      loadConfig({
        env: {},
        cwd,
        overrides: [{ path: ["http", "port"], value: "70000", source: "--port" }],
      }),
    );
    expect(problems).toEqual([
      { source: "--port", message: 'must be an integer from 0 to 65535 (got "70000")' },
    ]);
  });

  it("names unknown and mistyped fields of the file with the file and the field path", () => {
    const file = fileWith("http:\n  prot: 80\nnats: 4222\n");
    const problems = problemsOf(() => loadConfig({ env: {}, file, cwd }));
    expect(problems).toContainEqual({
      source: `${file}: http.prot`,
      message: "unknown field; remove it or check its spelling",
    });
    expect(problems).toContainEqual({
      source: `${file}: nats`,
      message: "must be a mapping of fields",
    });
  });

  it("says which file is missing or malformed", () => {
    expect(() => loadConfig({ env: {}, file: "/nonexistent/dv.yaml", cwd })).toThrow(
      ConfigFileError,
    );
    expect(() => loadConfig({ env: {}, file: fileWith("- a\n- b\n"), cwd })).toThrow(
      /must be a YAML mapping/,
    );
    expect(() => loadConfig({ env: {}, file: fileWith("http: [\n"), cwd })).toThrow(
      /not valid YAML/,
    );
  });

  it("reads the file named by DV_CONFIG", () => {
    const file = fileWith("datacenterId: osl1\n");
    expect(loadConfig({ env: { DV_CONFIG: file }, cwd }).datacenterId).toBe("osl1");
  });

  it("returns a frozen object", () => {
    const config = loadConfig({ env: {}, cwd });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.http)).toBe(true);
  });
});
