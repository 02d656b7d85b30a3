import { describe, expect, it } from "vitest";
import { loadLabs, parseLab, renderHint, renderLab, summarizeLab, type Lab } from "../src/index.js";
import { FILE, GOOD } from "./fixtures.js";
import path from "node:path";

function lab(source: string): Lab {
  const res = parseLab(source, FILE);
  expect(res.errors).toEqual([]);
  return res.lab!;
}

/** Every hidden script of a lab, line by line, for searching the browser's view. */
function hiddenScriptLines(l: Lab): string[] {
  const scripts = [l.setup?.source, ...l.steps.flatMap((s) => [s.solution?.source, ...s.checks.flatMap((c) => [c.script.source, c.solution?.source])])];
  return scripts
    .filter((s): s is string => !!s)
    .flatMap((s) => s.split("\n"))
    .map((line) => line.trim())
    // lines such as "fi", "done" or "exit 1" are too common to be telling
    .filter((line) => line.length >= 12);
}

describe("renderLab", () => {
  it("renders steps, checks and code blocks with their data attributes", () => {
    const view = renderLab(lab(GOOD));
    expect(view).toMatchObject({ id: "demo-lab", stepCount: 3, points: 3, chapter: 3, duration: "10m" });
    expect(view.introHtml).toBe("<p>The intro, with <strong>bold</strong> text.</p>\n");
    expect(view.steps[0]!.checks).toEqual([
      { id: "file-made", title: "The file exists", points: 2, hasHint: true, hintCount: 1, hintCost: 0, auto: false, pollMs: null, needs: [], hasSolution: true },
    ]);
    expect(view.steps[0]).toMatchObject({ quizzes: [], gated: false, hasSolution: true, hasSetup: false });
    expect(view.steps[2]).toMatchObject({ hasSolution: false });
    expect(view).toMatchObject({ recapHtml: null, next: null, difficulty: "beginner", tags: ["demo", "test"] });
    const html = view.steps[0]!.html;
    expect(html).toContain('<pre class="berth-code" data-runnable="true" data-lang="bash"><code>touch /root/made\n</code></pre>');
    expect(html).toContain('<pre class="berth-code" data-runnable="false" data-lang="text"><code>plain output, not runnable\n</code></pre>');
    expect(view.steps[2]!.checks).toEqual([]);
  });

  it("summarizeLab is the view without content", () => {
    expect(summarizeLab(lab(GOOD))).toEqual({
      id: "demo-lab",
      title: "Demo lab",
      summary: "A lab that exists for labkit's tests.",
      duration: "10m",
      chapter: 3,
      stepCount: 3,
      points: 3,
      difficulty: "beginner",
      tags: ["demo", "test"],
      next: null,
    });
  });

  it("never contains a check, solution or setup script (fixture and real labs)", async () => {
    const { labs, errors } = await loadLabs(path.resolve(import.meta.dirname, "../../../labs"));
    expect(errors).toEqual([]);
    expect(labs.length).toBeGreaterThanOrEqual(2);
    for (const l of [lab(GOOD), ...labs]) {
      const json = JSON.stringify(renderLab(l));
      const lines = hiddenScriptLines(l);
      expect(lines.length).toBeGreaterThan(3);
      for (const line of lines) {
        // a line may legitimately also be shown as a command to type (e.g. "ip netns add berth-net")
        if (l.intro.includes(line) || l.steps.some((s) => s.markdown.includes(line))) continue;
        expect(json, `${l.id}: view leaks "${line}"`).not.toContain(JSON.stringify(line).slice(1, -1));
      }
      expect(json).not.toMatch(/SECRET|```(check|solution|setup|hint)/);
    }
  });

  it("makes raw HTML, event handlers and javascript: links inert", () => {
    const evil = GOOD.replace(
      "Some text.",
      [
        "Some text. <script>alert('x')</script>",
        "",
        '<img src="x" onerror="alert(1)">',
        "",
        "[click](javascript:alert(1)) and [site](https://example.com) and [data](data:text/html;base64,PHNjcmlwdD4=)",
        "",
        "![pic](javascript:alert(2))",
        "",
        "<a href=\"javascript:alert(3)\" onclick=\"alert(4)\">raw link</a>",
        "",
        "```bash\" onmouseover=\"alert(5) run",
        "echo hi",
        "```",
      ].join("\n"),
    );
    const html = renderLab(lab(evil.replace('```bash" onmouseover="alert(5) run', "```bash run"))).steps[1]!.html;
    // markdown-it shows raw HTML as text: no live tag survives
    expect(html).not.toMatch(/<script|<img\b|<a\b[^>]*(onclick|href="(javascript|data):)/i);
    expect(html).toContain("&lt;script&gt;");
    expect(html).toContain('<a href="https://example.com" rel="noopener noreferrer" target="_blank">site</a>');

    // a hostile info string cannot break out of the data attribute
    const res = parseLab(evil, FILE);
    expect(res.errors.length).toBeGreaterThan(0); // the linter refuses it...
    const forced = { ...lab(GOOD) };
    forced.steps = [{ ...forced.steps[0]!, markdown: '```bash" onmouseover="alert(5) run\necho hi\n```' }];
    const out = renderLab(forced).steps[0]!.html; // ...and the renderer defuses it anyway
    expect(out).not.toContain("onmouseover");
    expect(out).toContain('data-runnable="false" data-lang="text"');
  });

  it("renders a leftover hidden fence as nothing (defence in depth)", () => {
    const forced = { ...lab(GOOD) };
    forced.steps = [{ ...forced.steps[0]!, markdown: "Text\n\n- item\n\n    ```check id=x title=y\n    echo LEAKED\n    ```\n" }];
    const html = renderLab(forced).steps[0]!.html;
    expect(html).not.toContain("LEAKED");
  });
});

describe("renderHint", () => {
  it("renders the hint as sanitized HTML, undefined when there is none", () => {
    const l = lab(GOOD);
    expect(renderHint(l, "file-made")).toBe("<p>Use <code>touch</code>.</p>\n");
    expect(renderHint(l, "second-check")).toBe("<p>Write <em>yes</em>.</p>\n");
    expect(renderHint(l, "nope")).toBeUndefined();
    const noHint = lab(GOOD.replace("```hint\nUse `touch`.\n```\n", ""));
    expect(renderHint(noHint, "file-made")).toBeUndefined();
    expect(renderLab(noHint).steps[0]!.checks[0]!.hasHint).toBe(false);
  });

  it("sanitizes hints too", () => {
    const l = lab(GOOD.replace("Use `touch`.", "[x](javascript:alert(1)) <b onclick=x>y</b>"));
    const html = renderHint(l, "file-made")!;
    expect(html).not.toMatch(/<a\b[^>]*javascript:|<b\b/);
    expect(html).toContain("&lt;b onclick=x&gt;");
  });
});
