// The complete example in docs/lab-format.md must stay a working lab, proved as `labkit test` proves
// one: in a Berth sandbox of the default driver. As root.
import { readFileSync } from "node:fs";
import path from "node:path";
import { expect, it } from "vitest";
import { parseLab, testLab } from "../src/index.js";
import { inLabSandbox } from "./lab-sandbox.js";

it("the example in docs/lab-format.md lints clean and passes labkit test", async () => {
  const doc = readFileSync(path.resolve(import.meta.dirname, "../../../docs/lab-format.md"), "utf8");
  const m = /## A complete example\n\n````markdown\n([\s\S]*?)\n````\n/.exec(doc);
  expect(m, "docs/lab-format.md has no ````markdown example").not.toBeNull();
  const { lab, errors, warnings } = parseLab(m![1]! + "\n", "labs/hello-hostname/lab.md");
  expect(errors).toEqual([]);
  expect(warnings).toEqual([]);
  expect(lab!.steps.map((s) => s.id)).toEqual(["rename"]);
  expect(lab!.recap).toMatch(/one kernel, many names/);
  const report = await inLabSandbox("docs-example", (runner) => testLab(lab!, runner));
  expect(report.checks.flatMap((c) => c.problems)).toEqual([]);
  expect(report.quizzes.map((q) => [q.quizId, q.ok])).toEqual([["uts-quiz", true]]);
  expect(report.ok).toBe(true);
}, 120_000);
