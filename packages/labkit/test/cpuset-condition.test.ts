// The cpuset fact and condition: measured in the sandbox, `if=cpuset` / `if=!cpuset` on text,
// fences, checks (waived where it fails) and solutions (absent where it fails), each mistake linted
// at its line, and testLab proving a lab both ways. Scripts run in a real bash on this machine.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  FACTS_SCRIPT, getCheck, learnerContext, parseFacts, parseLab, renderLab, renderSolution, resolveConditions, solutionsFor,
  testLab, TEST_LEARNER, type LabContext, type LabRunner, type SandboxFacts,
} from "../src/index.js";
import { scriptEnv, substitute } from "../src/context.js";
import { evalCondition } from "../src/syntax.js";
import { lineOf } from "./fixtures.js";

const FILE = "labs/pin-lab/lab.md";
const scratch = mkdtempSync(join(tmpdir(), "labkit-cpuset-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const LAB = `---
id: pin-lab
title: Pin a process
summary: Where a process may run.
duration: 5m
difficulty: beginner
---

Intro.

## Pin it {#pin}

::: if=cpuset
Write the CPU into \`${scratch}/cpus\`.
:::

::: if=!cpuset
::: note No cpuset here
This kernel has no cpuset controller.
:::
:::

\`\`\`bash if=cpuset
cat ${scratch}/cpus
\`\`\`

Your sandbox has cpuset: {{sandbox.cpuset}}.

\`\`\`check id=pinned title="Pinned to CPU 0" timeout=5s if=cpuset
[ "$(cat ${scratch}/cpus 2>/dev/null)" = 0 ] && echo "pinned" && exit 0
echo "not pinned"; exit 1
\`\`\`

\`\`\`check id=noted title="The fact reached the script" timeout=5s
[ -f ${scratch}/noted ] || exit 1
echo "cpuset=$BERTH_SANDBOX_CPUSET"
\`\`\`

\`\`\`solution if=cpuset check=pinned
echo 0 > ${scratch}/cpus
\`\`\`

\`\`\`solution check=noted
touch ${scratch}/noted
\`\`\`
`;

const facts = (cpuset: "yes" | "no"): SandboxFacts => ({ cgroup: "v2", arch: "x86_64", cpuset });
function lab() {
  const res = parseLab(LAB, FILE);
  expect(res.errors).toEqual([]);
  return res.lab!;
}
const ctxOf = (cpuset: "yes" | "no"): LabContext => learnerContext(lab(), { ...TEST_LEARNER, facts: facts(cpuset) });

/** Runs a script with `bash -s` here: state (files) carries over between calls. */
const bashRunner: LabRunner = {
  exec: (script, { timeoutMs }) =>
    new Promise((resolve) => {
      const child = spawn("bash", ["-s"], { stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      let timedOut = false;
      const timer = setTimeout(() => ((timedOut = true), child.kill("SIGKILL")), timeoutMs);
      child.stdout.on("data", (b: Buffer) => (stdout += b));
      child.stderr.on("data", (b: Buffer) => (stderr += b));
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ exitCode: code ?? -1, stdout, stderr, timedOut });
      });
      child.stdin.end(script);
    }),
};

/** Exactly one error, at `line`, matching `message`. */
function oneError(source: string, line: number, message: RegExp) {
  const { errors } = parseLab(source, FILE);
  expect(errors.map((e) => `${e.line}: ${e.message}`)).toHaveLength(1);
  expect(errors[0]!.message).toMatch(message);
  expect(errors[0]!.line).toBe(line);
  expect(errors[0]!.fix).toMatch(/cpuset/);
}

describe("the cpuset fact", () => {
  it("is read from the probe; anything odd or missing counts as yes", () => {
    expect(parseFacts("cgroup=v2\narch=x86_64\ncpuset=no\n")).toEqual(facts("no"));
    expect(parseFacts("cgroup=v2\narch=x86_64\ncpuset=yes\n").cpuset).toBe("yes");
    expect(parseFacts("cgroup=v2\ncpuset=$(reboot)\n").cpuset).toBe("yes");
    expect(parseFacts("cgroup=v1\n").cpuset).toBe("yes");
  });

  it("the probe prints one cpuset= line that agrees with this machine's cgroups", async () => {
    const r = await bashRunner.exec(FACTS_SCRIPT, { timeoutMs: 5000 });
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.split("\n").filter((l) => l.startsWith("cpuset="));
    expect(lines).toHaveLength(1);
    const probe = await bashRunner.exec(
      "if [ -f /sys/fs/cgroup/cgroup.controllers ]; then grep -qw cpuset /sys/fs/cgroup/cgroup.controllers; else test -d /sys/fs/cgroup/cpuset; fi && echo yes || echo no\n",
      { timeoutMs: 5000 },
    );
    expect(lines[0]).toBe(`cpuset=${probe.stdout.trim()}`);
  });

  it("evaluates if=cpuset and if=!cpuset, absent meaning yes", () => {
    expect(evalCondition("cpuset", facts("yes"))).toBe(true);
    expect(evalCondition("!cpuset", facts("yes"))).toBe(false);
    expect(evalCondition("cpuset", facts("no"))).toBe(false);
    expect(evalCondition("!cpuset", facts("no"))).toBe(true);
    expect(evalCondition("cpuset", { cgroup: "v1", arch: "x86_64" })).toBe(true);
    // the other conditions are unchanged by the new fact
    expect(evalCondition("cgroup-v2", facts("no"))).toBe(true);
    expect(evalCondition("arch-x86_64", facts("no"))).toBe(true);
  });

  it("reaches text as {{sandbox.cpuset}} and scripts as BERTH_SANDBOX_CPUSET", () => {
    expect(substitute("has {{sandbox.cpuset}}", ctxOf("no"))).toBe("has no");
    expect(substitute("has {{sandbox.cpuset}}", { vars: {}, facts: { cgroup: "v2", arch: "x86_64" } })).toBe("has yes");
    expect(scriptEnv(ctxOf("no")).BERTH_SANDBOX_CPUSET).toBe("no");
    expect(scriptEnv({ vars: {}, facts: { cgroup: "v1", arch: "x86_64" } }).BERTH_SANDBOX_CPUSET).toBe("yes");
  });
});

describe("if=cpuset in a lab", () => {
  it("keeps the text, fences and notes of the learner's case only", () => {
    const yes = renderLab(lab(), ctxOf("yes")).steps[0]!.html;
    const no = renderLab(lab(), ctxOf("no")).steps[0]!.html;
    expect(yes).toContain("Write the CPU into");
    expect(yes).toContain(`cat ${scratch}/cpus`);
    expect(yes).not.toContain("no cpuset controller");
    expect(yes).toContain("Your sandbox has cpuset: yes.");
    expect(no).not.toContain("Write the CPU into");
    expect(no).not.toContain(`cat ${scratch}/cpus`);
    expect(no).toMatch(/callout-note[\s\S]*This kernel has no cpuset controller/);
    expect(no).toContain("Your sandbox has cpuset: no.");
    expect(resolveConditions("::: if=!cpuset\nA\n:::\nB", facts("yes"))).toBe("B");
  });

  it("waives a check whose if= fails: it passes when asked and says why; its solution is not the learner's", async () => {
    const l = lab();
    const waived = getCheck(l, "pinned", ctxOf("no"))!;
    expect(waived.script).not.toContain("not pinned");
    const r = await bashRunner.exec(waived.script, { timeoutMs: 5000 });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^Counted as done: this check is for a sandbox with the cpuset cgroup controller/);
    expect(solutionsFor(l, "pinned", ctxOf("no"))).toEqual([]);
    expect(solutionsFor(l, "pin", ctxOf("no")).map((s) => s.checkId)).toEqual(["noted"]);
    expect(renderSolution(l, "pinned", ctxOf("no"))).toBeUndefined();
    expect(renderLab(l, ctxOf("no")).steps[0]!.checks.map((c) => [c.id, c.hasSolution])).toEqual([["pinned", false], ["noted", true]]);

    // where it holds, the check is the author's and so is the solution
    expect(getCheck(l, "pinned", ctxOf("yes"))!.script).toContain("not pinned");
    expect(solutionsFor(l, "pin", ctxOf("yes")).map((s) => s.checkId)).toEqual(["pinned", "noted"]);
    expect(renderSolution(l, "pinned", ctxOf("yes"))).toContain(`echo 0 &gt; ${scratch}/cpus`);
  });

  it("testLab proves it on a sandbox with cpuset and on one without", async () => {
    const l = lab();
    const clean = () => {
      rmSync(join(scratch, "cpus"), { force: true });
      rmSync(join(scratch, "noted"), { force: true });
    };
    clean();
    const without = await testLab(l, bashRunner, { context: ctxOf("no") });
    expect(without.checks.map((c) => [c.checkId, c.waived ?? false, c.before?.passed, c.after?.passed, c.ok])).toEqual([
      ["pinned", true, undefined, true, true],
      ["noted", false, false, true, true],
    ]);
    expect(without.checks[1]!.after!.message).toBe("cpuset=no");
    expect(without.solutions.map((s) => s.checkId)).toEqual(["noted"]);
    expect(without.ok).toBe(true);

    clean();
    const withIt = await testLab(l, bashRunner, { context: ctxOf("yes") });
    expect(withIt.checks.map((c) => [c.checkId, c.waived ?? false, c.before?.passed, c.after?.passed])).toEqual([
      ["pinned", false, false, true],
      ["noted", false, false, true],
    ]);
    expect(withIt.ok).toBe(true);

    // a waived check that would not pass (here: a lab whose waiver is broken) is impossible to
    // write, but a real check still has to fail first where it applies
    clean();
    writeFileSync(join(scratch, "cpus"), "0\n");
    const early = await testLab(l, bashRunner, { context: ctxOf("yes") });
    expect(early.checks[0]!.problems).toEqual(["passes before its solution ran: it does not prove the learner did anything"]);
    clean();
  });

  it("lints a misspelt condition on a container, a fence, a check and a solution, at its line", () => {
    let src = LAB.replace("::: if=cpuset", "::: if=cpusets");
    oneError(src, lineOf(src, "::: if=cpusets"), /if=cpusets is not a condition/);
    src = LAB.replace("```bash if=cpuset", "```bash if=cpu-set");
    oneError(src, lineOf(src, "```bash if=cpu-set"), /if=cpu-set is not a condition/);
    src = LAB.replace('timeout=5s if=cpuset', "timeout=5s if=!cpuset!");
    oneError(src, lineOf(src, "if=!cpuset!"), /if=!cpuset! is not a condition/);
    src = LAB.replace("```solution if=cpuset", "```solution if=has-cpuset");
    oneError(src, lineOf(src, "if=has-cpuset"), /if=has-cpuset is not a condition/);
    const column = parseLab(src, FILE).errors[0]!.column;
    expect(column).toBe("```solution ".length + 1);
  });

  it("refuses a conditional solution for a check that applies elsewhere", () => {
    const src = LAB.replace('timeout=5s if=cpuset', "timeout=5s");
    oneError(src, lineOf(src, "```solution if=cpuset"), /the solution has if=cpuset but check "pinned" \(line \d+\) applies everywhere/);
    const other = LAB.replace('timeout=5s if=cpuset', "timeout=5s if=cgroup-v2");
    oneError(other, lineOf(other, "```solution if=cpuset"), /check "pinned" \(line \d+\) has if=cgroup-v2/);
  });

  it("the workshop's labs use it where they pin CPUs", async () => {
    const { loadLabs } = await import("../src/index.js");
    const { labs, errors } = await loadLabs(join(__dirname, "..", "..", "..", "labs"));
    expect(errors).toEqual([]);
    const pin = labs.find((l) => l.id === "cgroups-by-hand")!.steps.find((s) => s.id === "cpuset")!;
    expect(pin.checks.map((c) => c.condition)).toEqual(["cpuset"]);
    expect(pin.solution?.condition).toBe("cpuset");
    const noCpuset = learnerContext(labs.find((l) => l.id === "cgroups-by-hand")!, { ...TEST_LEARNER, facts: facts("no") });
    expect(renderLab(labs.find((l) => l.id === "cgroups-by-hand")!, noCpuset).steps.find((s) => s.id === "cpuset")!.html).toContain("no cpuset controller");
  });
});
