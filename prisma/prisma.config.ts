// Configuration for the Prisma CLI, used only through scripts/db.ts (which passes --config).
//
// engine "js" runs the schema engine as WebAssembly over a driver adapter, so the CLI needs no
// native engine download (this machine and CI have no access to Prisma's binary host). Together
// with engineType = "client" in the schema, `prisma generate`, `migrate diff` and `migrate deploy`
// run fully offline. BERTH_PRISMA_PROVIDER ("sqlite" | "postgresql") and DATABASE_URL are set by
// apps/orchestrator/src/db/prisma-cli.ts, which every command goes through.
import path from "node:path";
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaPg } from "@prisma/adapter-pg";
import { defineConfig } from "prisma/config";

const here = import.meta.dirname;
const postgres = process.env.BERTH_PRISMA_PROVIDER === "postgresql";
// Commands that do not connect (generate, migrate diff) still build the adapter: give it a harmless
// URL. PrismaPg connects lazily; an in-memory SQLite database is also the shadow database for diffs.
const url = process.env.DATABASE_URL ?? (postgres ? "postgresql://localhost/unused" : "file::memory:");

/**
 * Works around prisma/orm#27403 (open in 6.19.3): the schema engine reads PostgreSQL catalog
 * columns of the internal types `name` and `"char"`, which @prisma/adapter-pg rejects, so every
 * migrate command fails on PostgreSQL. pg already returns their values as strings: report them
 * as TEXT. Applies to the CLI only; the orchestrator's client never reads catalog columns.
 */
const TEXT = 25;
const TEXT_ARRAY = 1009;
// OIDs from pg_type: "char", name, regproc, regclass, regtype, and the arrays of "char" and name.
const CATALOG_TEXT_TYPES = new Map([[18, TEXT], [19, TEXT], [24, TEXT], [2205, TEXT], [2206, TEXT], [1002, TEXT_ARRAY], [1003, TEXT_ARRAY]]);

function readNameColumnsAsText(factory: PrismaPg): PrismaPg {
  type Queryable = { performIO(query: unknown): Promise<{ fields: { dataTypeID: number }[] }> };
  const patchQueries = <T>(queryable: T): T => {
    const q = queryable as unknown as Queryable;
    const performIO = q.performIO.bind(q);
    q.performIO = async (query) => {
      const result = await performIO(query);
      for (const field of result.fields) field.dataTypeID = CATALOG_TEXT_TYPES.get(field.dataTypeID) ?? field.dataTypeID;
      return result;
    };
    return queryable;
  };
  const patchAdapter = <T extends { startTransaction(...args: never[]): Promise<unknown> }>(adapter: T): T => {
    const startTransaction = adapter.startTransaction.bind(adapter);
    adapter.startTransaction = (async (...args: never[]) => patchQueries(await startTransaction(...args))) as T["startTransaction"];
    return patchQueries(adapter);
  };
  const connect = factory.connect.bind(factory);
  const connectToShadowDb = factory.connectToShadowDb.bind(factory);
  factory.connect = async () => patchAdapter(await connect());
  factory.connectToShadowDb = async () => patchAdapter(await connectToShadowDb());
  return factory;
}

export default defineConfig({
  experimental: { adapter: true },
  // The CLI reads engineType from this schema before every command: it must exist, or the CLI
  // falls back to downloading a native engine. For PostgreSQL it is the schema derived from
  // prisma/schema.prisma (written by prisma-cli.ts before each run).
  schema:
    process.env.BERTH_PRISMA_SCHEMA ??
    (postgres
      ? path.join(here, "..", "apps", "orchestrator", "src", "db", "generated", "postgres.schema.prisma")
      : path.join(here, "schema.prisma")),
  migrations: {
    path: postgres ? path.join(here, "postgres", "migrations") : path.join(here, "migrations"),
  },
  engine: "js",
  adapter: async () =>
    postgres ? readNameColumnsAsText(new PrismaPg({ connectionString: url, allowExitOnIdle: true })) : new PrismaBetterSQLite3({ url }),
});
