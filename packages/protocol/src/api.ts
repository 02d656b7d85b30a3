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

export interface LabSummary {
  id: string;
  title: string;
  summary: string;
  duration: string;
  chapter: number | null;
  stepCount: number;
  points: number;
}

/** A check as the browser sees it: never the script, never the solution. */
export interface CheckView {
  id: string;
  title: string;
  points: number;
  hasHint: boolean;
}

export interface StepView {
  id: string;
  title: string;
  /** Sanitized HTML. Code blocks carry data attributes for the run and copy buttons. */
  html: string;
  checks: CheckView[];
}

export interface LabView extends LabSummary {
  /** Sanitized HTML of the text before the first step. */
  introHtml: string;
  steps: StepView[];
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

export interface ProgressView {
  labId: string;
  checks: Record<string, CheckResultView>;
  score: number;
  maxScore: number;
}

export interface ApiError {
  error: string;
  /** Where the problem is, for form fields. */
  field?: string;
}
