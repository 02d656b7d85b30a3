// Runs the Prisma CLI (the `prisma` devDependency) in its offline mode.
//
// prisma/prisma.config.ts selects the JavaScript schema engine over a driver adapter, and the schema
// asks for engineType "client": with both, the CLI has no native engine to download, so no
// PRISMA_*_ENGINE_* variables are needed. The variables set here only silence network calls the
// CLI would otherwise make (update check, telemetry), which hang for seconds without internet.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { prismaDir, repoRoot, type Provider } from "./location.js";
import { sqliteSchemaPath, writePostgresSchema } from "./postgres-schema.js";

export const prismaConfig = path.join(prismaDir, "prisma.config.ts");

export interface PrismaRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `prisma <args> --config prisma/prisma.config.ts` for one provider and collects its output.
 */
export interface PrismaTarget {
  provider: Provider;
  /** The database, for commands that connect (migrate deploy). */
  url?: string;
  /** The schema file the CLI loads (default: prisma/schema.prisma, or the derived PostgreSQL one). */
  schema?: string;
}

export function runPrisma(args: string[], db: PrismaTarget): Promise<PrismaRun> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    BERTH_PRISMA_PROVIDER: db.provider,
    CHECKPOINT_DISABLE: "1",
    PRISMA_HIDE_UPDATE_MESSAGE: "1",
    PRISMA_SKIP_POSTINSTALL_GENERATE: "1",
    NO_COLOR: "1",
  };
  if (db.url) env.DATABASE_URL = db.url;
  else delete env.DATABASE_URL;
  env.BERTH_PRISMA_SCHEMA = db.schema ?? (db.provider === "postgresql" ? writePostgresSchema() : sqliteSchemaPath);
  // Resolved on use: `prisma` is a devDependency, and the orchestrator imports this module's
  // neighbours at run time.
  const cliEntry = path.join(path.dirname(createRequire(import.meta.url).resolve("prisma/package.json")), "build", "index.js");
  return new Promise((resolve, reject) => {
    const preload = db.provider === "postgresql" ? ["--require", path.join(import.meta.dirname, "unref-long-timers.cjs")] : [];
    const child = spawn(process.execPath, [...preload, cliEntry, ...args, "--config", prismaConfig], {
      cwd: repoRoot,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** Like runPrisma, but throws with the CLI's own output when it fails. */
export async function runPrismaOrThrow(args: string[], db: PrismaTarget): Promise<string> {
  const run = await runPrisma(args, db);
  if (run.code !== 0) {
    throw new Error(`prisma ${args.join(" ")} (${db.provider}) failed with exit code ${run.code}:\n${run.stdout}${run.stderr}`);
  }
  return run.stdout;
}
