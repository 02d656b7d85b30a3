// The server's side of format v2: quiz grading, per-learner variables, sandbox facts, assets.
import { mkdir, rm, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  assetFile, assetsScript, gradeQuiz, learnerContext, learnerVariables, loadLabs, parseFacts, parseLab, prepareScript, TEST_LEARNER,
  type Lab,
} from "../src/index.js";
import { V2, writeV2Lab } from "./fixtures.js";

const FILE = "labs/v2-lab/lab.md";
function v2(source = V2): Lab {
  const res = parseLab(source, FILE);
  expect(res.errors).toEqual([]);
  return res.lab!;
}

describe("gradeQuiz", () => {
  const lab = v2();
  const right = { q1: "b", q2: ["a", "b"], q3: "cp" };

  it("the right answers pass and earn the quiz's points", () => {
    expect(gradeQuiz(lab, "v2-quiz", right)).toEqual({
      quizId: "v2-quiz", stepId: "asset", passed: true, perQuestion: { q1: true, q2: true, q3: true }, points: 2, message: "All 3 answers are right.",
    });
    // order of a multiple choice does not matter; text ignores case and extra whitespace; patterns match the whole answer
    expect(gradeQuiz(lab, "v2-quiz", { ...right, q2: ["b", "a"], q3: "  CP  " })!.passed).toBe(true);
    expect(gradeQuiz(lab, "v2-quiz", { ...right, q3: "cp -r" })!.passed).toBe(true);
    expect(gradeQuiz(lab, "v2-quiz", { ...right, q1: ["b"] })!.passed).toBe(true);
  });

  it("each wrong answer fails its question, never says which answer is right, and earns nothing", () => {
    for (const [q, answer] of [
      ["q1", "a"], ["q1", "z"], ["q1", ["a", "b"]],
      ["q2", ["a"]], ["q2", ["a", "b", "c"]], ["q2", "a"], ["q2", []],
      ["q3", "mv"], ["q3", "xcp"], ["q3", "cp -r -f"], ["q3", ""], ["q3", ["cp"]],
    ] as const) {
      const g = gradeQuiz(lab, "v2-quiz", { ...right, [q]: answer as string | string[] })!;
      expect(g.passed, `${q}=${JSON.stringify(answer)}`).toBe(false);
      expect(g.perQuestion[q]).toBe(false);
      expect(g.points).toBe(0);
      expect(g.message).toBe("2 of 3 right. Look again at the ones marked wrong.");
    }
    const { q3: _q3, ...missing } = right;
    expect(gradeQuiz(lab, "v2-quiz", missing)!.perQuestion).toEqual({ q1: true, q2: true, q3: false });
  });

  it("answers of any other shape are wrong, never a crash", () => {
    for (const odd of [null, 1, true, { 0: "b", length: 1 }, [1, 2], [["a"]], { toString: () => "b" }]) {
      const g = gradeQuiz(lab, "v2-quiz", { q1: odd, q2: odd, q3: odd } as unknown as Record<string, string>)!;
      expect(g.perQuestion).toEqual({ q1: false, q2: false, q3: false });
    }
    expect(gradeQuiz(lab, "v2-quiz", { ...right, q3: "x".repeat(5000) })!.passed).toBe(false);
  });

  it("ignores unknown questions and prototype keys; unknown quizzes are undefined", () => {
    expect(gradeQuiz(lab, "v2-quiz", { ...right, q9: "x", __proto__: "y", constructor: "z" } as Record<string, string | string[]>)!.passed).toBe(true);
    expect(gradeQuiz(lab, "nope", right)).toBeUndefined();
    expect(gradeQuiz(lab, "ns-named", right)).toBeUndefined(); // a check is not a quiz
  });

  it("case=sensitive, and answers with the learner's values", () => {
    const src = V2.replace('```quiz id=v2-quiz title="Check yourself" points=2', '```quiz id=v2-quiz title="Check yourself" points=2 case=sensitive').replace("= cp\n", "= cp\n= {{var.netns}}\n");
    const l = v2(src);
    const ctx = learnerContext(l, { secret: "s", userId: "carol" });
    expect(gradeQuiz(l, "v2-quiz", { ...right, q3: "CP" }, ctx)!.passed).toBe(false);
    expect(gradeQuiz(l, "v2-quiz", { ...right, q3: "cp" }, ctx)!.passed).toBe(true);
    expect(gradeQuiz(l, "v2-quiz", { ...right, q3: ctx.vars.netns! }, ctx)!.passed).toBe(true);
    const dave = learnerContext(l, { secret: "s", userId: "dave" });
    expect(gradeQuiz(l, "v2-quiz", { ...right, q3: ctx.vars.netns! }, dave)!.passed).toBe(false);
  });
});

describe("per-learner variables", () => {
  const lab = v2();

  it("are stable for a learner and a lab, and fit their generator", () => {
    const a = learnerVariables(lab, { secret: "k", userId: "alice" });
    expect(learnerVariables(lab, { secret: "k", userId: "alice" })).toEqual(a);
    expect(a.netns).toMatch(/^ns-[a-z]+-[a-z]+$/);
    expect(Number(a.port)).toBeGreaterThanOrEqual(8000);
    expect(Number(a.port)).toBeLessThanOrEqual(8099);
    expect(a.token).toMatch(/^[0-9a-f]{6}$/);
  });

  it("differ across learners, labs and secrets", () => {
    const users = Array.from({ length: 40 }, (_, i) => learnerVariables(lab, { secret: "k", userId: `user-${i}` }));
    expect(new Set(users.map((u) => u.token)).size).toBeGreaterThan(35);
    expect(new Set(users.map((u) => u.netns)).size).toBeGreaterThan(30);
    expect(new Set(users.map((u) => u.port)).size).toBeGreaterThan(20);
    const otherLab = { ...lab, id: "other-lab" };
    expect(learnerVariables(otherLab, { secret: "k", userId: "alice" }).token).not.toBe(learnerVariables(lab, { secret: "k", userId: "alice" }).token);
    expect(learnerVariables(lab, { secret: "k2", userId: "alice" }).token).not.toBe(learnerVariables(lab, { secret: "k", userId: "alice" }).token);
  });

  it("reach scripts as text and as BERTH_* variables, safely quoted", () => {
    const script = prepareScript("echo hi", "bash", { BERTH_VAR_X: "it's", "bad name": "x" });
    expect(script).toContain(`export BERTH_VAR_X='it'\\''s'`);
    expect(script).not.toContain("bad name");
  });

  it("facts are read from the probe, odd values fall back", () => {
    expect(parseFacts("cgroup=v1\narch=aarch64\n")).toEqual({ cgroup: "v1", arch: "aarch64", cpuset: "yes" });
    expect(parseFacts("cgroup=v3\narch=$(reboot)\ncpuset=maybe\n")).toEqual({ cgroup: "v2", arch: "x86_64", cpuset: "yes" });
    expect(TEST_LEARNER.userId).toBe("test-learner");
  });
});

describe("assets", () => {
  let labFile: string;
  let lab: Lab;
  beforeAll(async () => {
    labFile = await writeV2Lab();
    const { labs, errors } = await loadLabs(path.dirname(labFile));
    expect(errors).toEqual([]);
    lab = labs[0]!;
    await writeFile(path.join(path.dirname(labFile), "images", "outside.png"), "x");
    await writeFile(path.join(path.dirname(labFile), "..", "secret.png"), "secret");
    await symlink(path.join(path.dirname(labFile), "..", "secret.png"), path.join(path.dirname(labFile), "images", "link.png"));
    await mkdir(path.join(path.dirname(labFile), "images", "dir.png"));
  });
  afterAll(async () => {
    await rm(path.dirname(path.dirname(labFile)), { recursive: true, force: true });
  });

  it("assetFile serves pictures of the lab's folder only", async () => {
    expect(await assetFile(lab, "images/diagram.png")).toMatchObject({ contentType: "image/png", size: 70 });
    for (const bad of ["lab.md", "../secret.png", "images/../../secret.png", "/etc/passwd", "images/link.png", "images/dir.png", "files/run.sh", "images/missing.png", "images/diagram.svg"]) {
      expect(await assetFile(lab, bad), bad).toBeUndefined();
    }
  });

  it("assetsScript writes each asset with its mode, byte for byte", async () => {
    const script = (await assetsScript(lab))!;
    expect(script).toContain("base64 -d > '/root/app/run.sh'");
    expect(script).toContain("chmod 0755 '/root/app/run.sh'");
    expect(script).toContain("chmod 0644 '/root/app/hello.txt'");
    expect(await assetsScript({ ...lab, assets: [] })).toBeUndefined();
    await expect(assetsScript({ ...lab, assets: [{ from: "../secret.png", to: "/root/x", mode: 0o644, line: 1 }] })).rejects.toThrow(/not a file in the lab's folder/);
  });

  it("loadLabs checks that asset and image files exist", async () => {
    await rm(path.join(path.dirname(labFile), "files", "hello.txt"));
    const { errors } = await loadLabs(path.dirname(labFile));
    expect(errors.map((e) => [e.line, e.message])).toEqual([[V2.split("\n").findIndex((l) => l.includes("files/hello.txt")) + 1, "asset files/hello.txt is not in the lab's folder"]]);
  });
});
