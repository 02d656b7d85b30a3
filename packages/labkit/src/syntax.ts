// Small pieces of the lab syntax shared by the parser (which lints them) and the renderer (which
// applies them): conditions, containers, {{...}} references, image types.
import type { SandboxFacts } from "./lab.js";

/** `if=` conditions: cgroup-v1, cgroup-v2, arch-<uname -m>, each negated with a leading `!`. */
export const CONDITION = /^!?(?:cgroup-v[12]|arch-[a-z0-9_]+)$/;

export function evalCondition(condition: string, facts: SandboxFacts): boolean {
  const negate = condition.startsWith("!");
  const c = negate ? condition.slice(1) : condition;
  const holds = c.startsWith("cgroup-") ? c === `cgroup-${facts.cgroup}` : c === `arch-${facts.arch}`;
  return holds !== negate;
}

/** The ::: containers besides `if=`. */
export const CONTAINER_KINDS = ["note", "tip", "warning", "details"] as const;

/** {{var.name}} and {{sandbox.name}}: other {{...}} (Go templates in docker --format) are left alone. */
export const REFERENCE = /\{\{\s*(var|sandbox)\.([A-Za-z0-9_-]*)\s*\}\}/;
export const SANDBOX_FACT_NAMES = ["cgroup", "arch"] as const;

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
