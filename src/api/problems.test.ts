import { describe, expect, it } from "vitest";
import { toProblem } from "./problems.js";

describe("problems", () => {
  it("sheds a request with 503 database-busy and Retry-After when the pool had no connection for it", () => {
    // pg-pool's error, as it arrives bare or wrapped by drizzle.
    const bare = new Error("timeout exceeded when trying to connect");
    for (const err of [bare, new Error("Failed query: begin", { cause: bare })]) {
      const { body, headers } = toProblem(err);
      expect(body).toMatchObject({
        type: "https://dataverket.io/problems/database-busy",
        status: 503,
        title: "The database is busy",
      });
      expect(headers["retry-after"]).toBe("2");
    }
    expect(toProblem(new Error("something else")).body.status).toBe(500);
  });

  it("answers 503 database-unavailable when PostgreSQL went away, and 500 for what it refused otherwise", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), {
      code: "ECONNREFUSED",
    });
    const shutdown = Object.assign(
      new Error("terminating connection due to administrator command"),
      { code: "57P01" },
    );
    const broken = new Error("Client has encountered a connection error and is not queryable");
    for (const err of [refused, shutdown, new Error("Failed query: commit", { cause: broken })]) {
      const { body, headers } = toProblem(err);
      expect(body).toMatchObject({
        type: "https://dataverket.io/problems/database-unavailable",
        status: 503,
      });
      expect(headers["retry-after"]).toBe("2");
    }
    // A statement PostgreSQL refused is not an outage.
    const syntax = Object.assign(new Error("syntax error"), { code: "42601" });
    expect(toProblem(syntax).body.status).toBe(500);
  });
});
