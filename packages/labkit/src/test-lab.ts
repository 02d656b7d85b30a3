// testLab: content CI for one lab, in one fresh sandbox, as a fixed test learner (TEST_LEARNER's
// variables) with the sandbox's measured facts. The assets are delivered and checked, setup runs
// once; then, step by step, in the order a learner meets them, the step's own setup runs, every
// check of the step must FAIL (the learner has not done it yet), the step's solutions run, and
// every check must PASS; each quiz must pass with its right answers and fail with each wrong one.
// A check that passes before its solution proves nothing; one that fails after it cannot be passed.
import { assetsScript } from "./assets.js";
import { FACTS_SCRIPT, TEST_LEARNER, learnerContext, parseFacts, scriptEnv, substitute } from "./context.js";
import type { Lab, LabCheck, LabContext, LabScript } from "./lab.js";
import { gradeQuiz, rightAnswers, wrongAnswers } from "./quiz.js";
import { checkWaived, getCheck, prepareScript, shellQuote } from "./scripts.js";
import { solutionApplies } from "./syntax.js";

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
  /** Its if= fails on this sandbox: the check is waived (run once, as the server would: it must pass). */
  waived?: boolean;
  ok: boolean;
  /** Why it is not ok, in words. */
  problems: string[];
}

export interface SolutionReport {
  stepId: string;
  checkId?: string;
  run: ScriptRun;
}

export interface QuizReport {
  quizId: string;
  stepId: string;
  /** The right answers passed. */
  rightPassed: boolean;
  /** How many wrong answers were tried, and how many of them failed (all must). */
  wrongTried: number;
  wrongFailed: number;
  ok: boolean;
  problems: string[];
}

export interface LabTestReport {
  labId: string;
  ok: boolean;
  /** The context the lab ran with: the test learner's variables, the sandbox's facts. */
  context: LabContext;
  /** Delivering the assets and checking them in place; absent when the lab has none. */
  assets?: ScriptRun & { problems: string[] };
  setup?: ScriptRun;
  /** Per-step setups, in the order they ran. */
  stepSetups: { stepId: string; run: ScriptRun }[];
  solutions: SolutionReport[];
  checks: CheckReport[];
  quizzes: QuizReport[];
  durationMs: number;
}

/**
 * One thing testLab finished, as it happens (for a live view of a proof, e.g. the browser editor's
 * "Prove it"). `ok` says whether it went as a proved lab needs: a check's "before" run is ok when
 * it failed, its "after" run when it passed.
 */
export type TestLabEvent =
  | { kind: "assets" | "setup"; ok: boolean; run: ScriptRun }
  | { kind: "step-setup"; stepId: string; ok: boolean; run: ScriptRun }
  | { kind: "check"; phase: "before" | "after"; stepId: string; checkId: string; title: string; ok: boolean; run: CheckRun }
  | { kind: "solution"; stepId: string; checkId?: string; ok: boolean; run: ScriptRun }
  | { kind: "quiz"; report: QuizReport };

export interface TestLabOptions {
  /** Run as this context instead of the test learner with measured facts. */
  context?: LabContext;
  /** Told of each script run and quiz as it finishes. */
  onEvent?: (event: TestLabEvent) => void;
}

const MESSAGE_LIMIT = 4000;

async function runRaw(runner: LabRunner, script: string, timeoutMs: number, trusted: boolean): Promise<ScriptRun> {
  const t0 = performance.now();
  const r = await runner.exec(script, { timeoutMs, trusted });
  return { ...r, durationMs: Math.round(performance.now() - t0) };
}

/** `trusted`: checks and setups (run as grading runs them); solutions run as the learner's shell. */
async function runScript(runner: LabRunner, s: LabScript, trusted: boolean, ctx?: LabContext): Promise<ScriptRun> {
  const script = ctx ? prepareScript(substitute(s.source, ctx), s.shell, scriptEnv(ctx)) : prepareScript(s.source, s.shell);
  return runRaw(runner, script, s.timeoutMs, trusted);
}

const failed = (r: ScriptRun) => r.exitCode !== 0 || r.timedOut;

/**
 * Runs one check the way grading does: exit 0 passes; stdout (or the lab's message) is the message.
 * With a context, the learner's values are substituted and exported as the server does.
 */
export async function runCheck(check: LabCheck, runner: LabRunner, ctx?: LabContext): Promise<CheckRun> {
  const r = await runScript(runner, check.script, true, ctx);
  const passed = r.exitCode === 0 && !r.timedOut;
  const printed = r.stdout.trim();
  let message: string;
  if (r.timedOut) message = `The check did not finish within ${Math.round(check.script.timeoutMs / 1000)} s.`;
  else if (printed) message = printed;
  else message = passed ? "Done." : ctx ? substitute(check.message, ctx) : check.message;
  return { ...r, passed, message: message.slice(0, MESSAGE_LIMIT) };
}

/** A waived check as the server runs it for this learner (getCheck's script). */
async function runWaived(lab: Lab, check: LabCheck, runner: LabRunner, ctx: LabContext): Promise<CheckRun> {
  const spec = getCheck(lab, check.id, ctx)!;
  const r = await runRaw(runner, spec.script, spec.timeoutMs, true);
  const passed = r.exitCode === 0 && !r.timedOut;
  return { ...r, passed, message: (r.stdout.trim() || spec.message).slice(0, MESSAGE_LIMIT) };
}

export async function testLab(lab: Lab, runner: LabRunner, options: TestLabOptions = {}): Promise<LabTestReport> {
  const t0 = performance.now();
  let ctx = options.context;
  if (!ctx) {
    // What the learner's shell sees (not the trusted tools' root).
    const probe = await runRaw(runner, FACTS_SCRIPT, 10_000, false);
    ctx = learnerContext(lab, { ...TEST_LEARNER, facts: parseFacts(probe.stdout) });
  }
  const report: LabTestReport = { labId: lab.id, ok: true, context: ctx, stepSetups: [], solutions: [], checks: [], quizzes: [], durationMs: 0 };
  let setupFailed = false;
  let why = "";

  const assets = await assetsScript(lab);
  if (assets) {
    // Into the learner's file system, as the learner's shell writes.
    const run = await runRaw(runner, assets, 60_000, false);
    const problems: string[] = [];
    if (failed(run)) problems.push(`delivering the assets ${run.timedOut ? "timed out" : `exited ${run.exitCode}`}: ${lastLine(run.stderr || run.stdout)}`);
    else {
      // Each asset must be in place, with its mode.
      const verify = lab.assets.map((a) => `printf '%s %s\\n' ${shellQuote(a.to)} "$(stat -c %a ${shellQuote(a.to)} 2>/dev/null || echo missing)"`).join("\n");
      const v = await runRaw(runner, verify + "\n", 10_000, false);
      const modes = new Map(v.stdout.trim().split("\n").map((l: string) => [l.slice(0, l.lastIndexOf(" ")), l.slice(l.lastIndexOf(" ") + 1)] as const));
      for (const a of lab.assets) {
        const got = modes.get(a.to);
        if (got !== a.mode.toString(8)) problems.push(`asset ${a.from} → ${a.to}: ${got === "missing" || !got ? "not in the sandbox" : `mode ${got}, not ${a.mode.toString(8)}`}`);
      }
    }
    report.assets = { ...run, problems };
    options.onEvent?.({ kind: "assets", ok: problems.length === 0, run });
    if (problems.length) {
      setupFailed = true;
      why = "the assets were not delivered";
    }
  }
  if (lab.setup && !setupFailed) {
    report.setup = await runScript(runner, lab.setup, true, ctx);
    options.onEvent?.({ kind: "setup", ok: !failed(report.setup), run: report.setup });
    if (failed(report.setup)) {
      setupFailed = true;
      why = `the lab's setup failed (exit ${report.setup.exitCode}${report.setup.timedOut ? ", timed out" : ""})`;
    }
  }

  for (const step of lab.steps) {
    const reports = step.checks.map<CheckReport>((c) => ({ checkId: c.id, stepId: step.id, title: c.title, ok: true, problems: [] }));
    if (!setupFailed && step.setup) {
      const run = await runScript(runner, step.setup, true, ctx);
      report.stepSetups.push({ stepId: step.id, run });
      options.onEvent?.({ kind: "step-setup", stepId: step.id, ok: !failed(run), run });
      if (failed(run)) {
        setupFailed = true;
        why = `the setup of step ${step.id} ${run.timedOut ? "timed out" : `exited ${run.exitCode}`}: ${lastLine(run.stderr || run.stdout)}`;
      }
    }
    // Quizzes need no sandbox: proved even when a setup failed.
    for (const q of step.quizzes) {
      const quiz = proveQuiz(lab, q.id, ctx);
      report.quizzes.push(quiz);
      options.onEvent?.({ kind: "quiz", report: quiz });
    }
    if (setupFailed) {
      for (const r of reports) r.problems.push(`not run: ${why}`);
      report.checks.push(...reports);
      continue;
    }
    // A waived check is what the server hands out for it (one that passes and says why): run once,
    // after the solutions, as a learner would meet it; it has no "before".
    const waived = step.checks.map((c) => checkWaived(c, ctx!));
    for (const [i, c] of step.checks.entries()) {
      if (waived[i]) {
        reports[i]!.waived = true;
        continue;
      }
      const before = await runCheck(c, runner, ctx);
      reports[i]!.before = before;
      if (before.passed) reports[i]!.problems.push("passes before its solution ran: it does not prove the learner did anything");
      options.onEvent?.({ kind: "check", phase: "before", stepId: step.id, checkId: c.id, title: c.title, ok: !before.passed, run: before });
    }
    const solutions: { script: LabScript; checkId?: string }[] = [];
    if (step.solution && solutionApplies(step.solution, ctx)) solutions.push({ script: step.solution });
    for (const c of step.checks) if (c.solution && solutionApplies(c.solution, ctx)) solutions.push({ script: c.solution, checkId: c.id });
    for (const s of solutions) {
      const run = await runScript(runner, s.script, false, ctx);
      report.solutions.push({ stepId: step.id, ...(s.checkId ? { checkId: s.checkId } : {}), run });
      options.onEvent?.({ kind: "solution", stepId: step.id, ...(s.checkId ? { checkId: s.checkId } : {}), ok: !failed(run), run });
      if (failed(run)) {
        const what = `the ${s.checkId ? `solution of check ${s.checkId}` : `solution of step ${step.id}`} ${run.timedOut ? "timed out" : `exited ${run.exitCode}`}: ${lastLine(run.stderr || run.stdout)}`;
        for (const r of reports) if (!s.checkId || r.checkId === s.checkId) r.problems.push(what);
      }
    }
    for (const [i, c] of step.checks.entries()) {
      const after = waived[i] ? await runWaived(lab, c, runner, ctx) : await runCheck(c, runner, ctx);
      reports[i]!.after = after;
      if (!after.passed) reports[i]!.problems.push(`fails after its solution ran: ${after.message}`);
      options.onEvent?.({ kind: "check", phase: "after", stepId: step.id, checkId: c.id, title: c.title, ok: after.passed, run: after });
    }
    report.checks.push(...reports);
  }
  for (const r of report.checks) r.ok = r.problems.length === 0;
  report.ok = !setupFailed && report.checks.every((r) => r.ok) && report.quizzes.every((q) => q.ok);
  report.durationMs = Math.round(performance.now() - t0);
  return report;
}

/** A quiz's right answers must pass; each wrong answer (one question at a time) must fail. */
function proveQuiz(lab: Lab, quizId: string, ctx: LabContext): QuizReport {
  const quiz = lab.steps.flatMap((s) => s.quizzes).find((q) => q.id === quizId)!;
  const problems: string[] = [];
  const right = rightAnswers(quiz, ctx);
  const graded = gradeQuiz(lab, quizId, right, ctx)!;
  if (!graded.passed) {
    const wrongIds = Object.entries(graded.perQuestion).filter(([, ok]) => !ok).map(([id]) => id);
    problems.push(`its right answers do not pass (${wrongIds.join(", ")}): check the accepted answers`);
  }
  let wrongFailed = 0;
  const tries = wrongAnswers(quiz);
  for (const t of tries) {
    const g = gradeQuiz(lab, quizId, { ...right, [t.questionId]: t.answer }, ctx)!;
    if (!g.passed && !g.perQuestion[t.questionId]) wrongFailed++;
    else problems.push(`question ${t.questionId} accepts the wrong answer ${JSON.stringify(t.answer)}`);
  }
  return { quizId, stepId: quiz.stepId, rightPassed: graded.passed, wrongTried: tries.length, wrongFailed, ok: problems.length === 0, problems };
}

function lastLine(text: string): string {
  const lines = text.trim().split("\n");
  return (lines[lines.length - 1] ?? "").slice(0, 300) || "(no output)";
}
