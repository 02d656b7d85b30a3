// Automatic checks: while a learner has a lab open (LabPresence: a live socket), the auto checks
// of their current step that have not passed run every poll interval; a pass is recorded and pushed
// to the learner's sockets as "check:result". Polling stops when every auto check of the step has
// passed, when the step has none, and when the learner leaves (last socket closed); entering a step
// (poke) looks again at once. A failing poll leaves no row (CheckRunner record "pass").
//
// Cost: each run is a trusted exec (a helper process, its mounts and cgroups: tens of ms of CPU),
// so a check runs when its answer may have changed rather than on every interval:
// - after a command: the learner ended a line they typed (TerminalSession.lastCommandAt), and its
//   output has been quiet for SETTLE_MS (the prompt is back): the check runs then, so a learner
//   whose command solved the task sees it pass a moment later; commands in quick succession share
//   a run (one interval apart at least);
// - output nobody typed for (a background job): every poll interval, as declared by the lab;
// - after a file is saved from the editor (fileSaved, called by the file routes): as after a
//   command, since a Dockerfile written in the editor is the answer as much as a typed command;
// - otherwise (a quiet terminal, or keys typed that have not run anything: the echo of a half-typed
//   command changes nothing): QUIET_FACTOR intervals, at most 30 s (changes made in ways Berth does
//   not see, e.g. by a background job that prints nothing, are still seen).
// and over all of a learner's auto checks in a lab, a run budget (RunBudget: a burst of two, then
// one per 3 s) caps the cost whatever the pace. A command wakes the loop (TerminalSession.onCommand),
// and so does an editor save (fileSaved), so nothing polls to notice either. Cost and latency: test/bench/check-roundtrip.ts.
//
// Ownership: one Loop per (learner, lab) with at most one timer and its command subscriptions on the
// sandbox's terminals, both ended by stop(); AutoChecks owns the loops and its presence
// subscription, and dispose() ends them all. A tick never overlaps the
// previous one: the next timer is set when a tick ends.
import { LIMITS, type LabCheck } from "@berth/labkit";
import type { Logger } from "pino";
import type { Db } from "../db/index.js";
import type { LabCatalog } from "../labs/catalog.js";
import type { LearnerContexts } from "../labs/learner-context.js";
import type { LabPresence } from "../labs/presence.js";
import type { SandboxManager } from "../sandboxes/sandbox-manager.js";
import type { TerminalSession } from "../terminals/terminal-session.js";
import type { CheckRunner } from "./check-runner.js";
import type { ProgressBook } from "./progress.js";

export interface AutoChecksDeps {
  db: Db;
  catalog: LabCatalog;
  contexts: LearnerContexts;
  sandboxes: SandboxManager;
  checks: CheckRunner;
  progress: ProgressBook;
  presence: LabPresence;
  log: Logger;
}

interface Loop {
  userId: string;
  labId: string;
  timer: NodeJS.Timeout | undefined;
  running: boolean;
  stopped: boolean;
  /** A poke arrived during a tick: tick again right after it. */
  again: boolean;
  /** check id → when it last ran (ms). */
  lastRun: Map<string, number>;
  /** Runs this loop may make now (RunBudget): what bounds its cost however fast the learner works. */
  budget: RunBudget;
  /** When the learner last saved a file from the editor (ms; 0: never): counts as a command. */
  lastSaveAt: number;
  /** The sandbox's terminals this loop listens to for commands, with each unsubscribe. */
  watched: Map<TerminalSession, () => void>;
  /** The current step's auto checks not passed yet, and the passed checks; undefined: read again. */
  known?: { pending: AutoCheck[]; passed: Set<string> };
}

/** What the polling cost so far (for the benchmark and the logs). */
export interface AutoCheckStats {
  ticks: number;
  runs: number;
  passes: number;
  /** Wall time spent in check runs (ms). */
  runMs: number;
}

export class AutoChecks {
  private readonly loops = new Map<string, Loop>();
  private readonly unsubscribe: () => void;
  readonly stats: AutoCheckStats = { ticks: 0, runs: 0, passes: 0, runMs: 0 };

  constructor(private readonly deps: AutoChecksDeps) {
    this.unsubscribe = deps.presence.onChange((userId, labId, open) => (open ? this.start(userId, labId) : this.stop(userId, labId)));
  }

  /** Look at the learner's current step again now (they entered a step). */
  poke(userId: string, labId: string): void {
    const loop = this.loops.get(key(userId, labId));
    if (!loop || loop.stopped) return;
    loop.known = undefined;
    if (loop.running) {
      loop.again = true;
      return;
    }
    this.schedule(loop, 0);
  }

  /**
   * The learner saved a file of this lab's sandbox from the editor: its checks may pass now. Treated
   * as a command (checkDueAt), so the same settle time, interval and run budget apply.
   */
  fileSaved(userId: string, labId: string): void {
    const loop = this.loops.get(key(userId, labId));
    if (!loop || loop.stopped) return;
    loop.lastSaveAt = Date.now();
    this.commandEntered(loop);
  }

  dispose(): void {
    this.unsubscribe();
    for (const loop of this.loops.values()) this.end(loop);
    this.loops.clear();
  }

  private start(userId: string, labId: string): void {
    const k = key(userId, labId);
    if (this.loops.has(k)) return;
    const loop: Loop = { userId, labId, timer: undefined, running: false, stopped: false, again: false, lastRun: new Map(), budget: new RunBudget(), watched: new Map(), lastSaveAt: 0 };
    this.loops.set(k, loop);
    this.schedule(loop, 0);
  }

  private stop(userId: string, labId: string): void {
    const k = key(userId, labId);
    const loop = this.loops.get(k);
    if (!loop) return;
    this.loops.delete(k);
    this.end(loop);
  }

  private end(loop: Loop): void {
    loop.stopped = true;
    for (const unsubscribe of loop.watched.values()) unsubscribe();
    loop.watched.clear();
    if (loop.timer) clearTimeout(loop.timer);
    loop.timer = undefined;
  }

  /** A command was entered in one of the sandbox's terminals: look once its output may have settled. */
  private commandEntered(loop: Loop): void {
    if (loop.stopped) return;
    if (loop.running) loop.again = true;
    else this.schedule(loop, SETTLE_MS);
  }

  /** Listen for commands in every terminal the sandbox has now (and no longer in those gone). */
  private watchTerminals(loop: Loop, terms: TerminalSession[]): void {
    for (const [t, unsubscribe] of loop.watched) {
      if (terms.includes(t)) continue;
      unsubscribe();
      loop.watched.delete(t);
    }
    for (const t of terms) if (!loop.watched.has(t)) loop.watched.set(t, t.onCommand(() => this.commandEntered(loop)));
  }

  private schedule(loop: Loop, delayMs: number): void {
    if (loop.stopped) return;
    if (loop.timer) clearTimeout(loop.timer);
    loop.timer = setTimeout(() => {
      loop.timer = undefined;
      void this.tick(loop);
    }, delayMs);
  }

  private async tick(loop: Loop): Promise<void> {
    if (loop.stopped || loop.running) return;
    loop.running = true;
    loop.again = false;
    this.stats.ticks++;
    let next: number | null = null;
    try {
      next = await this.runDue(loop);
    } catch (err) {
      this.deps.log.warn({ err: String(err), userId: loop.userId, labId: loop.labId }, "automatic check failed to run");
      next = LIMITS.defaultPollMs;
    } finally {
      loop.running = false;
    }
    if (loop.again) this.schedule(loop, 0);
    else if (next !== null) this.schedule(loop, next);
    // else: nothing to poll on this step until the learner enters another (poke).
  }

  /** Runs the auto checks that are due; returns when to look again (ms), or null for "not until poked". */
  private async runDue(loop: Loop): Promise<number | null> {
    const { userId, labId } = loop;
    const entry = this.deps.catalog.get(labId, userId);
    if (!entry) return null;
    // The step and what passed are read from the database once per poke, and again before a run:
    // a tick with nothing due costs no query.
    if (!loop.known) {
      const place = await this.deps.db.labProgress.findUnique({ where: { userId_labId: { userId, labId } } });
      // Before the player reports a step, the learner is on the first one.
      const step = entry.lab.steps.find((s) => s.id === place?.currentStep) ?? entry.lab.steps[0];
      const autos = (step?.checks ?? []).filter((c): c is AutoCheck => c.pollMs !== null);
      const passed = autos.length > 0 ? await this.deps.progress.passedChecks(userId, labId) : new Set<string>();
      loop.known = { pending: autos.filter((c) => !passed.has(c.id)), passed };
    }
    const { pending, passed } = loop.known;
    if (pending.length === 0) return null;

    const sb = this.deps.sandboxes.find(userId, labId);
    if (!sb?.ready) return Math.min(...pending.map((c) => c.pollMs)); // being made, or reaped: try later

    const now = Date.now();
    const terms = [...sb.terminals.values()];
    this.watchTerminals(loop, terms);
    const latest = (pick: (t: (typeof terms)[number]) => number) => Math.max(0, ...terms.map(pick));
    const lastCommand = Math.max(latest((t) => t.lastCommandAt), loop.lastSaveAt);
    const lastOutput = latest((t) => t.lastOutputAt);
    const lastInput = latest((t) => t.lastInputAt);
    const activity: TerminalActivity = { lastCommand, lastOutput, lastInput };
    const dueAt = (c: AutoCheck) => checkDueAt(c.pollMs, loop.lastRun.get(c.id) ?? 0, activity);
    // A little slack: a tick that wakes early still runs a check that is nearly due.
    const due = pending.filter((c) => dueAt(c) - DUE_SLACK_MS <= now);
    if (due.length > 0) {
      // A click may have passed a check (or one it needs) since: read what passed again.
      for (const id of await this.deps.progress.passedChecks(userId, labId)) passed.add(id);
      const ctx = this.deps.contexts.for(userId, entry.lab);
      for (const check of due) {
        if (loop.stopped) return null;
        if (!loop.budget.take(Date.now())) break; // the rest when the budget allows (below)
        loop.lastRun.set(check.id, Date.now());
        if (passed.has(check.id) || !check.needs.every((id) => passed.has(id))) continue;
        const started = performance.now();
        const result = await this.deps.checks.run(userId, entry, check.id, sb, ctx, { record: "pass" });
        this.stats.runs++;
        this.stats.runMs += performance.now() - started;
        if (!result) continue;
        this.stats.passes++;
        passed.add(check.id);
        const progress = await this.deps.progress.view(userId, entry, ctx);
        for (const w of this.deps.presence.watchers(userId, labId)) w.pushCheckResult({ labId, result, progress });
      }
      // (A poke during the runs dropped what was known: the next tick reads it again.)
      if (loop.known) loop.known.pending = pending.filter((c) => !passed.has(c.id));
    }
    const still = loop.known?.pending ?? pending;
    if (still.length === 0) return null;
    // Wake at the poll interval at the latest (output may make a quiet check due again); a command
    // wakes the loop itself (commandEntered).
    const next = Math.min(...still.map((c) => Math.min(dueAt(c), Date.now() + c.pollMs)));
    return Math.max(MIN_TICK_MS, next - Date.now(), loop.budget.waitMs(Date.now()));
  }
}

type AutoCheck = LabCheck & { pollMs: number };

/**
 * A token bucket: at most RUN_BURST runs at once, refilled at one run per RUN_EVERY_MS. A learner
 * who works in bursts gets their checks at once; one who enters a command every second cannot
 * make the checks cost more than one run per RUN_EVERY_MS (a run is ~50 ms of CPU).
 */
export class RunBudget {
  private tokens = RUN_BURST;
  private at = 0;

  /** Takes one run if there is one left (at `now`, ms). */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** How long until the next run may be taken (0: now). */
  waitMs(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) * RUN_EVERY_MS);
  }

  private refill(now: number): void {
    if (this.at !== 0) this.tokens = Math.min(RUN_BURST, this.tokens + (now - this.at) / RUN_EVERY_MS);
    this.at = now;
  }
}

/** The latest moments of a sandbox's terminals (ms; 0: never), from TerminalSession. */
export interface TerminalActivity {
  /** A line the learner typed something on was ended (Enter). */
  lastCommand: number;
  lastOutput: number;
  lastInput: number;
}

/** When an automatic check polled every `pollMs`, last run at `last` (0: never), is due again. */
export function checkDueAt(pollMs: number, last: number, t: TerminalActivity): number {
  if (t.lastCommand > last) {
    // A command was entered since: look as soon as its output has settled (and one interval
    // after it at the latest, for a command that goes on printing), but never twice within one
    // interval (commands typed in quick succession share a run).
    const settled = Math.max(t.lastCommand, t.lastOutput) + SETTLE_MS;
    return Math.max(last + pollMs, Math.min(settled, t.lastCommand + pollMs));
  }
  // Output that nobody typed for (a job in the background, a container starting) may be changing
  // what the check looks at: the check's own interval.
  if (t.lastOutput > last && t.lastInput <= last) return last + pollMs;
  // Nothing happened, or only typing that has not run anything yet (its echo included): the
  // answer is very likely the same, so look less often.
  return last + Math.min(pollMs * QUIET_FACTOR, QUIET_MAX_MS);
}

/** A check with no command or background output since its last run is polled this many times less often ... */
export const QUIET_FACTOR = 5;
/** ... but at least this often. */
export const QUIET_MAX_MS = 30_000;
/** A command's output is taken as finished after this long without output (a prompt came back). */
export const SETTLE_MS = 300;
const MIN_TICK_MS = 200;
const DUE_SLACK_MS = 50;
/** The run budget of one learner's lab (RunBudget): a burst of this many runs ... */
export const RUN_BURST = 2;
/** ... and one more per this long. */
export const RUN_EVERY_MS = 3_000;

const key = (userId: string, labId: string) => `${userId}\0${labId}`;
