// Server-side access to a lab's hidden scripts, for the orchestrator (grading, setup, "skip to
// step") and for testLab. Every script handed out here is wrapped by prepareScript, ready to be fed
// to `bash -s` in the learner's sandbox.
import { createHash, randomBytes } from "node:crypto";
import type { Lab, LabCheck, LabScript } from "./lab.js";

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
  /** Markdown; render it with renderHint. */
  hint?: string;
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
export function prepareScript(source: string, shell: "bash" | "sh" = "bash"): string {
  const tag = `BERTH_LAB_SCRIPT_${randomBytes(8).toString("hex")}`;
  return [
    `IFS= read -r -d '' __berth_script <<'${tag}' || true`,
    source,
    tag,
    'cd /root 2>/dev/null || cd /',
    `exec ${shell} -c "$__berth_script" lab-script </dev/null`,
    "",
  ].join("\n");
}

function findCheck(lab: Lab, checkId: string): LabCheck | undefined {
  for (const s of lab.steps) {
    const c = s.checks.find((c) => c.id === checkId);
    if (c) return c;
  }
  return undefined;
}

/** A check as the server runs it; undefined when the lab has no such check. */
export function getCheck(lab: Lab, checkId: string): CheckSpec | undefined {
  const c = findCheck(lab, checkId);
  if (!c) return undefined;
  return {
    id: c.id,
    stepId: c.stepId,
    title: c.title,
    script: prepareScript(c.script.source, c.script.shell),
    points: c.points,
    timeoutMs: c.script.timeoutMs,
    message: c.message,
    ...(c.hint !== undefined ? { hint: c.hint } : {}),
  };
}

/** The lab's hidden setup script, ready for `bash -s`; undefined when it has none. */
export function getSetup(lab: Lab): string | undefined {
  return lab.setup ? prepareScript(lab.setup.source, lab.setup.shell) : undefined;
}

/**
 * The scripts that solve a check or a whole step, in the order to run them.
 * For a check id: the check's own solution, else its step's solution.
 * For a step id: the step's solution, then each check's own solution.
 * Unknown ids give an empty list.
 */
export function solutionsFor(lab: Lab, id: string): SolutionSpec[] {
  const spec = (s: LabScript, stepId: string, checkId?: string): SolutionSpec => ({
    stepId,
    ...(checkId ? { checkId } : {}),
    script: prepareScript(s.source, s.shell),
    timeoutMs: s.timeoutMs,
  });
  const check = findCheck(lab, id);
  if (check) {
    if (check.solution) return [spec(check.solution, check.stepId, check.id)];
    const step = lab.steps.find((s) => s.id === check.stepId);
    return step?.solution ? [spec(step.solution, step.id)] : [];
  }
  const step = lab.steps.find((s) => s.id === id);
  if (!step) return [];
  const out: SolutionSpec[] = [];
  if (step.solution) out.push(spec(step.solution, step.id));
  for (const c of step.checks) if (c.solution) out.push(spec(c.solution, step.id, c.id));
  return out;
}

/** sha256 (hex) of lab.md as written: a new hash is a new version of the lab. */
export function labContentHash(lab: Lab): string {
  return createHash("sha256").update(lab.source).digest("hex");
}
