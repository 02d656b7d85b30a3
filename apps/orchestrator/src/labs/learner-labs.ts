// A learner working through a lab: what the lab routes ask for, decided here (the routes only
// translate HTTP). Each method takes the learner from the session and ids from the URL, checks
// that the ids belong together (this check is in this lab, this step is open to this learner),
// acts, and answers with the learner's progress.
//
// Sandbox side: when a learner's sandbox is made, prepareSandbox delivers the lab's assets, runs
// the lab's setup and the setups of the steps the learner has reached; entering a step later runs
// that step's setup (once per sandbox, recorded in StepSetupRun). Hidden scripts (setups, checks)
// run through SandboxManager.execTrusted (the driver, out of the learner's reach); "Skip step" runs
// the step's solutions through the agent as the learner's shell would (SandboxManager.exec), then
// its checks. Assets go in through the agent too.
import { readFile } from "node:fs/promises";
import { assetFile, assetsScript, getSetup, getStepSetup, solutionsFor, type LabContext } from "@berth/labkit";
import type { LabSummary, LabView, ProgressView, QuizAnswers, CheckResultView, QuizResultView } from "@berth/protocol";
import type { Logger } from "pino";
import { isUniqueViolation, type Db } from "../db/index.js";
import { CheckRunner } from "../grading/check-runner.js";
import { labStepComplete, type ProgressBook } from "../grading/progress.js";
import { QuizGrader } from "../grading/quiz-grader.js";
import type { Reveals } from "../grading/reveals.js";
import type { LearnerSandbox, SandboxManager } from "../sandboxes/sandbox-manager.js";
import type { CatalogEntry, LabCatalog } from "./catalog.js";
import type { LearnerContexts } from "./learner-context.js";
import { LabRefusal } from "./refusal.js";

const SETUP_OUTPUT_LIMIT = 16 * 1024;
/** Pictures in a lab's text are small; a bigger file is refused rather than streamed. */
const MAX_IMAGE_BYTES = 5 * 1024 * 1024;
const ASSETS_TIMEOUT_MS = 60_000;
const FACTS_TIMEOUT_MS = 10_000;

export interface LearnerLabsDeps {
  db: Db;
  catalog: LabCatalog;
  contexts: LearnerContexts;
  sandboxes: SandboxManager;
  checks: CheckRunner;
  quizzes: QuizGrader;
  reveals: Reveals;
  progress: ProgressBook;
  log: Logger;
  /** Told when a learner enters a step, so automatic checks follow at once. */
  onStepEntered?: (userId: string, labId: string) => void;
  /** Told after a hint, a solution or a quiz answer is recorded (instructors' live board; checks tell through CheckRunner). */
  onActivity?: (userId: string, labId: string) => void;
}

export class LearnerLabs {
  constructor(private readonly deps: LearnerLabsDeps) {}

  /** With the learner: the version of the lab they started (labs authored in the browser keep it). */
  entry(labId: string, userId?: string): CatalogEntry {
    const entry = this.deps.catalog.get(labId, userId);
    if (!entry) throw new LabRefusal("missing", `no lab called "${labId}"`);
    return entry;
  }

  context(userId: string, entry: CatalogEntry): LabContext {
    return this.deps.contexts.for(userId, entry.lab);
  }

  /** The catalog; with each lab's state for a signed-in learner. */
  async summaries(userId: string | undefined): Promise<LabSummary[]> {
    const labs = this.deps.catalog.list();
    if (!userId) return labs;
    const states = await this.deps.progress.states(userId);
    return labs.map((s) => ({ ...s, state: states.get(s.id) }));
  }

  async open(userId: string, labId: string): Promise<{ lab: LabView; progress: ProgressView }> {
    const entry = this.entry(labId, userId);
    const ctx = this.context(userId, entry);
    return { lab: this.view(entry, ctx), progress: await this.deps.progress.view(userId, entry, ctx) };
  }

  progress(userId: string, entry: CatalogEntry, ctx = this.context(userId, entry)): Promise<ProgressView> {
    return this.deps.progress.view(userId, entry, ctx);
  }

  /** The learner reached a step: it must be open to them; its setup runs (once per sandbox). */
  async enter(userId: string, labId: string, stepId: string): Promise<ProgressView> {
    const entry = this.entry(labId, userId);
    const ctx = this.context(userId, entry);
    await this.requireStepOpen(userId, entry, ctx, this.stepIndex(entry, stepId));
    await this.deps.db.labProgress.upsert({
      where: { userId_labId: { userId, labId } },
      create: { userId, labId, currentStep: stepId },
      update: { currentStep: stepId },
    });
    const sb = this.deps.sandboxes.find(userId, labId);
    if (sb?.ready) await this.runStepSetup(sb, entry, ctx, stepId);
    // (No sandbox yet: prepareSandbox runs this step's setup when it is made.)
    this.deps.onStepEntered?.(userId, labId);
    return this.progress(userId, entry, ctx);
  }

  async check(userId: string, labId: string, checkId: string): Promise<{ result: CheckResultView; progress: ProgressView }> {
    const entry = this.entry(labId, userId);
    const check = CheckRunner.find(entry, checkId);
    const ctx = this.context(userId, entry);
    await this.requireStepOpen(userId, entry, ctx, this.stepIndex(entry, check.stepId));
    const sb = this.readySandbox(userId, labId);
    const result = (await this.deps.checks.run(userId, entry, checkId, sb, ctx))!;
    void this.deps.sandboxes.touch(sb);
    return { result, progress: await this.progress(userId, entry, ctx) };
  }

  async hint(userId: string, labId: string, checkId: string): Promise<ProgressView> {
    const entry = this.entry(labId, userId);
    const check = CheckRunner.find(entry, checkId);
    const ctx = this.context(userId, entry);
    await this.requireStepOpen(userId, entry, ctx, this.stepIndex(entry, check.stepId));
    await this.deps.reveals.nextHint(userId, entry, checkId);
    this.deps.onActivity?.(userId, labId);
    return this.progress(userId, entry, ctx);
  }

  async solution(userId: string, labId: string, checkId: string): Promise<ProgressView> {
    const entry = this.entry(labId, userId);
    const check = CheckRunner.find(entry, checkId);
    const ctx = this.context(userId, entry);
    await this.requireStepOpen(userId, entry, ctx, this.stepIndex(entry, check.stepId));
    await this.deps.reveals.solution(userId, entry, checkId, ctx, "shown");
    this.deps.onActivity?.(userId, labId);
    return this.progress(userId, entry, ctx);
  }

  /**
   * "Skip step": the step's solutions run in the learner's sandbox, then its checks. Each check of
   * the step counts as solved with help (no points), recorded before anything runs.
   */
  async skip(userId: string, labId: string, stepId: string): Promise<ProgressView> {
    const entry = this.entry(labId, userId);
    const ctx = this.context(userId, entry);
    const index = this.stepIndex(entry, stepId);
    await this.requireStepOpen(userId, entry, ctx, index);
    const step = entry.lab.steps[index]!;
    const solutions = solutionsFor(entry.lab, stepId, ctx);
    if (solutions.length === 0) throw new LabRefusal("conflict", `step "${step.title}" has no solution to run`);
    const sb = this.readySandbox(userId, labId);
    for (const c of step.checks) await this.deps.reveals.solution(userId, entry, c.id, ctx, "skipped");
    for (const s of solutions) {
      const res = await this.deps.sandboxes.exec(sb, s.script, s.timeoutMs, SETUP_OUTPUT_LIMIT);
      if (res.exitCode !== 0 || res.timedOut) {
        this.deps.log.warn({ labId, stepId, checkId: s.checkId, exitCode: res.exitCode, timedOut: res.timedOut }, "a solution did not finish cleanly while skipping a step");
      }
    }
    for (const c of step.checks) {
      try {
        await this.deps.checks.run(userId, entry, c.id, sb, ctx);
      } catch (err) {
        // A check whose needs did not pass stays unpassed; the others still run.
        if (!(err instanceof LabRefusal)) throw err;
      }
    }
    void this.deps.sandboxes.touch(sb);
    return this.progress(userId, entry, ctx);
  }

  async quiz(userId: string, labId: string, quizId: string, answers: QuizAnswers): Promise<{ result: QuizResultView; progress: ProgressView }> {
    const entry = this.entry(labId, userId);
    const quiz = QuizGrader.find(entry, quizId);
    const ctx = this.context(userId, entry);
    await this.requireStepOpen(userId, entry, ctx, this.stepIndex(entry, quiz.stepId));
    const result = await this.deps.quizzes.answer(userId, entry, quizId, answers, ctx);
    this.deps.onActivity?.(userId, labId);
    return { result, progress: await this.progress(userId, entry, ctx) };
  }

  /**
   * A picture from the lab's folder (labkit assetFile: png, jpg, gif, webp, avif inside the folder;
   * never lab.md, never a path or link leading out of it).
   */
  async asset(labId: string, relPath: string, userId?: string): Promise<{ bytes: Buffer; contentType: string }> {
    const found = await assetFile(this.entry(labId, userId).lab, relPath);
    if (!found) throw new LabRefusal("missing", `lab "${labId}" has no picture "${relPath}" (served: png, jpg, gif, webp and avif files of the lab's folder)`);
    if (found.size > MAX_IMAGE_BYTES) throw new LabRefusal("invalid", `"${relPath}" is larger than ${MAX_IMAGE_BYTES / 1024 / 1024} MiB`);
    return { bytes: await readFile(found.path), contentType: found.contentType };
  }

  /**
   * A new sandbox of this learner for this lab (SandboxManager calls this before handing it over):
   * the lab's assets, then its setup, then the setups of every step up to the one the learner is on
   * (a fresh sandbox after a reset must look like the one they left). Throws when a setup fails.
   */
  async prepareSandbox(sb: LearnerSandbox): Promise<void> {
    const entry = this.deps.catalog.get(sb.labId, sb.userId);
    if (!entry) return;
    // The first sandbox tells what every one of this driver's sandboxes is (a VM's kernel is not
    // the host's): before any setup is made with the facts.
    await this.deps.contexts.measureIn((script) => this.deps.sandboxes.execTrusted(sb, script, FACTS_TIMEOUT_MS));
    const ctx = this.context(sb.userId, entry);
    await this.deliverAssets(sb, entry);
    const setup = getSetup(entry.lab, ctx);
    if (setup) {
      const res = await this.deps.sandboxes.execTrusted(sb, setup, entry.lab.setup!.timeoutMs, SETUP_OUTPUT_LIMIT);
      if (res.exitCode !== 0 || res.timedOut) {
        this.deps.log.error({ labId: entry.lab.id, exitCode: res.exitCode, stderr: res.stderr.toString("utf8").slice(0, 2000) }, "lab setup failed");
        throw new Error(`The lab's setup script failed (${res.timedOut ? "timed out" : `exit ${res.exitCode}`}). Tell your instructor.`);
      }
    }
    const place = await this.deps.db.labProgress.findUnique({ where: { userId_labId: { userId: sb.userId, labId: sb.labId } } });
    const current = place?.currentStep ? entry.lab.steps.findIndex((s) => s.id === place.currentStep) : 0;
    for (const step of entry.lab.steps.slice(0, Math.max(0, current) + 1)) {
      if (step.setup) await this.runStepSetup(sb, entry, ctx, step.id);
    }
  }

  /** The lab's files into the sandbox, through the agent (labkit's assetsScript makes folders and sets modes). */
  private async deliverAssets(sb: LearnerSandbox, entry: CatalogEntry): Promise<void> {
    const script = await assetsScript(entry.lab);
    if (!script) return;
    const res = await this.deps.sandboxes.exec(sb, script, ASSETS_TIMEOUT_MS, SETUP_OUTPUT_LIMIT);
    if (res.exitCode !== 0 || res.timedOut) {
      throw new Error(`The lab's files could not be put into your sandbox (${res.timedOut ? "timed out" : res.stderr.toString("utf8").trim().slice(0, 500)}). Tell your instructor.`);
    }
  }

  /** Runs a step's hidden setup in this sandbox unless it ran there before. */
  private async runStepSetup(sb: LearnerSandbox, entry: CatalogEntry, ctx: LabContext, stepId: string): Promise<void> {
    const setup = getStepSetup(entry.lab, stepId, ctx);
    if (!setup) return;
    try {
      await this.deps.db.stepSetupRun.create({ data: { sandboxId: sb.id, stepId } });
    } catch (err) {
      if (isUniqueViolation(err)) return; // ran (or is running) in this sandbox already
      throw err;
    }
    const step = entry.lab.steps.find((s) => s.id === stepId)!;
    const res = await this.deps.sandboxes.execTrusted(sb, setup.script, setup.timeoutMs, SETUP_OUTPUT_LIMIT);
    if (res.exitCode === 0 && !res.timedOut) {
      await this.deps.db.stepSetupRun.update({ where: { sandboxId_stepId: { sandboxId: sb.id, stepId } }, data: { exitCode: 0 } });
      return;
    }
    // Forget the run so that entering the step again tries again.
    await this.deps.db.stepSetupRun.delete({ where: { sandboxId_stepId: { sandboxId: sb.id, stepId } } }).catch(() => undefined);
    this.deps.log.error({ labId: entry.lab.id, stepId, exitCode: res.exitCode, stderr: res.stderr.toString("utf8").slice(0, 2000) }, "step setup failed");
    throw new LabRefusal("conflict", `the setup of step "${step.title}" failed (${res.timedOut ? "timed out" : `exit ${res.exitCode}`}); try again, or reset your sandbox, or tell your instructor`);
  }

  private view(entry: CatalogEntry, ctx: LabContext): LabView {
    return this.deps.catalog.view(entry, ctx);
  }

  private stepIndex(entry: CatalogEntry, stepId: string): number {
    const i = entry.lab.steps.findIndex((s) => s.id === stepId);
    if (i < 0) throw new LabRefusal("missing", `lab "${entry.lab.id}" has no step "${stepId}"`);
    return i;
  }

  /** A gated step opens once the step before it is complete. */
  private async requireStepOpen(userId: string, entry: CatalogEntry, ctx: LabContext, index: number): Promise<void> {
    const step = entry.lab.steps[index]!;
    if (!step.gated || index === 0) return;
    const previous = entry.lab.steps[index - 1]!;
    const p = await this.deps.progress.view(userId, entry, ctx);
    if (!labStepComplete(previous, p.checks, p.quizzes)) {
      throw new LabRefusal("conflict", `step "${step.title}" opens once step "${previous.title}" is complete`);
    }
  }

  private readySandbox(userId: string, labId: string): LearnerSandbox {
    const sb = this.deps.sandboxes.find(userId, labId);
    if (!sb || !sb.ready) throw new LabRefusal("conflict", "your sandbox is not running yet: open the lab's terminal first");
    return sb;
  }
}

