import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { getCheck, getSetup, labContentHash, parseLab, prepareScript, solutionsFor } from "../src/index.js";
import { FILE, GOOD } from "./fixtures.js";

const lab = parseLab(GOOD, FILE).lab!;
const bash = (script: string) => {
  try {
    return { out: execFileSync("bash", ["-s"], { input: script, encoding: "utf8" }), code: 0 };
  } catch (e) {
    const err = e as { stdout: string; status: number };
    return { out: err.stdout, code: err.status };
  }
};

describe("server-side accessors", () => {
  it("getCheck gives what grading needs, undefined for an unknown check", () => {
    const c = getCheck(lab, "file-made")!;
    expect(c).toMatchObject({ id: "file-made", stepId: "make-file", title: "The file exists", points: 2, timeoutMs: 5000, message: "No /root/made yet.", hint: "Use `touch`." });
    expect(c.script).toContain("test -f /root/made # CHECK-SECRET-1");
    expect(getCheck(lab, "second-check")!.message).toMatch(/Not done yet/);
    expect(getCheck(lab, "nope")).toBeUndefined();
  });

  it("solutionsFor a check, a step, and an unknown id", () => {
    expect(solutionsFor(lab, "file-made").map((s) => [s.stepId, s.checkId, s.script.includes("SOLUTION-SECRET-1")])).toEqual([["make-file", undefined, true]]);
    expect(solutionsFor(lab, "second-check").map((s) => [s.stepId, s.checkId, s.timeoutMs])).toEqual([["second-step", "second-check", 20_000]]);
    expect(solutionsFor(lab, "second-step")).toHaveLength(1);
    expect(solutionsFor(lab, "make-file")).toHaveLength(1);
    expect(solutionsFor(lab, "reading-only")).toEqual([]);
    expect(solutionsFor(lab, "nope")).toEqual([]);
  });

  it("getSetup and labContentHash", () => {
    expect(getSetup(lab)).toContain("SETUP-SECRET");
    expect(getSetup(parseLab(GOOD.replace(/```setup\n.*\n```\n/, ""), FILE).lab!)).toBeUndefined();
    expect(labContentHash(lab)).toBe(createHash("sha256").update(GOOD).digest("hex"));
    expect(labContentHash(parseLab(GOOD.replace("Some text.", "Other text."), FILE).lab!)).not.toBe(labContentHash(lab));
  });
});

describe("prepareScript", () => {
  it("keeps a command that reads stdin from eating the rest of the script", () => {
    const raw = "cat >/dev/null\necho after";
    expect(bash(raw).out).toBe(""); // the trap prepareScript exists for
    expect(bash(prepareScript(raw))).toEqual({ out: "after\n", code: 0 });
  });

  it("runs sh scripts with sh", () => {
    // $BASH_VERSION is set by bash only (Debian's sh is dash)
    const which = 'if [ -n "$BASH_VERSION" ]; then echo bash; else echo sh; fi';
    expect(bash(prepareScript(which, "sh")).out).toBe("sh\n");
    expect(bash(prepareScript(which)).out).toBe("bash\n");
    const sh = parseLab(GOOD.replace("touch /root/made # SOLUTION-SECRET-1", "#!/bin/sh\ntouch /root/made"), FILE).lab!;
    expect(solutionsFor(sh, "make-file")[0]!.script).toMatch(/exec sh -c/);
  });

  it("passes exit codes, quotes and odd lines through untouched", () => {
    const script = `echo "a)b" '$HOME' \`echo x\`\ncat <<'EOF'\nheredoc ) ( line\nEOF\nexit 7`;
    expect(bash(prepareScript(script))).toEqual({ out: "a)b $HOME x\nheredoc ) ( line\n", code: 7 });
  });
});
