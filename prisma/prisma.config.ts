// Configuration for the Prisma CLI. Every command goes through apps/orchestrator/src/db/prisma-cli.ts,
// which passes --config and sets BERTH_PRISMA_PROVIDER ("sqlite" | "postgresql"), DATABASE_URL
// (for commands that connect) and BERTH_PRISMA_SCHEMA.
//
// engine "js" runs the schema engine as WebAssembly over a driver adapter, so the CLI needs no
// native engine download (this machine and CI cannot reach Prisma's binary host). Together with
// engineType = "client" in the schema, `generate`, `migrate diff` and `migrate deploy` run offline.
// That mode is young: the adapters below carry three small, documented workarounds (see
// docs/database.md); each is covered by apps/orchestrator/test/db.test.ts.
import { randomUUID } from "node:crypto";
import path from "node:path";
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaPg } from "@prisma/adapter-pg";
import { parseIntoClientConfig } from "pg-connection-string";
import { defineConfig } from "prisma/config";

const here = import.meta.dirname;
const postgres = process.env.BERTH_PRISMA_PROVIDER === "postgresql";
// Commands that do not touch a database (generate) still build the adapter: give it a harmless
// URL. PrismaPg connects lazily.
const url = process.env.DATABASE_URL ?? (postgres ? "postgresql://localhost/unused" : "file::memory:");

type Adapter = Awaited<ReturnType<PrismaPg["connect"]>> | Awaited<ReturnType<PrismaBetterSQLite3["connect"]>>;

/**
 * 1. prisma/orm#27403: the schema engine reads PostgreSQL catalog columns of the internal types
 *    `name` and `"char"`, which @prisma/adapter-pg rejects ("Column type 'name' could not be
 *    deserialized"), so every migrate command fails. pg already returns their values as strings:
 *    report them as TEXT.
 */
const TEXT = 25;
const TEXT_ARRAY = 1009;
// OIDs from pg_type: "char", name, regproc, regclass, regtype, and the arrays of "char" and name.
const CATALOG_TEXT_TYPES = new Map([[18, TEXT], [19, TEXT], [24, TEXT], [2205, TEXT], [2206, TEXT], [1002, TEXT_ARRAY], [1003, TEXT_ARRAY]]);

function readCatalogTypesAsText<T>(queryable: T): T {
  const q = queryable as unknown as { performIO(query: unknown): Promise<{ fields: { dataTypeID: number }[] }> };
  const performIO = q.performIO.bind(q);
  q.performIO = async (query) => {
    const result = await performIO(query);
    for (const field of result.fields) field.dataTypeID = CATALOG_TEXT_TYPES.get(field.dataTypeID) ?? field.dataTypeID;
    return result;
  };
  return queryable;
}

function patchPostgres<A extends Adapter>(adapter: A): A {
  const startTransaction = adapter.startTransaction.bind(adapter);
  adapter.startTransaction = (async (...args: Parameters<A["startTransaction"]>) =>
    readCatalogTypesAsText(await startTransaction(...args))) as A["startTransaction"];
  return readCatalogTypesAsText(adapter);
}

/**
 * 2. To replay migrations into the shadow database (migrate diff --from-migrations), the engine
 *    sends each whole migration.sql through executeRaw, which both drivers run as one prepared
 *    statement: a file with several statements fails ("External error"). Statements without
 *    parameters go through executeScript instead, which runs a script. Shadow databases only.
 */
function runScriptsAsScripts<A extends Adapter>(adapter: A): A {
  const executeRaw = adapter.executeRaw.bind(adapter);
  adapter.executeRaw = async (query) => {
    if (query.args.length > 0) return executeRaw(query);
    await adapter.executeScript(query.sql);
    return 0;
  };
  return adapter;
}

/**
 * 3. PrismaPg's own shadow database is broken twice: it is made with { ...config, database }, where
 *    a connectionString wins over `database` (so the "shadow" is the real database), and it is
 *    dropped while its pool is still connected ("is being accessed by other users"). Make the
 *    shadow database here: create, connect with explicit fields, and drop after the pool closed.
 */
function postgresAdapter(): PrismaPg {
  // Split into fields (host, port, user, password, database, ssl), with no connectionString.
  const config = { ...parseIntoClientConfig(url), allowExitOnIdle: true } as ConstructorParameters<typeof PrismaPg>[0];
  // allowExitOnIdle: an idle pool must never keep the CLI process alive.
  const factory = new PrismaPg(config);
  const connect = factory.connect.bind(factory);
  factory.connect = async () => patchPostgres(await connect());
  factory.connectToShadowDb = async () => {
    const main = await factory.connect();
    const name = `prisma_migrate_shadow_db_${randomUUID()}`;
    await main.executeScript(`CREATE DATABASE "${name}"`);
    const shadow = runScriptsAsScripts(patchPostgres(await new PrismaPg({ ...config, database: name }).connect()));
    const dispose = shadow.dispose.bind(shadow);
    shadow.dispose = async () => {
      await dispose();
      await main.executeScript(`DROP DATABASE IF EXISTS "${name}"`);
      await main.dispose();
    };
    return shadow;
  };
  return factory;
}

function sqliteAdapter(): PrismaBetterSQLite3 {
  const factory = new PrismaBetterSQLite3({ url });
  const connectToShadowDb = factory.connectToShadowDb.bind(factory);
  factory.connectToShadowDb = async () => runScriptsAsScripts(await connectToShadowDb());
  return factory;
}

export default defineConfig({
  experimental: { adapter: true },
  // The CLI reads engineType from this schema before every command: it must exist, or the CLI
  // falls back to downloading a native engine. For PostgreSQL it is the schema derived from
  // prisma/schema.prisma (prisma-cli.ts writes it before each run).
  schema:
    process.env.BERTH_PRISMA_SCHEMA ??
    (postgres
      ? path.join(here, "..", "apps", "orchestrator", "src", "db", "generated", "postgres.schema.prisma")
      : path.join(here, "schema.prisma")),
  migrations: {
    path: postgres ? path.join(here, "postgres", "migrations") : path.join(here, "migrations"),
  },
  engine: "js",
  adapter: async () => (postgres ? postgresAdapter() : sqliteAdapter()),
});
