// Where the database lives: DATABASE_URL when set, otherwise an embedded SQLite file. The
// environment is passed in by the entry points (config.ts, scripts/db.ts); nothing here reads it.
import fs from "node:fs";
import path from "node:path";

/** The repository root (this file is apps/orchestrator/src/db/location.ts). */
export const repoRoot = path.resolve(import.meta.dirname, "../../../..");
/** prisma/: the schema, the Prisma config and both providers' migrations. */
export const prismaDir = path.join(repoRoot, "prisma");

export type Provider = "sqlite" | "postgresql";

export interface DatabaseLocation {
  provider: Provider;
  /** For SQLite always `file:<absolute path>`, so every process opens the same file. */
  url: string;
  /** SQLite only: the absolute path of the database file. */
  file?: string;
}

/** The state directory: BERTH_DATA_DIR, or <repo>/.berth. Created when missing. */
export function stateDir(env: Record<string, string | undefined>): string {
  const dir = path.resolve(env.BERTH_DATA_DIR || path.join(repoRoot, ".berth"));
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Resolves a database URL (argument, then DATABASE_URL, then the default SQLite file) and its
 * provider. A relative `file:` path is made absolute against the current directory here, once,
 * because the Prisma CLI and the orchestrator may run from different directories.
 */
export function locateDatabase(url: string | undefined, env: Record<string, string | undefined>): DatabaseLocation {
  const raw = url || env.DATABASE_URL || `file:${path.join(stateDir(env), "berth.db")}`;
  if (/^postgres(ql)?:\/\//i.test(raw)) return { provider: "postgresql", url: raw };
  if (raw.startsWith("file:")) {
    const file = path.resolve(raw.slice("file:".length));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    return { provider: "sqlite", url: `file:${file}`, file };
  }
  throw new Error(
    `Unsupported DATABASE_URL "${redact(raw)}": use file:<path> for SQLite or ` +
      `postgresql://user:password@host:port/database for PostgreSQL (or leave it unset for ${path.join(stateDir(env), "berth.db")}).`,
  );
}

/** The URL with its password hidden, for logs and error messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@");
}
