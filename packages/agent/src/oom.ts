// The OOM killer should pick a learner's memory hog, not the agent: every shell and exec the agent
// starts gets a higher oom_score_adj than the agent's own. Raising needs no privilege (lowering
// needs CAP_SYS_RESOURCE, which a sandbox, and not even every host, has), and a learner can lower
// it back only to the agent's level, never below.
import { writeFileSync } from "node:fs";

export const CHILD_OOM_SCORE_ADJ = 300;

export function raiseOomScore(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    writeFileSync(`/proc/${pid}/oom_score_adj`, String(CHILD_OOM_SCORE_ADJ));
  } catch {
    // The process already exited.
  }
}
