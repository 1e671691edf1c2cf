import { describe, expect, it } from "vitest";
import { ConfigError } from "../config/index.js";
import { StartupError, StartupErrorCode } from "../lifecycle/index.js";
import { ExitCode } from "./exit-codes.js";
import { renderError } from "./render-error.js";

describe("renderError", () => {
  it("prints a startup failure as one line with the fix, exit 3, no stack", () => {
    const err = new StartupError(
      StartupErrorCode.PortInUse,
      "port 8080 (DV_HTTP_PORT) on 127.0.0.1 is already in use",
      "set DV_HTTP_PORT",
      {
        cause: new Error("listen EADDRINUSE"),
      },
    );
    const out = renderError(err, false);
    expect(out.exitCode).toBe(ExitCode.Unavailable);
    expect(out.text).toBe(
      "dv: error: port 8080 (DV_HTTP_PORT) on 127.0.0.1 is already in use (set DV_HTTP_PORT)\n",
    );
  });

  it("prints one line per configuration problem and exits 2", () => {
    const out = renderError(
      new ConfigError([
        { source: "DV_HTTP_PORT", message: "must be an integer" },
        { source: "DV_LOG_LEVEL", message: "must be one of info, warn" },
      ]),
      false,
    );
    expect(out.exitCode).toBe(ExitCode.Usage);
    expect(out.text.trimEnd().split("\n")).toEqual([
      "dv: error: invalid configuration:",
      "  DV_HTTP_PORT: must be an integer",
      "  DV_LOG_LEVEL: must be one of info, warn",
    ]);
  });

  it("hides the stack of an unexpected error unless --verbose", () => {
    const err = new Error("boom");
    expect(renderError(err, false).text).toBe("dv: error: boom (run with --verbose for details)\n");
    expect(renderError(err, true).text).toContain("at ");
  });
});
