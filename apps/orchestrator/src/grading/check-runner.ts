// Grading: a check's script runs in the learner's own sandbox through the driver's trusted exec
// (out of the learner's reach; never in the browser) with the check's timeout; exit 0 passes; what it prints is the learner's message.
// Every attempt a learner asks for is stored with its output; automatic polls store only a pass
// (a failing poll every few seconds is not history). Progress is derived from the attempts
// (progress.ts).
import { checkScore, getCheck, type LabCheck, type LabContext } from "@berth/labkit";
import type { CheckResultView } from "@berth/protocol";
import type { Db } from "../db/index.js";
import type { CatalogEntry } from "../labs/catalog.js";
import { LabRefusal } from "../labs/refusal.js";
import type { LearnerSandbox, SandboxManager } from "../sandboxes/sandbox-manager.js";
import { checkResultView, labStepComplete } from "./progress.js";

const MESSAGE_LIMIT = 4000;
const OUTPUT_LIMIT = 16 * 1024;

export interface RunOptions {
  /** "always" (the learner asked) or "pass" (an automatic poll: a failure leaves no row). */
  record: "always" | "pass";
}

export class CheckRunner {
  /** Told after every stored attempt (instructors' live board, cohorts/live.ts). */
  onRecorded: ((userId: string, labId: string) => void) | undefined;

  constructor(
    private readonly db: Db,
    private readonly sandboxes: SandboxManager,
  ) {}

  /** The check in the lab's model; a refusal when the lab has none of that id. */
  static find(entry: CatalogEntry, checkId: string): LabCheck {
    for (const step of entry.lab.steps) {
      const c = step.checks.find((c) => c.id === checkId);
      if (c) return c;
    }
    throw new LabRefusal("missing", `lab "${entry.lab.id}" has no check "${checkId}"`);
  }

  /** The checks of `needs` that have not passed yet (empty: the check may run). */
  async unmetNeeds(userId: string, entry: CatalogEntry, check: LabCheck): Promise<string[]> {
    if (check.needs.length === 0) return [];
    const passed = await this.db.checkAttempt.findMany({
      where: { userId, labId: entry.lab.id, checkId: { in: check.needs }, passed: true },
      select: { checkId: true },
      distinct: ["checkId"],
    });
    const done = new Set(passed.map((p) => p.checkId));
    return check.needs.filter((id) => !done.has(id));
  }

  /**
   * Runs a check for a learner. Refused (conflict) while a check it `needs` has not passed. With
   * record "pass", resolves null when the check did not pass (nothing stored).
   */
  async run(userId: string, entry: CatalogEntry, checkId: string, sb: LearnerSandbox, ctx: LabContext, opts: RunOptions = { record: "always" }): Promise<CheckResultView | null> {
    const labId = entry.lab.id;
    const model = CheckRunner.find(entry, checkId);
    const unmet = await this.unmetNeeds(userId, entry, model);
    if (unmet.length > 0) {
      const names = unmet.map((id) => `"${titleOf(entry, id)}" (${id})`).join(", ");
      throw new LabRefusal("conflict", `check "${model.title}" needs ${names} to pass first`);
    }
    const check = getCheck(entry.lab, checkId, ctx)!;

    const res = await this.sandboxes.execTrusted(sb, check.script, check.timeoutMs, OUTPUT_LIMIT);
    const passed = res.exitCode === 0 && !res.timedOut;
    if (!passed && opts.record === "pass") return null;
    const printed = res.stdout.toString("utf8").trim();
    let message: string;
    if (res.timedOut) message = `The check did not finish within ${Math.round(check.timeoutMs / 1000)} s and was stopped.`;
    else if (printed) message = printed;
    else message = passed ? "Done." : check.message || "Not yet.";
    message = message.slice(0, MESSAGE_LIMIT);

    const points = passed ? await this.earned(userId, labId, model) : 0;
    const previous = await this.db.checkAttempt.count({ where: { userId, labId, checkId } });
    const attempt = await this.db.checkAttempt.create({
      data: {
        userId,
        labId,
        labVersionId: entry.versionId,
        stepId: model.stepId,
        checkId,
        passed,
        message,
        output: Buffer.concat([res.stdout, res.stderr]).toString("utf8").slice(0, OUTPUT_LIMIT),
        exitCode: res.exitCode,
        timedOut: res.timedOut,
        durationMs: Math.round(res.durationMs),
        points,
      },
    });
    if (passed) await this.markStepIfComplete(userId, entry, model.stepId);
    this.onRecorded?.(userId, labId);
    return checkResultView(attempt, previous + 1);
  }

  /** What a pass earns now (labkit checkScore): nothing after its solution was revealed, else points minus the hints' cost. */
  private async earned(userId: string, labId: string, check: LabCheck): Promise<number> {
    const where = { userId, labId, checkId: check.id };
    const [revealed, hintsTaken] = await Promise.all([this.db.solutionReveal.count({ where }), this.db.hintReveal.count({ where })]);
    return checkScore(check, { passed: true, hintsTaken, solutionRevealed: revealed > 0 });
  }

  /** StepProgress.completedAt: when the step's last check or quiz passed (for instructors' views). */
  async markStepIfComplete(userId: string, entry: CatalogEntry, stepId: string): Promise<void> {
    const labId = entry.lab.id;
    const step = entry.lab.steps.find((s) => s.id === stepId);
    if (!step) return;
    const [checks, quizzes] = await Promise.all([
      this.db.checkAttempt.findMany({ where: { userId, labId, stepId, passed: true }, select: { checkId: true }, distinct: ["checkId"] }),
      this.db.quizAttempt.findMany({ where: { userId, labId, stepId, passed: true }, select: { quizId: true }, distinct: ["quizId"] }),
    ]);
    const passedChecks = Object.fromEntries(checks.map((c) => [c.checkId, { passed: true }]));
    const passedQuizzes = Object.fromEntries(quizzes.map((q) => [q.quizId, { passed: true }]));
    if (!labStepComplete(step, passedChecks, passedQuizzes)) return;
    await this.db.stepProgress.upsert({
      where: { userId_labId_stepId: { userId, labId, stepId } },
      create: { userId, labId, stepId, completedAt: new Date() },
      update: {},
    });
  }
}

function titleOf(entry: CatalogEntry, checkId: string): string {
  for (const s of entry.lab.steps) for (const c of s.checks) if (c.id === checkId) return c.title;
  return checkId;
}
