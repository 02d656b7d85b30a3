// parseLab: lab.md → Lab, and every mistake an author can make as a LabError with its line.
// The file is read line by line, tracking fences the way CommonMark does, so a "## " inside a code
// block is not a step and a check block is never mistaken for text. Hidden blocks (setup, check,
// hint, solution, quiz) are cut out of the markdown here, so nothing downstream can leak them.
import path from "node:path";
import { ID_PATTERN, LAB_RELATIVE_PATH, readFrontMatter } from "./front-matter.js";
import { parseDuration, parseInfoString, type Attribute } from "./info-string.js";
import { LIMITS, type Lab, type LabCheck, type LabError, type LabQuiz, type LabQuizQuestion, type LabScript, type LabStep } from "./lab.js";
import { CONDITION, CONTAINER_KINDS, IMAGE_TYPES, REFERENCE, SANDBOX_FACT_NAMES, imageExtension } from "./syntax.js";
import { lintTrustedScripts } from "./lint-trusted.js";
import { solutionShownInRunBlocks } from "./run-lint.js";

export const HIDDEN_KINDS = ["setup", "check", "hint", "solution", "quiz"] as const;
type HiddenKind = (typeof HIDDEN_KINDS)[number];
const RUNNABLE_LANGS = ["bash", "sh", "shell", "console"];

/** Which attributes each hidden block takes. */
const ATTRIBUTES: Record<HiddenKind, readonly string[]> = {
  setup: ["timeout"],
  check: ["id", "title", "points", "timeout", "message", "hint-cost", "auto", "poll", "needs", "if"],
  hint: ["check"],
  solution: ["check", "timeout", "if"],
  quiz: ["id", "title", "points", "case"],
};
/** Attributes written as a bare word. */
const FLAGS: Partial<Record<HiddenKind, readonly string[]>> = { check: ["auto"] };

export interface ParseOptions {
  /**
   * Whether a file exists in the lab's folder (path relative to it), for assets and images.
   * loadLabs passes one; without it those paths are only checked for shape.
   */
  fileExists?: (relativePath: string) => boolean;
}

export interface ParseResult {
  /** Present when there are no errors (warnings do not stop a lab). */
  lab?: Lab;
  errors: LabError[];
  warnings: LabError[];
}

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
  /** `{#id gate}` / `{#id no-gate}` on the heading; undefined when neither. */
  gate?: boolean;
  line: number;
  /** Visible markdown lines. */
  lines: string[];
  hidden: HiddenBlock[];
  /** Runnable code blocks shown in the section, for the "Run answers the check" warning. */
  runBlocks: { body: string; line: number }[];
}

const FENCE_OPEN = /^(\s*)(`{3,}|~{3,})(.*)$/;

export function parseLab(source: string, file: string, options: ParseOptions = {}): ParseResult {
  const errors: LabError[] = [];
  const warnings: LabError[] = [];
  const err = (line: number, message: string, fix: string, column?: number) =>
    errors.push({ file, line, ...(column ? { column } : {}), message, fix });
  const warn = (line: number, message: string, fix: string, column?: number) =>
    warnings.push({ file, line, ...(column ? { column } : {}), message, fix, severity: "warning" });
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
  for (const a of fm.assets ?? []) {
    if (options.fileExists && !options.fileExists(a.from)) {
      err(a.line, `asset ${a.from} is not in the lab's folder`, `add the file ${a.from} next to lab.md, or correct the path`);
    }
  }
  const declared = new Set(fm.declaredVariables ?? []);
  checkReferences(lines, bodyStart, declared, err);

  const intro: Section = { title: "", line: bodyStart + 1, lines: [], hidden: [], runBlocks: [] };
  const sections: Section[] = [];
  let current = intro;
  // Open ::: containers: a step heading or the end of the file must not fall inside one.
  const containers: { kind: string; line: number }[] = [];
  const closeContainersAt = (where: string) => {
    for (const c of containers) err(c.line, `the ::: ${c.kind} opened here is not closed ${where}`, "add a line ::: where the container ends");
    containers.length = 0;
  };
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
        if (containers.length > 0) {
          const c = containers[containers.length - 1]!;
          err(lineNo, `a ${kind} block cannot sit inside the ::: ${c.kind} container opened on line ${c.line}`, c.kind.startsWith("if=") ? "move it out of the container; a script can branch on $BERTH_SANDBOX_CGROUP or $BERTH_SANDBOX_ARCH instead" : "move it below the container's closing :::");
        }
        for (const p of info.problems) err(lineNo, p.message, p.fix, indent + fence.length + p.offset + 1);
        const attrs = new Map<string, { value?: string; column: number }>();
        const flags = FLAGS[kind as HiddenKind] ?? [];
        for (const a of info.attributes) {
          const column = indent + fence.length + a.offset + 1;
          if (!ATTRIBUTES[kind as HiddenKind].includes(a.key)) {
            err(lineNo, `unknown attribute "${a.key}" on a ${kind} block`, attributeFix(kind as HiddenKind), column);
          } else if (flags.includes(a.key) && a.value !== undefined) {
            err(lineNo, `"${a.key}" is a word on its own, without a value`, `write just ${a.key}`, column);
          } else if (a.value === undefined && !flags.includes(a.key)) {
            err(lineNo, `attribute "${a.key}" has no value`, `write ${a.key}=<value>`, column);
          } else if (attrs.has(a.key)) {
            err(lineNo, `attribute "${a.key}" is given twice`, "keep one of them", column);
          } else attrs.set(a.key, { value: a.value, column });
        }
        current.hidden.push({ kind: kind as HiddenKind, attrs, body: bodyLines.join("\n"), line: lineNo });
      } else {
        for (const p of info.problems) err(lineNo, p.message, "a code block takes a language and optionally the word run, e.g. ```bash run", indent + fence.length + p.offset + 1);
        const runnable = checkVisibleInfo(kind, info.attributes, lineNo, indent + fence.length, err);
        if (runnable) current.runBlocks.push({ body: bodyLines.join("\n"), line: lineNo });
        current.lines.push(...lines.slice(i, closed ? j + 1 : j));
        if (!closed) current.lines.push(fence);
      }
      i = closed ? j : lines.length;
      continue;
    }
    // A hidden block behind a quote or list marker would be a code block to markdown and nothing
    // to labkit: the renderer drops it, and the author must hear why their check never shows.
    const nested = /^\s*(?:>\s*|[-*+]\s+|\d+[.)]\s+)+(`{3,}|~{3,})\s*(setup|check|hint|solution|quiz)\b/.exec(line);
    if (nested) {
      err(lineNo, `a ${nested[2]} block must start at the beginning of a line`, "take it out of the quote or list: hidden blocks cannot be nested", line.indexOf(nested[1]!) + 1);
    }
    const heading = /^ {0,3}##(?:[ \t]+(.*?))?[ \t]*$/.exec(line);
    if (heading) {
      if (containers.length > 0) closeContainersAt("before the next step");
      // A closing run of #s is decoration in markdown ("## Title ##").
      let title = (heading[1] ?? "").replace(/(^|\s+)#+$/, "").trim();
      let explicitId: string | undefined;
      let gate: boolean | undefined;
      // {#id}, {#id gate}, {gate}, {no-gate}: only braces that start with # or a flag are ours.
      const attrm = /\s*\{((?:#|gate\b|no-gate\b)[^}]*)\}$/.exec(title);
      if (attrm) {
        title = title.slice(0, attrm.index).trim();
        // Trailing gate / no-gate words are flags; the rest after # is the id (checked below).
        const words = attrm[1]!.trim().split(/\s+/);
        while (words.length > 0 && (words[words.length - 1] === "gate" || words[words.length - 1] === "no-gate")) {
          const flag = words.pop()!;
          if (gate !== undefined) err(lineNo, `"${flag}" contradicts or repeats another gate word`, "keep one of gate or no-gate");
          gate = flag === "gate";
        }
        if (words.length > 0) {
          const idText = words.join(" ");
          if (idText.startsWith("#")) explicitId = idText.slice(1).trim();
          else err(lineNo, `"${idText}" is not understood in a step heading's {...}`, "write {#step-id}, optionally followed by gate or no-gate", line.indexOf(idText) + 1);
        }
      }
      if (title === "") err(lineNo, "a step heading has no title", "write a title after ##, e.g. `## Give a process its own hostname`");
      current = { title, explicitId, gate, line: lineNo, lines: [], hidden: [], runBlocks: [] };
      sections.push(current);
      continue;
    }
    const container = /^:::(.*)$/.exec(line);
    if (container) {
      const rest = container[1]!.trim();
      if (rest === "") {
        if (containers.length === 0) err(lineNo, "this ::: closes no container", "remove it, or open a container above with ::: note, ::: tip, ::: warning, ::: details <summary> or ::: if=<condition>");
        else containers.pop();
      } else {
        const kind = readContainer(rest, lineNo, err);
        containers.push({ kind, line: lineNo });
      }
      current.lines.push(line);
      continue;
    }
    checkInlineSyntax(line, lineNo, options, err);
    current.lines.push(line);
  }
  if (containers.length > 0) closeContainersAt("before the end of the file");

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
  // A closing `## ... {#recap}` section is the lab's recap, not a step.
  let recapSection: Section | undefined;
  const recapIndex = sections.findIndex((sec) => sec.explicitId === "recap");
  if (recapIndex >= 0) {
    recapSection = sections[recapIndex]!;
    if (recapIndex !== sections.length - 1) {
      err(recapSection.line, "the recap must be the last section of the lab", "move the {#recap} section to the end");
    }
    for (const h of recapSection.hidden) {
      err(h.line, `a ${h.kind} block cannot be in the recap`, "the recap is shown when the lab is complete: move the block into a step");
    }
    if (recapSection.gate !== undefined) err(recapSection.line, "the recap cannot be gated", "remove gate/no-gate: the recap shows when the lab is complete");
    if (trimBlankLines(recapSection.lines).length === 0) err(recapSection.line, "the recap is empty", "write what the learner did and why it matters, or remove the section");
    sections.splice(recapIndex, 1);
  }
  if (sections.length === 0 && bodyStart < lines.length) {
    const lastLine = Math.max(1, lines.length - (lines[lines.length - 1] === "" ? 1 : 0));
    err(lastLine, "the lab has no steps", "add at least one step: a `## Title` heading with instructions (and checks) under it");
  }

  // --- steps ---------------------------------------------------------------------------------
  const steps: LabStep[] = [];
  const stepIds = new Map<string, number>();
  const checkIds = new Map<string, number>();
  const quizIds = new Map<string, number>();
  for (const [sectionIndex, sec] of sections.entries()) {
    const id = sec.explicitId ?? slugify(sec.title);
    if (sec.explicitId !== undefined && !ID_PATTERN.test(id)) {
      err(sec.line, `step id "${id}" is not valid`, "use lowercase letters, digits and single dashes inside {#...}, e.g. {#uts-namespace}");
    } else if (id === "" && sec.title !== "") {
      err(sec.line, `the title "${sec.title}" gives no step id`, "add an explicit id at the end of the heading, e.g. {#step-one}");
    } else if (stepIds.has(id)) {
      err(sec.line, `step id "${id}" is already used by the step on line ${stepIds.get(id)}`, "give one of the steps another title or an explicit {#id}");
    }
    if (!stepIds.has(id)) stepIds.set(id, sec.line);
    if (sectionIndex === 0 && sec.gate === true) {
      err(sec.line, "the first step cannot be gated: there is no step before it", "remove gate from this heading");
    }
    const gated = sectionIndex > 0 && (sec.gate ?? fm.gate ?? false);
    const step: LabStep = { id, title: sec.title, markdown: trimBlankLines(sec.lines).join("\n"), checks: [], quizzes: [], gated, line: sec.line };

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
        // A step's own setup: runs when the learner first reaches the step.
        if (step.setup) {
          err(h.line, `step "${step.id}" already has a setup block (line ${step.setup.line - 1})`, "merge the two setup blocks into one");
          continue;
        }
        const s = script(h, LIMITS.scriptTimeoutMs, err);
        if (s) step.setup = s;
        continue;
      }
      if (h.kind === "quiz") {
        const q = readQuiz(h, step.id, err);
        if (!q) continue;
        const clash = checkIds.get(q.id) ?? quizIds.get(q.id);
        if (clash !== undefined) err(h.line, `quiz id "${q.id}" is already used on line ${clash}`, "check and quiz ids must be unique in the lab: rename one", h.attrs.get("id")?.column);
        else quizIds.set(q.id, h.line);
        step.quizzes.push(q);
        continue;
      }
      if (h.kind === "check") {
        const { valid, ...c } = readCheck(h, step.id, fm.hintCost ?? 0, err);
        if (checkIds.has(c.id) || quizIds.has(c.id)) {
          err(h.line, `check id "${c.id}" is already used on line ${checkIds.get(c.id) ?? quizIds.get(c.id)}`, "check ids must be unique in the lab: rename one", h.attrs.get("id")?.column);
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
        // Several hints per check are revealed one at a time, in the order written.
        if (h.body.trim() === "") err(h.line, `the hint for check "${c.id}" is empty`, "write the hint as markdown inside the block, or remove the block");
        else c.hints.push({ markdown: h.body.trim(), line: h.line });
        continue;
      }
      // solution
      const t = target(h);
      if (t === null) continue;
      // A broken solution still counts as present, so the step is not also reported unsolved.
      const s: LabScript = script(h, LIMITS.scriptTimeoutMs, err) ?? { source: "", line: h.line + 1, timeoutMs: 0, shell: "bash" as const };
      const condition = readCondition(h, err);
      if (condition) s.condition = condition;
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
    // A solution with if= exists only where its condition holds: every check it solves must be
    // waived everywhere else, or some learner's check could never be solved.
    for (const c of step.checks) {
      const sol = c.solution ?? step.solution;
      if (sol?.condition && c.condition !== sol.condition && (c.condition === null || CONDITION.test(c.condition))) {
        err(sol.line - 1, `the solution has if=${sol.condition} but check "${c.id}" (line ${c.line}) ${c.condition ? `has if=${c.condition}` : "applies everywhere"}: where the condition fails, nothing solves it`, `give the check the same if=${sol.condition} (it is then waived there), or drop if= from the solution and branch on $BERTH_SANDBOX_* inside it`);
      }
    }
    if (step.markdown.trim() === "" && step.checks.length === 0 && step.quizzes.length === 0) {
      err(sec.line, `step "${step.id || sec.title}" is empty`, "write what the learner should do under the heading, or remove the step");
    }
    // A check the learner passes by pressing Run on the blocks above it teaches nothing.
    const warned = new Set<LabScript>();
    for (const c of step.checks) {
      const sol = c.solution ?? step.solution;
      if (!sol || warned.has(sol) || sol.source === "") continue;
      const shown = sec.runBlocks.filter((b) => b.line < c.line);
      const hit = solutionShownInRunBlocks(sol.source, shown.map((b) => b.body));
      if (hit !== undefined) {
        warned.add(sol);
        const where = shown[hit]!.line;
        warn(where, `the Run block here (with those above it) is the solution of check "${c.id}" (line ${c.line}; solution on line ${sol.line - 1}): pressing Run in order passes it`, "show that command without `run` and leave something for the learner to work out (a name, a flag, a value), or make the check ask for more than the page spells out");
      }
    }
    steps.push(step);
  }

  // needs: only checks that come earlier in the lab, so there is an order and never a cycle.
  const seenChecks = new Set<string>();
  for (const step of steps) {
    for (const c of step.checks) {
      for (const n of c.needs) {
        if (n === c.id) err(c.line, `check "${c.id}" needs itself`, "remove its own id from needs=");
        else if (!seenChecks.has(n)) {
          err(c.line, `check "${c.id}" needs "${n}", which is not a check before it`, checkIds.has(n) ? `move check ${n} above ${c.id}, or drop it from needs=` : `use ids of earlier checks: ${[...seenChecks].join(", ") || "(none)"}`);
        }
      }
      seenChecks.add(c.id);
    }
  }

  if (fm.next && fm.id && fm.next === fm.id) err(fm.nextLine ?? 1, "next names this lab itself", "name the lab that follows this one, or remove the line");

  // Reported in file order, the way an author fixes them.
  errors.sort((a, b) => a.line - b.line || (a.column ?? 0) - (b.column ?? 0));
  warnings.sort((a, b) => a.line - b.line || (a.column ?? 0) - (b.column ?? 0));
  if (errors.length > 0 || !fm.id || !fm.title || !fm.summary || !fm.duration || !fm.difficulty) {
    return { errors, warnings };
  }
  const lab: Lab = {
    id: fm.id,
    title: fm.title,
    summary: fm.summary,
    duration: fm.duration,
    chapter: fm.chapter ?? null,
    difficulty: fm.difficulty,
    tags: fm.tags ?? [],
    next: fm.next ?? null,
    hintCost: fm.hintCost ?? 0,
    variables: fm.variables ?? [],
    assets: fm.assets ?? [],
    intro: trimBlankLines(intro.lines).join("\n"),
    steps,
    recap: recapSection ? trimBlankLines(recapSection.lines).join("\n") : null,
    file,
    source,
    ...(setup ? { setup } : {}),
  };
  // Checks and setups run as trusted checks, outside the learner's pid namespace: say what breaks there.
  warnings.push(...lintTrustedScripts(lab, file));
  warnings.sort((a, b) => a.line - b.line || (a.column ?? 0) - (b.column ?? 0));
  return { lab, errors, warnings };
}

type Err = (line: number, message: string, fix: string, column?: number) => void;

function attributeFix(kind: HiddenKind): string {
  const known = ATTRIBUTES[kind];
  return `a ${kind} block takes ${known.map((k) => `${k}=`).join(", ")}; remove it or correct its spelling`;
}

/** Checks a visible code block's info string; true when the block is runnable. */
function checkVisibleInfo(lang: string, words: Attribute[], line: number, offset: number, err: Err): boolean {
  let runnable = false;
  const extras: Attribute[] = [];
  const seen = new Set<string>();
  const fix = "a code block takes a language, then optionally run, term=<1-9>, interrupt and if=<condition>, e.g. ```bash run term=2";
  for (const w of words) {
    const column = offset + w.offset + 1;
    if (seen.has(w.key)) {
      err(line, `"${w.key}" is given twice`, "keep one of them", column);
      continue;
    }
    seen.add(w.key);
    if (w.key === "run" && w.value === undefined) runnable = true;
    else if (w.key === "interrupt" && w.value === undefined) extras.push(w);
    else if (w.key === "term" && w.value !== undefined) {
      extras.push(w);
      if (!/^[1-9]$/.test(w.value)) err(line, `term=${w.value} is not a terminal number`, "write term=1 to term=9 (1 is the first terminal, the default)", column);
    } else if (w.key === "if" && w.value !== undefined) {
      if (!CONDITION.test(w.value)) err(line, `if=${w.value} is not a condition`, CONDITION_FIX, column);
    } else {
      err(line, `"${w.key}${w.value !== undefined ? "=" + w.value : ""}" is not understood on a code block`, fix, column);
    }
  }
  if (!/^[A-Za-z0-9_+-]*$/.test(lang)) {
    err(line, `"${lang}" is not a language name`, "name the language with letters, digits, +, - or _, e.g. ```bash", offset + 1);
  } else if (lang === "run") {
    err(line, "`run` must follow a language", "write ```bash run", offset + 1);
  } else if (runnable && !RUNNABLE_LANGS.includes(lang)) {
    err(line, `a runnable block must be shell code, not "${lang || "(no language)"}"`, `the Run button types the block into a terminal: write \`\`\`bash run (or ${RUNNABLE_LANGS.join(", ")})`);
  }
  for (const w of extras) {
    if (!runnable) err(line, `"${w.key}" only means something on a runnable block`, `add run: \`\`\`${lang || "bash"} run ${w.key}${w.value !== undefined ? "=" + w.value : ""}`, offset + w.offset + 1);
  }
  return runnable;
}

const CONDITION_FIX = "write cgroup-v1, cgroup-v2, cpuset or arch-<uname -m> (e.g. arch-x86_64, arch-aarch64), with ! in front to negate";

/** The first line of a ::: container: note, tip, warning (optional title), details <summary>, if=<condition>. */
function readContainer(rest: string, line: number, err: Err): string {
  const m = /^(\S+)\s*(.*)$/.exec(rest)!;
  const word = m[1]!;
  if (word.startsWith("if=")) {
    if (!CONDITION.test(word.slice(3))) err(line, `${word} is not a condition`, CONDITION_FIX, 5);
    if (m[2]) err(line, `"${m[2]}" is not understood after ::: ${word}`, "write only ::: if=<condition> on the line", 5 + word.length);
    return word;
  }
  if (word === "if") {
    err(line, "::: if needs a condition", `write ::: if=<condition>; ${CONDITION_FIX}`, 5);
    return word;
  }
  if (!(CONTAINER_KINDS as readonly string[]).includes(word)) {
    err(line, `"::: ${word}" is not a container`, "write ::: note, ::: tip, ::: warning (each with an optional title), ::: details <summary> or ::: if=<condition>", 5);
  } else if (word === "details" && !m[2]) {
    err(line, "::: details needs a summary: the line the learner clicks to open it", "write e.g. ::: details What does --fork do?");
  }
  return word;
}

/** Workspace actions and images in a line of text. */
function checkInlineSyntax(line: string, lineNo: number, options: ParseOptions, err: Err): void {
  for (const m of line.matchAll(/\]\((open|preview):([^)\s]*)\)/g)) {
    const column = m.index! + 3;
    if (REFERENCE.test(m[2]!)) continue; // a learner's value: its shape is the generator's
    if (m[1] === "open" && !/^\/[A-Za-z0-9._@+\/-]+$/.test(m[2]!)) {
      err(lineNo, `open:${m[2]} is not an absolute file path`, "write e.g. [Open the Dockerfile](open:/root/app/Dockerfile)", column);
    } else if (m[1] === "preview" && !(/^\d{1,5}$/.test(m[2]!) && Number(m[2]) >= 1 && Number(m[2]) <= 65535)) {
      err(lineNo, `preview:${m[2]} is not a port`, "write e.g. [Open the preview](preview:8080)", column);
    }
  }
  for (const m of line.matchAll(/!\[[^\]]*\]\(\s*<?([^)\s>]+)>?/g)) {
    const src = m[1]!;
    const column = m.index! + 1;
    if (/^[a-z][a-z0-9+.-]*:/i.test(src) || src.startsWith("//")) continue; // a URL: the sanitizer decides
    if (src.startsWith("/")) {
      err(lineNo, `image ${src} starts with /`, "give the image's path relative to the lab's folder, e.g. images/diagram.png", column);
    } else if (!LAB_RELATIVE_PATH.test(src)) {
      err(lineNo, `image ${src} is not a path inside the lab's folder`, "give a relative path without .. such as images/diagram.png", column);
    } else if (!IMAGE_TYPES[imageExtension(src)]) {
      err(lineNo, `image ${src} is not a picture the player serves`, `use one of ${Object.keys(IMAGE_TYPES).map((e) => "." + e).join(", ")}`, column);
    } else if (options.fileExists && !options.fileExists(src)) {
      err(lineNo, `image ${src} is not in the lab's folder`, `add ${src} next to lab.md, or correct the path`, column);
    }
  }
}

/** {{var.x}} and {{sandbox.x}} anywhere in the body must name something that exists. */
function checkReferences(lines: string[], bodyStart: number, declared: Set<string>, err: Err): void {
  for (let i = bodyStart; i < lines.length; i++) {
    for (const m of lines[i]!.matchAll(new RegExp(REFERENCE.source, "g"))) {
      const [, scope, name] = m;
      const column = m.index! + 1;
      if (scope === "var" && !declared.has(name!)) {
        err(i + 1, `{{var.${name}}} is not declared`, declared.size ? `declare it under variables: in the front matter, or use one of ${[...declared].join(", ")}` : `declare it in the front matter, e.g. variables: { ${name}: word }`, column);
      } else if (scope === "sandbox" && !(SANDBOX_FACT_NAMES as readonly string[]).includes(name!)) {
        err(i + 1, `{{sandbox.${name}}} is not a sandbox fact`, `use one of ${SANDBOX_FACT_NAMES.map((f) => `{{sandbox.${f}}}`).join(", ")}`, column);
      }
    }
  }
}

/**
 * A check block → LabCheck. A check with mistakes is still returned (with `valid` false) so that
 * its hint and solution find it and one mistake does not cascade into several errors.
 */
function readCheck(h: HiddenBlock, stepId: string, labHintCost: number, err: Err): LabCheck & { valid: boolean } {
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
  let hintCost = labHintCost;
  const hc = h.attrs.get("hint-cost");
  if (hc) {
    if (/^\d+$/.test(hc.value!) && Number(hc.value) <= LIMITS.maxHintCost) hintCost = Number(hc.value);
    else {
      err(h.line, `hint-cost="${hc.value}" is not a whole number from 0 to ${LIMITS.maxHintCost}`, "write e.g. hint-cost=1 (points each hint of this check costs)", hc.column);
      valid = false;
    }
  }
  let pollMs: number | null = h.attrs.has("auto") ? LIMITS.defaultPollMs : null;
  const poll = h.attrs.get("poll");
  if (poll) {
    const ms = parseDuration(poll.value!);
    if (ms === undefined) {
      err(h.line, `poll="${poll.value}" is not a duration`, "write e.g. poll=5s", poll.column);
      valid = false;
    } else if (ms < LIMITS.minPollMs || ms > LIMITS.maxTimeoutMs) {
      err(h.line, `poll=${poll.value} is outside 2s..10m`, "poll every 2s or slower: every run costs the learner's sandbox CPU", poll.column);
      valid = false;
    } else pollMs = ms;
  }
  const needs: string[] = [];
  const nd = h.attrs.get("needs");
  if (nd) {
    for (const n of nd.value!.split(",").map((x) => x.trim())) {
      if (!ID_PATTERN.test(n)) {
        err(h.line, `needs="${nd.value}" is not a list of check ids`, "write e.g. needs=first-check or needs=a,b (comma-separated, no spaces)", nd.column);
        valid = false;
        break;
      }
      if (!needs.includes(n)) needs.push(n);
    }
  }
  const condition = readCondition(h, err);
  if (condition === undefined) valid = false;
  const s = script(h, LIMITS.checkTimeoutMs, err);
  if (!s) valid = false;
  if (pollMs !== null && s && s.timeoutMs > pollMs) {
    err(h.line, `an auto check polled every ${pollMs / 1000}s cannot have a timeout of ${s.timeoutMs / 1000}s`, "make the timeout shorter than the poll interval, e.g. poll=5s timeout=3s", h.attrs.get("timeout")?.column ?? h.attrs.get("poll")?.column);
    valid = false;
  }
  if (!id) id = `(check on line ${h.line})`;
  return {
    id,
    stepId,
    title,
    points,
    message,
    script: s ?? { source: "", line: h.line + 1, timeoutMs: LIMITS.checkTimeoutMs, shell: "bash" },
    hints: [],
    hintCost,
    pollMs,
    needs,
    // (a misspelt one is kept as written: the lab does not load, and no second error follows from it)
    condition: condition === undefined ? h.attrs.get("if")!.value! : condition,
    line: h.line,
    valid,
  };
}

/** A hidden block's `if=`: null when it has none, undefined when it is not a condition (reported). */
function readCondition(h: HiddenBlock, err: Err): string | null | undefined {
  const c = h.attrs.get("if");
  if (!c) return null;
  if (!CONDITION.test(c.value!)) {
    err(h.line, `if=${c.value} is not a condition`, CONDITION_FIX, c.column);
    return undefined;
  }
  return c.value!;
}

/**
 * A quiz block → LabQuiz. The body is a list of questions:
 *   ? prompt (markdown; more prompt lines may follow)
 *   ( ) wrong  /  (x) right            single choice
 *   [ ] wrong  /  [x] right            multiple choice
 *   = an accepted answer               free text (compared without case, whitespace collapsed)
 *   ~ a regular expression             free text, matched against the whole answer
 */
function readQuiz(h: HiddenBlock, stepId: string, err: Err): LabQuiz | undefined {
  let valid = true;
  const id = h.attrs.get("id")?.value ?? "";
  if (!id) {
    err(h.line, "a quiz has no id", "add id=<name> to the quiz's fence, e.g. ```quiz id=namespaces-quiz");
    valid = false;
  } else if (!ID_PATTERN.test(id)) {
    err(h.line, `quiz id "${id}" is not valid`, "use lowercase letters, digits and single dashes", h.attrs.get("id")!.column);
    valid = false;
  }
  const title = h.attrs.get("title")?.value?.trim() || "Quiz";
  let points: number = LIMITS.defaultPoints;
  const p = h.attrs.get("points");
  if (p) {
    if (/^\d+$/.test(p.value!) && Number(p.value) <= LIMITS.maxPoints) points = Number(p.value);
    else {
      err(h.line, `points="${p.value}" is not a whole number from 0 to ${LIMITS.maxPoints}`, "write e.g. points=2", p.column);
      valid = false;
    }
  }
  const cs = h.attrs.get("case");
  if (cs && cs.value !== "sensitive" && cs.value !== "insensitive") {
    err(h.line, `case=${cs.value} is not understood`, "write case=sensitive (text answers must match case) or leave it out", cs.column);
    valid = false;
  }
  const questions: (LabQuizQuestion & { styles: Set<string> })[] = [];
  let q: (LabQuizQuestion & { styles: Set<string> }) | undefined;
  const bodyLines = h.body.split("\n");
  for (const [k, raw] of bodyLines.entries()) {
    const lineNo = h.line + 1 + k;
    const text = raw.trim();
    if (text === "") continue;
    const question = /^\?\s*(.*)$/.exec(text);
    if (question) {
      if (question[1] === "") err(lineNo, "a question has no text", "write the question after ?, e.g. ? Which namespace holds the hostname?");
      q = { id: `q${questions.length + 1}`, kind: "text", prompt: question[1]!, options: [], accept: [], line: lineNo, styles: new Set() };
      questions.push(q);
      continue;
    }
    const option = /^(?:[-*]\s+)?(\(\s*([xX]?)\s*\)|\[\s*([xX]?)\s*\])\s+(.+)$/.exec(text);
    const answer = /^([=~])\s*(.*)$/.exec(text);
    if (!q) {
      err(lineNo, "a quiz starts with a question", "start each question with ? and its text, then its options or answers");
      valid = false;
      break;
    }
    if (option) {
      const round = option[1]!.startsWith("(");
      q.styles.add(round ? "single" : "multiple");
      if (q.options.length >= 26) {
        err(lineNo, "a question takes at most 26 options", "shorten the list");
        continue;
      }
      q.options.push({ id: String.fromCharCode(97 + q.options.length), markdown: option[4]!.trim(), correct: (round ? option[2] : option[3]) !== "" });
    } else if (answer) {
      q.styles.add("text");
      const value = answer[2]!.trim();
      if (value === "") {
        err(lineNo, `"${answer[1]}" has no answer after it`, answer[1] === "=" ? "write an accepted answer, e.g. = ip netns list" : "write a regular expression, e.g. ~ ip\\s+netns\\s+(ls|list)");
        continue;
      }
      if (answer[1] === "~") {
        try {
          new RegExp(value, "u");
        } catch (e) {
          err(lineNo, `"${value}" is not a regular expression: ${(e as Error).message}`, "fix the pattern (JavaScript syntax; it must match the whole answer)");
          continue;
        }
      }
      q.accept.push({ kind: answer[1] === "=" ? "literal" : "pattern", text: value, line: lineNo });
    } else if (q.options.length === 0 && q.accept.length === 0) {
      q.prompt += "\n" + raw; // the prompt goes on
    } else {
      err(lineNo, `"${text.slice(0, 40)}" is not understood in a quiz`, "after a question's options or answers, start the next question with ?; options are ( ) / (x) or [ ] / [x], answers are = text or ~ pattern");
      valid = false;
    }
  }
  if (questions.length === 0 && valid) {
    err(h.line, `quiz ${id ? `"${id}" ` : ""}has no questions`, "write at least one: ? the question, then (x) right / ( ) wrong options, or = an accepted answer");
    valid = false;
  }
  for (const qq of questions) {
    if (qq.styles.size > 1) {
      err(qq.line, `question ${qq.id} mixes ${[...qq.styles].join(" and ")} answers`, "use ( ) for one right answer, [ ] for several, or = / ~ for typed answers: one kind per question");
      valid = false;
      continue;
    }
    qq.kind = (qq.styles.values().next().value as LabQuizQuestion["kind"] | undefined) ?? "text";
    const right = qq.options.filter((o) => o.correct).length;
    if (qq.kind === "single") {
      if (qq.options.length < 2) err(qq.line, `question ${qq.id} has fewer than two options`, "give at least two ( ) options");
      if (right !== 1) err(qq.line, `question ${qq.id} is single choice with ${right} right options`, "mark exactly one option (x); for several right answers use [ ] and [x]");
      if (qq.options.length < 2 || right !== 1) valid = false;
    } else if (qq.kind === "multiple") {
      if (qq.options.length < 2) err(qq.line, `question ${qq.id} has fewer than two options`, "give at least two [ ] options");
      if (right === 0) err(qq.line, `question ${qq.id} has no right option`, "mark the right options [x]");
      if (qq.options.length < 2 || right === 0) valid = false;
    } else if (!qq.accept.some((a) => a.kind === "literal")) {
      // labkit test proves a text question with a literal answer; a pattern alone gives it none.
      err(qq.line, `question ${qq.id} has no accepted answer written out`, "add at least one = answer (patterns with ~ may accept more)");
      valid = false;
    }
  }
  if (!valid) return undefined;
  return {
    id,
    stepId,
    title,
    points,
    caseSensitive: cs?.value === "sensitive",
    questions: questions.map(({ styles: _styles, ...rest }) => rest),
    line: h.line,
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
