// Database tasks, offline. Run with tsx from the repository root:
//
//   npx tsx scripts/db.ts generate              generate the Prisma clients (SQLite and PostgreSQL)
//   npx tsx scripts/db.ts migrate               apply pending migrations to DATABASE_URL
//                                                (default: file:<BERTH_DATA_DIR or .berth>/berth.db)
//   npx tsx scripts/db.ts status                list pending migrations, change nothing
//   npx tsx scripts/db.ts new-migration <name>  write the SQL for both providers after editing
//                                                prisma/schema.prisma
//
// See docs/database.md.
import { generateClients, newMigration } from "../apps/orchestrator/src/db/codegen.js";
import { locateDatabase, redact } from "../apps/orchestrator/src/db/location.js";
import { listMigrations, migrateDatabase, migrationStatus } from "../apps/orchestrator/src/db/migrations.js";

const log = (line: string) => console.log(`[db] ${line}`);
const usage = "usage: tsx scripts/db.ts generate [--force] | migrate | status | new-migration <name>";

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "generate":
      await generateClients(log, { force: rest.includes("--force") });
      return 0;
    case "migrate":
      await migrateDatabase(locateDatabase(process.env.DATABASE_URL, process.env), log);
      return 0;
    case "status": {
      const db = locateDatabase(process.env.DATABASE_URL, process.env);
      const { pending, modified } = await migrationStatus(db);
      log(`${redact(db.url)}: ${listMigrations(db.provider).length} migrations committed, ${pending.length} pending`);
      for (const m of pending) log(`  pending  ${m.name}`);
      for (const m of modified) log(`  modified ${m.name} (edited after it was applied)`);
      return pending.length > 0 ? 2 : 0;
    }
    case "new-migration": {
      if (rest.length !== 1) {
        console.error(usage);
        return 64;
      }
      await newMigration(rest[0]!, log, { databaseUrl: process.env.DATABASE_URL, pgBin: process.env.PG_BIN });
      return 0;
    }
    default:
      console.error(usage);
      return 64;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`[db] ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
