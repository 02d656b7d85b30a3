// parseLab: lab.md → Lab, and every mistake an author can make as a LabError with its line.
// The file is read line by line, tracking fences the way CommonMark does, so a "## " inside a code
// block is not a step and a check block is never mistaken for text. Hidden blocks (setup, check,
// hint, solution) are cut out of the markdown here, so nothing downstream can leak them.
import path from "node:path";
import { ID_PATTERN, readFrontMatter } from "./front-matter.js";
import { parseDuration, parseInfoString, type Attribute } from "./info-string.js";
import { LIMITS, type Lab, type LabCheck, type LabError, type LabScript, type LabStep } from "./lab.js";

export const HIDDEN_KINDS = ["setup", "check", "hint", "solution"] as const;
type HiddenKind = (typeof HIDDEN_KINDS)[number];
const RUNNABLE_LANGS = ["bash", "sh", "shell", "console"];

/** Which attributes each hidden block takes. */
const ATTRIBUTES: Record<HiddenKind, readonly string[]> = {
  setup: ["timeout"],
  check: ["id", "title", "points", "timeout", "message"],
  hint: ["check"],
  solution: ["check", "timeout"],
};

interface HiddenBlock {
  kind: HiddenKind;
  attrs: Map<string, { value?: string; column: number }>;
  body: string;
  /** Line of the opening fence. */
  line: number;
}

interface Section {
  title: string;
  explicitId?: string;
  line: number;
  /** Visible markdown lines. */
  lines: string[];
  hidden: HiddenBlock[];
}

const FENCE_OPEN = /^(\s*)(`{3,}|~{3,})(.*)$/;

export function parseLab(source: string, file: string): { lab?: Lab; errors: LabError[] } {
  const errors: LabError[] = [];
  const err = (line: number, message: string, fix: string, column?: number) =>
    errors.push({ file, line, ...(column ? { column } : {}), message, fix });
  const lines = source.replace(/^\uFEFF/, "").split(/\r?\n/);

  // --- front matter -------------------------------------------------------------------------
  let bodyStart = 0;
  let fm: ReturnType<typeof readFrontMatter> = {};
  if (lines[0]?.trimEnd() !== "---") {
    err(1, "lab.md must start with YAML front matter", "put a line `---` first, then id, title, summary, duration, difficulty and tags, then `---`");
  } else {
    const end = lines.findIndex((l, i) => i > 0 && (l.trimEnd() === "---" || l.trimEnd() === "..."));
    if (end < 0) {
      err(1, "the front matter opened here is never closed", "add a line `---` after the last front matter field");
      bodyStart = lines.length;
    } else {
      fm = readFrontMatter(lines.slice(1, end).join("\n"), 2, file, errors);
      bodyStart = end + 1;
    }
  }
  const folder = path.basename(path.dirname(file));
  if (fm.id && path.dirname(file) !== "." && folder !== fm.id) {
    const idLine = lines.findIndex((l) => /^id\s*:/.test(l)) + 1 || 1;
    err(idLine, `id "${fm.id}" does not match the lab's folder "${folder}"`, `rename the folder to ${fm.id}/ or set \`id: ${folder}\``);
  }

  // --- body: sections and fences -------------------------------------------------------------
  const intro: Section = { title: "", line: bodyStart + 1, lines: [], hidden: [] };
  const sections: Section[] = [];
  let current = intro;
  for (let i = bodyStart; i < lines.length; i++) {
    const line = lines[i]!;
    const lineNo = i + 1;
    const open = FENCE_OPEN.exec(line);
    if (open && !(open[2]![0] === "`" && open[3]!.includes("`"))) {
      const indent = open[1]!.length;
      const fence = open[2]!;
      const info = parseInfoString(open[3]!);
      const close = new RegExp(`^\\s*${fence[0] === "`" ? "`" : "~"}{${fence.length},}\\s*$`);
      let j = i + 1;
      while (j < lines.length && !close.test(lines[j]!)) j++;
      const closed = j < lines.length;
      if (!closed) err(lineNo, `the code block opened here with ${fence} is never closed`, `add a line ${fence} where the block ends`);
      const bodyLines = lines.slice(i + 1, j).map((l) => stripIndent(l, indent));
      const kind = info.kind;
      if ((HIDDEN_KINDS as readonly string[]).includes(kind)) {
        if (indent > 0) err(lineNo, `a ${kind} block must start at the beginning of a line`, `remove the indentation before ${fence}${kind} (hidden blocks cannot sit inside lists or quotes)`, 1);
        for (const p of info.problems) err(lineNo, p.message, p.fix, indent + fence.length + p.offset + 1);
        const attrs = new Map<string, { value?: string; column: number }>();
        for (const a of info.attributes) {
          const column = indent + fence.length + a.offset + 1;
          if (!ATTRIBUTES[kind as HiddenKind].includes(a.key)) {
            err(lineNo, `unknown attribute "${a.key}" on a ${kind} block`, attributeFix(kind as HiddenKind), column);
          } else if (a.value === undefined) {
            err(lineNo, `attribute "${a.key}" has no value`, `write ${a.key}=<value>`, column);
          } else if (attrs.has(a.key)) {
            err(lineNo, `attribute "${a.key}" is given twice`, "keep one of them", column);
          } else attrs.set(a.key, { value: a.value, column });
        }
        current.hidden.push({ kind: kind as HiddenKind, attrs, body: bodyLines.join("\n"), line: lineNo });
      } else {
        for (const p of info.problems) err(lineNo, p.message, "a code block takes a language and optionally the word run, e.g. ```bash run", indent + fence.length + p.offset + 1);
        checkVisibleInfo(kind, info.attributes, lineNo, indent + fence.length, err);
        current.lines.push(...lines.slice(i, closed ? j + 1 : j));
        if (!closed) current.lines.push(fence);
      }
      i = closed ? j : lines.length;
      continue;
    }
    // A hidden block behind a quote or list marker would be a code block to markdown and nothing
    // to labkit: the renderer drops it, and the author must hear why their check never shows.
    const nested = /^\s*(?:>\s*|[-*+]\s+|\d+[.)]\s+)+(`{3,}|~{3,})\s*(setup|check|hint|solution)\b/.exec(line);
    if (nested) {
      err(lineNo, `a ${nested[2]} block must start at the beginning of a line`, "take it out of the quote or list: hidden blocks cannot be nested", line.indexOf(nested[1]!) + 1);
    }
    const heading = /^ {0,3}##(?:[ \t]+(.*?))?[ \t]*$/.exec(line);
    if (heading) {
      // A closing run of #s is decoration in markdown ("## Title ##").
      let title = (heading[1] ?? "").replace(/(^|\s+)#+$/, "").trim();
      let explicitId: string | undefined;
      const idm = /\s*\{#([^}]*)\}$/.exec(title);
      if (idm) {
        explicitId = idm[1]!.trim();
        title = title.slice(0, idm.index).trim();
      }
      if (title === "") err(lineNo, "a step heading has no title", "write a title after ##, e.g. `## Give a process its own hostname`");
      current = { title, explicitId, line: lineNo, lines: [], hidden: [] };
      sections.push(current);
      continue;
    }
    current.lines.push(line);
  }

  // --- intro: only setup may hide there ------------------------------------------------------
  let setup: LabScript | undefined;
  for (const h of intro.hidden) {
    if (h.kind !== "setup") {
      err(h.line, `a ${h.kind} block comes before the first step`, `move it under the ## step it belongs to`);
      continue;
    }
    if (setup) {
      err(h.line, "a lab has at most one setup block", `merge it into the setup block on line ${setup.line - 1}`);
      continue;
    }
    const s = script(h, LIMITS.scriptTimeoutMs, err);
    if (s) setup = s;
  }
  if (sections.length === 0 && bodyStart < lines.length) {
    const lastLine = Math.max(1, lines.length - (lines[lines.length - 1] === "" ? 1 : 0));
    err(lastLine, "the lab has no steps", "add at least one step: a `## Title` heading with instructions (and checks) under it");
  }

  // --- steps ---------------------------------------------------------------------------------
  const steps: LabStep[] = [];
  const stepIds = new Map<string, number>();
  const checkIds = new Map<string, number>();
  for (const sec of sections) {
    const id = sec.explicitId ?? slugify(sec.title);
    if (sec.explicitId !== undefined && !ID_PATTERN.test(id)) {
      err(sec.line, `step id "${id}" is not valid`, "use lowercase letters, digits and single dashes inside {#...}, e.g. {#uts-namespace}");
    } else if (id === "" && sec.title !== "") {
      err(sec.line, `the title "${sec.title}" gives no step id`, "add an explicit id at the end of the heading, e.g. {#step-one}");
    } else if (stepIds.has(id)) {
      err(sec.line, `step id "${id}" is already used by the step on line ${stepIds.get(id)}`, "give one of the steps another title or an explicit {#id}");
    }
    if (!stepIds.has(id)) stepIds.set(id, sec.line);
    const step: LabStep = { id, title: sec.title, markdown: trimBlankLines(sec.lines).join("\n"), checks: [], line: sec.line };

    const checks = new Map<string, LabCheck>();
    let lastCheck: LabCheck | undefined;
    const target = (h: HiddenBlock): LabCheck | undefined | null => {
      const ref = h.attrs.get("check");
      if (!ref) return undefined;
      const c = checks.get(ref.value!);
      if (c) return c;
      const where = checkIds.has(ref.value!) ? ` (it belongs to another step, line ${checkIds.get(ref.value!)}; hints and solutions stay in their check's step)` : "";
      err(h.line, `${h.kind} points at check "${ref.value}", which this step does not have${where}`, `use the id of a check in this step: ${[...checks.keys()].join(", ") || "(none yet: a hint or solution comes after its check, in the same step)"}`, ref.column);
      return null;
    };
    for (const h of sec.hidden) {
      if (h.kind === "setup") {
        err(h.line, "the setup block must come before the first step", "move it above the first ## heading");
        continue;
      }
      if (h.kind === "check") {
        const { valid, ...c } = readCheck(h, step.id, err);
        if (checkIds.has(c.id)) {
          err(h.line, `check id "${c.id}" is already used on line ${checkIds.get(c.id)}`, "check ids must be unique in the lab: rename one", h.attrs.get("id")?.column);
        } else if (valid || ID_PATTERN.test(c.id)) checkIds.set(c.id, h.line);
        checks.set(c.id, c);
        step.checks.push(c);
        lastCheck = c;
        continue;
      }
      if (h.kind === "hint") {
        const t = target(h);
        if (t === null) continue;
        const c = t ?? lastCheck;
        if (!c) {
          err(h.line, "this hint comes before any check of its step", "put it after the check it helps with, or name the check: ```hint check=<id>");
          continue;
        }
        if (h.body.trim() === "") err(h.line, `the hint for check "${c.id}" is empty`, "write the hint as markdown inside the block, or remove the block");
        else if (c.hint !== undefined) err(h.line, `check "${c.id}" already has a hint`, "merge the two hints into one block");
        else c.hint = h.body.trim();
        continue;
      }
      // solution
      const t = target(h);
      if (t === null) continue;
      // A broken solution still counts as present, so the step is not also reported unsolved.
      const s = script(h, LIMITS.scriptTimeoutMs, err) ?? { source: "", line: h.line + 1, timeoutMs: 0, shell: "bash" as const };
      if (t) {
        if (t.solution) err(h.line, `check "${t.id}" already has a solution (line ${t.solution.line - 1})`, "merge the two solutions into one block");
        else t.solution = s;
      } else if (step.solution) {
        err(h.line, `step "${step.id}" already has a solution (line ${step.solution.line - 1})`, "merge the two solution blocks, or give this one check=<id>");
      } else step.solution = s;
    }

    if (!step.solution) {
      const unsolved = step.checks.filter((c) => !c.solution).map((c) => c.id);
      if (unsolved.length > 0) {
        err(sec.line, `step "${step.id}" has checks without a solution: ${unsolved.join(", ")}`, "add a ```solution block to the step (or ```solution check=<id> per check): labkit test needs it to prove the checks");
      }
    }
    if (step.markdown.trim() === "" && step.checks.length === 0) {
      err(sec.line, `step "${step.id || sec.title}" is empty`, "write what the learner should do under the heading, or remove the step");
    }
    steps.push(step);
  }

  // Reported in file order, the way an author fixes them.
  errors.sort((a, b) => a.line - b.line || (a.column ?? 0) - (b.column ?? 0));
  if (errors.length > 0 || !fm.id || !fm.title || !fm.summary || !fm.duration || !fm.difficulty) {
    return { errors };
  }
  const lab: Lab = {
    id: fm.id,
    title: fm.title,
    summary: fm.summary,
    duration: fm.duration,
    chapter: fm.chapter ?? null,
    difficulty: fm.difficulty,
    tags: fm.tags ?? [],
    intro: trimBlankLines(intro.lines).join("\n"),
    steps,
    file,
    source,
    ...(setup ? { setup } : {}),
  };
  return { lab, errors };
}

type Err = (line: number, message: string, fix: string, column?: number) => void;

function attributeFix(kind: HiddenKind): string {
  const known = ATTRIBUTES[kind];
  return `a ${kind} block takes ${known.map((k) => `${k}=`).join(", ")}; remove it or correct its spelling`;
}

function checkVisibleInfo(lang: string, words: Attribute[], line: number, offset: number, err: Err) {
  let runnable = false;
  for (const w of words) {
    if (w.key === "run" && w.value === undefined) runnable = true;
    else {
      err(line, `"${w.key}${w.value !== undefined ? "=" + w.value : ""}" is not understood on a code block`, "a code block takes a language and optionally the word run, e.g. ```bash run", offset + w.offset + 1);
    }
  }
  if (!/^[A-Za-z0-9_+-]*$/.test(lang)) {
    err(line, `"${lang}" is not a language name`, "name the language with letters, digits, +, - or _, e.g. ```bash", offset + 1);
  } else if (lang === "run") {
    err(line, "`run` must follow a language", "write ```bash run", offset + 1);
  } else if (runnable && !RUNNABLE_LANGS.includes(lang)) {
    err(line, `a runnable block must be shell code, not "${lang || "(no language)"}"`, `the Run button types the block into a terminal: write \`\`\`bash run (or ${RUNNABLE_LANGS.join(", ")})`);
  }
}

/**
 * A check block → LabCheck. A check with mistakes is still returned (with `valid` false) so that
 * its hint and solution find it and one mistake does not cascade into several errors.
 */
function readCheck(h: HiddenBlock, stepId: string, err: Err): LabCheck & { valid: boolean } {
  let valid = true;
  let id = h.attrs.get("id")?.value ?? "";
  if (!id) {
    err(h.line, "a check has no id", "add id=<name> to the check's fence, e.g. ```check id=hostname-set");
    valid = false;
  } else if (!ID_PATTERN.test(id)) {
    err(h.line, `check id "${id}" is not valid`, "use lowercase letters, digits and single dashes", h.attrs.get("id")!.column);
    valid = false;
  }
  const title = h.attrs.get("title")?.value?.trim() ?? "";
  if (!title) {
    err(h.line, `check ${id ? `"${id}" ` : ""}has no title`, 'add title="..." saying what the check proves, e.g. title="The hostname is berth-lab"');
    valid = false;
  }
  let points: number = LIMITS.defaultPoints;
  const p = h.attrs.get("points");
  if (p) {
    if (/^\d+$/.test(p.value!) && Number(p.value) <= LIMITS.maxPoints) points = Number(p.value);
    else {
      err(h.line, `points="${p.value}" is not a whole number from 0 to ${LIMITS.maxPoints}`, "write e.g. points=2", p.column);
      valid = false;
    }
  }
  const message = h.attrs.get("message")?.value?.trim() || LIMITS.defaultMessage;
  const s = script(h, LIMITS.checkTimeoutMs, err);
  if (!s) valid = false;
  if (!id) id = `(check on line ${h.line})`;
  return {
    id,
    stepId,
    title,
    points,
    message,
    script: s ?? { source: "", line: h.line + 1, timeoutMs: LIMITS.checkTimeoutMs, shell: "bash" },
    line: h.line,
    valid,
  };
}

/** The script of a setup, check or solution block, its shebang and timeout checked. */
function script(h: HiddenBlock, defaultTimeout: number, err: Err): LabScript | undefined {
  let timeoutMs = defaultTimeout;
  const t = h.attrs.get("timeout");
  let ok = true;
  if (t) {
    const ms = parseDuration(t.value!);
    if (ms === undefined) {
      err(h.line, `timeout="${t.value}" is not a duration`, "write e.g. timeout=10s, timeout=500ms or timeout=2m", t.column);
      ok = false;
    } else if (ms < LIMITS.minTimeoutMs || ms > LIMITS.maxTimeoutMs) {
      err(h.line, `timeout=${t.value} is outside 1s..10m`, "pick a timeout between 1s and 10m", t.column);
      ok = false;
    } else timeoutMs = ms;
  }
  if (h.body.trim() === "") {
    err(h.line, `the ${h.kind} block has no script`, `write the bash script inside the block${h.kind === "check" ? ": exit 0 passes, what it prints is shown to the learner" : ""}`);
    return undefined;
  }
  // The #! line picks the shell (bash unless it says sh); flags on it would be silently lost.
  let shell: LabScript["shell"] = "bash";
  const first = h.body.split("\n")[0]!;
  if (first.startsWith("#!")) {
    const parts = first.slice(2).trim().split(/\s+/);
    const name = parts[0] === "/usr/bin/env" ? parts[1] : parts[0]?.replace(/^\/(usr\/)?bin\//, "");
    const args = parts.slice(parts[0] === "/usr/bin/env" ? 2 : 1);
    const known = name === "bash" || name === "sh";
    if (!known || !/^\/(usr\/)?bin\/(env|bash|sh)$/.test(parts[0]!)) {
      err(h.line + 1, `the ${h.kind} script asks for "${first.slice(2).trim()}", but lab scripts run with bash or sh`, "remove the #! line (bash is the default), or write #!/bin/bash or #!/bin/sh");
      ok = false;
    } else if (args.length > 0) {
      err(h.line + 1, `the #! line "${first}" passes flags, which are ignored`, "drop the flags and write them as a line such as `set -eu`");
      ok = false;
    } else shell = name;
  }
  if (!ok) return undefined;
  return { source: h.body, line: h.line + 1, timeoutMs, shell };
}

export function slugify(title: string): string {
  return title
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

function stripIndent(line: string, indent: number): string {
  let n = 0;
  while (n < indent && line[n] === " ") n++;
  return line.slice(n);
}

function trimBlankLines(lines: string[]): string[] {
  let a = 0;
  let b = lines.length;
  while (a < b && lines[a]!.trim() === "") a++;
  while (b > a && lines[b - 1]!.trim() === "") b--;
  return lines.slice(a, b);
}
