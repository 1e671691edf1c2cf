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
});
