// Migrations: SQL files committed under prisma/migrations (SQLite) and prisma/postgres/migrations
// (PostgreSQL), applied by `prisma migrate deploy`, which records each one in the table
// _prisma_migrations (name + SHA-256 of migration.sql).
//
// migrateDatabase reads that table first and only starts the Prisma CLI (about a second) when a
// migration is pending, so running it on every start costs a few milliseconds.
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaPg } from "@prisma/adapter-pg";
import { prismaDir, redact, type DatabaseLocation, type Provider } from "./location.js";
import { runPrismaOrThrow } from "./prisma-cli.js";

export function migrationsDir(provider: Provider): string {
  return provider === "postgresql" ? path.join(prismaDir, "postgres", "migrations") : path.join(prismaDir, "migrations");
}

export interface Migration {
  /** The directory name, e.g. 20261124060000_init: Prisma applies them in this (lexical) order. */
  name: string;
  /** SHA-256 hex of migration.sql, as Prisma records it. */
  checksum: string;
}

/** The migrations committed for a provider, in the order they apply. */
export function listMigrations(provider: Provider): Migration[] {
  const dir = migrationsDir(provider);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && fs.existsSync(path.join(dir, e.name, "migration.sql")))
    .map((e) => e.name)
    .sort()
    .map((name) => ({
      name,
      checksum: createHash("sha256").update(fs.readFileSync(path.join(dir, name, "migration.sql"))).digest("hex"),
    }));
}

/**
 * The migrations recorded as finished in the database, by name → checksum. An empty map when the
 * database (or its _prisma_migrations table) does not exist yet.
 */
export async function appliedMigrations(db: DatabaseLocation): Promise<Map<string, string>> {
  if (db.provider === "sqlite" && !fs.existsSync(db.file!)) return new Map();
  const factory =
    db.provider === "postgresql"
      ? new PrismaPg({ connectionString: db.url })
      : new PrismaBetterSQLite3({ url: db.url, readonly: true, fileMustExist: true });
  const adapter = await factory.connect();
  const query = async (sql: string) => (await adapter.queryRaw({ sql, args: [], argTypes: [] })).rows;
  try {
    const tableExists =
      db.provider === "postgresql"
        ? (await query(`SELECT to_regclass('_prisma_migrations') IS NOT NULL`))[0]?.[0] === true
        : (await query(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_prisma_migrations'`)).length > 0;
    if (!tableExists) return new Map();
    const rows = await query(
      `SELECT migration_name, checksum FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
    );
    return new Map(rows.map((r) => [String(r[0]), String(r[1])]));
  } catch (err) {
    throw new Error(`Could not read the migration history of ${redact(db.url)}: ${describeAdapterError(err)}`, { cause: err });
  } finally {
    await adapter.dispose();
  }
}

/** Driver adapter errors carry their details in `cause` ({ kind, host, port, ... }). */
function describeAdapterError(err: unknown): string {
  const e = err as { message?: string; cause?: Record<string, unknown> };
  if (e?.cause && typeof e.cause === "object" && "kind" in e.cause) {
    const { kind, ...details } = e.cause;
    const extra = Object.entries(details).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : String(v)}`);
    return [String(kind), ...extra].join(" ");
  }
  return e?.message ?? String(err);
}

export interface MigrationStatus {
  /** Committed but not applied yet. */
  pending: Migration[];
  /** Applied, but migration.sql has changed since: an applied migration must never be edited. */
  modified: Migration[];
}

export async function migrationStatus(db: DatabaseLocation): Promise<MigrationStatus> {
  const applied = await appliedMigrations(db);
  const committed = listMigrations(db.provider);
  return {
    pending: committed.filter((m) => !applied.has(m.name)),
    modified: committed.filter((m) => applied.has(m.name) && applied.get(m.name) !== m.checksum),
  };
}

export interface MigrateResult {
  /** Migrations applied by this call, in order. */
  applied: string[];
  durationMs: number;
}

/** Applies pending migrations. Idempotent; a few milliseconds when the database is up to date. */
export async function migrateDatabase(db: DatabaseLocation, log: (line: string) => void = () => {}): Promise<MigrateResult> {
  const started = performance.now();
  const { pending, modified } = await migrationStatus(db);
  for (const m of modified) {
    log(`warning: ${m.name} was edited after it was applied to ${redact(db.url)}; add a new migration instead`);
  }
  if (pending.length > 0) {
    log(`applying ${pending.length} migration(s) to ${redact(db.url)}: ${pending.map((m) => m.name).join(", ")}`);
    await runPrismaOrThrow(["migrate", "deploy"], db);
  }
  if (db.provider === "sqlite") {
    // WAL lets the orchestrator read while a write is in progress; the mode is stored in the file.
    const adapter = await new PrismaBetterSQLite3({ url: db.url }).connect();
    try {
      await adapter.queryRaw({ sql: "PRAGMA journal_mode = WAL", args: [], argTypes: [] });
    } finally {
      await adapter.dispose();
    }
  }
  const durationMs = Math.round(performance.now() - started);
  log(
    pending.length > 0
      ? `database ${redact(db.url)} migrated (${pending.length} applied) in ${durationMs} ms`
      : `database ${redact(db.url)} is up to date (${listMigrations(db.provider).length} migrations) [${durationMs} ms]`,
  );
  return { applied: pending.map((m) => m.name), durationMs };
}
