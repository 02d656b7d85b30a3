// Format v2: every new construct parsed, each mistake linted at its line, and rendered per learner.
import sanitizeHtml from "sanitize-html";
import { describe, expect, it } from "vitest";
import {
  learnerContext, parseLab, previewContext, renderHint, renderLab, renderSolution, summarizeLab, getCheck, getStepSetup,
  solutionsFor, checkScore, type Lab, type LabError,
} from "../src/index.js";
import { V2, V2_FILES, lineOf } from "./fixtures.js";

const FILE = "labs/v2-lab/lab.md";
const exists = (rel: string) => rel in V2_FILES;

function v2(source = V2): Lab {
  const res = parseLab(source, FILE, { fileExists: exists });
  expect(res.errors).toEqual([]);
  expect(res.warnings).toEqual([]);
  return res.lab!;
}

const swap = (from: string, to: string, source = V2) => {
  if (!source.includes(from)) throw new Error(`fixture has no ${from}`);
  return source.replace(from, to);
};

/** Exactly one error, at `line`, matching `message`, with a fix. */
function oneError(source: string, line: number, message: RegExp): LabError {
  const { errors } = parseLab(source, FILE, { fileExists: exists });
  expect(errors.map((e) => `${e.line}: ${e.message}`)).toHaveLength(1);
  expect(errors[0]!.message).toMatch(message);
  expect(errors[0]!.line).toBe(line);
  expect(errors[0]!.fix.length).toBeGreaterThan(10);
  return errors[0]!;
}

describe("v2 constructs are parsed", () => {
  const lab = v2();

  it("front matter: next, hint-cost, gate, variables, assets", () => {
    expect(lab).toMatchObject({ next: "demo-lab", hintCost: 1 });
    expect(lab.variables.map((v) => [v.name, v.kind, v.prefix, v.min, v.max, v.length])).toEqual([
      ["netns", "word", "ns-", 0, 0, 0],
      ["port", "port", "", 8000, 8099, 0],
      ["token", "hex", "", 0, 0, 6],
    ]);
    expect(lab.assets).toEqual([
      { from: "files/hello.txt", to: "/root/app/hello.txt", mode: 0o644, line: lineOf(V2, "files/hello.txt") },
      { from: "files/run.sh", to: "/root/app/run.sh", mode: 0o755, line: lineOf(V2, "files/run.sh") },
    ]);
  });

  it("steps: gates (front matter default, no-gate, never the first), step setup, recap out of the steps", () => {
    expect(lab.steps.map((s) => [s.id, s.gated, s.setup !== undefined])).toEqual([
      ["make", false, false],
      ["asset", true, true],
      ["read", false, false],
    ]);
    expect(lab.steps[1]!.setup!.source).toContain("STEP-SETUP-SECRET");
    expect(lab.recap).toBe("You named **{{var.netns}}**.");
    expect(lab.steps.map((s) => s.markdown).join("\n")).not.toMatch(/SECRET|```(setup|check|hint|solution|quiz)/);
  });

  it("checks: several hints in order, hint cost, auto, poll, needs", () => {
    const [named, copied] = lab.steps[0]!.checks;
    expect(named!.hints.map((h) => [h.markdown.slice(-8), h.line])).toEqual([
      ["HINT-ONE", lineOf(V2, "HINT-ONE") - 1],
      ["HINT-TWO", lineOf(V2, "HINT-TWO") - 1],
    ]);
    expect(named).toMatchObject({ hintCost: 2, pollMs: null, needs: [], points: 3 });
    expect(copied).toMatchObject({ hintCost: 1, pollMs: 5000, needs: ["ns-named"], hints: [] });
    expect(lab.steps[1]!.checks[0]).toMatchObject({ pollMs: 3000 });
  });

  it("quizzes: single, multiple and text questions with their answers", () => {
    const q = lab.steps[1]!.quizzes[0]!;
    expect(q).toMatchObject({ id: "v2-quiz", title: "Check yourself", points: 2, caseSensitive: false, stepId: "asset" });
    expect(q.questions.map((x) => [x.id, x.kind, x.prompt])).toEqual([
      ["q1", "single", "Which file holds **your** name?"],
      ["q2", "multiple", "Which of these are namespaces?"],
      ["q3", "text", "Which command copies a file?"],
    ]);
    expect(q.questions[0]!.options.map((o) => [o.id, o.correct])).toEqual([["a", false], ["b", true]]);
    expect(q.questions[1]!.options.map((o) => o.correct)).toEqual([true, true, false]);
    expect(q.questions[2]!.accept.map((a) => [a.kind, a.text])).toEqual([["literal", "cp"], ["pattern", "cp( -[a-z]+)?"]]);
  });

  it("server accessors: step setup, check spec, solutions with the learner's values", () => {
    const ctx = learnerContext(lab, { secret: "s", userId: "u1" });
    expect(getStepSetup(lab, "asset", ctx)!.script).toContain("STEP-SETUP-SECRET");
    expect(getStepSetup(lab, "make", ctx)).toBeUndefined();
    const spec = getCheck(lab, "ns-named", ctx)!;
    expect(spec).toMatchObject({ hintCount: 2, hintCost: 2, pollMs: null, needs: [], title: `/root/ns-name holds ${ctx.vars.netns}` });
    expect(spec.script).toContain(`= "${ctx.vars.netns}" ]`);
    expect(spec.script).toContain(`export BERTH_VAR_NETNS='${ctx.vars.netns}'`);
    expect(spec.script).toContain("export BERTH_SANDBOX_CGROUP='v2'");
    expect(spec.script).not.toContain("{{var.");
    expect(solutionsFor(lab, "asset", ctx)[0]!.script).toContain("/root/app/run.sh");
  });

  it("checkScore: hints cost points, a revealed solution earns nothing", () => {
    expect(checkScore({ points: 3, hintCost: 2 }, { passed: true, hintsTaken: 0, solutionRevealed: false })).toBe(3);
    expect(checkScore({ points: 3, hintCost: 2 }, { passed: true, hintsTaken: 1, solutionRevealed: false })).toBe(1);
    expect(checkScore({ points: 3, hintCost: 2 }, { passed: true, hintsTaken: 2, solutionRevealed: false })).toBe(0);
    expect(checkScore({ points: 3, hintCost: 0 }, { passed: true, hintsTaken: 5, solutionRevealed: true })).toBe(0);
    expect(checkScore({ points: 3, hintCost: 0 }, { passed: false, hintsTaken: 0, solutionRevealed: false })).toBe(0);
  });
});

describe("v2 mistakes: one error each, at its line, with a fix", () => {
  it("variables", () => {
    let src = swap("token: { kind: hex, length: 6 }", "token: { kind: uuid }");
    oneError(src, lineOf(src, "token:"), /needs a kind: word, port, hex, number/);
    src = swap("token: { kind: hex, length: 6 }", "token: { kind: hex, length: 99 }");
    oneError(src, lineOf(src, "token:"), /length of variable "token" must be a whole number from 1 to 32/);
    src = swap("port: { kind: port, min: 8000, max: 8099 }", "port: { kind: port, min: 9000, max: 8099 }");
    oneError(src, lineOf(src, "port:"), /whole-number bounds/);
    src = swap("port: { kind: port, min: 8000, max: 8099 }", "port: { kind: port, min: 8000, max: 8099 }\n  Bad-Name: word");
    oneError(src, lineOf(src, "Bad-Name:"), /variable name "Bad-Name" is not valid/);
    src = swap("Facts: {{sandbox.cgroup}}", "Facts: {{var.nope}} {{sandbox.cgroup}}");
    const e = oneError(src, lineOf(src, "{{var.nope}}"), /\{\{var\.nope\}\} is not declared/);
    expect(e.column).toBe("Facts: ".length + 1);
    src = swap("on {{sandbox.arch}}", "on {{sandbox.kernel}}");
    oneError(src, lineOf(src, "{{sandbox.kernel}}"), /\{\{sandbox\.kernel\}\} is not a sandbox fact/);
  });

  it("assets", () => {
    let src = swap("from: files/hello.txt", "from: ../secrets.txt");
    oneError(src, lineOf(src, "../secrets.txt"), /is not a path inside the lab's folder/);
    src = swap("to: /root/app/hello.txt", "to: root/app/hello.txt");
    oneError(src, lineOf(src, "root/app/hello.txt"), /is not an absolute path in the sandbox/);
    src = swap('mode: "0755"', "mode: 0755");
    oneError(src, lineOf(src, "mode: 0755"), /is not an octal file mode/);
    src = swap("from: files/hello.txt", "from: files/missing.txt");
    oneError(src, lineOf(src, "files/missing.txt"), /asset files\/missing\.txt is not in the lab's folder/);
    src = swap("from: files/hello.txt", "from: lab.md");
    oneError(src, lineOf(src, "from: lab.md"), /lab\.md cannot be an asset/);
    src = swap("to: /root/app/run.sh", "to: /root/app/hello.txt");
    oneError(src, lineOf(src, "files/run.sh"), /already written by the asset on line/);
  });

  it("containers: unclosed, stray, unknown, bad condition, no summary, hidden blocks inside, a step inside", () => {
    let src = V2 + "\n::: tip\nNever closed.\n";
    oneError(src, lineOf(src, "::: tip"), /::: tip opened here is not closed before the end of the file/);
    src = swap("Files live in /root.\n:::", "Files live in /root.\n:::\n:::");
    oneError(src, lineOf(src, "Files live in /root.") + 2, /closes no container/);
    src = swap("::: note", "::: aside");
    oneError(src, lineOf(src, "::: aside"), /"::: aside" is not a container/);
    src = swap("::: if=cgroup-v2", "::: if=cgroup-v3");
    oneError(src, lineOf(src, "::: if=cgroup-v3"), /if=cgroup-v3 is not a condition/);
    src = swap("::: details What is a namespace?", "::: details");
    oneError(src, lineOf(src, "::: details"), /::: details needs a summary/);
    src = swap("A *view* of a resource.", "A *view*.\n\n```setup\nInside.\n```");
    oneError(src, lineOf(src, "Inside.") - 1, /setup block cannot sit inside the ::: details container opened on line \d+/);
    src = swap("Facts: {{sandbox.cgroup}}", "::: tip\nFacts: {{sandbox.cgroup}}");
    oneError(src, lineOf(src, "::: tip"), /::: tip opened here is not closed before the next step/);
  });

  it("code blocks: term, interrupt and if", () => {
    let src = swap("```bash run term=2 interrupt", "```bash run term=0 interrupt");
    oneError(src, lineOf(src, "term=0"), /term=0 is not a terminal number/);
    src = swap("```bash run term=2 interrupt", "```bash term=2");
    oneError(src, lineOf(src, "```bash term=2"), /"term" only means something on a runnable block/);
    src = swap("```bash if=cgroup-v2", "```bash if=linux");
    oneError(src, lineOf(src, "if=linux"), /if=linux is not a condition/);
  });

  it("checks: poll, auto, needs, hint-cost", () => {
    let src = swap("poll=3s timeout=2s", "poll=1s timeout=1s");
    const e = oneError(src, lineOf(src, "poll=1s"), /poll=1s is outside 2s\.\.10m/);
    expect(e.column).toBe(src.split("\n")[e.line - 1]!.indexOf("poll=1s") + 1);
    src = swap("poll=3s timeout=2s", "poll=3s timeout=5s");
    oneError(src, lineOf(src, "poll=3s"), /cannot have a timeout of 5s/);
    src = swap("auto needs=ns-named", "auto=yes needs=ns-named");
    oneError(src, lineOf(src, "auto=yes"), /"auto" is a word on its own/);
    src = swap("auto needs=ns-named", "auto needs=nope");
    oneError(src, lineOf(src, "needs=nope"), /needs "nope", which is not a check before it/);
    src = swap("poll=3s timeout=2s", "poll=3s timeout=2s needs=asset-run");
    oneError(src, lineOf(src, "needs=asset-run"), /needs itself/);
    src = swap("points=3 hint-cost=2", "points=3 hint-cost=lots");
    oneError(src, lineOf(src, "hint-cost=lots"), /hint-cost="lots" is not a whole number/);
  });

  it("quizzes", () => {
    let src = swap("( ) /etc/hostname", "(x) /etc/hostname");
    oneError(src, lineOf(src, "? Which file holds"), /single choice with 2 right options/);
    src = swap("[x] uts\n[x] pid", "[ ] uts\n[ ] pid");
    oneError(src, lineOf(src, "? Which of these"), /has no right option/);
    src = swap("[ ] cgroupfs", "( ) cgroupfs");
    oneError(src, lineOf(src, "? Which of these"), /mixes multiple and single answers/);
    src = swap("= cp\n", "");
    oneError(src, lineOf(src, "? Which command copies"), /no accepted answer written out/);
    src = swap("~ cp( -[a-z]+)?", "~ cp(");
    oneError(src, lineOf(src, "~ cp("), /is not a regular expression/);
    src = swap("? Which file holds **your** name?\n", "");
    oneError(src, lineOf(src, "( ) /etc/hostname"), /a quiz starts with a question/);
    src = swap("```quiz id=v2-quiz", "```quiz id=ns-named");
    oneError(src, lineOf(src, "```quiz id=ns-named"), /quiz id "ns-named" is already used on line \d+/);
    src = swap('```quiz id=v2-quiz title="Check yourself" points=2', '```quiz id=v2-quiz case=upper');
    oneError(src, lineOf(src, "case=upper"), /case=upper is not understood/);
  });

  it("gates, recap and next", () => {
    let src = swap("## Name the namespace {#make}", "## Name the namespace {#make gate}");
    oneError(src, lineOf(src, "{#make gate}"), /the first step cannot be gated/);
    src = swap("## Free reading {#read no-gate}", "## Recap {#recap}\n\nEarly recap.\n\n## Free reading {#read no-gate}").replace(/## Recap \{#recap\}\n\nYou named[^\n]*\n/, "");
    oneError(src, lineOf(src, "## Recap {#recap}"), /the recap must be the last section/);
    src = swap("You named **{{var.netns}}**.", "You named it.\n\n```check id=late title=Late\ntrue\n```");
    const { errors } = parseLab(src, FILE, { fileExists: exists });
    expect(errors.map((x) => [x.line, x.message])).toEqual([[lineOf(src, "id=late"), "a check block cannot be in the recap"]]);
    src = swap("next: demo-lab", "next: v2-lab");
    oneError(src, lineOf(src, "next: v2-lab"), /next names this lab itself/);
    src = swap("next: demo-lab", "next: Not An Id");
    oneError(src, lineOf(src, "next: Not"), /next must be the id of another lab/);
  });

  it("images and workspace actions", () => {
    let src = swap("(images/diagram.png)", "(/etc/passwd.png)");
    oneError(src, lineOf(src, "/etc/passwd.png"), /starts with \//);
    src = swap("(images/diagram.png)", "(../other/diagram.png)");
    oneError(src, lineOf(src, "../other"), /is not a path inside the lab's folder/);
    src = swap("(images/diagram.png)", "(images/diagram.svg)");
    oneError(src, lineOf(src, "diagram.svg"), /is not a picture the player serves/);
    src = swap("(images/diagram.png)", "(images/missing.png)");
    oneError(src, lineOf(src, "missing.png"), /is not in the lab's folder/);
    src = swap("(open:/root/app/hello.txt)", "(open:app/hello.txt)");
    oneError(src, lineOf(src, "open:app"), /is not an absolute file path/);
    src = swap("(preview:{{var.port}})", "(preview:http)");
    oneError(src, lineOf(src, "preview:http"), /is not a port/);
  });
});

describe("lint warns when pressing Run answers a check", () => {
  const step = (run: string, solution: string) =>
    swap("Write your namespace's name into /root/ns-name.", `Write your namespace's name into /root/ns-name.\n\n\`\`\`bash run\n${run}\n\`\`\``).replace(
      'echo "$BERTH_VAR_NETNS" > /root/ns-name # SOLUTION-SECRET-V2',
      solution,
    );

  it("the same commands, whitespace aside, or contained in a longer block", () => {
    for (const [run, solution] of [
      ['echo "$BERTH_VAR_NETNS" > /root/ns-name', 'echo   "$BERTH_VAR_NETNS"  >  /root/ns-name'],
      ['mkdir -p /root\necho "$BERTH_VAR_NETNS" > /root/ns-name\nls /root', 'echo "$BERTH_VAR_NETNS" > /root/ns-name'],
      // redirections to /dev/null, comments, sleeps and waiting loops do not hide it
      ["setsid -f sleep-forever", "# start it\nsetsid -f sleep-forever </dev/null >/dev/null 2>&1\nfor _ in $(seq 50); do pgrep sleep && break; sleep 0.1; done\nsleep 1"],
      ["docker rm -f writer", "docker rm -f writer >/dev/null 2>&1 || true"],
    ]) {
      const src = step(run!, solution!);
      const { lab, errors, warnings } = parseLab(src, FILE, { fileExists: exists });
      expect(errors).toEqual([]);
      expect(lab).toBeDefined(); // a warning does not stop the lab
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ severity: "warning", line: lineOf(src, "Write your namespace's name") + 2 });
      expect(warnings[0]!.message).toMatch(/solution of check "ns-named" .*pressing Run in order passes it/);
    }
  });

  it("not when the solution does more than the page shows, or the block is not runnable, or comes after", () => {
    expect(parseLab(step('echo "$BERTH_VAR_NETNS"', 'echo "$BERTH_VAR_NETNS" > /root/ns-name'), FILE, { fileExists: exists }).warnings).toEqual([]);
    const notRun = step('echo "$BERTH_VAR_NETNS" > /root/ns-name', 'echo "$BERTH_VAR_NETNS" > /root/ns-name').replace(/```bash run\necho "\$BERTH/, '```bash\necho "$BERTH');
    expect(parseLab(notRun, FILE, { fileExists: exists }).warnings).toEqual([]);
    const after = swap("## Run the asset {#asset}", "```bash run\n/root/app/run.sh\n```\n\n## Run the asset {#asset}");
    expect(parseLab(after, FILE, { fileExists: exists }).warnings).toEqual([]);
  });
});

describe("v2 rendering, per learner", () => {
  const lab = v2();
  const alice = learnerContext(lab, { secret: "server-secret", userId: "alice" });
  const bob = learnerContext(lab, { secret: "server-secret", userId: "bob", facts: { cgroup: "v1", arch: "aarch64" } });

  it("substitutes variables and facts in text, titles and the recap", () => {
    const view = renderLab(lab, alice);
    expect(view.introHtml).toContain(`your namespace is ${alice.vars.netns}`);
    expect(view.steps[0]!.checks[0]!.title).toBe(`/root/ns-name holds ${alice.vars.netns}`);
    expect(view.steps[2]!.html).toContain("Facts: v2 on x86_64.");
    expect(view.recapHtml).toBe(`<p>You named <strong>${alice.vars.netns}</strong>.</p>\n`);
    const other = renderLab(lab, bob);
    expect(other.introHtml).toContain(bob.vars.netns);
    expect(other.steps[2]!.html).toContain("Facts: v1 on aarch64.");
    expect(JSON.stringify(view)).not.toContain("{{");
  });

  it("resolves if= containers and fences against the sandbox's facts", () => {
    const v2view = renderLab(lab, alice);
    expect(v2view.introHtml).toContain("FACT-V2");
    expect(v2view.introHtml).not.toContain("FACT-V1");
    expect(v2view.introHtml).not.toContain(":::");
    expect(v2view.steps[0]!.html).toContain("ONLY-V2");
    const v1view = renderLab(lab, bob);
    expect(v1view.introHtml).toContain("FACT-V1");
    expect(v1view.introHtml).not.toContain("FACT-V2");
    expect(v1view.steps[0]!.html).not.toContain("ONLY-V2");
  });

  it("callouts, details, run block attributes, workspace actions and images as the contract says", () => {
    const view = renderLab(lab, alice);
    const html = view.steps[0]!.html;
    expect(html).toContain('<div class="callout callout-note">\n<p>Files live in /root.</p>\n</div>');
    expect(html).toContain('<div class="callout callout-warning">\n<p><strong>Careful now</strong></p>\n<p>Do not delete /root.</p>\n</div>');
    expect(html).toContain("<details><summary>What is a namespace?</summary>\n<p>A <em>view</em> of a resource.</p>\n</details>");
    expect(html).toContain('<pre class="berth-code" data-runnable="true" data-lang="bash" data-term="2" data-interrupt="true"><code>echo hello\n</code></pre>');
    expect(html).toContain('<button type="button" class="berth-action" data-action="open-file" data-path="/root/app/hello.txt">the greeting</button>');
    expect(html).toContain(`<button type="button" class="berth-action" data-action="preview" data-port="${alice.vars.port}">your preview</button>`);
    expect(view.introHtml).toContain('<img src="/api/labs/v2-lab/assets/images/diagram.png" alt="the diagram" />');
  });

  it("step and check views: gates, setups, solutions, hints, auto, needs; quizzes without answers", () => {
    const view = renderLab(lab, alice, { titleOf: (id) => (id === "demo-lab" ? "Demo lab" : undefined) });
    expect(view.next).toEqual({ id: "demo-lab", title: "Demo lab" });
    expect(view.steps.map((s) => [s.id, s.gated, s.hasSetup, s.hasSolution])).toEqual([
      ["make", false, false, true],
      ["asset", true, true, true],
      ["read", false, false, false],
    ]);
    expect(view.steps[0]!.checks[1]).toEqual({
      id: "token-copied", title: "The token is copied", points: 1, hasHint: false, hintCount: 0, hintCost: 1, auto: true, pollMs: 5000, needs: ["ns-named"], hasSolution: true,
    });
    expect(view.steps[0]!.checks[0]).toMatchObject({ hintCount: 2, hintCost: 2, auto: false });
    const quiz = view.steps[1]!.quizzes[0]!;
    expect(quiz.questions).toEqual([
      { id: "q1", kind: "single", promptHtml: "<p>Which file holds <strong>your</strong> name?</p>\n", options: [{ id: "a", html: "/etc/hostname" }, { id: "b", html: "/root/ns-name" }] },
      { id: "q2", kind: "multiple", promptHtml: "<p>Which of these are namespaces?</p>\n", options: [{ id: "a", html: "uts" }, { id: "b", html: "pid" }, { id: "c", html: "cgroupfs" }] },
      { id: "q3", kind: "text", promptHtml: "<p>Which command copies a file?</p>\n" },
    ]);
    expect(summarizeLab(lab)).toMatchObject({ points: 3 + 1 + 1 + 2, next: "demo-lab", difficulty: "intermediate" });
    const json = JSON.stringify(view);
    expect(json).not.toMatch(/SECRET|HINT-ONE|HINT-TWO|correct|cp\( -|"accept"/);
  });

  it("hints one by one and the solution, only on request, with the learner's values", () => {
    expect(renderHint(lab, "ns-named", 0, alice)).toBe("<p>Use echo. HINT-ONE</p>\n");
    expect(renderHint(lab, "ns-named", 1, alice)).toBe(`<p><code>echo ${alice.vars.netns} &gt; /root/ns-name</code> HINT-TWO</p>\n`);
    expect(renderHint(lab, "ns-named", 2, alice)).toBeUndefined();
    expect(renderSolution(lab, "ns-named", alice)).toBe('<pre class="berth-code" data-runnable="false" data-lang="bash"><code>echo "$BERTH_VAR_NETNS" &gt; /root/ns-name # SOLUTION-SECRET-V2\n</code></pre>\n');
    expect(renderSolution(lab, "asset-run", alice)).toContain("/root/app/run.sh");
    expect(renderSolution(lab, "nope", alice)).toBeUndefined();
  });

  it("keeps everything sanitized: callout titles, actions, images and conditions cannot smuggle markup", () => {
    // The parser refuses some of these; the renderer must defuse them anyway (a Lab made by hand).
    const markdown = [
      "::: warning <img src=x onerror=alert(1)>",
      "text",
      ":::",
      "",
      '[x](open:/root/a"onclick="alert(1)) <button onclick="alert(2)">b</button> [y](javascript:alert(3))',
      "",
      '![pic](images/diagram.png "t\\" onerror=\\"alert(4)")',
      "",
      "::: if=cgroup-v2 <script>alert(5)</script>",
      "shown?",
      ":::",
    ].join("\n");
    const evil = { ...lab, intro: markdown, steps: [{ ...lab.steps[0]!, markdown }] };
    const html = renderLab(evil, alice).steps[0]!.html + renderLab(evil, alice).introHtml;
    const tags: { name: string; attribs: Record<string, string> }[] = [];
    // sanitize-html's parser, told to keep everything, lists the tags a browser would build
    sanitizeHtml(html, { allowedTags: false, allowedAttributes: false, onOpenTag: (name, attribs) => tags.push({ name, attribs }) });
    expect(tags.length).toBeGreaterThan(5);
    for (const t of tags) {
      expect(["script", "button", "iframe"]).not.toContain(t.name);
      expect(Object.keys(t.attribs).filter((a) => a.startsWith("on"))).toEqual([]);
      expect(t.attribs.href ?? "").not.toMatch(/^\s*javascript:/i);
    }
    expect(html).toContain("&lt;img src=x onerror=alert(1)&gt;");
    // a hand-made Lab (not from the parser) with a forged action or a climbing image is defused too
    const forged = { ...lab, steps: [{ ...lab.steps[0]!, markdown: "[a](open:relative) [b](preview:99999) ![c](../../lab.md.png) ![d](images/../../x.png)" }] };
    const out = renderLab(forged, alice).steps[0]!.html;
    expect(out).not.toContain("<button");
    expect(out).not.toContain("<img");
    expect(out).toContain(">a</a>");
  });

  it("without a context, the preview context is used", () => {
    const preview = previewContext(lab);
    expect(renderLab(lab).introHtml).toContain(preview.vars.netns!);
  });
});
