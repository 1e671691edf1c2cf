/** One problem with one configuration value, named the way the user set it. */
export interface ConfigProblem {
  /** Where the value came from: an environment variable (`DV_HTTP_PORT`) or a file field (`dv.yaml: http.port`). */
  readonly source: string;
  /** What is wrong and what is allowed. */
  readonly message: string;
}

/**
 * Thrown when the process configuration (environment variables and the optional YAML file) is
 * invalid. Carries every problem found, so one run reports them all.
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly code = "DV_CONFIG_INVALID";
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[], options?: ErrorOptions) {
    super(
      `invalid configuration: ${problems.map((p) => `${p.source}: ${p.message}`).join("; ")}`,
      options,
    );
    this.problems = problems;
  }
}

/** Thrown when the configuration file named by `--config` or `DV_CONFIG` cannot be read or parsed. */
export class ConfigFileError extends Error {
  override readonly name = "ConfigFileError";
  readonly code = "DV_CONFIG_FILE";
  readonly path: string;

  constructor(path: string, message: string, options?: ErrorOptions) {
    super(`configuration file ${path}: ${message}`, options);
    this.path = path;
  }
}
