// The lab model: what parseLab makes of a lab.md and what every other part of labkit reads.
// Lifecycle: parseLab (or loadLabs) builds a Lab; renderLab(lab, ctx) turns it into one learner's
// view (no scripts, no answers); the server gets the hidden parts through functions, each taking
// the learner's LabContext (variables and sandbox facts) so every script and text is substituted:
//   learnerContext(lab, { secret, userId, facts })  → LabContext (variables: HMAC, no storage)
//   FACTS_SCRIPT / parseFacts(stdout)               → SandboxFacts of a sandbox
//   getCheck(lab, checkId, ctx) / getSetup(lab, ctx) / getStepSetup(lab, stepId, ctx)
//   solutionsFor(lab, checkOrStepId, ctx)           → scripts, ready for `bash -s`
//   renderHint(lab, checkId, index, ctx) / renderSolution(lab, checkId, ctx) → sanitized HTML
//   gradeQuiz(lab, quizId, answers, ctx)            → per-question result
//   assetsScript(lab) / assetFile(lab, path)        → deliver assets / serve images
// testLab proves it all in a real sandbox.

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
  /** Errors stop the lab from loading; warnings do not, but `labkit lint` shows them. */
  severity?: "error" | "warning";
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
  /** A solution's `if=`: it exists only for sandboxes where this condition holds. */
  condition?: string;
}

/** One hint of a check, in the order written. */
export interface LabHint {
  /** Markdown (may use {{var.x}} and {{sandbox.x}}). */
  markdown: string;
  line: number;
}

export interface LabCheck {
  id: string;
  stepId: string;
  title: string;
  points: number;
  /** Shown to the learner when the check fails and prints nothing. */
  message: string;
  script: LabScript;
  /** Revealed one at a time, in this order. */
  hints: LabHint[];
  /** Points one hint costs: the check's `hint-cost=`, else the lab's `hint-cost:`. */
  hintCost: number;
  /** A solution for this check alone (the step may have one for all its checks). */
  solution?: LabScript;
  /** Polled by the server while its step is open (`auto` or `poll=5s`); null when not. */
  pollMs: number | null;
  /** Checks (ids in this lab) that must pass before this one runs. */
  needs: string[];
  /**
   * `if=<condition>`: where it does not hold, the check is waived for that learner: it passes when
   * asked, saying why (see waivedCheckMessage). null: it applies everywhere.
   */
  condition: string | null;
  line: number;
}

export type QuizKind = "single" | "multiple" | "text";

export interface LabQuizOption {
  /** "a", "b", ... in the order written. */
  id: string;
  markdown: string;
  correct: boolean;
}

/** An accepted free-text answer: a literal (whitespace collapsed) or a regular expression. */
export interface LabQuizAnswer {
  kind: "literal" | "pattern";
  text: string;
  line: number;
}

export interface LabQuizQuestion {
  /** "q1", "q2", ... in the order written. */
  id: string;
  kind: QuizKind;
  /** Markdown. */
  prompt: string;
  /** single and multiple choice. */
  options: LabQuizOption[];
  /** text: any one of these is right. */
  accept: LabQuizAnswer[];
  line: number;
}

export interface LabQuiz {
  id: string;
  stepId: string;
  title: string;
  points: number;
  /** Text answers are compared ignoring case unless the quiz says case=sensitive. */
  caseSensitive: boolean;
  questions: LabQuizQuestion[];
  line: number;
}

export interface LabStep {
  id: string;
  title: string;
  /** The step's markdown with every hidden block taken out (containers and {{...}} still in). */
  markdown: string;
  checks: LabCheck[];
  quizzes: LabQuiz[];
  /** A solution for the whole step. */
  solution?: LabScript;
  /** Runs once when the learner first reaches the step. */
  setup?: LabScript;
  /** Cannot be opened before the previous step is complete. */
  gated: boolean;
  line: number;
}

export type VariableKind = "word" | "port" | "hex" | "number";

/** A per-learner value, declared in front matter `variables:`. */
export interface LabVariable {
  /** Lowercase letters, digits and _; used as {{var.name}} and $BERTH_VAR_NAME. */
  name: string;
  kind: VariableKind;
  /** word: put before the generated words. */
  prefix: string;
  /** port and number: inclusive bounds. */
  min: number;
  max: number;
  /** hex: number of digits. */
  length: number;
  line: number;
}

/** A file from the lab's folder put into the sandbox before setup runs. */
export interface LabAsset {
  /** Relative to the lab's folder, never climbing out of it. */
  from: string;
  /** Absolute path in the sandbox. */
  to: string;
  /** File mode, e.g. 0o644. */
  mode: number;
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
  /** The lab to take after this one. */
  next: string | null;
  /** Default points per hint (front matter `hint-cost:`), 0 when not given. */
  hintCost: number;
  variables: LabVariable[];
  assets: LabAsset[];
  /** Markdown before the first step, hidden blocks taken out. */
  intro: string;
  /** Runs once in a fresh sandbox before the learner starts (after the assets are delivered). */
  setup?: LabScript;
  steps: LabStep[];
  /** Markdown of the closing `## ... {#recap}` section; null when the lab has none. */
  recap: string | null;
  /** The path given to parseLab. */
  file: string;
  /** The whole lab.md: its hash versions the lab. */
  source: string;
}

/** The sandbox facts a lab can use as {{sandbox.cgroup}}, {{sandbox.arch}}, {{sandbox.cpuset}} and in `if=`. */
export interface SandboxFacts {
  cgroup: "v1" | "v2";
  /** `uname -m`, e.g. x86_64, aarch64. */
  arch: string;
  /**
   * Whether the sandbox's kernel offers the cpuset controller where the learner's cgroups are
   * (a one-CPU User-mode Linux guest has none). Unknown (absent) counts as "yes".
   */
  cpuset?: "yes" | "no";
}

/** What one learner's view and scripts are made with. */
export interface LabContext {
  /** Variable name → value (see learnerVariables). */
  vars: Record<string, string>;
  facts: SandboxFacts;
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
  /** Auto checks: default and smallest polling interval. */
  defaultPollMs: 5_000,
  minPollMs: 2_000,
  maxHintCost: 1000,
  /** Assets: per file and for all of a lab's assets together. */
  maxAssetBytes: 1024 * 1024,
  maxAssetsBytes: 8 * 1024 * 1024,
} as const;
