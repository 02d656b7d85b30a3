// The database layer against real databases: a fresh SQLite file, and a real PostgreSQL server
// started by the test (Debian's postgresql package). One conformance suite runs against both.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diffMigrationsToSchema, generateClients, isEmptyScript, newMigration } from "../src/db/codegen.js";
import {
  closeDatabase,
  isUniqueViolation,
  locateDatabase,
  migrateDatabase,
  migrationStatus,
  openDatabase,
  type Db,
  type DatabaseLocation,
} from "../src/db/index.js";
import { listMigrations } from "../src/db/migrations.js";
import { repoRoot } from "../src/db/location.js";
import { startTempPostgres, type TempPostgres } from "../src/db/temp-postgres.js";
import { parseLab, previewContext, summarizeLab } from "@berth/labkit";
import { ProgressBook } from "../src/grading/progress.js";
import type { LabCatalog } from "../src/labs/catalog.js";

const run = promisify(execFile);

beforeAll(async () => {
  // A no-op (milliseconds) when `tsx scripts/db.ts generate` already ran, as the test script does.
  await generateClients();
});

/** What every provider must do the same way. */
function conformance(name: string, location: () => DatabaseLocation) {
  describe(`${name}: schema and client`, () => {
    let db: Db;
    beforeAll(async () => {
      db = await openDatabase(location().url);
    });
    afterAll(async () => {
      if (db) await closeDatabase(db);
    });

    it("stores a user, a session and check attempts, and reads them back", async () => {
      const user = await db.user.create({
        data: { email: `Ada.${name}@Example.org`, passwordHash: "scrypt$x", name: "Ada" },
      });
      expect(user.email).toBe(`ada.${name}@example.org`);
      expect(user.role).toBe("learner");
      expect(user.id).toMatch(/^c[a-z0-9]{20,}$/);

      const token = "raw-cookie-token";
      const sessionId = createHash("sha256").update(token).digest("hex");
      const expiresAt = new Date(Date.now() + 3_600_000);
      await db.session.create({ data: { id: sessionId, userId: user.id, expiresAt, userAgent: "vitest" } });
      const session = await db.session.findUnique({ where: { id: sessionId }, include: { user: true } });
      expect(session?.user.email).toBe(user.email);
      expect(session?.expiresAt.getTime()).toBe(expiresAt.getTime());

      await db.lab.create({ data: { id: "namespaces", title: "Namespaces", summary: "s", duration: "20 min", chapter: 1 } });
      const version = await db.labVersion.create({ data: { labId: "namespaces", contentHash: "abc" } });
      const base = { userId: user.id, labId: "namespaces", stepId: "s1", checkId: "c1", durationMs: 12 };
      await db.checkAttempt.create({
        data: { ...base, passed: false, message: "FAIL: no pid namespace", output: "out\nerr", exitCode: 1, labVersionId: version.id },
      });
      await db.checkAttempt.create({
        data: { ...base, passed: true, message: "ok", output: "", exitCode: 0, points: 10, createdAt: new Date(Date.now() + 1000) },
      });
      await db.checkAttempt.create({
        data: { ...base, checkId: "c2", passed: false, message: "timed out", output: "", timedOut: true, exitCode: null },
      });
      const attempts = await db.checkAttempt.findMany({
        where: { userId: user.id, labId: "namespaces", checkId: "c1" },
        orderBy: { createdAt: "asc" },
      });
      expect(attempts.map((a) => [a.passed, a.points, a.exitCode, a.timedOut])).toEqual([
        [false, 0, 1, false],
        [true, 10, 0, false],
      ]);
      expect(attempts[0]!.output).toBe("out\nerr");
      expect(attempts[0]!.labVersionId).toBe(version.id);
      expect(await db.checkAttempt.count({ where: { userId: user.id, timedOut: true } })).toBe(1);

      // The lookup path of sign-in: any case finds the lower-case row.
      expect((await db.user.findUnique({ where: { email: `ADA.${name.toUpperCase()}@example.ORG` } }))?.id).toBe(user.id);
    });

    it("keeps the unique constraints", async () => {
      const user = await db.user.create({ data: { email: `grace.${name}@example.org`, passwordHash: "h" } });
      const duplicate = db.user.create({ data: { email: `GRACE.${name}@example.org`, passwordHash: "h" } });
      await expect(duplicate).rejects.toSatisfy(isUniqueViolation);

      await db.stepProgress.create({ data: { userId: user.id, labId: "l", stepId: "s1", completedAt: new Date() } });
      await expect(db.stepProgress.create({ data: { userId: user.id, labId: "l", stepId: "s1" } })).rejects.toSatisfy(
        isUniqueViolation,
      );
      await db.lab.create({ data: { id: "volumes", title: "Volumes", summary: "s", duration: "15 min" } });
      await db.labVersion.create({ data: { labId: "volumes", contentHash: "h1" } });
      await expect(db.labVersion.create({ data: { labId: "volumes", contentHash: "h1" } })).rejects.toSatisfy(isUniqueViolation);
      const cohort = await db.cohort.create({ data: { name: "Monday", ownerId: user.id } });
      await db.cohortMember.create({ data: { cohortId: cohort.id, userId: user.id } });
      await expect(db.cohortMember.create({ data: { cohortId: cohort.id, userId: user.id, role: "instructor" } })).rejects.toSatisfy(
        isUniqueViolation,
      );
    });

    it("cascades a user's deletion to sessions and sandboxes, and keeps events", async () => {
      const user = await db.user.create({ data: { email: `gone.${name}@example.org`, passwordHash: "h" } });
      await db.session.create({ data: { id: `s-${name}`, userId: user.id, expiresAt: new Date() } });
      await db.sandbox.create({
        data: { userId: user.id, labId: "l", driver: "namespaces", hostname: "sb-1", expiresAt: new Date() },
      });
      const event = await db.event.create({ data: { userId: user.id, labId: "l", kind: "hint.requested", data: '{"check":"c1"}' } });
      await db.user.delete({ where: { id: user.id } });
      expect(await db.session.count({ where: { userId: user.id } })).toBe(0);
      expect(await db.sandbox.count({ where: { userId: user.id } })).toBe(0);
      const kept = await db.event.findUnique({ where: { id: event.id } });
      expect(kept?.userId).toBeNull();
      expect(JSON.parse(kept!.data)).toEqual({ check: "c1" });
    });

    it("keeps a learner's hints, solutions, quiz answers, current step and step setups (lab format v2)", async () => {
      const user = await db.user.create({ data: { email: `v2.${name}@example.org`, passwordHash: "h" } });
      const base = { userId: user.id, labId: "l2", checkId: "c1" };
      await db.hintReveal.create({ data: { ...base, index: 0, cost: 2 } });
      // The same hint twice (a double click) is refused by the key, so hints stay one at a time.
      await expect(db.hintReveal.create({ data: { ...base, index: 0, cost: 2 } })).rejects.toSatisfy(isUniqueViolation);
      await db.solutionReveal.create({ data: { ...base, how: "shown" } });
      await expect(db.solutionReveal.create({ data: { ...base, how: "skipped" } })).rejects.toSatisfy(isUniqueViolation);
      await db.quizAttempt.create({
        data: { userId: user.id, labId: "l2", stepId: "s1", quizId: "q1", passed: true, answers: '{"a":"x"}', perQuestion: '{"a":true}', message: "ok", points: 3 },
      });
      await db.labProgress.upsert({
        where: { userId_labId: { userId: user.id, labId: "l2" } },
        create: { userId: user.id, labId: "l2", currentStep: "s1" },
        update: { currentStep: "s1" },
      });
      await db.labProgress.upsert({
        where: { userId_labId: { userId: user.id, labId: "l2" } },
        create: { userId: user.id, labId: "l2", currentStep: "s2" },
        update: { currentStep: "s2" },
      });
      expect((await db.labProgress.findMany({ where: { userId: user.id } })).map((p) => p.currentStep)).toEqual(["s2"]);
      const sb = await db.sandbox.create({ data: { userId: user.id, labId: "l2", driver: "namespaces", hostname: "v2", expiresAt: new Date() } });
      await db.stepSetupRun.create({ data: { sandboxId: sb.id, stepId: "s1", exitCode: 0 } });
      await expect(db.stepSetupRun.create({ data: { sandboxId: sb.id, stepId: "s1", exitCode: 0 } })).rejects.toSatisfy(isUniqueViolation);

      await db.user.delete({ where: { id: user.id } });
      expect(await db.hintReveal.count({ where: { userId: user.id } })).toBe(0);
      expect(await db.solutionReveal.count({ where: { userId: user.id } })).toBe(0);
      expect(await db.quizAttempt.count({ where: { userId: user.id } })).toBe(0);
      expect(await db.labProgress.count({ where: { userId: user.id } })).toBe(0);
      expect(await db.stepSetupRun.count({ where: { sandboxId: sb.id } })).toBe(0);
    });

    it("reads a learner's progress (ProgressBook's SQL) the same way", async () => {
      const file = path.join(repoRoot, "apps/orchestrator/test/fixtures/labs/v2-fixture/lab.md");
      const lab = parseLab(fs.readFileSync(file, "utf8"), file).lab!;
      const entry = { lab, summary: summarizeLab(lab), versionId: "v1" };
      const book = new ProgressBook(db, { list: () => [entry.summary], get: () => entry } as unknown as LabCatalog);
      const user = await db.user.create({ data: { email: `book.${name}@example.org`, passwordHash: "h" } });
      const base = { userId: user.id, labId: lab.id, stepId: "make", durationMs: 5, output: "" };
      await db.checkAttempt.create({ data: { ...base, checkId: "made", passed: false, message: "no", points: 0 } });
      await db.checkAttempt.create({ data: { ...base, checkId: "made", passed: true, message: "yes", points: 2, createdAt: new Date(Date.now() + 1000) } });
      await db.hintReveal.create({ data: { userId: user.id, labId: lab.id, checkId: "made", index: 0, cost: 1 } });
      await db.solutionReveal.create({ data: { userId: user.id, labId: lab.id, checkId: "written", how: "shown" } });
      await db.quizAttempt.create({ data: { userId: user.id, labId: lab.id, stepId: "make", quizId: "basics", passed: true, answers: "{}", perQuestion: '{"q1":true}', message: "ok", points: 2 } });
      await db.labProgress.create({ data: { userId: user.id, labId: lab.id, currentStep: "make" } });
      const view = await book.view(user.id, entry, previewContext(lab));
      expect(view.checks.made).toMatchObject({ passed: true, points: 2, attempt: 2, message: "yes" });
      expect(view.hints.made).toHaveLength(1);
      expect(view.hints.made![0]!.cost).toBe(1);
      expect(view.solutions.written).toContain("echo hello");
      expect(view.quizzes.basics).toMatchObject({ passed: true, points: 2, perQuestion: { q1: true }, attempt: 1 });
      expect(view).toMatchObject({ currentStep: "make", score: 4, maxScore: 8, percent: 50, completed: false });
      expect([...(await book.passedChecks(user.id, lab.id))]).toEqual(["made"]);
      expect((await book.states(user.id)).get(lab.id)).toEqual({ status: "in-progress", percent: 50, score: 4, maxScore: 8 });
    });

    it("finds a learner's live sandbox and a lab's recent events", async () => {
      const user = await db.user.create({ data: { email: `sb.${name}@example.org`, passwordHash: "h" } });
      const later = new Date(Date.now() + 3_600_000);
      await db.sandbox.create({ data: { userId: user.id, labId: "l", driver: "namespaces", hostname: "a", state: "ended", expiresAt: later, endedAt: new Date(), endReason: "idle" } });
      const live = await db.sandbox.create({ data: { userId: user.id, labId: "l", driver: "namespaces", hostname: "b", state: "running", expiresAt: later } });
      const found = await db.sandbox.findFirst({ where: { userId: user.id, labId: "l", state: { in: ["starting", "running"] } } });
      expect(found?.id).toBe(live.id);
      for (const kind of ["sandbox.started", "hint.requested"]) await db.event.create({ data: { labId: "events-lab", kind } });
      const events = await db.event.findMany({ where: { labId: "events-lab" }, orderBy: { createdAt: "desc" } });
      expect(events).toHaveLength(2);
    });
  });
}

describe("SQLite (embedded default)", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "berth-db-test-"));
  const location = locateDatabase(`file:${path.join(dir, "berth.db")}`, {});
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("defaults to <BERTH_DATA_DIR>/berth.db and recognises PostgreSQL URLs", () => {
    const env = { BERTH_DATA_DIR: path.join(dir, "state") };
    expect(locateDatabase(undefined, env)).toEqual({
      provider: "sqlite",
      url: `file:${path.join(dir, "state", "berth.db")}`,
      file: path.join(dir, "state", "berth.db"),
    });
    expect(fs.statSync(path.join(dir, "state")).isDirectory()).toBe(true);
    expect(locateDatabase(undefined, { DATABASE_URL: "postgres://u:p@h/db" }).provider).toBe("postgresql");
    expect(() => locateDatabase("mysql://u:secret@h/db", {})).toThrow(/Unsupported DATABASE_URL "mysql:\/\/u:\*\*\*@h\/db"/);
  });

  it("refuses to open a database that is not migrated", async () => {
    const count = listMigrations("sqlite").length;
    await expect(openDatabase(location.url)).rejects.toThrow(new RegExp(`missing ${count} migration\\(s\\).*scripts/db\\.ts migrate`));
  });

  it("migrates a fresh file, and a second migrate is a no-op", async () => {
    const first = await migrateDatabase(location);
    expect(first.applied).toEqual(listMigrations("sqlite").map((m) => m.name));
    expect(first.applied.length).toBeGreaterThan(0);
    const second = await migrateDatabase(location);
    expect(second.applied).toEqual([]);
    expect(await migrationStatus(location)).toEqual({ pending: [], modified: [] });
  });

  it("opens in WAL mode with foreign keys on", async () => {
    const db = await openDatabase(location.url);
    try {
      const [journal] = await db.$queryRawUnsafe<{ journal_mode: string }[]>("PRAGMA journal_mode");
      const [fk] = await db.$queryRawUnsafe<{ foreign_keys: bigint | number }[]>("PRAGMA foreign_keys");
      expect(journal?.journal_mode).toBe("wal");
      expect(Number(fk?.foreign_keys)).toBe(1);
    } finally {
      await closeDatabase(db);
    }
  });

  conformance("sqlite", () => location);

  it("openDatabase({ migrate: true }) makes a fresh database ready in one call", async () => {
    const url = `file:${path.join(dir, "fresh", "one-call.db")}`;
    const db = await openDatabase(url, { migrate: true });
    try {
      expect(await db.user.count()).toBe(0);
      expect((await migrationStatus(locateDatabase(url, {}))).pending).toEqual([]);
    } finally {
      await closeDatabase(db);
    }
  });

  it("has migrations that match prisma/schema.prisma (no change is missing a migration)", async () => {
    const sql = await diffMigrationsToSchema("sqlite");
    expect(isEmptyScript(sql), `prisma/schema.prisma differs from prisma/migrations; run new-migration:\n${sql}`).toBe(true);
  });

  it("scripts/db.ts migrate prints what it does and is idempotent", async () => {
    const env = { ...process.env, DATABASE_URL: `file:${path.join(dir, "cli.db")}` };
    const tsx = path.join(repoRoot, "node_modules", ".bin", "tsx");
    const first = await run(tsx, ["scripts/db.ts", "migrate"], { cwd: repoRoot, env });
    const count = listMigrations("sqlite").length;
    expect(first.stdout).toMatch(new RegExp(`\\[db\\] applying ${count} migration\\(s\\) to file:.*cli\\.db`));
    expect(first.stdout).toMatch(new RegExp(`migrated \\(${count} applied\\)`));
    const second = await run(tsx, ["scripts/db.ts", "migrate"], { cwd: repoRoot, env });
    expect(second.stdout).toMatch(new RegExp(`is up to date \\(${count} migrations\\)`));
    const status = await run(tsx, ["scripts/db.ts", "status"], { cwd: repoRoot, env });
    expect(status.stdout).toMatch(/0 pending/);
  });
});

describe("PostgreSQL (a real server, started by this test)", () => {
  let server: TempPostgres;
  let location: DatabaseLocation;
  beforeAll(async () => {
    server = await startTempPostgres({ binDir: process.env.PG_BIN });
    location = locateDatabase(server.url, {});
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("migrates a fresh database, and a second migrate is a no-op", async () => {
    await expect(openDatabase(location.url)).rejects.toThrow(new RegExp(`missing ${listMigrations("postgresql").length} migration`));
    const first = await migrateDatabase(location);
    expect(first.applied).toEqual(listMigrations("postgresql").map((m) => m.name));
    const second = await migrateDatabase(location);
    expect(second.applied).toEqual([]);
  });

  it("keeps the same migrations for both providers", () => {
    expect(listMigrations("postgresql").map((m) => m.name)).toEqual(listMigrations("sqlite").map((m) => m.name));
  });

  conformance("postgresql", () => location);

  it("has migrations that match prisma/schema.prisma, so new-migration has nothing to write", async () => {
    const sql = await diffMigrationsToSchema("postgresql", server.url);
    expect(isEmptyScript(sql), `prisma/schema.prisma differs from prisma/postgres/migrations; run new-migration:\n${sql}`).toBe(true);
    // The whole command, on this server (it would otherwise start one of its own).
    const lines: string[] = [];
    expect(await newMigration("nothing new", (l) => lines.push(l), { databaseUrl: server.url })).toBeNull();
    expect(lines.at(-1)).toBe("no schema changes: nothing to write");
    // The shadow databases made for the diffs are gone.
    const db = await openDatabase(server.url);
    try {
      const rows = await db.$queryRawUnsafe<{ datname: string }[]>("SELECT datname::text FROM pg_database WHERE datname LIKE 'prisma_migrate_shadow%'");
      expect(rows).toEqual([]);
    } finally {
      await closeDatabase(db);
    }
  });
});
