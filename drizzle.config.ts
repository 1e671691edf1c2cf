// drizzle-kit configuration: generates SQL migrations from the context schemas.
//   npx drizzle-kit generate --name <what-changed>     after changing a schema.ts
//   npx drizzle-kit generate --custom --name <what>    for SQL drizzle cannot express
// Migrations are committed; `npm test` fails when a schema change has no migration.
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: ["./src/contexts/*/schema.ts", "./src/simulator/schema.ts"],
  out: "./src/db/migrations",
  casing: "snake_case",
  schemaFilter: ["tenancy", "inventory", "task", "audit", "platform", "runtime", "simulator"],
  migrations: { prefix: "index" },
});
