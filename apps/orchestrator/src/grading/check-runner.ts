// Grading: a check's script runs inside the learner's own sandbox (never in the browser, never on
// the host) with the check's timeout; exit 0 passes; what it prints is the learner's message.
// Every attempt is stored with its output, and progress is derived from the attempts.
import { getCheck } from "@berth/labkit";
import type { CheckResultView, ProgressView } from "@berth/protocol";
import type { Db } from "../db/index.js";
import type { LabCatalog } from "../labs/catalog.js";
import type { LearnerSandbox, SandboxManager } from "../sandboxes/sandbox-manager.js";

const MESSAGE_LIMIT = 4000;
const OUTPUT_LIMIT = 16 * 1024;

export class CheckRunner {
  constructor(
    private readonly db: Db,
    private readonly catalog: LabCatalog,
    private readonly sandboxes: SandboxManager,
  ) {}

  async run(userId: string, labId: string, checkId: string, sb: LearnerSandbox): Promise<CheckResultView> {
    const entry = this.catalog.get(labId);
    if (!entry) throw new Error(`no lab ${labId}`);
    const check = getCheck(entry.lab, checkId);
    if (!check) throw new Error(`no check ${checkId} in lab ${labId}`);

    const res = await this.sandboxes.execTrusted(sb, check.script, check.timeoutMs, OUTPUT_LIMIT);
    const passed = res.exitCode === 0 && !res.timedOut;
    const printed = res.stdout.toString("utf8").trim();
    let message: string;
    if (res.timedOut) message = `The check did not finish within ${Math.round(check.timeoutMs / 1000)} s and was stopped.`;
    else if (printed) message = printed;
    else message = passed ? "Done." : check.message || "Not yet.";
    message = message.slice(0, MESSAGE_LIMIT);

    const previous = await this.db.checkAttempt.count({ where: { userId, labId, checkId } });
    const attempt = await this.db.checkAttempt.create({
      data: {
        userId,
        labId,
        labVersionId: entry.versionId,
        stepId: check.stepId,
        checkId,
        passed,
        message,
        output: Buffer.concat([res.stdout, res.stderr]).toString("utf8").slice(0, OUTPUT_LIMIT),
        exitCode: res.exitCode,
        timedOut: res.timedOut,
        durationMs: Math.round(res.durationMs),
        points: passed ? check.points : 0,
      },
    });
    if (passed) await this.markStepIfComplete(userId, labId, check.stepId);
    return toView(attempt, previous + 1);
  }

  private async markStepIfComplete(userId: string, labId: string, stepId: string): Promise<void> {
    const step = this.catalog.get(labId)?.view.steps.find((s) => s.id === stepId);
    if (!step) return;
    const passed = await this.db.checkAttempt.findMany({
      where: { userId, labId, stepId, passed: true },
      select: { checkId: true },
      distinct: ["checkId"],
    });
    const done = new Set(passed.map((p) => p.checkId));
    if (!step.checks.every((c) => done.has(c.id))) return;
    await this.db.stepProgress.upsert({
      where: { userId_labId_stepId: { userId, labId, stepId } },
      create: { userId, labId, stepId, completedAt: new Date() },
      update: {},
    });
  }

  /** The learner's standing in a lab: per check, the best attempt (a pass, else the latest). */
  async progress(userId: string, labId: string): Promise<ProgressView> {
    const entry = this.catalog.get(labId);
    const attempts = await this.db.checkAttempt.findMany({ where: { userId, labId }, orderBy: { createdAt: "asc" } });
    const checks: Record<string, CheckResultView> = {};
    const counts = new Map<string, number>();
    for (const a of attempts) {
      const n = (counts.get(a.checkId) ?? 0) + 1;
      counts.set(a.checkId, n);
      const prev = checks[a.checkId];
      if (!prev || !prev.passed || a.passed) checks[a.checkId] = toView(a, n);
    }
    let score = 0;
    let maxScore = 0;
    for (const step of entry?.view.steps ?? []) {
      for (const c of step.checks) {
        maxScore += c.points;
        if (checks[c.id]?.passed) score += c.points;
      }
    }
    return { labId, checks, score, maxScore };
  }
}

function toView(
  a: { checkId: string; passed: boolean; message: string; points: number; durationMs: number; createdAt: Date },
  attempt: number,
): CheckResultView {
  return { checkId: a.checkId, passed: a.passed, message: a.message, points: a.points, attempt, durationMs: a.durationMs, at: a.createdAt.toISOString() };
}
