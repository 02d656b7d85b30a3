// testLab: content CI for one lab, in one fresh sandbox. Setup runs once; then, step by step, in the
// order a learner meets them, every check of the step must FAIL (the learner has not done it yet),
// the step's solutions run, and every check must PASS. A check that passes before its solution
// proves nothing; one that fails after it cannot be passed.
import type { Lab, LabCheck, LabScript } from "./lab.js";
import { prepareScript } from "./scripts.js";

/** Runs scripts in one sandbox; state (files, processes) carries over between calls. */
export interface LabRunner {
  /**
   * `trusted`: a check or setup script, which grading runs out of the learner's reach
   * (SandboxDriver.execTrusted); solutions run as the learner's own shell would.
   */
  exec(script: string, opts: { timeoutMs: number; trusted?: boolean }): Promise<{ exitCode: number; stdout: string; stderr: string; timedOut: boolean }>;
}

export interface ScriptRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
}

export interface CheckRun extends ScriptRun {
  passed: boolean;
  /** What the learner would see. */
  message: string;
}

export interface CheckReport {
  checkId: string;
  stepId: string;
  title: string;
  /** The run on a sandbox where the step was not done yet: must fail. */
  before?: CheckRun;
  /** The run after the step's solutions: must pass. */
  after?: CheckRun;
  ok: boolean;
  /** Why it is not ok, in words. */
  problems: string[];
}

export interface SolutionReport {
  stepId: string;
  checkId?: string;
  run: ScriptRun;
}

export interface LabTestReport {
  labId: string;
  ok: boolean;
  setup?: ScriptRun;
  solutions: SolutionReport[];
  checks: CheckReport[];
  durationMs: number;
}

const MESSAGE_LIMIT = 4000;

async function runScript(runner: LabRunner, s: LabScript, trusted: boolean): Promise<ScriptRun> {
  const t0 = performance.now();
  const r = await runner.exec(prepareScript(s.source, s.shell), { timeoutMs: s.timeoutMs, trusted });
  return { ...r, durationMs: Math.round(performance.now() - t0) };
}

/** Runs one check the way grading does: exit 0 passes; stdout (or the lab's message) is the message. */
export async function runCheck(check: LabCheck, runner: LabRunner): Promise<CheckRun> {
  const r = await runScript(runner, check.script, true);
  const passed = r.exitCode === 0 && !r.timedOut;
  const printed = r.stdout.trim();
  let message: string;
  if (r.timedOut) message = `The check did not finish within ${Math.round(check.script.timeoutMs / 1000)} s.`;
  else if (printed) message = printed;
  else message = passed ? "Done." : check.message;
  return { ...r, passed, message: message.slice(0, MESSAGE_LIMIT) };
}

export async function testLab(lab: Lab, runner: LabRunner): Promise<LabTestReport> {
  const t0 = performance.now();
  const report: LabTestReport = { labId: lab.id, ok: true, solutions: [], checks: [], durationMs: 0 };
  let setupFailed = false;
  if (lab.setup) {
    report.setup = await runScript(runner, lab.setup, true);
    setupFailed = report.setup.exitCode !== 0 || report.setup.timedOut;
  }

  for (const step of lab.steps) {
    const reports = step.checks.map<CheckReport>((c) => ({ checkId: c.id, stepId: step.id, title: c.title, ok: true, problems: [] }));
    if (setupFailed) {
      for (const r of reports) r.problems.push(`not run: the lab's setup failed (exit ${report.setup!.exitCode}${report.setup!.timedOut ? ", timed out" : ""})`);
      report.checks.push(...reports);
      continue;
    }
    for (const [i, c] of step.checks.entries()) {
      const before = await runCheck(c, runner);
      reports[i]!.before = before;
      if (before.passed) reports[i]!.problems.push("passes before its solution ran: it does not prove the learner did anything");
    }
    const solutions: { script: LabScript; checkId?: string }[] = [];
    if (step.solution) solutions.push({ script: step.solution });
    for (const c of step.checks) if (c.solution) solutions.push({ script: c.solution, checkId: c.id });
    for (const s of solutions) {
      const run = await runScript(runner, s.script, false);
      report.solutions.push({ stepId: step.id, ...(s.checkId ? { checkId: s.checkId } : {}), run });
      if (run.exitCode !== 0 || run.timedOut) {
        const what = `the ${s.checkId ? `solution of check ${s.checkId}` : `solution of step ${step.id}`} ${run.timedOut ? "timed out" : `exited ${run.exitCode}`}: ${lastLine(run.stderr || run.stdout)}`;
        for (const r of reports) if (!s.checkId || r.checkId === s.checkId) r.problems.push(what);
      }
    }
    for (const [i, c] of step.checks.entries()) {
      const after = await runCheck(c, runner);
      reports[i]!.after = after;
      if (!after.passed) reports[i]!.problems.push(`fails after its solution ran: ${after.message}`);
    }
    report.checks.push(...reports);
  }
  for (const r of report.checks) r.ok = r.problems.length === 0;
  report.ok = !setupFailed && report.checks.every((r) => r.ok);
  report.durationMs = Math.round(performance.now() - t0);
  return report;
}

function lastLine(text: string): string {
  const lines = text.trim().split("\n");
  return (lines[lines.length - 1] ?? "").slice(0, 300) || "(no output)";
}
