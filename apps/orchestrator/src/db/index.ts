// The orchestrator's database: openDatabase gives a Prisma client on the right driver adapter.
//
// Lifecycle: `tsx scripts/db.ts generate` writes the clients, `tsx scripts/db.ts migrate` brings the
// database up to date, then openDatabase(url) → queries → closeDatabase(db).
//
// Two clients are generated from one schema (Prisma binds a client to one provider); they have
// the same models and the same API, so Db is the SQLite client's type and the PostgreSQL client
// is used through it. The query API common to both is what the orchestrator may rely on.
import type { PrismaClient } from "./generated/sqlite/client.js";
import { locateDatabase, redact, type DatabaseLocation } from "./location.js";
import { migrateDatabase, migrationStatus } from "./migrations.js";

/** The client the orchestrator uses: Prisma's, with e-mail addresses kept lower-case (see below). */
export type Db = ReturnType<typeof withLowerCaseEmails>;
export type {
  CheckAttempt,
  Cohort,
  CohortMember,
  Event,
  Lab,
  LabVersion,
  Prisma,
  Sandbox,
  Session,
  StepProgress,
  User,
} from "./generated/sqlite/client.js";
export { locateDatabase, stateDir, type DatabaseLocation, type Provider } from "./location.js";
export { migrateDatabase, migrationStatus, type MigrateResult } from "./migrations.js";

/** How long a SQLite write waits for another writer's lock before failing (better-sqlite3 `timeout`). */
export const SQLITE_BUSY_TIMEOUT_MS = 5_000;

export interface OpenOptions {
  /**
   * Apply pending migrations first (default false): for tests and tools that make a fresh
   * database. Production runs `tsx scripts/db.ts migrate` before starting instead. Needs the
   * `prisma` devDependency when something is pending.
   */
  migrate?: boolean;
  /**
   * Refuse a database with pending migrations (default true): queries on a half-migrated schema
   * fail later with less helpful errors.
   */
  requireMigrated?: boolean;
}

/**
 * Opens the database at `url` (config.ts resolves it: DATABASE_URL, else file:<BERTH_DATA_DIR or .berth>/berth.db).
 * Throws when migrations are pending, unless `migrate: true` applies them.
 * postgres:// and postgresql:// URLs use @prisma/adapter-pg; file: URLs use better-sqlite3 in WAL
 * mode, with foreign keys enforced and a busy timeout.
 */
export async function openDatabase(url: string, options: OpenOptions = {}): Promise<Db> {
  const location = locateDatabase(url, {});
  if (options.migrate) await migrateDatabase(location);
  else if (options.requireMigrated ?? true) await assertMigrated(location);
  if (location.provider === "postgresql") {
    const [{ PrismaClient: PostgresClient }, { PrismaPg }] = await Promise.all([
      import("./generated/postgres/client.js"),
      import("@prisma/adapter-pg"),
    ]);
    const db = new PostgresClient({ adapter: new PrismaPg({ connectionString: location.url }) });
    await db.$connect();
    // Same models, same API: see the note at the top of this file.
    return withLowerCaseEmails(db as unknown as PrismaClient);
  }
  const [{ PrismaClient: SqliteClient }, { PrismaBetterSQLite3 }] = await Promise.all([
    import("./generated/sqlite/client.js"),
    import("@prisma/adapter-better-sqlite3"),
  ]);
  const db = new SqliteClient({ adapter: new PrismaBetterSQLite3({ url: location.url, timeout: SQLITE_BUSY_TIMEOUT_MS }) });
  // The adapter holds a single connection, so per-connection settings made here stick.
  // SQLite leaves foreign keys off unless asked: without this, onDelete: Cascade does nothing.
  await db.$executeRawUnsafe("PRAGMA foreign_keys = ON");
  await db.$queryRawUnsafe("PRAGMA journal_mode = WAL");
  return withLowerCaseEmails(db);
}

export async function closeDatabase(db: Db): Promise<void> {
  await db.$disconnect();
}

/**
 * User.email is stored lower-case so that the unique index means "one account per address":
 * every top-level User query has `email` lower-cased in its where, data, create and update
 * arguments. (Nested writes through another model are not rewritten: create users directly.)
 */
function withLowerCaseEmails(client: PrismaClient) {
  return client.$extends({
    name: "lower-case-emails",
    query: {
      user: {
        $allOperations({ args, query }) {
          const a = args as Record<string, unknown>;
          for (const key of ["where", "data", "create", "update"]) {
            const value = a[key];
            if (Array.isArray(value)) value.forEach(lowerCaseEmail);
            else lowerCaseEmail(value);
          }
          return query(args);
        },
      },
    },
  });
}

function lowerCaseEmail(target: unknown): void {
  if (typeof target !== "object" || target === null) return;
  const t = target as { email?: unknown };
  if (typeof t.email === "string") t.email = t.email.toLowerCase();
  else if (typeof t.email === "object" && t.email !== null) {
    const filter = t.email as Record<string, unknown>;
    for (const op of ["equals", "set"]) if (typeof filter[op] === "string") filter[op] = (filter[op] as string).toLowerCase();
  }
}

/** Prisma's error code for a unique constraint violation (e.g. an e-mail address already taken). */
export function isUniqueViolation(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === "P2002";
}

async function assertMigrated(location: DatabaseLocation): Promise<void> {
  const { pending } = await migrationStatus(location);
  if (pending.length > 0) {
    throw new Error(
      `The database ${redact(location.url)} is missing ${pending.length} migration(s) (${pending.map((m) => m.name).join(", ")}): ` +
        `run \`npx tsx scripts/db.ts migrate\` with the same DATABASE_URL.`,
    );
  }
}
