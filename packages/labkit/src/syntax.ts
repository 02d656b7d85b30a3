// Small pieces of the lab syntax shared by the parser (which lints them) and the renderer (which
// applies them): conditions, containers, {{...}} references, image types.
import type { LabContext, LabScript, SandboxFacts } from "./lab.js";

/**
 * `if=` conditions: cgroup-v1, cgroup-v2, cpuset (the kernel offers the cpuset controller),
 * arch-<uname -m>, each negated with a leading `!`.
 */
export const CONDITION = /^!?(?:cgroup-v[12]|cpuset|arch-[a-z0-9_]+)$/;

export function evalCondition(condition: string, facts: SandboxFacts): boolean {
  const negate = condition.startsWith("!");
  const c = negate ? condition.slice(1) : condition;
  let holds: boolean;
  if (c === "cpuset") holds = (facts.cpuset ?? "yes") === "yes";
  else if (c.startsWith("cgroup-")) holds = c === `cgroup-${facts.cgroup}`;
  else holds = c === `arch-${facts.arch}`;
  return holds !== negate;
}

/** Whether a solution exists for this learner (its `if=` holds, or it has none). */
export function solutionApplies(s: Pick<LabScript, "condition">, ctx: Pick<LabContext, "facts">): boolean {
  return !s.condition || evalCondition(s.condition, ctx.facts);
}

/** What a condition asks of a sandbox, in words for a learner ("a cpuset controller"). */
export function describeCondition(condition: string): string {
  const negate = condition.startsWith("!");
  const c = negate ? condition.slice(1) : condition;
  const what = c === "cpuset" ? "the cpuset cgroup controller" : c.startsWith("cgroup-") ? `cgroup ${c.slice(7)}` : `a ${c.slice(5)} processor`;
  return negate ? `a sandbox without ${what}` : `a sandbox with ${what}`;
}

/** The ::: containers besides `if=`. */
export const CONTAINER_KINDS = ["note", "tip", "warning", "details"] as const;

/** {{var.name}} and {{sandbox.name}}: other {{...}} (Go templates in docker --format) are left alone. */
export const REFERENCE = /\{\{\s*(var|sandbox)\.([A-Za-z0-9_-]*)\s*\}\}/;
export const SANDBOX_FACT_NAMES = ["cgroup", "arch", "cpuset"] as const;

/** Pictures a lab may show from its folder, by extension. No SVG: it can carry script. */
export const IMAGE_TYPES: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  avif: "image/avif",
};

export function imageExtension(p: string): string {
  const m = /\.([A-Za-z0-9]+)$/.exec(p);
  return m ? m[1]!.toLowerCase() : "";
}
