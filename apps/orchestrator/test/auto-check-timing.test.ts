// When an automatic check runs (grading/auto-checks.ts, checkDueAt) and what a terminal counts as
// a command (TerminalSession.lastCommandAt). No sandbox, no root: the policy is a pure function,
// and the session's agent is a recorder of the bytes it was given. The real loop, typed into a real
// sandbox's terminal, is driven by lab-api.test.ts and the browser tests.
import { describe, expect, it } from "vitest";
import type { AgentClient } from "@berth/sandbox";
import { checkDueAt, QUIET_FACTOR, QUIET_MAX_MS, RUN_BURST, RUN_EVERY_MS, RunBudget, SETTLE_MS } from "../src/grading/auto-checks.js";
import { TerminalSession } from "../src/terminals/terminal-session.js";

const POLL = 2000;
const LAST = 100_000; // the check's last run

describe("checkDueAt", () => {
  it("runs a check that never ran at once", () => {
    expect(checkDueAt(POLL, 0, { lastCommand: 0, lastOutput: 5, lastInput: 0 })).toBeLessThanOrEqual(POLL);
  });

  it("after a command, runs once its output has been quiet for a moment", () => {
    // Entered 1.5 s after the last run, output until 1.8 s: due at 1.8 s + SETTLE_MS.
    const due = checkDueAt(POLL, LAST, { lastCommand: LAST + 1500, lastOutput: LAST + 1800, lastInput: LAST + 1500 });
    expect(due).toBe(LAST + 1800 + SETTLE_MS);
  });

  it("does not run again within one interval of the last run, however quick the command", () => {
    const due = checkDueAt(POLL, LAST, { lastCommand: LAST + 50, lastOutput: LAST + 60, lastInput: LAST + 50 });
    expect(due).toBe(LAST + POLL);
  });

  it("runs one interval after a command that goes on printing", () => {
    const due = checkDueAt(POLL, LAST, { lastCommand: LAST + 1000, lastOutput: LAST + 60_000, lastInput: LAST + 1000 });
    expect(due).toBe(LAST + 1000 + POLL);
  });

  it("polls at the check's interval while output comes that nobody typed for", () => {
    expect(checkDueAt(POLL, LAST, { lastCommand: LAST - 5000, lastOutput: LAST + 700, lastInput: LAST - 5000 })).toBe(LAST + POLL);
  });

  it("looks less often while the terminal is quiet, and while keys are typed that ran nothing yet", () => {
    const quiet = LAST + Math.min(POLL * QUIET_FACTOR, QUIET_MAX_MS);
    expect(checkDueAt(POLL, LAST, { lastCommand: LAST - 9000, lastOutput: LAST - 9000, lastInput: LAST - 9000 })).toBe(quiet);
    // Typing echoes (output), but without an Enter nothing has run.
    expect(checkDueAt(POLL, LAST, { lastCommand: LAST - 9000, lastOutput: LAST + 900, lastInput: LAST + 880 })).toBe(quiet);
    // Never slower than QUIET_MAX_MS, whatever the lab's interval.
    expect(checkDueAt(60_000, LAST, { lastCommand: 0, lastOutput: 0, lastInput: 0 })).toBe(LAST + QUIET_MAX_MS);
  });
});

describe("RunBudget", () => {
  it("allows a burst, then one run per RUN_EVERY_MS however often it is asked", () => {
    const budget = new RunBudget();
    const t0 = 1_000_000;
    for (let i = 0; i < RUN_BURST; i++) expect(budget.take(t0)).toBe(true);
    expect(budget.take(t0)).toBe(false);
    expect(budget.waitMs(t0)).toBe(RUN_EVERY_MS);
    // Asked every 100 ms for a minute: one run per RUN_EVERY_MS (give or take one, at the edges).
    let runs = 0;
    for (let t = t0; t < t0 + 60_000; t += 100) if (budget.take(t)) runs++;
    expect(Math.abs(runs - 60_000 / RUN_EVERY_MS)).toBeLessThanOrEqual(1);
    // A pause fills it up again, to the burst and no more.
    const later = t0 + 10 * 60_000;
    expect(budget.waitMs(later)).toBe(0);
    for (let i = 0; i < RUN_BURST; i++) expect(budget.take(later)).toBe(true);
    expect(budget.take(later)).toBe(false);
  });
});

describe("TerminalSession's record of commands", () => {
  function session() {
    const sent: Uint8Array[] = [];
    const agent = { sendInput: (_handle: number, bytes: Uint8Array) => void sent.push(bytes) } as unknown as AgentClient;
    return { s: new TerminalSession("1", 1, agent, { cols: 80, rows: 24 }), sent };
  }
  const enc = (text: string) => Buffer.from(text, "utf8");

  it("counts Enter after typed text as a command, tells its listeners, and passes every byte on", async () => {
    const { s, sent } = session();
    let told = 0;
    const unsubscribe = s.onCommand(() => told++);
    s.input(enc("ls /t"));
    expect(s.lastCommandAt).toBe(0);
    expect(s.lastInputAt).toBeGreaterThan(0);
    expect(told).toBe(0);
    s.input(enc("mp\r"));
    expect(s.lastCommandAt).toBeGreaterThan(0);
    expect(told).toBe(1);
    expect(Buffer.concat(sent).toString()).toBe("ls /tmp\r");
    unsubscribe();
    s.input(enc("pwd\r"));
    expect(told).toBe(1);
    s.dispose();
  });

  it("does not count Enter on an empty line", async () => {
    const { s } = session();
    s.input(enc("\r"));
    s.input(enc("\r\r"));
    expect(s.lastCommandAt).toBe(0);
    // A pasted script: its text, then each of its lines, counts.
    s.input(enc("echo a\necho b\n"));
    const at = s.lastCommandAt;
    expect(at).toBeGreaterThan(0);
    s.dispose();
  });

  it("counts output apart from input", () => {
    const { s } = session();
    s.output(enc("root@sandbox:~# "));
    expect(s.lastOutputAt).toBeGreaterThan(0);
    expect(s.lastInputAt).toBe(0);
    s.dispose();
  });
});
