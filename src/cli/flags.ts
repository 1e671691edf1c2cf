/** Flags shared by the commands that start a long-running process. */
export interface ProcessFlags {
  readonly config?: string;
  readonly port?: string;
}

/** Maps process flags onto configuration overrides, named by flag in errors. */
export function configOverrides(
  flags: ProcessFlags,
): { path: readonly string[]; value: unknown; source: string }[] {
  return flags.port === undefined
    ? []
    : [{ path: ["http", "port"], value: flags.port, source: "--port" }];
}
