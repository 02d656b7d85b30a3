// REST shapes shared by the web app and the orchestrator (JSON over /api).
import { z } from "zod";

export const SignUpBody = z.object({
  email: z.string().trim().toLowerCase().email().max(254),
  password: z.string().min(8, "use at least 8 characters").max(200),
  name: z.string().trim().min(1).max(100).optional(),
});
export const SignInBody = z.object({
  email: z.string().trim().toLowerCase().email().max(254),
  password: z.string().min(1).max(200),
});

export type Role = "learner" | "instructor" | "admin";

export interface UserView {
  id: string;
  email: string;
  name: string | null;
  role: Role;
}

export type Difficulty = "beginner" | "intermediate" | "advanced";
export type LabStatus = "not-started" | "in-progress" | "done";

/** A signed-in learner's standing in one lab, for the catalog. */
export interface LabStateView {
  status: LabStatus;
  /** 0..100, whole number: share of the lab's checks and quizzes passed. */
  percent: number;
  score: number;
  maxScore: number;
}

export interface LabSummary {
  id: string;
  title: string;
  summary: string;
  duration: string;
  chapter: number | null;
  stepCount: number;
  /** The most a learner can score: every check's and quiz's points. */
  points: number;
  difficulty: Difficulty;
  tags: string[];
  /** The id of the lab to take after this one (front matter `next:`). */
  next?: string | null;
  /** Only for a signed-in caller. */
  state?: LabStateView;
}

/**
 * A check as the browser sees it: never the script, the solution or the hint text.
 * Scoring: a check earns `points` minus `hintCost` per hint taken (never below 0), and 0 once its
 * solution was revealed.
 */
export interface CheckView {
  id: string;
  title: string;
  points: number;
  /** Same as hintCount > 0 (kept for older clients). */
  hasHint: boolean;
  /** How many hints there are; they are revealed one at a time, in order. */
  hintCount: number;
  /** Points each revealed hint costs (0 = free). */
  hintCost: number;
  /** The server runs the check by itself while its step is open; it passes without a click. */
  auto: boolean;
  /** For auto checks, how often the server runs it (ms); null otherwise. */
  pollMs: number | null;
  /** Check ids (in this lab) that must pass before this one can. */
  needs: string[];
  /** The learner may ask for the solution (it then earns no points). */
  hasSolution: boolean;
}

export type QuizKind = "single" | "multiple" | "text";

export interface QuizOptionView {
  /** "a", "b", ... in the order written. */
  id: string;
  html: string;
}

export interface QuizQuestionView {
  /** "q1", "q2", ... in the order written. */
  id: string;
  kind: QuizKind;
  promptHtml: string;
  /** For single and multiple choice; absent for text. */
  options?: QuizOptionView[];
}

/** A quiz without its answers (those stay on the server). */
export interface QuizView {
  id: string;
  title: string;
  points: number;
  questions: QuizQuestionView[];
}

export interface StepView {
  id: string;
  title: string;
  /**
   * Sanitized HTML. Code blocks carry data attributes for the run and copy buttons
   * (<pre class="berth-code" data-lang data-runnable data-term data-interrupt>), workspace actions
   * are <button class="berth-action" data-action="open-file|preview" data-path|data-port>.
   */
  html: string;
  checks: CheckView[];
  quizzes: QuizView[];
  /** The step cannot be opened before the previous step is complete (see stepComplete). */
  gated: boolean;
  /** "Skip step" can run a solution for this step. */
  hasSolution: boolean;
  /** The server runs a hidden setup when the learner first reaches this step. */
  hasSetup: boolean;
}

/** One learner's view of a lab: variables substituted, conditional blocks resolved. */
export interface LabView extends Omit<LabSummary, "next" | "state"> {
  /** Sanitized HTML of the text before the first step. */
  introHtml: string;
  steps: StepView[];
  /** Sanitized HTML of the closing recap, shown when the lab is complete. */
  recapHtml: string | null;
  next: { id: string; title: string } | null;
}

export interface CheckResultView {
  checkId: string;
  passed: boolean;
  /** What the check printed for the learner (or the lab's failure message). */
  message: string;
  points: number;
  attempt: number;
  durationMs: number;
  at: string;
}

export interface QuizResultView {
  quizId: string;
  passed: boolean;
  /** Right or wrong, per question id. */
  perQuestion: Record<string, boolean>;
  message: string;
  attempt: number;
  points: number;
  at: string;
}

export interface HintView {
  /** Sanitized HTML. */
  html: string;
  /** Points this hint cost. */
  cost: number;
}

export interface ProgressView {
  labId: string;
  checks: Record<string, CheckResultView>;
  /** Hints revealed so far, per check id, in order. */
  hints: Record<string, HintView[]>;
  /** Revealed solutions, per check id, as sanitized HTML. */
  solutions: Record<string, string>;
  quizzes: Record<string, QuizResultView>;
  /** The step the learner last entered. */
  currentStep: string | null;
  score: number;
  maxScore: number;
  /** 0..100, whole number. */
  percent: number;
  completed: boolean;
}

/**
 * A step is complete when each of its checks has passed and each of its quizzes was passed; a
 * step with neither (a reading step) is complete. The web app gates steps with it, the server
 * refuses to enter a gated step whose previous step is not complete.
 */
export function stepComplete(step: Pick<StepView, "checks" | "quizzes">, progress: Pick<ProgressView, "checks" | "quizzes">): boolean {
  return step.checks.every((c) => progress.checks[c.id]?.passed === true) && step.quizzes.every((q) => progress.quizzes[q.id]?.passed === true);
}

/** POST /api/labs/:lab/quizzes/:quiz: an option id for single choice, a list for multiple, text for text. */
export const QuizAnswersBody = z.object({
  answers: z.record(
    z.string().min(1).max(64),
    z.union([z.string().max(1000), z.array(z.string().min(1).max(64)).max(50)]),
  ),
});
export type QuizAnswers = z.infer<typeof QuizAnswersBody>["answers"];

export interface ApiError {
  error: string;
  /** Where the problem is, for form fields. */
  field?: string;
}

/**
 * The answer to every well-formed sign-up, whether the email was new or taken: a sign-up never
 * signs in, so it cannot tell a stranger which emails have accounts. The form signs in next.
 */
export interface SignUpResult {
  ok: true;
  message: string;
}

/** The one-time setup link's form: the first administrator of an installation. */
export const SetupAdminBody = SignUpBody.extend({
  token: z.string().min(1).max(200),
});
