// Lint for scripts that grading runs as trusted checks (SandboxDriver.execTrusted): checks and
// setup scripts. They run in the sandbox's namespaces except its pid namespace, so the learner
// cannot see or signal them; the price is that the sandbox's /proc has no entry for the check's
// own processes. What that breaks, and what to write instead: docs/lab-format.md ("Where checks
// run"). Solutions run as the learner's shell does and are not linted here.
import type { Lab, LabError, LabScript } from "./lab.js";

interface Rule {
  /** When `lead` is set, group 1 is what comes before the word (the column points past it). */
  pattern: RegExp;
  lead?: boolean;
  message: string;
  fix: string;
}

const RULES: Rule[] = [
  {
    pattern: /\/proc\/(self|thread-self|\$\$|\$\{\$\}|\$BASHPID|\$\{BASHPID\})(?![\w-])/,
    message: "a check is not in the sandbox's pid namespace: /proc/self and /proc/$$ in the sandbox's /proc are not the check",
    fix: "read the learner's processes by their pids (/proc/[0-9]*/...), not the check's own",
  },
  {
    pattern: /\/dev\/(fd\/|stdin\b|stdout\b|stderr\b)/,
    message: "/dev/fd, /dev/stdin, /dev/stdout and /dev/stderr point into /proc/self, which a check does not have",
    fix: "use plain redirections and pipes (cmd >&2, cmd | other, other <<< \"$text\")",
  },
  {
    pattern: /[<>]\(/,
    message: "process substitution <(...) and >(...) needs /dev/fd, which a check does not have",
    fix: "keep the output in a variable (out=$(cmd)) and feed it with <<< \"$out\", or use a pipe",
  },
  {
    pattern: /(^|[\s;&|(`]|\$\()(?<!(docker|podman|compose|container)\s+)ps(\s|$)/,
    lead: true,
    message: "procps' ps needs /proc/self and fails in a check",
    fix: "use pgrep -a, pidof, busybox ps, or read /proc/[0-9]*/cmdline and /proc/[0-9]*/status",
  },
  {
    pattern: /(^|[\s;&|(`]|\$\()(kill|pkill|killall)(\s|$)/,
    lead: true,
    message: "a check cannot signal the learner's processes: their pids name other processes (or none) where the check runs",
    fix: "check state and report; leave stopping processes to the learner or to a solution",
  },
  {
    pattern: /\bnsenter\b.*(\s--pid\b|\s-[a-zA-Z]*p)/,
    message: "a check cannot enter the learner's pid namespaces (nsenter --pid fails: the check's pid namespace is not their ancestor)",
    fix: "read what you need through /proc/<pid>/ (status, ns/, root/) instead",
  },
  {
    // (writing a pid there is a learner's move; a check reading it gets an empty list)
    pattern: /(?<!>\s*)(?<![^\s<("'=])[^\s<>()"'=]*(cgroup\.procs|cgroup\.threads|\/tasks)\b/,
    message: "cgroup.procs, cgroup.threads and tasks list only the pids the reader's pid namespace can see: none of the learner's in a check",
    fix: "find a cgroup's processes in /proc/[0-9]*/cgroup, or count them with pids.current (v2: cgroup.events says populated)",
  },
  {
    pattern: /\bnsenter\b.*(\s--mount\b|\s-[a-zA-Z]*m)/,
    message: "nsenter --mount runs its command from the learner's mount namespace: a binary of the learner's, inside the check",
    fix: "read the other namespace's files through /proc/<pid>/root/... with the check's own tools",
  },
];

/**
 * The line with quoted text blanked out (same length, so columns hold) where it reads as words:
 * messages to the learner ("... check with cat /proc/self/cgroup") and awk programs are not
 * commands. A quoted word without spaces ("$cg/cgroup.procs") is an argument and stays, and so do
 * command substitutions inside double quotes ("$(docker ps ...)"), since they run.
 */
export function codeOf(line: string): string {
  const out = line.split("");
  // Blanks [from, to) except the kept ranges, when the rest has a space in it.
  const blankWords = (from: number, to: number, keep: [number, number][] = []) => {
    const inKeep = (k: number) => keep.some(([a, b]) => k >= a && k < b);
    let spaced = false;
    for (let k = from; k < to; k++) if (!inKeep(k) && /\s/.test(line[k]!)) spaced = true;
    if (!spaced) return;
    for (let k = from; k < to && k < out.length; k++) if (!inKeep(k)) out[k] = " ";
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === "\\") {
      i++;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      blankWords(i + 1, end < 0 ? line.length : end);
      i = end < 0 ? line.length : end;
    } else if (c === '"') {
      const keep: [number, number][] = [];
      let j = i + 1;
      while (j < line.length && line[j] !== '"') {
        if (line[j] === "\\") {
          j += 2;
        } else if (line.startsWith("$(", j)) {
          const start = j;
          let depth = 0;
          for (; j < line.length; j++) {
            if (line[j] === "(") depth++;
            else if (line[j] === ")" && --depth === 0) break;
          }
          j++;
          keep.push([start, j]);
        } else {
          j++;
        }
      }
      blankWords(i + 1, Math.min(j, line.length), keep);
      i = j;
    } else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]!))) {
      for (let k = i; k < out.length; k++) out[k] = " "; // a comment may talk about anything
      break;
    }
  }
  return out.join("");
}

/** Warnings for one check or setup script; lines are lab.md's (the script's first line is `script.line`). */
export function lintTrustedScript(script: LabScript, file: string): LabError[] {
  const out: LabError[] = [];
  script.source.split("\n").forEach((line, i) => {
    const text = codeOf(line);
    for (const rule of RULES) {
      const m = rule.pattern.exec(text);
      if (!m) continue;
      const column = m.index + 1 + (rule.lead ? m[1]!.length : 0);
      out.push({ file, line: script.line + i, column, message: rule.message, fix: rule.fix, severity: "warning" });
    }
  });
  return out;
}

/** Every check and setup script of a lab (lab-wide setup, step setups, checks). */
export function lintTrustedScripts(lab: Lab, file: string): LabError[] {
  const scripts: LabScript[] = [];
  if (lab.setup) scripts.push(lab.setup);
  for (const step of lab.steps) {
    if (step.setup) scripts.push(step.setup);
    for (const check of step.checks) scripts.push(check.script);
  }
  return scripts.flatMap((s) => lintTrustedScript(s, file));
}
