// The lab model: what parseLab makes of a lab.md and what every other part of labkit reads.
// Lifecycle: parseLab (or loadLabs) builds a Lab; renderLab/summarizeLab turn it into the browser's
// view (no scripts); getCheck/solutionsFor/getSetup hand scripts to the server; testLab proves it.

/** Something an author got wrong, with where and what to do about it. */
export interface LabError {
  file: string;
  /** 1-based line in the file. */
  line: number;
  /** 1-based column, when it helps. */
  column?: number;
  /** What is wrong. */
  message: string;
  /** What to do about it. */
  fix: string;
}

export type Difficulty = "beginner" | "intermediate" | "advanced";
export const DIFFICULTIES: readonly Difficulty[] = ["beginner", "intermediate", "advanced"];

/** A hidden shell script (setup, check or solution) as written in the lab. */
export interface LabScript {
  /** The script text exactly as the author wrote it (without the fence lines). */
  source: string;
  /** 1-based line of the script's first line in lab.md. */
  line: number;
  timeoutMs: number;
  /** From the script's #! line: bash unless it asks for sh. */
  shell: "bash" | "sh";
}

export interface LabCheck {
  id: string;
  stepId: string;
  title: string;
  points: number;
  /** Shown to the learner when the check fails and prints nothing. */
  message: string;
  script: LabScript;
  /** Markdown, shown only when the learner asks. */
  hint?: string;
  /** A solution for this check alone (the step may have one for all its checks). */
  solution?: LabScript;
  line: number;
}

export interface LabStep {
  id: string;
  title: string;
  /** The step's markdown with every hidden block taken out. */
  markdown: string;
  checks: LabCheck[];
  /** A solution for the whole step. */
  solution?: LabScript;
  line: number;
}

export interface Lab {
  id: string;
  title: string;
  summary: string;
  /** As written, e.g. "25m" or "1h30m". */
  duration: string;
  chapter: number | null;
  difficulty: Difficulty;
  tags: string[];
  /** Markdown before the first step, hidden blocks taken out. */
  intro: string;
  /** Runs once in a fresh sandbox before the learner starts. */
  setup?: LabScript;
  steps: LabStep[];
  /** The path given to parseLab. */
  file: string;
  /** The whole lab.md: its hash versions the lab. */
  source: string;
}

/** Defaults and bounds, in one place so the docs and the linter agree. */
export const LIMITS = {
  checkTimeoutMs: 30_000,
  scriptTimeoutMs: 120_000,
  minTimeoutMs: 1_000,
  maxTimeoutMs: 600_000,
  defaultPoints: 1,
  maxPoints: 1000,
  defaultMessage: "Not done yet. Re-read the step, try again, or ask for a hint.",
} as const;
