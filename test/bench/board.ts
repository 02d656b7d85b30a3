// The instructor's live board and terminal mirror, measured in Chromium against an orchestrator
// run in this process (so the bench can play 100 learners without 100 sandboxes).
//
// 1. Board: a cohort of LEARNERS learners (accounts and memberships written to the database) and
//    two labs; the instructor's board page is open in Chromium. UPDATES times, at RATE per second, a
//    random learner "attempts" a random check (a CheckAttempt row, as CheckRunner writes it) and
//    the orchestrator is told, as CheckRunner tells it. Figures: in the page, from the board:row
//    message to the frame after React committed it (window.__berthBoard, Board.tsx); on the
//    server, one learner's row read (what each push costs).
// 2. Mirror: one real learner with a real sandbox; keystroke echo (keydown → xterm parsed the echo)
//    measured in the learner's page without a mirror, with the instructor's mirror open in
//    Chromium, and with a second mirror that never acknowledges anything (a stalled instructor).
//
//   sudo npx tsx test/bench/board.ts [learners=100] [updates=300] [rate=20] [keys=100]
// (Set BERTH_WEB_DIST_DIR as at `next build` when the web app was built into another folder.)
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Page } from "@playwright/test";
import { io as connectSocket } from "socket.io-client";
import { createNamespacesDriver } from "@berth/sandbox";
import { hashPassword } from "../../apps/orchestrator/src/auth/passwords.js";
import { startOrchestrator } from "../../apps/orchestrator/src/server.js";
import { launchChromium, summary } from "./lib.js";

const LEARNERS = Number(process.argv[2] ?? 100);
const UPDATES = Number(process.argv[3] ?? 300);
const RATE = Number(process.argv[4] ?? 20);
const KEYS = Number(process.argv[5] ?? 100);
const LABS = ["first-containers", "background-containers"];
const MIRROR_LAB = "first-containers";
const PASSWORD = "bench-board-password";
const INSTANCE = `bboard${process.pid}`;
/** keys=0: the board part only. */
class Skip extends Error {}

process.env.BERTH_DATA_DIR = mkdtempSync(path.join(os.tmpdir(), "berth-bench-board-"));
process.env.LOG_LEVEL ??= "warn";
const { pino } = await import("pino");
const berth = await startOrchestrator(
  { port: 0, host: "127.0.0.1", serveWeb: true, warmPoolSize: 1, registry: { enabled: false, root: "", port: 0 }, instance: INSTANCE, admin: undefined },
  { log: pino({ level: "warn" }) },
);
const browser = await launchChromium();
const { db } = berth;

async function account(email: string, role: string, passwordHash: string) {
  return db.user.create({ data: { email, passwordHash, role } });
}

async function signedInPage(email: string): Promise<Page> {
  const context = await browser.newContext({ baseURL: berth.url, viewport: { width: 1600, height: 1000 } });
  const res = await context.request.post("/api/auth/signin", { data: { email, password: PASSWORD } });
  if (!res.ok()) throw new Error(`sign-in failed: ${res.status()} ${await res.text()}`);
  return context.newPage();
}

/** keydown → the echo parsed by xterm, KEYS times, in the learner's page. */
async function echo(page: Page): Promise<number[]> {
  await page.evaluate(() => {
    const term = (window as unknown as { __berth: { terminals: { main: { onWriteParsed(cb: () => void): void; focus(): void } } } }).__berth.terminals.main;
    const w = window as unknown as { __bench: { t0: number; samples: number[] } };
    w.__bench = { t0: 0, samples: [] };
    document.addEventListener("keydown", (e) => { if (e.key.length === 1 && !e.ctrlKey) w.__bench.t0 = performance.now(); }, true);
    term.onWriteParsed(() => {
      if (w.__bench.t0 === 0) return;
      w.__bench.samples.push(performance.now() - w.__bench.t0);
      w.__bench.t0 = 0;
    });
    term.focus();
  });
  for (let i = 0; i < KEYS; i++) {
    await page.keyboard.press("abcdefghijklmnopqrstuvwxyz"[i % 26]!);
    await page.waitForFunction((n) => (window as unknown as { __bench: { samples: number[] } }).__bench.samples.length >= n, i + 1, { polling: "raf" });
    if (i % 40 === 39) {
      await page.keyboard.press("Control+U");
      await page.waitForTimeout(50);
      await page.evaluate(() => { (window as unknown as { __bench: { t0: number } }).__bench.t0 = 0; });
    }
  }
  await page.keyboard.press("Control+U");
  return page.evaluate(() => {
    const w = window as unknown as { __bench: { samples: number[]; t0: number } };
    const out = w.__bench.samples;
    w.__bench = { samples: [], t0: 0 };
    return out;
  });
}

try {
  const hash = await hashPassword(PASSWORD);
  const instructor = await account(`bench-instructor-${process.pid}@example.org`, "instructor", hash);
  const cohort = await db.cohort.create({ data: { name: "Bench class", ownerId: instructor.id } });
  for (const [position, labId] of LABS.entries()) await db.cohortLab.create({ data: { cohortId: cohort.id, labId, position } });
  const learners: string[] = [];
  for (let i = 0; i < LEARNERS; i++) {
    const u = await account(`bench-learner-${i}-${process.pid}@example.org`, "learner", hash);
    await db.cohortMember.create({ data: { cohortId: cohort.id, userId: u.id } });
    learners.push(u.id);
  }
  const checks = LABS.flatMap((labId) => {
    const entry = berth.classroom.board.columns([{ labId, dueAt: null }])[0]!;
    return entry.steps.flatMap((s) => s.items.filter((i) => i.kind === "check").map((i) => ({ labId, stepId: s.id, checkId: i.id })));
  });
  const versions = new Map<string, string>();
  for (const labId of LABS) versions.set(labId, (await db.labVersion.findFirst({ where: { labId }, orderBy: { createdAt: "desc" } }))!.id);

  // ---- 1. the board ----
  const board = await signedInPage(instructor.email);
  await board.goto(`/instructor/cohorts/${cohort.id}`);
  await board.waitForFunction((n) => (window as unknown as { __berthBoard?: { rows: number } }).__berthBoard?.rows === n, LEARNERS, { timeout: 60_000 });
  const cells = await board.locator("td.board-cell").count();
  // The floor of the measurement on this machine now: the same "next frame" wait with no update.
  const idleFrame = await board.evaluate(async (n) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 50));
      const t0 = performance.now();
      await new Promise<void>((r) => requestAnimationFrame(() => setTimeout(r, 0)));
      out.push(performance.now() - t0);
    }
    return out;
  }, 40);
  // Long tasks (over 50 ms) on the page's main thread while updates arrive.
  await board.evaluate(() => {
    const w = window as unknown as { __longTasks: number[] };
    w.__longTasks = [];
    new PerformanceObserver((list) => { for (const e of list.getEntries()) w.__longTasks.push(e.duration); }).observe({ type: "longtask", buffered: false });
  });
  const serverRow: number[] = [];
  // BENCH_PROFILE=1: Chromium's CPU profile of the page during the updates, top functions by self time.
  const cdp = process.env.BENCH_PROFILE ? await board.context().newCDPSession(board) : undefined;
  if (cdp) {
    await cdp.send("Profiler.enable");
    await cdp.send("Profiler.start");
  }
  const started = Date.now();
  for (let k = 0; k < UPDATES; k++) {
    const userId = learners[Math.floor(Math.random() * learners.length)]!;
    const c = checks[Math.floor(Math.random() * checks.length)]!;
    const passed = Math.random() < 0.4;
    await db.checkAttempt.create({
      data: { userId, labId: c.labId, labVersionId: versions.get(c.labId)!, stepId: c.stepId, checkId: c.checkId, passed, message: passed ? "ok" : "not yet", output: "", durationMs: 50, points: passed ? 1 : 0 },
    });
    berth.classroom.activity(userId, c.labId);
    if (k % 10 === 0) {
      const t0 = performance.now();
      await berth.classroom.board.rows(cohort, LABS, userId);
      serverRow.push(performance.now() - t0);
    }
    const due = started + ((k + 1) * 1000) / RATE;
    await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
  }
  await board.waitForTimeout(1500);
  if (cdp) {
    const { profile } = (await cdp.send("Profiler.stop")) as { profile: { nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>; samples: number[]; timeDeltas: number[] } };
    const self = new Map<number, number>();
    profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
    const byName = new Map<string, number>();
    for (const n of profile.nodes) {
      const k = `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.split("/").pop()}:${n.callFrame.lineNumber}`;
      byName.set(k, (byName.get(k) ?? 0) + (self.get(n.id) ?? 0));
    }
    console.log("\nTop self time in the page (ms):");
    for (const [k, v] of [...byName].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${v.toFixed(0).padStart(6)}  ${k}`);
  }
  const updates = await board.evaluate(() => (window as unknown as { __berthBoard: { updates: number[] } }).__berthBoard.updates);
  console.log(`\nLive board: ${LEARNERS} learners × ${LABS.length} labs (${cells} cells), ${UPDATES} attempts at ${RATE}/s`);
  console.log(summary("page: board:row → next frame (Chromium)", updates));
  console.log(`${"".padEnd(44)} max ${Math.max(...updates).toFixed(1)} ms, ${updates.filter((u) => u >= 100).length} of ${updates.length} at or over 100 ms`);
  console.log(summary("page: next frame with no update (the floor)", idleFrame));
  const longTasks = await board.evaluate(() => (window as unknown as { __longTasks: number[] }).__longTasks);
  console.log(`${"page: long tasks (> 50 ms) during the run".padEnd(44)} ${longTasks.length}${longTasks.length ? `, longest ${Math.max(...longTasks).toFixed(0)} ms` : ""}`);
  console.log(summary("server: one learner's row (6 queries)", serverRow));
  console.log(`(load average while measuring: ${os.loadavg().map((l) => l.toFixed(1)).join(" ")} on ${os.cpus().length} cores)`);

  // ---- 2. the mirror ----
  if (KEYS === 0) throw new Skip();
  const learnerId = learners[0]!;
  const learner = await signedInPage(`bench-learner-0-${process.pid}@example.org`);
  await learner.goto(`/labs/${MIRROR_LAB}`);
  await learner.waitForFunction(() => {
    const t = (window as unknown as { __berth?: { terminals?: { main?: { buffer: { active: { length: number; getLine(y: number): { translateToString(trim: boolean): string } | undefined } } } } } }).__berth?.terminals?.main;
    if (!t) return false;
    const b = t.buffer.active;
    for (let y = 0; y < b.length; y++) if (/[#$] ?$/.test(b.getLine(y)?.translateToString(true) ?? "")) return true;
    return false;
  }, undefined, { timeout: 120_000 });
  await learner.waitForTimeout(1000);
  const without = await echo(learner);
  // The server's share alone: a mirror that acknowledges everything but draws nothing. (The
  // Chromium mirror below also draws every echoed byte in a second page on the same two cores.)
  const boardCookie = (await board.context().cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
  const plain = connectSocket(berth.url, { transports: ["websocket"], extraHeaders: { cookie: boardCookie }, reconnection: false });
  plain.on("mirror:data", (m: { mirrorId: string; data: ArrayBuffer | Uint8Array }) => plain.emit("mirror:ack", { mirrorId: m.mirrorId, bytes: m.data.byteLength }));
  await new Promise<void>((resolve, reject) => {
    plain.on("connect", () => plain.emit("mirror:open", { cohortId: cohort.id, userId: learnerId, labId: MIRROR_LAB, term: "1", cols: 80, rows: 24 }, (r: { ok: boolean; error?: string }) => (r.ok ? resolve() : reject(new Error(r.error)))));
    plain.on("connect_error", reject);
  });
  const withPlain = await echo(learner);
  plain.close();
  await board.getByTestId(`mirror-open-${learnerId}`).click();
  await board.getByTestId("mirror-panel").and(board.locator("[data-phase=live]")).waitFor({ timeout: 30_000 });
  const withMirror = await echo(learner);
  // A stalled instructor: a mirror whose client never acknowledges, while the learner floods output.
  const stalled = connectSocket(berth.url, { transports: ["websocket"], extraHeaders: { cookie: boardCookie }, reconnection: false });
  await new Promise<void>((resolve, reject) => {
    stalled.on("connect", () => stalled.emit("mirror:open", { cohortId: cohort.id, userId: learnerId, labId: MIRROR_LAB, term: "1", cols: 80, rows: 24 }, (r: { ok: boolean; error?: string }) => (r.ok ? resolve() : reject(new Error(r.error)))));
    stalled.on("connect_error", reject);
  });
  await learner.keyboard.type("seq 1 200000 | tail -n 1\n");
  await learner.waitForTimeout(3000);
  const withStalled = await echo(learner);
  stalled.close();
  // Both mirrors closed: the learner's echo as at first? (Tells drift from a mirror's cost.)
  await board.getByTestId("mirror-close").click();
  await learner.waitForTimeout(1000);
  const after = await echo(learner);
  console.log(`\nKeystroke echo in the learner's page (${KEYS} keys each)`);
  console.log(summary("no mirror", without));
  console.log(summary("a mirror that draws nothing (server only)", withPlain));
  console.log(summary("instructor's mirror open (Chromium)", withMirror));
  console.log(summary("+ a mirror that never acknowledges", withStalled));
  console.log(summary("no mirror again (closed)", after));
} catch (err) {
  if (!(err instanceof Skip)) throw err;
} finally {
  await browser.close();
  await berth.close();
  // Sandboxes outlive the orchestrator: this run's go with it.
  const driver = createNamespacesDriver();
  for (const sb of await driver.list()) if (sb.id.startsWith(`${INSTANCE}-`)) await driver.destroy(sb.id);
  await driver.close?.();
}
