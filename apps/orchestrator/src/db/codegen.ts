// Developer-side tasks behind scripts/db.ts: generating the two clients and writing migrations.
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { locateDatabase, redact, repoRoot, type Provider } from "./location.js";
import { listMigrations, migrationsDir } from "./migrations.js";
import { derivePostgresSchema, generatedDir, postgresSchemaPath, sqliteSchemaPath, writePostgresSchema } from "./postgres-schema.js";
import { runPrismaOrThrow } from "./prisma-cli.js";
import { startTempPostgres } from "./temp-postgres.js";

const stampPath = path.join(generatedDir, "stamp.txt");

/**
 * Generates the SQLite and the PostgreSQL client into apps/orchestrator/src/db/generated/.
 * Skipped when neither the schema nor the Prisma version changed since the last run.
 */
export async function generateClients(
  log: (line: string) => void = () => {},
  opts: { force?: boolean } = {},
): Promise<"generated" | "up to date"> {
  const prismaVersion = (createRequire(import.meta.url)("prisma/package.json") as { version: string }).version;
  const sqliteSchema = fs.readFileSync(sqliteSchemaPath, "utf8");
  const stamp = createHash("sha256")
    .update(`${prismaVersion}\n${sqliteSchema}\n${derivePostgresSchema(sqliteSchema)}`)
    .digest("hex");
  const where = path.relative(repoRoot, generatedDir);
  const clientsExist = ["sqlite", "postgres"].every((p) => fs.existsSync(path.join(generatedDir, p, "client.ts")));
  if (!opts.force && clientsExist && readIfExists(stampPath) === stamp) {
    log(`prisma clients are up to date in ${where}`);
    return "up to date";
  }
  const started = performance.now();
  log(`generating the prisma clients (sqlite, postgresql) from prisma/schema.prisma into ${where} ...`);
  writePostgresSchema();
  // One at a time: on two cores, two CLI processes in parallel save little and slow everyone.
  await runPrismaOrThrow(["generate"], { provider: "sqlite", schema: sqliteSchemaPath });
  await runPrismaOrThrow(["generate"], { provider: "postgresql", schema: postgresSchemaPath });
  fs.writeFileSync(stampPath, stamp);
  log(`prisma clients generated in ${Math.round(performance.now() - started)} ms`);
  return "generated";
}

/**
 * The SQL that would take a provider's committed migrations to the current prisma/schema.prisma
 * (only comments when they agree). Prisma replays the migrations into a shadow database: an
 * in-memory one for SQLite; for PostgreSQL a scratch database created on the server at
 * `postgresUrl`, which must allow CREATE DATABASE.
 */
export async function diffMigrationsToSchema(provider: Provider, postgresUrl?: string): Promise<string> {
  if (provider === "postgresql" && !postgresUrl) throw new Error("diffing the PostgreSQL migrations needs a server: pass its URL");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "berth-diff-"));
  try {
    ensureLockFile(provider);
    const schema = provider === "postgresql" ? writePostgresSchema() : sqliteSchemaPath;
    const out = path.join(tmp, "migration.sql");
    // --output, not stdout: the CLI also prints notices ("Loaded Prisma config ...") there.
    await runPrismaOrThrow(
      ["migrate", "diff", "--from-migrations", migrationsDir(provider), "--to-schema-datamodel", schema, "--script", "--output", out],
      { provider, schema, url: postgresUrl },
    );
    return fs.readFileSync(out, "utf8");
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Prisma renders "no changes" as a script with only comments in it. */
export function isEmptyScript(sql: string): boolean {
  return sql.split("\n").every((line) => line.trim() === "" || line.trim().startsWith("--"));
}

export interface NewMigration {
  name: string;
  /** Written files, relative to the repository root. */
  files: string[];
}

/**
 * Writes, under the same name for both providers, the SQL that takes their migrations to the
 * current prisma/schema.prisma. PostgreSQL needs a server for the diff: DATABASE_URL when it is a
 * PostgreSQL URL, else a temporary one (startTempPostgres). Returns null when nothing changed.
 */
export async function newMigration(label: string, log: (line: string) => void = () => {}, opts: { now?: Date; databaseUrl?: string; pgBin?: string } = {}): Promise<NewMigration | null> {
  const now = opts.now ?? new Date();
  const slug = label.toLowerCase().replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "");
  if (!slug) throw new Error(`new-migration needs a name made of letters or digits, e.g. "add_cohorts" (got "${label}")`);
  const name = `${now.toISOString().replace(/\D/g, "").slice(0, 14)}_${slug}`;
  const last = [...listMigrations("sqlite"), ...listMigrations("postgresql")].map((m) => m.name).sort().at(-1);
  if (last && last >= name) throw new Error(`the migration ${last} already exists and would sort after ${name}`);

  log("diffing the SQLite migrations against prisma/schema.prisma ...");
  const sqliteSql = await diffMigrationsToSchema("sqlite");
  const postgresSql = await withPostgres(log, opts, (url) => {
    log(`diffing the PostgreSQL migrations against prisma/schema.prisma (shadow database on ${redact(url)}) ...`);
    return diffMigrationsToSchema("postgresql", url);
  });
  if (isEmptyScript(sqliteSql) && isEmptyScript(postgresSql)) {
    log("no schema changes: nothing to write");
    return null;
  }
  const files: string[] = [];
  for (const [provider, sql] of [["sqlite", sqliteSql], ["postgresql", postgresSql]] as const) {
    const file = path.join(migrationsDir(provider), name, "migration.sql");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, sql);
    files.push(path.relative(repoRoot, file));
    log(`wrote ${path.relative(repoRoot, file)}`);
  }
  log("review the SQL, commit both files, then run `npx tsx scripts/db.ts generate` and `npx tsx scripts/db.ts migrate`");
  return { name, files };
}

/** The configured PostgreSQL (`databaseUrl`), else a temporary server for as long as `use` runs. */
async function withPostgres<T>(log: (line: string) => void, opts: { databaseUrl?: string; pgBin?: string }, use: (url: string) => Promise<T>): Promise<T> {
  const configured = opts.databaseUrl ? locateDatabase(opts.databaseUrl, {}) : undefined;
  if (configured?.provider === "postgresql") return use(configured.url);
  log("starting a temporary PostgreSQL server for the diff ...");
  const server = await startTempPostgres({ binDir: opts.pgBin });
  try {
    return await use(server.url);
  } finally {
    await server.stop();
  }
}

function ensureLockFile(provider: Provider): void {
  const file = path.join(migrationsDir(provider), "migration_lock.toml");
  if (fs.existsSync(file)) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `# Written by scripts/db.ts; Prisma reads the provider from here.\nprovider = "${provider}"\n`);
}

function readIfExists(file: string): string | null {
  return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : null;
}
