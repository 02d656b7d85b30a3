// Labs authored in the browser (/api/authoring; docs/authoring.md): what the lab editor and the
// orchestrator exchange. Types only.
import type { LabView } from "./api.js";

/** One problem labkit found in lab.md (1-based line). */
export interface LintProblem {
  file?: string;
  line: number;
  column?: number;
  message: string;
  fix: string;
  /** Errors stop a lab from being proved or published; warnings do not. */
  severity?: "error" | "warning";
}

export interface DraftSummary {
  labId: string;
  title: string;
  authorId: string;
  updatedAt: string;
  /** The draft as it is now passed its last proof (publishable). */
  proved: boolean;
  /** Published versions, newest first. */
  versions: { versionId: string; publishedAt: string }[];
}

/** Saving lab.md answers with its problems and, when it parses, the learner's view (sanitized). */
export interface DraftSaveResult {
  errors: LintProblem[];
  warnings: LintProblem[];
  view?: LabView;
  proved: boolean;
}

export interface DraftLimits {
  markdownBytes: number;
  fileBytes: number;
  totalBytes: number;
  files: number;
  archiveBytes: number;
}

export interface DraftDetail extends DraftSummary, Omit<DraftSaveResult, "proved"> {
  markdown: string;
  files: { path: string; size: number }[];
  limits: DraftLimits;
}

/** What "Prove it" streams (server-sent events): each run as it finishes, then the verdict. */
export type ProofEvent =
  | { kind: "start"; labId: string; checks: number }
  | { kind: "step"; what: string; stepId?: string; checkId?: string; phase?: "before" | "after"; ok: boolean; detail: string; ms: number }
  | { kind: "done"; ok: boolean; problems: string[]; ms: number; publishable: boolean }
  | { kind: "error"; error: string };
