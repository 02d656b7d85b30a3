// testLab's onEvent: each script run is told as it finishes, in the order the proof runs them (the
// browser editor's "Prove it" streams these), and agrees with the final report. In a real Berth
// sandbox (the default driver), as root.
import { describe, expect, it } from "vitest";
import { parseLab, testLab, type TestLabEvent } from "../src/index.js";
import { inLabSandbox } from "./lab-sandbox.js";
import { FILE, GOOD } from "./fixtures.js";

describe("testLab onEvent", () => {
  it("reports setup, each check before, the solutions and each check after, in order", async () => {
    const lab = parseLab(GOOD, FILE).lab!;
    const events: TestLabEvent[] = [];
    const report = await inLabSandbox("events", (runner) => testLab(lab, runner, { onEvent: (e) => events.push(e) }));
    expect(report.ok).toBe(true);
    const first = lab.steps[0]!;
    const seq = events.map((e) => (e.kind === "check" ? `${e.phase}:${e.checkId}` : e.kind === "quiz" ? `quiz:${e.report.quizId}` : e.kind));
    expect(seq[0]).toBe("setup");
    // The first step's checks all fail before any solution of that step runs, and pass after.
    const c = first.checks[0]!.id;
    expect(seq.indexOf(`before:${c}`)).toBeLessThan(seq.indexOf("solution"));
    expect(seq.indexOf("solution")).toBeLessThan(seq.indexOf(`after:${c}`));
    for (const e of events) if (e.kind === "check") expect(e.ok).toBe(e.phase === "before" ? !e.run.passed : e.run.passed);
    expect(events.filter((e) => e.kind === "check").length).toBe(report.checks.length * 2);
    expect(events.every((e) => e.kind === "quiz" ? e.report.ok : e.ok)).toBe(true);
  }, 120_000);
});
