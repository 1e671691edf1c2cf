import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";

/** Base of the `type` URIs of our problems; each is documented in docs/api.md. */
export const PROBLEM_BASE = "https://dataverket.io/problems/";

/** The media type of every error response (RFC 9457). */
export const PROBLEM_MEDIA_TYPE = "application/problem+json";

/** A problem response (RFC 9457) before serialisation. */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  correlationId?: string;
  errors?: { pointer: string; message: string }[];
  /** On `quota-exceeded`: which quota, its limit, what is used and what was asked. */
  quota?: { name: string; scope: string; limit: number; used: number; requested: number };
}

/** A problem of type `${PROBLEM_BASE}${slug}`. */
export const problem = (
  status: number,
  slug: string,
  title: string,
  detail: string,
): ProblemBody => ({
  type: `${PROBLEM_BASE}${slug}`,
  title,
  status,
  detail,
});

/**
 * The problem a connection gets when Node's HTTP parser refuses its request before any route
 * sees it: headers (with the request line) over the server's limit are a 431, anything else that
 * is not HTTP a 400. Timeouts are a 408.
 */
export function clientErrorProblem(code: string | undefined, maxHeaderBytes: number): ProblemBody {
  if (code === "HPE_HEADER_OVERFLOW") {
    return problem(
      431,
      "request-header-fields-too-large",
      "The request's headers are too large",
      `the request line and headers together are over ${maxHeaderBytes} bytes; send a shorter URL or fewer, smaller headers`,
    );
  }
  if (code === "ERR_HTTP_REQUEST_TIMEOUT") {
    return problem(
      408,
      "request-timeout",
      "The request took too long",
      "the request was not received in time",
    );
  }
  return problem(
    400,
    "invalid-request",
    "The request is not valid",
    "the request is not valid HTTP",
  );
}

/**
 * Node's `clientError` handling, as problem+json: answers a request the HTTP parser refused
 * (Fastify's default answers `{"error": …}` as application/json) and closes the connection.
 */
export function writeClientError(
  err: NodeJS.ErrnoException,
  socket: Socket,
  maxHeaderBytes: number,
): void {
  // A reset connection has no one left to answer.
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  if (socket.writable) {
    const answer = clientErrorProblem(err.code, maxHeaderBytes);
    const body = JSON.stringify(answer);
    socket.write(
      `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? ""}\r\n` +
        `Content-Type: ${PROBLEM_MEDIA_TYPE}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        "Connection: close\r\n\r\n" +
        body,
    );
  }
  socket.destroy(err);
}
