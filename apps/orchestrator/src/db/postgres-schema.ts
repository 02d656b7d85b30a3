// PostgreSQL's schema is derived from prisma/schema.prisma (SQLite), the one source of truth for
// the models: Prisma allows one provider per schema, and only the datasource and the generator's
// output differ between the two. The derived file is generated (gitignored), never edited.
import fs from "node:fs";
import path from "node:path";
import { prismaDir, repoRoot } from "./location.js";

export const sqliteSchemaPath = path.join(prismaDir, "schema.prisma");
/** Where the generated clients go (gitignored). */
export const generatedDir = path.join(repoRoot, "apps", "orchestrator", "src", "db", "generated");
/** The derived PostgreSQL schema; its client is generated next to it, in ./postgres. */
export const postgresSchemaPath = path.join(generatedDir, "postgres.schema.prisma");

const header = `// GENERATED from prisma/schema.prisma by apps/orchestrator/src/db/postgres-schema.ts: do not edit.
`;

/** Rewrites the SQLite schema for PostgreSQL. */
export function derivePostgresSchema(sqliteSchema: string): string {
  let text = replaceOnce(sqliteSchema, /^(\s*provider\s*=\s*)"sqlite"/m, `$1"postgresql"`, "the sqlite provider line");
  text = replaceOnce(text, /^(\s*url\s*=\s*)"file:[^"]*"/m, `$1"postgresql://unused"`, "the datasource url line");
  text = replaceOnce(text, /^(\s*output\s*=\s*)"[^"]*"/m, `$1"./postgres"`, "the generator output line");
  return header + text;
}

/** Writes the derived schema (when it changed) and returns its path. */
export function writePostgresSchema(): string {
  const text = derivePostgresSchema(fs.readFileSync(sqliteSchemaPath, "utf8"));
  if (!fs.existsSync(postgresSchemaPath) || fs.readFileSync(postgresSchemaPath, "utf8") !== text) {
    fs.mkdirSync(generatedDir, { recursive: true });
    fs.writeFileSync(postgresSchemaPath, text);
  }
  return postgresSchemaPath;
}

function replaceOnce(text: string, pattern: RegExp, replacement: string, what: string): string {
  const matches = text.match(new RegExp(pattern.source, pattern.flags + "g"))?.length ?? 0;
  if (matches !== 1) {
    throw new Error(
      `prisma/schema.prisma: expected exactly one match for ${what}, found ${matches}; the PostgreSQL schema is derived by rewriting it`,
    );
  }
  return text.replace(pattern, replacement);
}
