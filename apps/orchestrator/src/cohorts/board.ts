// The live board's data: one row per learner of a cohort, one cell per check and quiz of each of
// the cohort's labs, derived from the history tables (attempts, reveals, where each learner is)
// like a learner's own progress (grading/progress.ts), plus who has the lab open right now.
// A whole board is six queries whatever the cohort's size; one learner's row is the same six
// queries narrowed to that learner (what a push after their action costs).
//
// Stuck (shown first): a check failed `stuckFails` times in a row, or no check or quiz passed for
// `stuckMinutes` while the learner has the lab open. The clock is the last pass in the lab (or
// when the learner started it); entering a step does not reset it, so clicking around is not progress.
import type { BoardCell, BoardColumnLab, BoardLabState, BoardRow, BoardView } from "@berth/protocol";
import type { Db } from "../db/index.js";
import { labStepComplete } from "../grading/progress.js";
import type { CatalogEntry, LabCatalog } from "../labs/catalog.js";
import type { LabPresence } from "../labs/presence.js";
import type { CohortRow } from "./cohorts.js";

interface Attempt {
  userId: string;
  labId: string;
  itemId: string;
  passed: boolean;
  points: number;
  createdAt: Date;
}

export interface StuckRules {
  stuckMinutes: number;
  stuckFails: number;
}

export class BoardBook {
  constructor(private readonly deps: { db: Db; catalog: LabCatalog; presence: LabPresence }) {}

  /** The cohort's labs as columns (steps and their checks and quizzes). */
  columns(labs: Array<{ labId: string; dueAt: Date | null }>): BoardColumnLab[] {
    return labs.map(({ labId, dueAt }) => {
      const entry = this.deps.catalog.get(labId);
      return {
        id: labId,
        title: entry?.summary.title ?? labId,
        dueAt: dueAt?.toISOString() ?? null,
        steps: (entry?.lab.steps ?? []).map((s) => ({
          id: s.id,
          title: s.title,
          items: [
            ...s.checks.map((c) => ({ id: c.id, title: c.title, kind: "check" as const, points: c.points })),
            ...s.quizzes.map((q) => ({ id: q.id, title: q.title, kind: "quiz" as const, points: q.points })),
          ],
        })),
      };
    });
  }

  async board(cohort: CohortRow, labs: Array<{ labId: string; dueAt: Date | null }>, now = Date.now()): Promise<BoardView> {
    const rows = await this.rows(cohort, labs.map((l) => l.labId), undefined, now);
    return {
      cohortId: cohort.id,
      name: cohort.name,
      stuckMinutes: cohort.stuckMinutes,
      stuckFails: cohort.stuckFails,
      labs: this.columns(labs),
      rows: sortRows(rows),
      at: new Date(now).toISOString(),
    };
  }

  /** Rows of the cohort's learners (or of one of them). */
  async rows(cohort: CohortRow, labIds: string[], onlyUserId?: string, now = Date.now()): Promise<BoardRow[]> {
    const { db } = this.deps;
    const members = await db.cohortMember.findMany({
      where: { cohortId: cohort.id, role: "learner", ...(onlyUserId ? { userId: onlyUserId } : {}) },
      include: { user: { select: { id: true, email: true, name: true } } },
    });
    if (members.length === 0) return [];
    const userIds = members.map((m) => m.userId);
    const scope = { userId: { in: userIds }, labId: { in: labIds } };
    const [checks, quizzes, hints, solutions, places] = await Promise.all([
      db.checkAttempt.findMany({ where: scope, select: { userId: true, labId: true, checkId: true, passed: true, points: true, createdAt: true }, orderBy: [{ createdAt: "asc" }, { id: "asc" }] }),
      db.quizAttempt.findMany({ where: scope, select: { userId: true, labId: true, quizId: true, passed: true, points: true, createdAt: true }, orderBy: [{ createdAt: "asc" }, { id: "asc" }] }),
      db.hintReveal.findMany({ where: scope, select: { userId: true, labId: true, checkId: true } }),
      db.solutionReveal.findMany({ where: scope, select: { userId: true, labId: true, checkId: true } }),
      db.labProgress.findMany({ where: scope, select: { userId: true, labId: true, currentStep: true, startedAt: true } }),
    ]);
    const attempts = group<Attempt>([
      ...checks.map((c) => ({ userId: c.userId, labId: c.labId, itemId: c.checkId, passed: c.passed, points: c.points, createdAt: c.createdAt })),
      ...quizzes.map((q) => ({ userId: q.userId, labId: q.labId, itemId: q.quizId, passed: q.passed, points: q.points, createdAt: q.createdAt })),
    ]);
    const hintCount = new Map<string, number>();
    for (const h of hints) hintCount.set(key(h.userId, h.labId, h.checkId), (hintCount.get(key(h.userId, h.labId, h.checkId)) ?? 0) + 1);
    const revealed = new Set(solutions.map((s) => key(s.userId, s.labId, s.checkId)));
    const placeOf = new Map(places.map((p) => [key(p.userId, p.labId), p]));

    return members.map((m) => {
      const labs: Record<string, BoardLabState> = {};
      for (const labId of labIds) {
        const entry = this.deps.catalog.get(labId);
        const mine = attempts.get(key(m.userId, labId)) ?? [];
        labs[labId] = labState(entry, mine, (itemId) => ({
          hints: hintCount.get(key(m.userId, labId, itemId)) ?? 0,
          solution: revealed.has(key(m.userId, labId, itemId)),
        }), placeOf.get(key(m.userId, labId)), this.deps.presence.isOpen(m.userId, labId));
      }
      const row: BoardRow = { userId: m.userId, email: m.user.email, name: m.user.name, labs, stuck: null };
      row.stuck = stuckOf(row, cohort, (labId) => this.deps.catalog.get(labId), now);
      return row;
    });
  }
}

function labState(
  entry: CatalogEntry | undefined,
  attempts: Attempt[],
  reveals: (itemId: string) => { hints: number; solution: boolean },
  place: { currentStep: string | null; startedAt: Date } | undefined,
  open: boolean,
): BoardLabState {
  const cells: Record<string, BoardCell> = {};
  let lastPass: number | null = null;
  const byItem = new Map<string, Attempt[]>();
  for (const a of attempts) {
    const list = byItem.get(a.itemId) ?? [];
    list.push(a);
    byItem.set(a.itemId, list);
    if (a.passed) lastPass = Math.max(lastPass ?? 0, a.createdAt.getTime());
  }
  let score = 0;
  let maxScore = 0;
  let items = 0;
  let done = 0;
  const passed: Record<string, { passed: boolean }> = {};
  for (const step of entry?.lab.steps ?? []) {
    for (const item of [...step.checks, ...step.quizzes]) {
      const list = byItem.get(item.id) ?? [];
      let streak = 0;
      for (let i = list.length - 1; i >= 0 && !list[i]!.passed; i--) streak++;
      const best = list.filter((a) => a.passed).reduce((m, a) => Math.max(m, a.points), 0);
      const ok = list.some((a) => a.passed);
      cells[item.id] = { status: ok ? "passed" : list.length > 0 ? "failing" : "untried", attempts: list.length, failStreak: streak, ...reveals(item.id), points: best };
      maxScore += item.points;
      items++;
      if (ok) {
        score += best;
        done++;
        passed[item.id] = { passed: true };
      }
    }
  }
  const started = place !== undefined || attempts.length > 0;
  const since = Math.max(lastPass ?? 0, place?.startedAt.getTime() ?? 0);
  const completed = items > 0 && (entry?.lab.steps ?? []).every((s) => labStepComplete(s, passed, passed));
  return {
    currentStep: place?.currentStep ?? null,
    score,
    maxScore,
    percent: items === 0 ? 0 : Math.floor((100 * done) / items),
    completed,
    lastProgressAt: started && since > 0 ? new Date(since).toISOString() : null,
    open,
    cells,
  };
}

/** Why a learner is stuck (the longest-standing reason over the cohort's labs), or null. */
export function stuckOf(row: BoardRow, rules: StuckRules, lab: (labId: string) => CatalogEntry | undefined, now: number): BoardRow["stuck"] {
  let found: BoardRow["stuck"] = null;
  const consider = (s: NonNullable<BoardRow["stuck"]>) => {
    if (!found || s.since < found.since) found = s;
  };
  for (const [labId, state] of Object.entries(row.labs)) {
    if (state.completed) continue;
    const entry = lab(labId);
    for (const step of entry?.lab.steps ?? []) {
      for (const item of [...step.checks, ...step.quizzes]) {
        const cell = state.cells[item.id];
        if (cell && cell.status === "failing" && cell.failStreak >= rules.stuckFails) {
          // (The streak's start is not kept per cell; the last progress stands in for it.)
          consider({ labId, stepId: step.id, reason: `“${item.title}” failed ${cell.failStreak} times in a row`, since: state.lastProgressAt ?? new Date(now).toISOString() });
        }
      }
    }
    if (state.open && state.lastProgressAt) {
      const idleMs = now - Date.parse(state.lastProgressAt);
      if (idleMs >= rules.stuckMinutes * 60_000) {
        const step = entry?.lab.steps.find((s) => s.id === state.currentStep);
        const where = step ? `step “${step.title}”` : `“${entry?.summary.title ?? labId}”`;
        consider({ labId, stepId: step?.id ?? null, reason: `no progress on ${where} for ${Math.floor(idleMs / 60_000)} min`, since: state.lastProgressAt });
      }
    }
  }
  return found;
}

/** Stuck learners first (stuck longest first), then by name or email. */
export function sortRows(rows: BoardRow[]): BoardRow[] {
  const label = (r: BoardRow) => (r.name ?? r.email).toLowerCase();
  return [...rows].sort((a, b) => {
    if (a.stuck && !b.stuck) return -1;
    if (!a.stuck && b.stuck) return 1;
    if (a.stuck && b.stuck && a.stuck.since !== b.stuck.since) return a.stuck.since < b.stuck.since ? -1 : 1;
    return label(a).localeCompare(label(b));
  });
}

const key = (...parts: string[]) => parts.join("\0");

function group<T extends { userId: string; labId: string }>(rows: T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const r of rows) {
    const k = key(r.userId, r.labId);
    const list = out.get(k) ?? [];
    list.push(r);
    out.set(k, list);
  }
  return out;
}
