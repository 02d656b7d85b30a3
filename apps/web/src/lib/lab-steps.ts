// Which steps a learner has finished and which are still locked, from the lab view and progress.
// The rule is @berth/protocol's stepComplete (the server gates with it); it is restated here because
// the protocol's main entry brings zod with it, and the browser imports only its types.
import type { LabView, ProgressView, StepView } from "@berth/protocol";

export function stepComplete(step: Pick<StepView, "checks" | "quizzes">, progress: Pick<ProgressView, "checks" | "quizzes">): boolean {
  return step.checks.every((c) => progress.checks[c.id]?.passed === true) && step.quizzes.every((q) => progress.quizzes[q.id]?.passed === true);
}

/** A gated step stays locked until the step before it is complete. */
export function stepLocked(lab: LabView, index: number, progress: ProgressView): boolean {
  const step = lab.steps[index];
  if (!step || !step.gated || index === 0) return false;
  return !stepComplete(lab.steps[index - 1]!, progress);
}

/** The URL of a step (the first step also has the lab's own URL). */
export function stepUrl(labId: string, stepId: string | null): string {
  return `/labs/${encodeURIComponent(labId)}${stepId ? `/${encodeURIComponent(stepId)}` : ""}`;
}
