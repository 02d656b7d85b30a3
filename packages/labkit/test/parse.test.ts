import { describe, expect, it } from "vitest";
import { parseLab, type LabError } from "../src/index.js";
import { FILE, GOOD, lineOf } from "./fixtures.js";

/** Parses a variant of the good lab and expects exactly one error, at `line`, matching `message`. */
function expectOneError(source: string, line: number, message: RegExp, file = FILE): LabError {
  const { lab, errors } = parseLab(source, file);
  expect(errors.map((e) => `${e.line}: ${e.message}`)).toHaveLength(1);
  const e = errors[0]!;
  expect(e.line).toBe(line);
  expect(e.message).toMatch(message);
  expect(e.fix.length).toBeGreaterThan(10);
  expect(e.file).toBe(file);
  expect(lab).toBeUndefined();
  return e;
}

const swap = (from: string, to: string) => {
  if (!GOOD.includes(from)) throw new Error(`fixture has no ${from}`);
  return GOOD.replace(from, to);
};

describe("parseLab on a good lab", () => {
  const { lab, errors } = parseLab(GOOD, FILE);

  it("has no errors and reads the front matter", () => {
    expect(errors).toEqual([]);
    expect(lab).toMatchObject({
      id: "demo-lab",
      title: "Demo lab",
      duration: "10m",
      chapter: 3,
      difficulty: "beginner",
      tags: ["demo", "test"],
    });
  });

  it("splits steps, with explicit and slugified ids", () => {
    expect(lab!.steps.map((s) => [s.id, s.title, s.line])).toEqual([
      ["make-file", "Make a file", lineOf(GOOD, "## Make a file")],
      ["second-step", "Second step", lineOf(GOOD, "## Second step")],
      ["reading-only", "Reading only", lineOf(GOOD, "## Reading only")],
    ]);
    expect(lab!.intro).toBe("The intro, with **bold** text.");
  });

  it("reads checks with their attributes, hints and solutions", () => {
    const [first, second] = lab!.steps;
    expect(first!.checks).toHaveLength(1);
    expect(first!.checks[0]).toMatchObject({
      id: "file-made",
      stepId: "make-file",
      title: "The file exists",
      points: 2,
      message: "No /root/made yet.",
      hints: [{ markdown: "Use `touch`.", line: lineOf(GOOD, "```hint") }],
      hintCost: 0,
      pollMs: null,
      needs: [],
    });
    expect(first!.checks[0]!.script.timeoutMs).toBe(5000);
    expect(first!.checks[0]!.script.line).toBe(lineOf(GOOD, "CHECK-SECRET-1"));
    expect(first!.solution!.source).toContain("SOLUTION-SECRET-1");
    expect(second!.checks[0]).toMatchObject({ id: "second-check", points: 1, hints: [{ markdown: "Write *yes*." }] });
    expect(second!.checks[0]!.script.timeoutMs).toBe(30_000);
    expect(second!.checks[0]!.solution!.timeoutMs).toBe(20_000);
    expect(second!.solution).toBeUndefined();
    expect(lab!.setup!.source).toContain("SETUP-SECRET");
  });

  it("keeps hidden blocks out of the markdown and visible code blocks in", () => {
    const all = [lab!.intro, ...lab!.steps.map((s) => s.markdown)].join("\n");
    expect(all).not.toMatch(/SECRET|```check|```hint|```solution|```setup/);
    expect(lab!.steps[0]!.markdown).toContain("```bash run\ntouch /root/made\n```");
  });

  it("does not take a ## inside a code block for a step", () => {
    const src = swap("touch /root/made\n```", "touch /root/made\n## not a step\n```");
    const res = parseLab(src, FILE);
    expect(res.errors).toEqual([]);
    expect(res.lab!.steps).toHaveLength(3);
    expect(res.lab!.steps[0]!.markdown).toContain("## not a step");
  });

  it("accepts a file path without a folder, and CRLF line ends", () => {
    const res = parseLab(GOOD.replace(/\n/g, "\r\n"), "lab.md");
    expect(res.errors).toEqual([]);
    expect(res.lab!.steps).toHaveLength(3);
  });
});

describe("parseLab on malformed labs (one error each, at the right line)", () => {
  it("no front matter", () => {
    expectOneError(GOOD.replace(/^---\n[\s\S]*?\n---\n/, ""), 1, /must start with YAML front matter/);
  });

  it("front matter never closed", () => {
    expectOneError(GOOD.replace("tags: [demo, test]\n---", "tags: [demo, test]\n"), 1, /never closed/);
  });

  it("malformed YAML reports the YAML parser's line, mapped into the file", () => {
    const src = swap("summary: A lab that exists for labkit's tests.", "summary: [unclosed, list");
    const { errors } = parseLab(src, FILE);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]!.message).toMatch(/not valid YAML/);
    // the YAML parser notices the unclosed list on the line itself or the next one
    expect([lineOf(src, "summary:"), lineOf(src, "summary:") + 1]).toContain(errors[0]!.line);
    expect(errors[0]!.message).not.toMatch(/at line/);

    const nested = swap("title: Demo lab", "title: Demo: lab");
    const e = parseLab(nested, FILE).errors[0]!;
    expect([e.line, e.column]).toEqual([lineOf(nested, "title:"), "title: ".length + 1]); // where the nested mapping starts
    expect(e.message).toMatch(/Nested mappings are not allowed/);

    const twice = swap("tags: [demo, test]", "tags: [demo, test]\ntags: [again]");
    expect(parseLab(twice, FILE).errors.map((x) => [x.line, x.message])).toEqual([
      [lineOf(twice, "tags: [again]"), "front matter is not valid YAML: Map keys must be unique"],
    ]);
  });

  it("a missing field", () => {
    const src = swap("duration: 10m\n", "");
    expectOneError(src, lineOf(src, "tags:"), /no "duration"/);
  });

  it("an unknown field", () => {
    const src = swap("chapter: 3\n", "chapter: 3\nauthor: me\n");
    expectOneError(src, lineOf(src, "author:"), /unknown front matter field "author"/);
  });

  it("invalid field values", () => {
    let src = swap("duration: 10m", "duration: ten minutes");
    expectOneError(src, lineOf(src, "duration:"), /duration "ten minutes"/);
    src = swap("difficulty: beginner", "difficulty: easy");
    expectOneError(src, lineOf(src, "difficulty:"), /difficulty "easy"/);
    src = swap("chapter: 3", "chapter: three");
    expectOneError(src, lineOf(src, "chapter:"), /chapter must be a positive whole number/);
    src = swap("tags: [demo, test]", "tags: demo");
    expectOneError(src, lineOf(src, "tags:"), /tags must be a list/);
    src = swap("title: Demo lab", "title:");
    expectOneError(src, lineOf(src, "title:"), /"title" must be a non-empty text/);
  });

  it("id that does not match the folder", () => {
    const e = expectOneError(GOOD, lineOf(GOOD, "id: demo-lab"), /does not match the lab's folder "other"/, "labs/other/lab.md");
    expect(e.fix).toMatch(/rename the folder/);
  });

  it("duplicate step ids", () => {
    const src = swap("## Reading only", "## Second step");
    expectOneError(src, lineOf(src, "Nothing to check") - 2, /step id "second-step" is already used by the step on line \d+/);
  });

  it("an invalid explicit step id", () => {
    const src = swap("{#make-file}", "{#Make File}");
    expectOneError(src, lineOf(src, "## Make a file"), /step id "Make File" is not valid/);
  });

  it("duplicate check ids", () => {
    const src = swap("id=second-check title", "id=file-made title").replace("check=second-check", "check=file-made").replace("check=second-check", "check=file-made");
    expectOneError(src, lineOf(src, 'title="Second"'), /check id "file-made" is already used on line \d+/);
  });

  it("unknown attributes, with their column", () => {
    const src = swap('points=2 timeout=5s', 'points=2 tiemout=5s');
    const line = lineOf(src, "tiemout");
    const e = expectOneError(src, line, /unknown attribute "tiemout" on a check block/);
    expect(e.column).toBe(src.split("\n")[line - 1]!.indexOf("tiemout") + 1);
  });

  it("bad points and timeout values", () => {
    let src = swap("points=2", "points=two");
    expectOneError(src, lineOf(src, "points=two"), /points="two" is not a whole number/);
    src = swap("timeout=5s", "timeout=5");
    expectOneError(src, lineOf(src, "timeout=5 "), /timeout="5" is not a duration/);
    src = swap("timeout=5s", "timeout=2h");
    expectOneError(src, lineOf(src, "timeout=2h"), /not a duration|outside/);
    src = swap("timeout=5s", "timeout=11m");
    expectOneError(src, lineOf(src, "timeout=11m"), /outside 1s\.\.10m/);
  });

  it("an unclosed quote in the info string", () => {
    const src = swap('message="No /root/made yet."', 'message="No /root/made yet.');
    expectOneError(src, lineOf(src, "message="), /opens a " quote that is never closed/);
  });

  it("a check without a script", () => {
    const src = swap("test -f /root/made # CHECK-SECRET-1\n", "\n");
    expectOneError(src, lineOf(src, "id=file-made"), /the check block has no script/);
  });

  it("a check without id or title", () => {
    let src = swap("id=file-made ", "");
    expectOneError(src, lineOf(src, 'title="The file exists"'), /a check has no id/);
    src = swap('title="The file exists" ', "");
    expectOneError(src, lineOf(src, "id=file-made"), /check "file-made" has no title/);
  });

  it("a hint or solution pointing at an unknown check", () => {
    let src = swap("```hint check=second-check", "```hint check=nope");
    expectOneError(src, lineOf(src, "check=nope"), /hint points at check "nope", which this step does not have/);
    src = swap("```solution check=second-check", "```solution check=file-made");
    const { errors } = parseLab(src, FILE);
    // pointing at a check of another step is named as such; the step is then also unsolved
    expect(errors.map((e) => e.line)).toEqual([lineOf(src, "## Second step"), lineOf(src, "check=file-made timeout")]);
    expect(errors[0]!.message).toMatch(/checks without a solution: second-check/);
    expect(errors[1]!.message).toMatch(/belongs to another step/);
  });

  it("a hint before any check", () => {
    const src = swap("Some text.\n", "Some text.\n\n```hint\nToo early.\n```\n");
    expectOneError(src, lineOf(src, "Too early.") - 1, /hint comes before any check/);
  });

  it("an unclosed fence", () => {
    const src = GOOD + "\n```bash run\necho never closed\n";
    expectOneError(src, lineOf(src, "echo never closed") - 1, /opened here with ``` is never closed/);
    const hidden = swap("echo yes > /root/second # SOLUTION-SECRET-2\n```", "echo yes > /root/second # SOLUTION-SECRET-2\n");
    const { errors } = parseLab(hidden, FILE);
    expect(errors[0]!.line).toBe(lineOf(hidden, "```solution check=second-check"));
    expect(errors[0]!.message).toMatch(/never closed/);
  });

  it("a step with checks but no solution", () => {
    const src = swap("```solution\ntouch /root/made # SOLUTION-SECRET-1\n```\n", "");
    const e = expectOneError(src, lineOf(src, "## Make a file"), /step "make-file" has checks without a solution: file-made/);
    expect(e.fix).toMatch(/```solution/);
  });

  it("an empty step", () => {
    const src = swap("## Reading only\n\nNothing to check here.\n", "## Reading only\n\n");
    expectOneError(src, lineOf(src, "## Reading only"), /step "reading-only" is empty/);
  });

  it("a shebang other than bash or sh, and flags on it", () => {
    let src = swap("test -f /root/made # CHECK-SECRET-1", "#!/usr/bin/python3\nimport os");
    expectOneError(src, lineOf(src, "#!/usr/bin/python3"), /asks for "\/usr\/bin\/python3", but lab scripts run with bash or sh/);
    src = swap("test -f /root/made # CHECK-SECRET-1", "#!/bin/bash -e\ntest -f /root/made");
    expectOneError(src, lineOf(src, "#!/bin/bash -e"), /passes flags/);
    src = swap("test -f /root/made # CHECK-SECRET-1", "#!/usr/bin/zsh\ntest -f /root/made");
    expectOneError(src, lineOf(src, "#!/usr/bin/zsh"), /but lab scripts run with bash or sh/);
    for (const [line, shell] of [["#!/usr/bin/env bash", "bash"], ["#!/bin/bash", "bash"], ["#!/bin/sh", "sh"], ["#!/usr/bin/env sh", "sh"]]) {
      src = swap("test -f /root/made # CHECK-SECRET-1", `${line}\ntest -f /root/made`);
      const res = parseLab(src, FILE);
      expect(res.errors).toEqual([]);
      expect(res.lab!.steps[0]!.checks[0]!.script.shell).toBe(shell);
    }
    expect(parseLab(GOOD, FILE).lab!.steps[0]!.checks[0]!.script.shell).toBe("bash");
  });

  it("hidden blocks in the wrong place", () => {
    let src = swap("The intro, with **bold** text.", "The intro.\n\n```check id=early title=Early\ntrue\n```");
    let { errors } = parseLab(src, FILE);
    expect(errors[0]).toMatchObject({ line: lineOf(src, "id=early"), message: expect.stringMatching(/comes before the first step/) });
    src = swap("Some text.", "Some text.\n\n```setup\ntrue\n```\n\n```setup\nfalse\n```");
    expectOneError(src, lineOf(src, "Some text.") + 6, /step "second-step" already has a setup block \(line \d+\)/);
    src = swap("Create the file:", "Create the file:\n\n> ```check id=quoted title=Quoted\n> true\n> ```");
    expectOneError(src, lineOf(src, "id=quoted"), /check block must start at the beginning of a line/);
    src = swap("Create the file:", "Create the file:\n\n- ```solution\n  true\n  ```");
    expectOneError(src, lineOf(src, "- ```solution"), /solution block must start at the beginning of a line/);
    src = swap("Create the file:", "Create the file:\n\n- item\n\n  ```check id=indented title=Indented\n  true\n  ```");
    ({ errors } = parseLab(src, FILE));
    expect(errors[0]).toMatchObject({ line: lineOf(src, "id=indented"), message: expect.stringMatching(/must start at the beginning of a line/) });
  });

  it("code block info strings: unknown words and runnable non-shell code", () => {
    let src = swap("```bash run", "```bash runn");
    expectOneError(src, lineOf(src, "```bash runn"), /"runn" is not understood on a code block/);
    src = swap("```text", "```python run");
    expectOneError(src, lineOf(src, "```python run"), /runnable block must be shell code/);
  });

  it("a lab with no steps", () => {
    const src = GOOD.slice(0, GOOD.indexOf("## Make a file"));
    const { errors } = parseLab(src, FILE);
    expect(errors.map((e) => e.message)).toEqual(["the lab has no steps"]);
  });

  it("reports several mistakes at once, each on its own line", () => {
    const src = swap("difficulty: beginner", "difficulty: easy").replace("points=2", "points=-1").replace("## Reading only\n\nNothing to check here.\n", "## Reading only\n");
    const { errors } = parseLab(src, FILE);
    expect(errors.map((e) => e.line)).toEqual([lineOf(src, "difficulty:"), lineOf(src, "points=-1"), lineOf(src, "## Reading only")]);
  });
});

describe("parseLab never throws", () => {
  it("on every truncation of a lab, and every error points into the file", () => {
    const lines = GOOD.split("\n");
    for (let n = 0; n <= lines.length; n++) {
      const src = lines.slice(0, n).join("\n");
      const { lab, errors } = parseLab(src, FILE);
      expect(lab !== undefined || errors.length > 0).toBe(true);
      for (const e of errors) {
        expect(e.line).toBeGreaterThanOrEqual(1);
        expect(e.line).toBeLessThanOrEqual(Math.max(1, n));
      }
    }
  });

  it("on odd input: empty, binary-ish, only fences, deep nesting", () => {
    for (const src of ["", "\u0000\u0001", "```", "---\n---", "---\nid: [\n---\n## x", "````\n```check\n````\n", "## {#}\n", "---\n- a\n- b\n---\n## S\ntext"]) {
      const { errors } = parseLab(src, FILE);
      expect(errors.length).toBeGreaterThan(0);
      for (const e of errors) expect(e.line).toBeGreaterThanOrEqual(1);
    }
  });
});
