// testLab against real sandboxes (the unshare runner): the workshop's labs must prove themselves,
// and a lab whose checks prove nothing must be caught.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadLabs, parseLab, runCheck, testLab, type Lab, type LabTestReport } from "../src/index.js";
import { createHostNamespacesRunner } from "../src/runners/index.js";
import { FILE, GOOD } from "./fixtures.js";

const LABS_DIR = path.resolve(import.meta.dirname, "../../../labs");

async function inSandbox(lab: Lab): Promise<LabTestReport> {
  const runner = await createHostNamespacesRunner();
  try {
    return await testLab(lab, runner);
  } finally {
    await runner.dispose();
  }
}

function parse(source: string): Lab {
  const res = parseLab(source, FILE);
  expect(res.errors).toEqual([]);
  return res.lab!;
}

describe("the workshop's labs", async () => {
  const { labs, errors } = await loadLabs(LABS_DIR);

  it("lint clean", () => {
    expect(errors).toEqual([]);
    expect(labs.map((l) => l.id)).toEqual(expect.arrayContaining(["namespaces-by-hand", "cgroups-by-hand"]));
  });

  for (const id of ["namespaces-by-hand", "cgroups-by-hand"]) {
    it(`${id}: every check fails on a fresh sandbox and passes after its solution`, async () => {
      const lab = labs.find((l) => l.id === id)!;
      const report = await inSandbox(lab);
      const problems = report.checks.flatMap((c) => c.problems.map((p) => `${c.checkId}: ${p}`));
      expect(problems).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.checks.length).toBeGreaterThanOrEqual(3);
      expect(report.checks.map((c) => c.checkId)).toEqual(lab.steps.flatMap((s) => s.checks.map((c) => c.id)));
      for (const c of report.checks) {
        expect(c.before).toMatchObject({ passed: false, timedOut: false });
        expect(c.after).toMatchObject({ passed: true });
        // every failure says something a learner can act on, not the generic default
        expect(c.before!.message.length).toBeGreaterThan(20);
        expect(c.before!.message).not.toMatch(/Not done yet/);
      }
      if (lab.setup) expect(report.setup).toMatchObject({ exitCode: 0 });
    });
  }
});

describe("testLab catches labs that prove nothing", () => {
  it("a check that passes before its solution, and one that fails after it", async () => {
    const lab = parse(
      GOOD.replace("test -f /root/made # CHECK-SECRET-1", "true").replace("echo yes > /root/second # SOLUTION-SECRET-2", "echo no > /root/second"),
    );
    const report = await inSandbox(lab);
    expect(report.ok).toBe(false);
    const [first, second] = report.checks;
    expect(first).toMatchObject({ checkId: "file-made", ok: false, before: { passed: true } });
    expect(first!.problems[0]).toMatch(/passes before its solution ran/);
    expect(second).toMatchObject({ checkId: "second-check", ok: false, before: { passed: false }, after: { passed: false } });
    expect(second!.problems[0]).toMatch(/fails after its solution ran: Write yes into \/root\/second/);
  });

  it("a solution that fails is reported with its error", async () => {
    const lab = parse(GOOD.replace("touch /root/made # SOLUTION-SECRET-1", "echo broken >&2; exit 4"));
    const report = await inSandbox(lab);
    expect(report.checks[0]!.problems).toEqual([
      "the solution of step make-file exited 4: broken",
      "fails after its solution ran: No /root/made yet.",
    ]);
    expect(report.checks[1]!.ok).toBe(true);
  });

  it("a failing setup fails every check without running it", async () => {
    const lab = parse(GOOD.replace("echo SETUP-SECRET > /root/setup-was-here", "exit 9"));
    const report = await inSandbox(lab);
    expect(report.ok).toBe(false);
    expect(report.setup!.exitCode).toBe(9);
    expect(report.checks.every((c) => !c.ok && c.before === undefined && /setup failed \(exit 9\)/.test(c.problems[0]!))).toBe(true);
  });

  it("runCheck: the lab's message when a failing check prints nothing, a timeout in words", async () => {
    const lab = parse(GOOD.replace("timeout=5s", "timeout=1s").replace("test -f /root/made # CHECK-SECRET-1", "[ -f /root/slow ] && sleep 5; test -f /root/made"));
    const runner = await createHostNamespacesRunner();
    try {
      const check = lab.steps[0]!.checks[0]!;
      expect(await runCheck(check, runner)).toMatchObject({ passed: false, message: "No /root/made yet." });
      await runner.exec("touch /root/made", { timeoutMs: 5000 });
      expect(await runCheck(check, runner)).toMatchObject({ passed: true, message: "Done." });
      await runner.exec("touch /root/slow", { timeoutMs: 5000 });
      expect(await runCheck(check, runner)).toMatchObject({ passed: false, timedOut: true, message: "The check did not finish within 1 s." });
    } finally {
      await runner.dispose();
    }
  });
});
