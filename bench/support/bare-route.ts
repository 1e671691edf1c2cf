// The bare route of the API benchmark: the same framework (Fastify, no plugins) and one route
// that runs the single SELECT a `GET` of a resource by id comes down to, over a pool of the
// same size, and sends the row as JSON. No authentication, no tenant checks, no validation, no
// representation: what is left is the floor the API's overhead is measured against. The SELECT
// is a named (prepared) statement, as the API's is: PostgreSQL parses and plans it once per
// connection, so neither side is charged for planning it again and again.
//   DATABASE_URL=… PORT=… node --import tsx bench/support/bare-route.ts
import Fastify from "fastify";
import pg from "pg";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
const app = Fastify({ logger: false });
app.get<{ Params: { tenant: string; id: string } }>("/bare/:tenant/:id", async (request, reply) => {
  const { rows } = await pool.query({
    name: "bare_get_resource",
    text: "SELECT * FROM inventory.resources WHERE tenant_id = $1 AND id = $2",
    values: [request.params.tenant, request.params.id],
  });
  if (rows.length === 0) return reply.code(404).send({ title: "not found" });
  return rows[0];
});
app.get("/readyz", async () => ({ status: "ready" }));
await app.listen({ host: "127.0.0.1", port: Number(process.env.PORT) });
process.on("SIGTERM", () => {
  void app.close().then(() => pool.end());
});
