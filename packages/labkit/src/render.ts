// The browser's view of a lab, per learner: {{var.x}}/{{sandbox.x}} substituted, `if=` blocks
// resolved, then markdown → HTML with markdown-it (raw HTML off) and sanitize-html with a short
// allow-list as a second wall. Only the visible markdown the parser kept is rendered; check,
// solution and setup scripts and quiz answers are not in the Lab's markdown at all, and a fence that
// still says check/solution/setup/hint/quiz (say, an author's mistake the linter reported) renders
// as nothing. Hints and solutions are rendered only when the server asks (renderHint,
// renderSolution), after the learner asked for them.
import MarkdownIt, { type StateBlock, type StateCore, type Token } from "markdown-it";
import sanitizeHtml from "sanitize-html";
import type { CheckView, LabSummary, LabView, QuizView, StepView } from "@berth/protocol";
import { previewContext, substitute } from "./context.js";
import { LAB_RELATIVE_PATH } from "./front-matter.js";
import type { Lab, LabCheck, LabContext, LabScript, SandboxFacts } from "./lab.js";
import { HIDDEN_KINDS } from "./parse.js";
import { CONDITION, CONTAINER_KINDS, IMAGE_TYPES, evalCondition, imageExtension, solutionApplies } from "./syntax.js";

const RUNNABLE_LANGS = new Set(["bash", "sh", "shell", "console"]);

const md = new MarkdownIt({ html: false, linkify: true, typographer: false });

interface RenderEnv {
  labId?: string;
}

md.renderer.rules.fence = (tokens, idx) => {
  const token = tokens[idx]!;
  const words = token.info.trim().split(/\s+/).filter(Boolean);
  const lang = words[0] ?? "";
  if ((HIDDEN_KINDS as readonly string[]).includes(lang)) return "";
  const runnable = RUNNABLE_LANGS.has(lang) && words.slice(1).includes("run");
  const term = words.slice(1).find((w) => /^term=[1-9]$/.test(w))?.slice(5);
  const interrupt = words.slice(1).includes("interrupt");
  return codeBlock(token.content, lang, runnable, runnable ? term : undefined, runnable && interrupt);
};
md.renderer.rules.code_block = (tokens, idx) => codeBlock(tokens[idx]!.content, "", false);

function codeBlock(content: string, lang: string, runnable: boolean, term?: string, interrupt = false): string {
  const safeLang = /^[A-Za-z0-9_+-]+$/.test(lang) ? lang : "text";
  const extra = `${term && term !== "1" ? ` data-term="${term}"` : ""}${interrupt ? ' data-interrupt="true"' : ""}`;
  return `<pre class="berth-code" data-runnable="${runnable}" data-lang="${safeLang}"${extra}><code>${md.utils.escapeHtml(content)}</code></pre>\n`;
}

// --- ::: note | tip | warning [title] / ::: details <summary> containers ----------------------
// (`::: if=` containers are resolved before markdown-it sees the text, see resolveConditions.)
function containerRule(state: StateBlock, startLine: number, endLine: number, silent: boolean): boolean {
  // At the start of its block, as the parser (which only knows column 0) reads it.
  if (state.sCount[startLine]! !== state.blkIndent) return false;
  const first = state.src.slice(state.bMarks[startLine]! + state.tShift[startLine]!, state.eMarks[startLine]);
  const m = /^:::\s*(\S+)\s*(.*)$/.exec(first);
  if (!m || !(CONTAINER_KINDS as readonly string[]).includes(m[1]!)) return false;
  if (silent) return true;
  let depth = 1;
  let fence: string | null = null;
  let next = startLine + 1;
  for (; next < endLine; next++) {
    const l = state.src.slice(state.bMarks[next]! + state.tShift[next]!, state.eMarks[next]);
    const f = /^(`{3,}|~{3,})/.exec(l);
    if (fence) {
      if (f && f[1]![0] === fence[0] && f[1]!.length >= fence.length && l.trim() === f[1]) fence = null;
      continue;
    }
    if (f) {
      fence = f[1]!;
      continue;
    }
    if (/^:::\s*\S/.test(l)) depth++;
    else if (/^:::\s*$/.test(l) && --depth === 0) break;
  }
  const oldParent = state.parentType;
  const oldLineMax = state.lineMax;
  state.parentType = "container" as typeof state.parentType;
  state.lineMax = next;
  const open = state.push("berth_container_open", "div", 1);
  open.block = true;
  open.info = m[1]!;
  open.meta = { title: m[2]!.trim() };
  open.map = [startLine, next];
  state.md.block.tokenize(state, startLine + 1, next);
  const close = state.push("berth_container_close", "div", -1);
  close.block = true;
  close.info = m[1]!;
  state.parentType = oldParent;
  state.lineMax = oldLineMax;
  state.line = Math.min(next + 1, endLine);
  return true;
}
md.block.ruler.before("fence", "berth_container", containerRule, { alt: ["paragraph", "reference", "blockquote", "list"] });
md.renderer.rules.berth_container_open = (tokens, idx) => {
  const t = tokens[idx]!;
  const title = md.utils.escapeHtml((t.meta as { title: string }).title);
  if (t.info === "details") return `<details><summary>${title}</summary>\n`;
  return `<div class="callout callout-${t.info}">\n${title ? `<p><strong>${title}</strong></p>\n` : ""}`;
};
md.renderer.rules.berth_container_close = (tokens, idx) => (tokens[idx]!.info === "details" ? "</details>\n" : "</div>\n");

// --- workspace actions: [label](open:/path) and [label](preview:8080) become buttons -------------
md.core.ruler.push("berth_actions", (state: StateCore) => {
  for (const block of state.tokens) {
    if (block.type !== "inline" || !block.children) continue;
    let closing: Token | undefined;
    for (const t of block.children) {
      if (t.type === "link_open") {
        const href = String(t.attrGet("href") ?? "");
        const open = /^open:(\/[A-Za-z0-9._@+/-]+)$/.exec(href);
        const preview = /^preview:(\d{1,5})$/.exec(href);
        if (!open && !(preview && Number(preview[1]) >= 1 && Number(preview[1]) <= 65535)) continue;
        t.type = "html_inline";
        t.content = open
          ? `<button type="button" class="berth-action" data-action="open-file" data-path="${md.utils.escapeHtml(open[1]!)}">`
          : `<button type="button" class="berth-action" data-action="preview" data-port="${Number(preview![1])}">`;
        closing = t;
      } else if (t.type === "link_close" && closing) {
        t.type = "html_inline";
        t.content = "</button>";
        closing = undefined;
      }
    }
  }
});

// --- images from the lab's folder are served by the orchestrator -------------------------------
const defaultImage = md.renderer.rules.image!;
md.renderer.rules.image = (tokens, idx, options, env, self) => {
  const t = tokens[idx]!;
  const { labId } = env as RenderEnv;
  const src = String(t.attrGet("src") ?? "");
  if (!/^[a-z][a-z0-9+.-]*:/i.test(src) && !src.startsWith("//")) {
    let rel: string;
    try {
      rel = decodeURI(src);
    } catch {
      rel = "";
    }
    // A path that climbs out of the lab's folder, or is not a picture, shows its alt text only.
    if (!labId || src.startsWith("/") || !LAB_RELATIVE_PATH.test(rel) || !IMAGE_TYPES[imageExtension(rel)]) {
      return md.utils.escapeHtml(t.content);
    }
    t.attrSet("src", `/api/labs/${encodeURIComponent(labId)}/assets/${rel.split("/").map(encodeURIComponent).join("/")}`);
  }
  return defaultImage(tokens, idx, options, env, self);
};

const SANITIZE: sanitizeHtml.IOptions = {
  allowedTags: [
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "blockquote", "ul", "ol", "li",
    "strong", "em", "s", "del", "code", "pre", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
    "div", "details", "summary", "button",
  ],
  allowedAttributes: {
    a: ["href", "title", "rel", "target"],
    img: ["src", "alt", "title"],
    pre: ["class", "data-runnable", "data-lang", "data-term", "data-interrupt"],
    div: ["class"],
    button: ["type", "class", "data-action", "data-path", "data-port"],
    ol: ["start"],
    th: ["style"],
    td: ["style"],
  },
  allowedClasses: {
    pre: ["berth-code"],
    div: ["callout", "callout-note", "callout-tip", "callout-warning"],
    button: ["berth-action"],
  },
  allowedStyles: { "*": { "text-align": [/^(left|right|center)$/] } },
  allowedSchemes: ["http", "https", "mailto"],
  allowedSchemesByTag: { img: ["http", "https"] },
  allowProtocolRelative: false,
  disallowedTagsMode: "discard",
  transformTags: {
    a: (tagName, attribs) => ({
      tagName,
      attribs: { ...attribs, rel: "noopener noreferrer", target: "_blank" },
    }),
    // Only the two actions, with values of the right shape, survive.
    button: (tagName, attribs) => {
      const action = attribs["data-action"];
      const ok =
        attribs.class === "berth-action" &&
        ((action === "open-file" && /^\/[A-Za-z0-9._@+/-]+$/.test(attribs["data-path"] ?? "") && attribs["data-port"] === undefined) ||
          (action === "preview" && /^\d{1,5}$/.test(attribs["data-port"] ?? "") && attribs["data-path"] === undefined));
      return ok ? { tagName, attribs: { ...attribs, type: "button" } } : { tagName: "span", attribs: {} };
    },
  },
};

/**
 * Drops what does not apply to these facts: `::: if=<condition>` containers (kept without their
 * marker lines when the condition holds) and fences with if=<condition> in their info string.
 * Line-based and fence-aware, like the parser.
 */
export function resolveConditions(markdown: string, facts: SandboxFacts): string {
  const lines = markdown.split("\n");
  const out: string[] = [];
  // One entry per open ::: container: whether its content is shown, and whether it is an if.
  const stack: { show: boolean; cond: boolean }[] = [];
  const visible = () => stack.every((s) => s.show);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const fence = /^(\s*)(`{3,}|~{3,})(.*)$/.exec(line);
    if (fence && !(fence[2]![0] === "`" && fence[3]!.includes("`"))) {
      const close = new RegExp(`^\\s*${fence[2]![0] === "`" ? "`" : "~"}{${fence[2]!.length},}\\s*$`);
      let j = i + 1;
      while (j < lines.length && !close.test(lines[j]!)) j++;
      const block = lines.slice(i, Math.min(j + 1, lines.length));
      const cond = /(?:^|\s)if=(\S+)/.exec(fence[3]!);
      i = j;
      if (!visible()) continue;
      if (cond) {
        if (!CONDITION.test(cond[1]!) || !evalCondition(cond[1]!, facts)) continue;
        block[0] = line.replace(/\s+if=\S+/, "");
      }
      out.push(...block);
      continue;
    }
    const container = /^:::\s*(.*)$/.exec(line);
    if (container) {
      const rest = container[1]!.trim();
      if (rest === "") {
        const top = stack.pop();
        if (top && !top.cond && visible()) out.push(line);
        continue;
      }
      const cond = /^if=(\S+)$/.exec(rest);
      if (cond) {
        stack.push({ show: CONDITION.test(cond[1]!) && evalCondition(cond[1]!, facts), cond: true });
        continue;
      }
      if (visible()) out.push(line);
      stack.push({ show: true, cond: false });
      continue;
    }
    if (visible()) out.push(line);
  }
  return out.join("\n");
}

/** Markdown (already free of hidden blocks) → sanitized HTML, for one learner's context. */
export function renderMarkdown(markdown: string, ctx?: LabContext, labId?: string): string {
  if (markdown.trim() === "") return "";
  const text = ctx ? resolveConditions(substitute(markdown, ctx), ctx.facts) : markdown;
  if (text.trim() === "") return "";
  const env: RenderEnv = labId ? { labId } : {};
  return sanitizeHtml(md.render(text, env as Parameters<typeof md.render>[1]), SANITIZE);
}

function renderInlineMarkdown(markdown: string, ctx: LabContext): string {
  return sanitizeHtml(md.renderInline(substitute(markdown, ctx)), SANITIZE);
}

function labPoints(lab: Lab): number {
  return lab.steps.reduce((sum, s) => sum + s.checks.reduce((n, c) => n + c.points, 0) + s.quizzes.reduce((n, q) => n + q.points, 0), 0);
}

export function summarizeLab(lab: Lab): LabSummary {
  return {
    id: lab.id,
    title: lab.title,
    summary: lab.summary,
    duration: lab.duration,
    chapter: lab.chapter,
    stepCount: lab.steps.length,
    points: labPoints(lab),
    difficulty: lab.difficulty,
    tags: lab.tags,
    next: lab.next,
  };
}

function checkView(c: LabCheck, stepSolution: LabScript | undefined, ctx: LabContext): CheckView {
  return {
    id: c.id,
    title: substitute(c.title, ctx),
    points: c.points,
    hasHint: c.hints.length > 0,
    hintCount: c.hints.length,
    hintCost: c.hintCost,
    auto: c.pollMs !== null,
    pollMs: c.pollMs,
    needs: c.needs,
    hasSolution: (() => {
      const sol = c.solution ?? stepSolution;
      return sol !== undefined && solutionApplies(sol, ctx);
    })(),
  };
}

export interface RenderOptions {
  /** The title of another lab (for `next`); without it, the next lab's id stands in. */
  titleOf?: (labId: string) => string | undefined;
}

/**
 * One learner's view of a lab. Without a context, the preview context (the test learner, cgroup v2,
 * x86_64) is used: fine for `labkit render`, not for a learner.
 */
export function renderLab(lab: Lab, ctx: LabContext = previewContext(lab), options: RenderOptions = {}): LabView {
  const { next: _next, ...summary } = summarizeLab(lab);
  const steps: StepView[] = lab.steps.map((s) => ({
    id: s.id,
    title: s.title,
    html: renderMarkdown(s.markdown, ctx, lab.id),
    checks: s.checks.map((c) => checkView(c, s.solution, ctx)),
    quizzes: s.quizzes.map<QuizView>((q) => ({
      id: q.id,
      title: substitute(q.title, ctx),
      points: q.points,
      questions: q.questions.map((qq) => ({
        id: qq.id,
        kind: qq.kind,
        promptHtml: renderMarkdown(qq.prompt, ctx, lab.id),
        ...(qq.kind === "text" ? {} : { options: qq.options.map((o) => ({ id: o.id, html: renderInlineMarkdown(o.markdown, ctx) })) }),
      })),
    })),
    gated: s.gated,
    hasSolution: [s.solution, ...s.checks.map((c) => c.solution)].some((sol) => sol !== undefined && solutionApplies(sol, ctx)),
    hasSetup: s.setup !== undefined,
  }));
  return {
    ...summary,
    introHtml: renderMarkdown(lab.intro, ctx, lab.id),
    steps,
    recapHtml: lab.recap === null ? null : renderMarkdown(lab.recap, ctx, lab.id),
    next: lab.next ? { id: lab.next, title: options.titleOf?.(lab.next) ?? lab.next } : null,
  };
}

function findCheck(lab: Lab, checkId: string): { check: LabCheck; stepSolution?: LabScript } | undefined {
  for (const s of lab.steps) {
    const c = s.checks.find((c) => c.id === checkId);
    if (c) return { check: c, ...(s.solution ? { stepSolution: s.solution } : {}) };
  }
  return undefined;
}

/**
 * Hint number `index` (0-based, in the order written) of a check as sanitized HTML; undefined when
 * the check does not exist or has no such hint.
 */
export function renderHint(lab: Lab, checkId: string, index = 0, ctx: LabContext = previewContext(lab)): string | undefined {
  const hint = findCheck(lab, checkId)?.check.hints[index];
  return hint === undefined ? undefined : renderMarkdown(hint.markdown, ctx, lab.id);
}

/**
 * A check's solution (its own, else its step's) as sanitized HTML: a shell code block with the
 * learner's values in it. Only for the server to send after the learner asked to see it.
 */
export function renderSolution(lab: Lab, checkId: string, ctx: LabContext = previewContext(lab)): string | undefined {
  const found = findCheck(lab, checkId);
  const script = found && (found.check.solution ?? found.stepSolution);
  if (!script || !solutionApplies(script, ctx)) return undefined;
  const lang = script.shell === "sh" ? "sh" : "bash";
  return sanitizeHtml(codeBlock(substitute(script.source, ctx).replace(/\n?$/, "\n"), lang, false), SANITIZE);
}
