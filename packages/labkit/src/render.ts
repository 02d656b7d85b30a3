// The browser's view of a lab: markdown → HTML with markdown-it (raw HTML off), then sanitize-html
// with a short allow-list as a second wall. Only the visible markdown the parser kept is rendered;
// check, solution and setup scripts are not in the Lab's markdown at all, and a fence that still
// says check/solution/setup/hint (say, an author's mistake the linter reported) renders as nothing.
import MarkdownIt from "markdown-it";
import sanitizeHtml from "sanitize-html";
import type { LabSummary, LabView, StepView } from "@berth/protocol";
import type { Lab } from "./lab.js";
import { HIDDEN_KINDS } from "./parse.js";

const RUNNABLE_LANGS = new Set(["bash", "sh", "shell", "console"]);

const md = new MarkdownIt({ html: false, linkify: true, typographer: false });

md.renderer.rules.fence = (tokens, idx) => {
  const token = tokens[idx]!;
  const words = token.info.trim().split(/\s+/).filter(Boolean);
  const lang = words[0] ?? "";
  if ((HIDDEN_KINDS as readonly string[]).includes(lang)) return "";
  const runnable = RUNNABLE_LANGS.has(lang) && words.slice(1).includes("run");
  return codeBlock(token.content, lang, runnable);
};
md.renderer.rules.code_block = (tokens, idx) => codeBlock(tokens[idx]!.content, "", false);

function codeBlock(content: string, lang: string, runnable: boolean): string {
  const safeLang = /^[A-Za-z0-9_+-]+$/.test(lang) ? lang : "text";
  return `<pre class="berth-code" data-runnable="${runnable}" data-lang="${safeLang}"><code>${md.utils.escapeHtml(content)}</code></pre>\n`;
}

const SANITIZE: sanitizeHtml.IOptions = {
  allowedTags: [
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "blockquote", "ul", "ol", "li",
    "strong", "em", "s", "del", "code", "pre", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
  ],
  allowedAttributes: {
    a: ["href", "title", "rel", "target"],
    img: ["src", "alt", "title"],
    pre: ["class", "data-runnable", "data-lang"],
    ol: ["start"],
    th: ["style"],
    td: ["style"],
  },
  allowedClasses: { pre: ["berth-code"] },
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
  },
};

/** Markdown (already free of hidden blocks) → sanitized HTML. */
export function renderMarkdown(markdown: string): string {
  if (markdown.trim() === "") return "";
  return sanitizeHtml(md.render(markdown), SANITIZE);
}

export function summarizeLab(lab: Lab): LabSummary {
  return {
    id: lab.id,
    title: lab.title,
    summary: lab.summary,
    duration: lab.duration,
    chapter: lab.chapter,
    stepCount: lab.steps.length,
    points: lab.steps.reduce((sum, s) => sum + s.checks.reduce((n, c) => n + c.points, 0), 0),
  };
}

export function renderLab(lab: Lab): LabView {
  const steps: StepView[] = lab.steps.map((s) => ({
    id: s.id,
    title: s.title,
    html: renderMarkdown(s.markdown),
    checks: s.checks.map((c) => ({ id: c.id, title: c.title, points: c.points, hasHint: c.hint !== undefined })),
  }));
  return { ...summarizeLab(lab), introHtml: renderMarkdown(lab.intro), steps };
}

/** The hint of a check as sanitized HTML; undefined when the check does not exist or has no hint. */
export function renderHint(lab: Lab, checkId: string): string | undefined {
  for (const s of lab.steps) {
    const c = s.checks.find((c) => c.id === checkId);
    if (c) return c.hint === undefined ? undefined : renderMarkdown(c.hint);
  }
  return undefined;
}
