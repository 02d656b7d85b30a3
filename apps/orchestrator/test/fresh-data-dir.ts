// A fresh BERTH_DATA_DIR for a test's orchestrator, already holding a migrated, empty SQLite
// database. Migrating a new file starts the Prisma CLI (2-3 s on a small machine); a suite that
// starts dozens of orchestrators on new data dirs paid that dozens of times. Here the migrations
// run once per test process, into a template, and each new data dir gets a copy of it.
//
// The orchestrator still runs its own migration step at start (it finds nothing pending); making a
// fresh database from nothing is tested where it matters: db.test.ts, crash-restart.test.ts.
// No vitest import: the browser tests (test/e2e/berth.ts) use it too.
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { locateDatabase, migrateDatabase } from "../src/db/index.js";

const DB_FILES = ["berth.db", "berth.db-wal"];

let template: Promise<string> | undefined;

function migratedTemplate(): Promise<string> {
  template ??= (async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "berth-db-template-"));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    await migrateDatabase(locateDatabase(`file:${path.join(dir, "berth.db")}`, {}));
    return dir;
  })();
  // A failed attempt is not kept: the next caller tries again (and sees the error itself).
  template.catch(() => (template = undefined));
  return template;
}

/** A new directory (mkdtemp with `prefix`) with berth.db migrated, as the orchestrator would leave it. */
export async function freshDataDir(prefix: string): Promise<string> {
  const from = await migratedTemplate();
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  for (const name of DB_FILES) if (existsSync(path.join(from, name))) copyFileSync(path.join(from, name), path.join(dir, name));
  return dir;
}
