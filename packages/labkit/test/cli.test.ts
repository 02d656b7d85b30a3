// The labkit command as authors and CI run it: bin/labkit.mjs through tsx, real files.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { LabView } from "@berth/protocol";
import { FILE, GOOD, lineOf } from "./fixtures.js";

const BIN = path.resolve(import.meta.dirname, "../bin/labkit.mjs");
const LABS = path.resolve(import.meta.dirname, "../../../labs");
// `test` proves a lab in a real sandbox (25-40 s for cgroups-by-hand here, more on a loaded machine).
const labkit = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 170_000 });

function labsDir(source: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), "labkit-cli-"));
  mkdirSync(path.join(dir, "demo-lab"));
  writeFileSync(path.join(dir, path.basename(path.dirname(FILE)), "lab.md"), source);
  return dir;
}

describe("labkit CLI", () => {
  it("lint: clean labs exit 0", () => {
    const r = labkit("lint", LABS);
    expect(r.stdout).toBe("");
    const count = readdirSync(LABS, { withFileTypes: true }).filter((e) => e.isDirectory() && existsSync(path.join(LABS, e.name, "lab.md"))).length;
    expect(r.stderr).toContain(`${count} lab(s), no errors`);
    expect(r.status).toBe(0);
  });

  it("lint: one lab's own folder is that lab; a folder with no lab is an error, not a pass", () => {
    const one = labkit("lint", path.join(LABS, "volumes"));
    expect(one.stderr).toMatch(/^1 lab\(s\), no errors/m);
    expect(one.status).toBe(0);
    const empty = mkdtempSync(path.join(tmpdir(), "labkit-empty-"));
    const none = labkit("test", empty);
    expect(none.stderr).toContain(`${empty}:1: no lab here`);
    expect(none.status).toBe(1);
  });

  it("lint: each error as file:line[:col]: message (fix: ...), exit 1", () => {
    const bad = GOOD.replace("difficulty: beginner", "difficulty: easy").replace("points=2", "points=many");
    const dir = labsDir(bad);
    const r = labkit("lint", dir);
    const file = path.join(dir, "demo-lab", "lab.md");
    const pointsLine = lineOf(bad, "points=many");
    const col = bad.split("\n")[pointsLine - 1]!.indexOf("points=many") + 1;
    expect(r.stdout.trim().split("\n")).toEqual([
      `${file}:${lineOf(bad, "difficulty:")}: difficulty "easy" is not one of beginner, intermediate, advanced (fix: write one of beginner, intermediate, advanced)`,
      `${file}:${pointsLine}:${col}: points="many" is not a whole number from 0 to 1000 (fix: write e.g. points=2)`,
    ]);
    expect(r.status).toBe(1);
  });

  it("lint: warnings say so, exit 0 (1 with --strict); next must name a lab of the folder", () => {
    const runAnswers = GOOD.replace("touch /root/made # SOLUTION-SECRET-1", "touch /root/made");
    const dir = labsDir(runAnswers);
    const file = path.join(dir, "demo-lab", "lab.md");
    const r = labkit("lint", dir);
    expect(r.stdout.trim().split("\n")).toEqual([
      expect.stringMatching(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:${lineOf(runAnswers, "```bash run")}: warning: the Run block here .* is the solution of check "file-made" .* \\(fix: `)),
    ]);
    expect(r.stderr).toMatch(/1 lab\(s\), no errors, 1 warning\(s\)/);
    expect(r.status).toBe(0);
    expect(labkit("lint", dir, "--strict").status).toBe(1);

    const chained = labsDir(GOOD.replace("tags: [demo, test]", "tags: [demo, test]\nnext: no-such-lab"));
    const c = labkit("lint", chained);
    expect(c.stdout).toMatch(/lab\.md:\d+: next names "no-such-lab", which is not a lab in/);
    expect(c.status).toBe(1);
  });

  it("render: the browser's view as JSON, without scripts", () => {
    const r = labkit("render", LABS);
    expect(r.status).toBe(0);
    const views = JSON.parse(r.stdout) as LabView[];
    const four = views.filter((v) => ["cgroups-by-hand", "namespaces-by-hand", "networking", "volumes"].includes(v.id));
    expect(four).toHaveLength(4);
    expect(four.every((v) => v.steps.length >= 3 && v.steps.every((s) => s.html.length > 0) && v.recapHtml && v.steps.some((s) => s.quizzes.length > 0))).toBe(true);
    // next: carries the next lab's title
    expect(four.find((v) => v.id === "networking")!.next).toEqual({ id: "volumes", title: views.find((v) => v.id === "volumes")!.title });
    // lines that only check, solution and setup scripts contain
    // (in these four labs' views: other labs may show such commands on purpose)
    const shown = JSON.stringify(four);
    for (const hidden of ["NSpid", "tail /dev/zero", "readlink /proc/1/ns/uts", "$1 == "]) expect(shown).not.toContain(hidden);
  });

  it("test: a table per lab, exit 0 when proved and 1 when not", () => {
    const ok = labkit("test", LABS, "--lab", "cgroups-by-hand");
    expect(ok.stdout).toMatch(/cgroups-by-hand: ok/);
    expect(ok.stdout).toMatch(/oom\s+oom-kill\s+fail\s+pass\s+ok/);
    expect(ok.status).toBe(0);

    const dir = labsDir(GOOD.replace("test -f /root/made # CHECK-SECRET-1", "true"));
    const bad = labkit("test", dir);
    expect(bad.stdout).toMatch(/demo-lab: FAILED/);
    expect(bad.stdout).toMatch(/file-made: passes before its solution ran/);
    expect(bad.status).toBe(1);

    expect(labkit("test", LABS, "--lab", "nope").status).toBe(2);
    const gone = labkit("test", LABS, "--runner", "host", "--lab", "cgroups-by-hand");
    expect(gone.stderr).toMatch(/--runner is gone: labs are proved in a Berth sandbox/);
    expect(gone.status).toBe(2);
    const typo = labkit("test", LABS, "--driver", "unshare", "--lab", "cgroups-by-hand");
    expect(typo.stderr).toMatch(/unknown sandbox driver "unshare"/);
    expect(typo.status).toBe(2);
  }, 360_000);
});
