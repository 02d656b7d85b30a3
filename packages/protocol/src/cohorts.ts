// The instructor's side: roles, cohorts, invites, the live board, terminal mirrors, messages.
// REST bodies are zod schemas (validated on the server); views are plain interfaces. The socket
// events are listed in browser.ts with the others.
import { z } from "zod";

/** PUT /api/admin/users/:id/role: an admin makes instructors (admins come from the console only). */
export const SetRoleBody = z.object({ role: z.enum(["learner", "instructor"], { error: () => 'role is "learner" or "instructor"' }) });

export interface AdminUserView {
  id: string;
  email: string;
  name: string | null;
  role: "learner" | "instructor" | "admin";
  createdAt: string;
}

const isoDate = z
  .string()
  .max(40)
  .refine((s) => !Number.isNaN(Date.parse(s)), "not a date (use ISO 8601, e.g. 2026-12-24T18:00:00Z)");

export const CreateCohortBody = z.object({
  name: z.string().trim().min(1, "give the cohort a name").max(100),
  stuckMinutes: z.number().int().min(1).max(240).optional(),
  stuckFails: z.number().int().min(2).max(50).optional(),
});
export const UpdateCohortBody = CreateCohortBody.partial();

/** PUT /api/cohorts/:id/labs: the whole list, in order. */
export const CohortLabsBody = z.object({
  labs: z
    .array(z.object({ labId: z.string().min(1).max(100), dueAt: isoDate.nullable().optional() }))
    .max(100, "at most 100 labs in a cohort"),
});

export const CreateInviteBody = z.object({
  /** How long the link works. */
  expiresInHours: z.number().min(0.01).max(24 * 90),
  seatLimit: z.number().int().min(1).max(10_000),
});

export const MessageBody = z.object({
  text: z.string().trim().min(1, "write something").max(2000),
  /** A learner of the cohort; absent: everyone in it. */
  toUserId: z.string().min(1).max(100).optional(),
});

export interface CohortSummary {
  id: string;
  name: string;
  ownerId: string;
  learnerCount: number;
  labCount: number;
  createdAt: string;
}

export interface CohortInviteView {
  id: string;
  expiresAt: string;
  seatLimit: number;
  seatsTaken: number;
  revoked: boolean;
  /** Only in the answer that created it: the token is stored hashed and cannot be shown again. */
  url?: string;
}

export interface CohortDetail extends CohortSummary {
  stuckMinutes: number;
  stuckFails: number;
  labs: Array<{ labId: string; title: string; dueAt: string | null }>;
  learners: Array<{ id: string; email: string; name: string | null; joinedAt: string }>;
  invites: CohortInviteView[];
}

/** GET /api/invites/:token: what the join page shows before the learner joins. */
export interface InviteInfo {
  cohortName: string;
  expiresAt: string;
  seatsLeft: number;
  /** Why it cannot be used, if so. */
  closed: string | null;
}

/** One check (or quiz) of one learner on the board. */
export interface BoardCell {
  status: "passed" | "failing" | "untried";
  attempts: number;
  /** Failed attempts since the last pass (or since the start). */
  failStreak: number;
  hints: number;
  solution: boolean;
  points: number;
}

export interface BoardLabState {
  currentStep: string | null;
  score: number;
  maxScore: number;
  percent: number;
  completed: boolean;
  /** When a check or quiz last passed (or the lab was started): the "no progress" clock. */
  lastProgressAt: string | null;
  /** The learner has the lab open right now (a live socket attached its terminal). */
  open: boolean;
  cells: Record<string, BoardCell>;
}

export interface BoardRow {
  userId: string;
  email: string;
  name: string | null;
  labs: Record<string, BoardLabState>;
  /** Why the board shows this learner first; null when they are not stuck. */
  stuck: { labId: string; stepId: string | null; reason: string; since: string } | null;
}

export interface BoardColumnLab {
  id: string;
  title: string;
  dueAt: string | null;
  steps: Array<{ id: string; title: string; items: Array<{ id: string; title: string; kind: "check" | "quiz"; points: number }> }>;
}

export interface BoardView {
  cohortId: string;
  name: string;
  stuckMinutes: number;
  stuckFails: number;
  labs: BoardColumnLab[];
  /** Stuck learners first (longest stuck first), then by name. */
  rows: BoardRow[];
  at: string;
}

/** An entry of a learner's events feed (newest first). */
export interface LearnerEventView {
  at: string;
  kind: string;
  labId: string | null;
  text: string;
}

export interface ClassMessageView {
  id: string;
  cohortId: string;
  cohortName: string;
  text: string;
  from: string;
  /** True when it was sent to this learner alone. */
  direct: boolean;
  at: string;
}

// ---- socket events (see browser.ts) ----

export const BoardWatch = z.object({ cohortId: z.string().min(1).max(100) });
export const MirrorOpen = z.object({
  cohortId: z.string().min(1).max(100),
  userId: z.string().min(1).max(100),
  labId: z.string().min(1).max(100),
  term: z.enum(["1", "2", "3"]).default("1"),
  cols: z.number().int().min(1).max(1000),
  rows: z.number().int().min(1).max(1000),
});
export const MirrorAck = z.object({ mirrorId: z.string().min(1).max(200), bytes: z.number().int().min(0) });
export const MirrorClose = z.object({ mirrorId: z.string().min(1).max(200) });

/** Server → learner: an instructor started or stopped watching one of their terminals. */
export interface ClassWatchingEvent {
  labId: string;
  term: string;
  /** How many mirrors are open on it now (0: nobody watches). */
  watchers: number;
}
