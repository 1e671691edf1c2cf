import type { FastifyBaseLogger } from "fastify";
import type { Bindings, ChildLoggerOptions, Level } from "pino";
import type { Logger } from "../observability/index.js";

/**
 * The logger of one request: the server's logger with the request's correlation id, made only
 * when the request logs something at a level that is on. Fastify gives every request a child
 * logger, and making one is not free (its bindings pass through the redaction of secret fields,
 * tens of microseconds); below `info`, most requests log nothing at all.
 */
class RequestLogger implements FastifyBaseLogger {
  readonly #parent: Logger;
  readonly #bindings: Bindings;
  #child: Logger | undefined;

  constructor(parent: Logger, bindings: Bindings) {
    this.#parent = parent;
    this.#bindings = bindings;
  }

  #log(): Logger {
    this.#child ??= this.#parent.child(this.#bindings);
    return this.#child;
  }

  get level(): string {
    return (this.#child ?? this.#parent).level;
  }

  set level(level: string) {
    this.#log().level = level;
  }

  #emit(level: Level, args: unknown[]): void {
    if (!(this.#child ?? this.#parent).isLevelEnabled(level)) return;
    const log = this.#log();
    log[level](...(args as Parameters<Logger["info"]>));
  }

  fatal(...args: unknown[]): void {
    this.#emit("fatal", args);
  }
  error(...args: unknown[]): void {
    this.#emit("error", args);
  }
  warn(...args: unknown[]): void {
    this.#emit("warn", args);
  }
  info(...args: unknown[]): void {
    this.#emit("info", args);
  }
  debug(...args: unknown[]): void {
    this.#emit("debug", args);
  }
  trace(...args: unknown[]): void {
    this.#emit("trace", args);
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#log().child(bindings, options);
  }
}

/**
 * Fastify's `childLoggerFactory`: a {@link RequestLogger}, or at once a real child when the route
 * asks for options of its own (a log level).
 */
export function requestLogger(
  parent: FastifyBaseLogger,
  bindings: Bindings,
  options: ChildLoggerOptions,
): FastifyBaseLogger {
  if (Object.keys(options).length > 0) return parent.child(bindings, options);
  return new RequestLogger(parent as Logger, bindings);
}
