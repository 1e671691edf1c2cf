import { type Command, Option } from "commander";
import { type CliContext, currentContext } from "./context.js";
import { ApiError, CliError } from "./errors.js";
import { ExitCode } from "./exit-codes.js";

/**
 * Where the API is and who calls it: `--server`/`DV_SERVER` and `--token`/`DV_TOKEN`, else the
 * current context of the CLI's config file (`dv config`), else the `npm run dev` address.
 */
export interface ApiTarget {
  readonly server?: string | undefined;
  readonly token?: string | undefined;
}

/** The address `npm run dev` serves on. */
export const DEFAULT_SERVER = "http://127.0.0.1:8080";

/** Flags first, then the current context, then the dev default. */
export async function resolveTarget(
  flags: ApiTarget,
): Promise<{ server: string; token: string | undefined; context: CliContext | undefined }> {
  const context = flags.server && flags.token ? undefined : await currentContext();
  return {
    server: flags.server ?? context?.server ?? DEFAULT_SERVER,
    token: flags.token ?? context?.token,
    context,
  };
}

/** Adds `--server` and `--token` (with their environment variables) to a command. */
export function withApiOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        "--server <url>",
        `the Dataverket API (default: the current context's, else ${DEFAULT_SERVER})`,
      ).env("DV_SERVER"),
    )
    .addOption(
      new Option("--token <jwt>", "bearer token (npx dv token create --role operator in dev)").env(
        "DV_TOKEN",
      ),
    );
}

const EXIT_BY_STATUS: Readonly<Record<number, ExitCode>> = {
  400: ExitCode.Usage,
  404: ExitCode.NotFound,
  409: ExitCode.Conflict,
  412: ExitCode.Conflict,
  503: ExitCode.Unavailable,
};

/**
 * Calls the API and returns the parsed JSON body. A problem response becomes a {@link CliError}
 * with its detail (and field errors) on one line; an unreachable server says how to start one.
 */
export async function callApi<T>(
  flags: ApiTarget,
  method: "GET" | "POST" | "PATCH" | "PUT" | "DELETE",
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<T> {
  // The whole exchange, body included, within 30 s.
  const response = await requestApi(flags, method, path, {
    body,
    headers,
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/**
 * Calls the API and returns the successful response unread (a download). Errors are those of
 * {@link callApi}; `signal` aborts the call, and the reading of the body too.
 */
export async function requestApi(
  flags: ApiTarget,
  method: "GET" | "POST" | "PATCH" | "PUT" | "DELETE",
  path: string,
  options: {
    body?: unknown;
    headers?: Record<string, string>;
    signal: AbortSignal;
    accept?: string;
  },
): Promise<Response> {
  const { body, headers = {} } = options;
  const target = await resolveTarget(flags);
  let server: URL;
  try {
    server = new URL(target.server);
  } catch {
    throw new CliError(
      `--server "${target.server}" is not a URL (like http://127.0.0.1:8080)`,
      ExitCode.Usage,
    );
  }
  const url = new URL(`/api/v1${path}`, server);
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: {
        accept: options.accept ?? "application/json",
        ...(target.token ? { authorization: `Bearer ${target.token}` } : {}),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: options.signal,
    });
  } catch (err) {
    throw new CliError(
      `cannot reach the API at ${server.origin}: start it (npm run dev) or pass --server`,
      ExitCode.Unavailable,
      { cause: err },
    );
  }
  if (response.ok) return response;
  const text = await response.text();
  // A problem document (RFC 9457): its detail names the fields at fault.
  let problem: { title?: string; detail?: string } = {};
  try {
    problem = JSON.parse(text) as typeof problem;
  } catch {
    // not a problem document; the status says enough
  }
  const detail = problem.detail ?? problem.title ?? response.statusText;
  const hint =
    response.status === 401
      ? target.token
        ? " (the token was refused: mint a new one)"
        : " (pass --token, set DV_TOKEN, or use a context with a token: dv config set-context; npm run dev writes one)"
      : "";
  throw new ApiError(
    `${method} ${url.pathname} answered ${response.status}: ${detail}${hint}`,
    EXIT_BY_STATUS[response.status] ?? ExitCode.Failed,
    { status: response.status, detail: `${detail}${hint}` },
  );
}
