// Server-side access to a lab's hidden scripts, for the orchestrator (grading, setup, "skip to
// step") and for testLab. Every script handed out here has the learner's values substituted and is
// wrapped by prepareScript, ready to be fed to `bash -s` in the learner's sandbox.
import { createHash, randomBytes } from "node:crypto";
import { previewContext, scriptEnv, substitute } from "./context.js";
import type { Lab, LabCheck, LabContext, LabScript } from "./lab.js";
import { describeCondition, evalCondition, solutionApplies } from "./syntax.js";

export interface CheckSpec {
  id: string;
  stepId: string;
  title: string;
  /** Ready for `bash -s` (see prepareScript). */
  script: string;
  points: number;
  timeoutMs: number;
  /** Shown when the check fails and prints nothing. */
  message: string;
  /** The first hint's markdown (render hints with renderHint). */
  hint?: string;
  hintCount: number;
  /** Points each revealed hint costs. */
  hintCost: number;
  /** Auto checks: how often to run it while its step is open; null for click-only checks. */
  pollMs: number | null;
  /** Check ids that must pass before this one runs. */
  needs: string[];
}

export interface SolutionSpec {
  stepId: string;
  /** Set when the solution belongs to one check; absent for a whole-step solution. */
  checkId?: string;
  /** Ready for `bash -s`. */
  script: string;
  timeoutMs: number;
}

/**
 * Wraps an author's script so that feeding it to `bash -s` is safe: bash reads a script from stdin
 * as it goes, so a command in the script that reads stdin (nsenter, ip netns exec, read ...) would
 * swallow the rest of it. The script is passed whole to a child shell instead (bash, or sh when
 * its #! line asks for it), with stdin at /dev/null, working in /root.
 */
export function prepareScript(source: string, shell: "bash" | "sh" = "bash", env: Record<string, string> = {}): string {
  const tag = `BERTH_LAB_SCRIPT_${randomBytes(8).toString("hex")}`;
  const exports = Object.entries(env)
    .filter(([k]) => /^[A-Z_][A-Z0-9_]*$/.test(k))
    .map(([k, v]) => `export ${k}=${shellQuote(v)}`);
  return [
    `IFS= read -r -d '' __berth_script <<'${tag}' || true`,
    source,
    tag,
    ...exports,
    'cd /root 2>/dev/null || cd /',
    `exec ${shell} -c "$__berth_script" lab-script </dev/null`,
    "",
  ].join("\n");
}

/** A word the shell reads back as exactly `value`. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A lab script with the learner's values: {{...}} substituted and BERTH_* exported. */
function ready(s: LabScript, ctx: LabContext): string {
  return prepareScript(substitute(s.source, ctx), s.shell, scriptEnv(ctx));
}

function findCheck(lab: Lab, checkId: string): LabCheck | undefined {
  for (const s of lab.steps) {
    const c = s.checks.find((c) => c.id === checkId);
    if (c) return c;
  }
  return undefined;
}

/**
 * A check as the server runs it for one learner; undefined when the lab has no such check.
 * Without a context, the preview context (the test learner) is used.
 */
export function getCheck(lab: Lab, checkId: string, ctx: LabContext = previewContext(lab)): CheckSpec | undefined {
  const c = findCheck(lab, checkId);
  if (!c) return undefined;
  const waived = checkWaived(c, ctx);
  return {
    id: c.id,
    stepId: c.stepId,
    title: substitute(c.title, ctx),
    // A waived check still runs as a script (the server grades every check the same way): one that
    // passes and says why.
    script: waived ? prepareScript(`printf '%s\n' ${shellQuote(waivedCheckMessage(c))}\nexit 0\n`) : ready(c.script, ctx),
    points: c.points,
    timeoutMs: c.script.timeoutMs,
    message: substitute(c.message, ctx),
    ...(c.hints[0] ? { hint: c.hints[0].markdown } : {}),
    hintCount: c.hints.length,
    hintCost: c.hintCost,
    pollMs: c.pollMs,
    needs: c.needs,
  };
}

/** Whether a check with `if=` is waived for this learner: its condition fails on their sandbox. */
export function checkWaived(c: Pick<LabCheck, "condition">, ctx: LabContext): boolean {
  return c.condition !== null && !evalCondition(c.condition, ctx.facts);
}

/** What a waived check tells the learner when it passes. */
export function waivedCheckMessage(c: Pick<LabCheck, "condition">): string {
  return `Counted as done: this check is for ${describeCondition(c.condition ?? "")}, and yours is not one. The step says why, and what you would have seen.`;
}

/** The lab's hidden setup script, ready for `bash -s`; undefined when it has none. */
export function getSetup(lab: Lab, ctx: LabContext = previewContext(lab)): string | undefined {
  return lab.setup ? ready(lab.setup, ctx) : undefined;
}

/** A step's own setup (run when the learner first reaches it); undefined when it has none. */
export function getStepSetup(lab: Lab, stepId: string, ctx: LabContext = previewContext(lab)): { script: string; timeoutMs: number } | undefined {
  const s = lab.steps.find((st) => st.id === stepId)?.setup;
  return s ? { script: ready(s, ctx), timeoutMs: s.timeoutMs } : undefined;
}

/**
 * What a check earns: its points minus the hints' cost (never below 0), and nothing once the
 * solution was revealed or when it has not passed.
 */
export function checkScore(c: { points: number; hintCost: number }, state: { passed: boolean; hintsTaken: number; solutionRevealed: boolean }): number {
  if (!state.passed || state.solutionRevealed) return 0;
  return Math.max(0, c.points - c.hintCost * state.hintsTaken);
}

/**
 * The scripts that solve a check or a whole step, in the order to run them.
 * For a check id: the check's own solution, else its step's solution.
 * For a step id: the step's solution, then each check's own solution.
 * Unknown ids give an empty list.
 */
export function solutionsFor(lab: Lab, id: string, ctx: LabContext = previewContext(lab)): SolutionSpec[] {
  const spec = (s: LabScript, stepId: string, checkId?: string): SolutionSpec => ({
    stepId,
    ...(checkId ? { checkId } : {}),
    script: ready(s, ctx),
    timeoutMs: s.timeoutMs,
  });
  // A solution whose if= fails for this learner is not theirs (the checks it solves are waived).
  const applies = (s: LabScript | undefined): s is LabScript => s !== undefined && solutionApplies(s, ctx);
  const check = findCheck(lab, id);
  if (check) {
    if (check.solution) return applies(check.solution) ? [spec(check.solution, check.stepId, check.id)] : [];
    const step = lab.steps.find((s) => s.id === check.stepId);
    return applies(step?.solution) ? [spec(step.solution, step.id)] : [];
  }
  const step = lab.steps.find((s) => s.id === id);
  if (!step) return [];
  const out: SolutionSpec[] = [];
  if (applies(step.solution)) out.push(spec(step.solution, step.id));
  for (const c of step.checks) if (applies(c.solution)) out.push(spec(c.solution, step.id, c.id));
  return out;
}

/** sha256 (hex) of lab.md as written: a new hash is a new version of the lab. */
export function labContentHash(lab: Lab): string {
  return createHash("sha256").update(lab.source).digest("hex");
}
