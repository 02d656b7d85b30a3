// What an instructor takes away: the grade sheet (CSV: one row per learner; per lab its points,
// the most there are, attempts, hints, solutions, minutes and whether it is complete; then per
// check and quiz its points, attempts, hints and whether the solution was taken) and a learner's
// events feed (what they did, newest first), both from the history tables only.
//
// Time spent in a lab is the sum over the learner's sandboxes for it of last activity − start: a
// sandbox left idle until the reaper took it does not count its idle tail.
//
// Cells are quoted when needed (RFC 4180) and a cell that starts with = + - @ (or a tab/CR) gets a
// leading apostrophe, so a name such as `=HYPERLINK(...)` stays text in a spreadsheet.
import type { LearnerEventView } from "@berth/protocol";
import type { Db } from "../db/index.js";
import type { LabCatalog } from "../labs/catalog.js";
import type { BoardBook } from "./board.js";
import type { CohortRow } from "./cohorts.js";

const FEED_LIMIT = 300;

export async function gradesCsv(
  deps: { db: Db; catalog: LabCatalog; board: BoardBook },
  cohort: CohortRow,
  labs: Array<{ labId: string; dueAt: Date | null }>,
): Promise<string> {
  const labIds = labs.map((l) => l.labId);
  const rows = (await deps.board.rows(cohort, labIds)).sort((a, b) => a.email.localeCompare(b.email));
  const userIds = rows.map((r) => r.userId);
  const sandboxes = userIds.length
    ? await deps.db.sandbox.findMany({ where: { userId: { in: userIds }, labId: { in: labIds } }, select: { userId: true, labId: true, createdAt: true, lastActiveAt: true } })
    : [];
  const minutes = new Map<string, number>();
  for (const s of sandboxes) {
    const k = `${s.userId}\0${s.labId}`;
    minutes.set(k, (minutes.get(k) ?? 0) + Math.max(0, s.lastActiveAt.getTime() - s.createdAt.getTime()) / 60_000);
  }
  const columns = deps.board.columns(labs);

  const header = ["email", "name"];
  for (const lab of columns) {
    header.push(`${lab.id}: points`, `${lab.id}: max points`, `${lab.id}: attempts`, `${lab.id}: hints`, `${lab.id}: solutions`, `${lab.id}: minutes`, `${lab.id}: completed`);
    for (const step of lab.steps) for (const item of step.items) {
      const name = `${lab.id}/${item.id}`;
      header.push(`${name}: points`, `${name}: attempts`);
      if (item.kind === "check") header.push(`${name}: hints`, `${name}: solution`);
    }
  }
  const lines = [header];
  for (const row of rows) {
    const line: Array<string | number> = [row.email, row.name ?? ""];
    for (const lab of columns) {
      const state = row.labs[lab.id]!;
      const cells = Object.values(state.cells);
      line.push(
        state.score,
        state.maxScore,
        cells.reduce((n, c) => n + c.attempts, 0),
        cells.reduce((n, c) => n + c.hints, 0),
        cells.filter((c) => c.solution).length,
        Math.round((minutes.get(`${row.userId}\0${lab.id}`) ?? 0) * 10) / 10,
        state.completed ? "yes" : "no",
      );
      for (const step of lab.steps) for (const item of step.items) {
        const c = state.cells[item.id]!;
        line.push(c.points, c.attempts);
        if (item.kind === "check") line.push(c.hints, c.solution ? "yes" : "no");
      }
    }
    lines.push(line.map(String));
  }
  return lines.map((l) => l.map(csvCell).join(",")).join("\r\n") + "\r\n";
}

export function csvCell(value: string): string {
  let v = value;
  if (/^[=+\-@\t\r]/.test(v)) v = `'${v}`;
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** One learner's events in the cohort's labs, newest first: attempts, reveals, sandboxes, messages. */
export async function learnerEvents(
  deps: { db: Db; catalog: LabCatalog },
  cohort: CohortRow,
  userId: string,
  labIds: string[],
): Promise<LearnerEventView[]> {
  const { db } = deps;
  const scope = { userId, labId: { in: labIds } };
  const take = FEED_LIMIT;
  const [checks, quizzes, hints, solutions, sandboxes, messages] = await Promise.all([
    db.checkAttempt.findMany({ where: scope, orderBy: { createdAt: "desc" }, take, select: { labId: true, checkId: true, passed: true, points: true, message: true, createdAt: true } }),
    db.quizAttempt.findMany({ where: scope, orderBy: { createdAt: "desc" }, take, select: { labId: true, quizId: true, passed: true, points: true, createdAt: true } }),
    db.hintReveal.findMany({ where: scope, orderBy: { createdAt: "desc" }, take, select: { labId: true, checkId: true, index: true, cost: true, createdAt: true } }),
    db.solutionReveal.findMany({ where: scope, orderBy: { createdAt: "desc" }, take, select: { labId: true, checkId: true, how: true, createdAt: true } }),
    db.sandbox.findMany({ where: scope, orderBy: { createdAt: "desc" }, take, select: { labId: true, createdAt: true, endedAt: true, endReason: true } }),
    db.cohortMessage.findMany({ where: { cohortId: cohort.id, OR: [{ toUserId: null }, { toUserId: userId }] }, orderBy: { createdAt: "desc" }, take, select: { text: true, toUserId: true, createdAt: true } }),
  ]);
  const title = (labId: string, itemId: string) => {
    for (const s of deps.catalog.get(labId)?.lab.steps ?? []) for (const i of [...s.checks, ...s.quizzes]) if (i.id === itemId) return `“${i.title}”`;
    return itemId;
  };
  const out: LearnerEventView[] = [
    ...checks.map((c) => ({ at: c.createdAt.toISOString(), kind: c.passed ? "check.passed" : "check.failed", labId: c.labId, text: `${title(c.labId, c.checkId)} ${c.passed ? `passed (${c.points} points)` : `failed: ${c.message.slice(0, 200)}`}` })),
    ...quizzes.map((q) => ({ at: q.createdAt.toISOString(), kind: q.passed ? "quiz.passed" : "quiz.failed", labId: q.labId, text: `${title(q.labId, q.quizId)} ${q.passed ? `passed (${q.points} points)` : "answered wrong"}` })),
    ...hints.map((h) => ({ at: h.createdAt.toISOString(), kind: "hint.taken", labId: h.labId, text: `hint ${h.index + 1} of ${title(h.labId, h.checkId)}${h.cost ? ` (−${h.cost} points)` : ""}` })),
    ...solutions.map((s) => ({ at: s.createdAt.toISOString(), kind: s.how === "skipped" ? "step.skipped" : "solution.shown", labId: s.labId, text: `solution of ${title(s.labId, s.checkId)} ${s.how === "skipped" ? "run by Skip step" : "shown"}` })),
    ...sandboxes.flatMap((s) => [
      { at: s.createdAt.toISOString(), kind: "sandbox.started", labId: s.labId, text: "sandbox started" },
      ...(s.endedAt ? [{ at: s.endedAt.toISOString(), kind: "sandbox.ended", labId: s.labId, text: `sandbox ended${s.endReason ? ` (${s.endReason})` : ""}` }] : []),
    ]),
    ...messages.map((m) => ({ at: m.createdAt.toISOString(), kind: "message", labId: null, text: `${m.toUserId ? "message to them" : "message to the cohort"}: ${m.text.slice(0, 200)}` })),
  ];
  return out.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0)).slice(0, FEED_LIMIT);
}
