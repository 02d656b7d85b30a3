// Which learner has which sandbox. One sandbox per learner and lab: handed over from the warm pool
// (or created), recorded in the database, connected to through its agent, found again after an
// orchestrator restart, and reaped when idle or too old.
import {
  AgentClient,
  type TrustedExecResult,
  type SandboxDriver,
  type SandboxInfo,
} from "@berth/sandbox";
import type { SandboxPhase } from "@berth/protocol";
import type { Logger } from "pino";
import type { Db } from "../db/index.js";
import type { OrchestratorConfig } from "../config.js";
import { TerminalSession } from "../terminals/terminal-session.js";
import { WarmPool, newSandboxSpec, type PoolSandbox } from "./warm-pool.js";
import { SandboxCaps } from "./sandbox-caps.js";
import { endNotice, limitNotices, LIMIT_WATCH_MS, type LimitReading } from "./limit-notices.js";

/** A learner's namespace in the lab registry (one repository path component). */
export function registryOwnerFor(userId: string): string {
  return `u-${userId.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 60)}`;
}

export interface LearnerSandbox {
  id: string;
  userId: string;
  labId: string;
  hostname: string;
  createdAt: Date;
  expiresAt: Date;
  agent: AgentClient;
  terminals: Map<string, TerminalSession>;
  /**
   * Output for a pty handle that no TerminalSession claims yet: the agent may send a shell's first
   * prompt before the continuation of our `pty.start` request has run. Kept until claimed.
   */
  unclaimed: Map<number, Buffer[]>;
  /** Lab setup ran (or was not needed): checks may run. */
  ready: boolean;
}

const UNCLAIMED_LIMIT = 256 * 1024;
/** The size a sandbox's first shell starts at, until its first viewer attaches and resizes it. */
export const FIRST_SHELL = { cols: 80, rows: 24 };

export type PhaseReporter = (phase: SandboxPhase, message: string) => void;

/** A learner's sandbox for a lab started (no `endedReason`) or ended (with it): the player shows it. */
export interface SandboxLifetimeChange {
  userId: string;
  labId: string;
  sandboxId: string;
  expiresAt: Date;
  endedReason?: string;
}

/** The player's view of a learner's sandbox (GET /api/labs/:lab/sandbox). */
export interface SandboxLifetime {
  sandboxId: string;
  state: string;
  driver: string;
  createdAt: Date;
  expiresAt: Date;
  idleReapAt: Date | null;
  endedReason: string | null;
  idleTimeoutMs: number;
}

/** A script's result, whether it ran as a check (trusted) or through the agent: one shape for both. */
export type ExecResult = TrustedExecResult;

/**
 * What the warm pool makes ready in a sandbox before anyone asks for it: the orchestrator's link to
 * its agent and terminal 1's shell (at FIRST_SHELL's size), with the shell's output so far. The
 * hand-over then has neither to connect nor to start a shell: both cost a few hundred ms of a busy
 * host, on the learner's way to their first prompt.
 */
interface WarmLink {
  agent: AgentClient;
  shell: number;
  bytes: Buffer[];
  /** The shell ended while the sandbox waited (the hand-over then starts another). */
  exited: boolean;
  /** Stops collecting the shell's output (the learner's sandbox takes it over). */
  stop(): void;
}

export class SandboxManager {
  private readonly live = new Map<string, LearnerSandbox>(); // by sandbox id
  private readonly pending = new Map<string, Promise<LearnerSandbox>>(); // by user:lab
  readonly pool: WarmPool<WarmLink>;
  /** Per-account and total caps on live learner sandboxes, with the queue (sandbox-caps.ts). */
  readonly caps: SandboxCaps;
  private reaper: NodeJS.Timeout | undefined;
  /** Watches live sandboxes' limit counters (limit-notices.ts); the last reading by sandbox id. */
  private limitWatch: NodeJS.Timeout | undefined;
  private readonly limitReadings = new Map<string, LimitReading>();
  private watchingLimits = false;
  private readonly lifetimeListeners = new Set<(change: SandboxLifetimeChange) => void>();
  private readonly connectedListeners = new Set<(sb: LearnerSandbox) => void>();
  /** Terminals whose pty.start is in flight, per sandbox (see terminal()). */
  private readonly startingTerminals = new WeakMap<LearnerSandbox, Map<string, Promise<TerminalSession>>>();

  constructor(
    private readonly driver: SandboxDriver,
    private readonly db: Db,
    private readonly config: OrchestratorConfig,
    private readonly log: Logger,
    /**
     * Makes a new sandbox ready for its lab: the lab's files, its hidden setup, the setups of the
     * steps the learner reached (labs/learner-labs.ts prepareSandbox). Throws when a setup fails.
     */
    private readonly prepare: (sb: LearnerSandbox) => Promise<void>,
  ) {
    this.pool = new WarmPool<WarmLink>(driver, config.instance, config.warmPoolSize, config.sandboxLimits, log, {
      warm: (info) => this.warmLink(info.id),
      cool: (link) => {
        link.stop();
        link.agent.close();
      },
    });
    this.caps = new SandboxCaps(config.sandboxCaps, Math.round(config.idleTimeoutMs / 60_000));
  }

  /**
   * After a (re)start: sandboxes the database says are running and the driver still has are kept
   * (learners get their shells back); database rows without a sandbox are closed; sandboxes
   * without a row (an old warm pool) are destroyed.
   */
  async recover(): Promise<void> {
    const mine = `${this.config.instance}-`;
    const running = (await this.driver.list()).filter((s) => s.id.startsWith(mine));
    const byId = new Map(running.map((s) => [s.id, s]));
    const rows = await this.db.sandbox.findMany({ where: { state: { in: ["starting", "running"] }, id: { startsWith: mine } } });
    const kept = new Set<string>();
    for (const row of rows) {
      const info = byId.get(row.id);
      if (info && info.state === "running" && row.state === "running") {
        kept.add(row.id);
        this.caps.hold(row.id, row.userId, row.labId);
        continue;
      }
      await this.db.sandbox.update({ where: { id: row.id }, data: { state: "ended", endedAt: new Date(), endReason: "lost" } });
      if (info) await this.driver.destroy(row.id).catch(() => undefined);
    }
    for (const info of running) {
      if (!kept.has(info.id)) await this.driver.destroy(info.id).catch(() => undefined);
    }
    this.log.info({ kept: kept.size, destroyed: running.length - kept.size }, "sandboxes recovered");
  }

  start(): void {
    void this.pool.fill();
    this.reaper = setInterval(() => void this.reap().catch((err) => this.log.error({ err: String(err) }, "reap failed")), this.config.reapIntervalMs);
    this.reaper.unref();
    this.limitWatch = setInterval(() => void this.watchLimits().catch((err) => this.log.error({ err: String(err) }, "limit watch failed")), LIMIT_WATCH_MS);
    this.limitWatch.unref();
  }

  /** Tells each live sandbox's terminals when one of its limits acted since the last look. */
  async watchLimits(now = Date.now()): Promise<void> {
    if (this.watchingLimits) return; // a slow round (a busy host) is not overlapped by the next
    this.watchingLimits = true;
    try {
      for (const id of this.limitReadings.keys()) if (!this.live.has(id)) this.limitReadings.delete(id);
      for (const sb of [...this.live.values()]) {
        const stats = await this.driver.stats(sb.id).catch(() => undefined);
        if (!stats || this.live.get(sb.id) !== sb) continue;
        const { reading, notices } = limitNotices(this.limitReadings.get(sb.id), stats, { ...this.config.sandboxLimits, ...stats.limits }, now);
        this.limitReadings.set(sb.id, reading);
        for (const text of notices) {
          this.log.info({ sandbox: sb.id, notice: text }, "limit notice");
          for (const t of sb.terminals.values()) t.notice(text);
        }
      }
    } finally {
      this.watchingLimits = false;
    }
  }

  /** The learner's sandbox for this lab, made ready if need be. Concurrent calls share one attempt. */
  acquire(userId: string, labId: string, report: PhaseReporter = () => {}, signal?: AbortSignal): Promise<LearnerSandbox> {
    const key = `${userId}:${labId}`;
    const existing = this.pending.get(key);
    if (existing) return existing;
    const work = this.acquireNow(userId, labId, report, signal).finally(() => this.pending.delete(key));
    this.pending.set(key, work);
    return work;
  }

  private async acquireNow(userId: string, labId: string, report: PhaseReporter, signal?: AbortSignal): Promise<LearnerSandbox> {
    for (const sb of this.live.values()) {
      if (sb.userId === userId && sb.labId === labId) return sb;
    }
    // One from before a restart? Only this instance's (as recover() does): another orchestrator's
    // sandbox is its own to serve, and a failed reconnect below would end it.
    const row = await this.db.sandbox.findFirst({
      where: { userId, labId, state: "running", id: { startsWith: `${this.config.instance}-` } },
      orderBy: { createdAt: "desc" },
    });
    if (row) {
      report("booting", "Reconnecting to your sandbox");
      try {
        return await this.connect({ id: row.id, userId, labId, hostname: row.hostname, createdAt: row.createdAt, expiresAt: row.expiresAt, ready: true });
      } catch (err) {
        this.log.warn({ sandbox: row.id, err: String(err) }, "could not reconnect; starting a new sandbox");
        await this.end(row.id, "lost");
      }
    }

    // Room under the caps (or a place in the queue, or "close another lab first").
    const ticket = await this.caps.admit(userId, labId, report, signal);
    report("allocating", "Finding a sandbox for you");
    // The pool refills once this hand-over is done (warm-pool.ts): its creation would compete for
    // the CPU with the learner's first prompt.
    let handedOver!: () => void;
    const handOver = new Promise<void>((resolve) => (handedOver = resolve));
    const taken = this.pool.take(handOver);
    try {
      return await this.handOver(userId, labId, report, ticket, taken);
    } finally {
      handedOver();
    }
  }

  private async handOver(userId: string, labId: string, report: PhaseReporter, ticket: Awaited<ReturnType<SandboxCaps["admit"]>>, taken: PoolSandbox<WarmLink> | undefined): Promise<LearnerSandbox> {
    let info = taken?.info;
    // A link whose agent went away while the sandbox waited in the pool is not used (a fresh connect below).
    const warm = taken?.warm?.agent.isOpen ? taken.warm : undefined;
    if (taken?.warm && !warm) taken.warm.stop();
    // A warm sandbox was made for nobody: its pushes to the lab registry now go to this learner's
    // namespace, so their images follow them from lab to lab. That, and the sandbox's row, are
    // written while the sandbox joins the live ones below: its warm shell is on the learner's screen
    // from then on (onConnected), and neither write is needed before its setup runs. (On a busy
    // host each write waited up to a few hundred ms behind the lab page's own rendering.)
    let owned: Promise<void> | undefined;
    try {
      if (!info) {
        report("booting", "Starting a new sandbox (no warm one was free)");
        info = await this.driver.create({ ...newSandboxSpec(this.config.instance, this.config.sandboxLimits), owner: registryOwnerFor(userId) });
      } else {
        owned = this.driver.assignOwner?.(info.id, registryOwnerFor(userId));
      }
      ticket.held(info.id); // end() releases it
    } finally {
      ticket.done();
    }
    const now = new Date();
    const expiresAt = new Date(now.getTime() + this.config.maxLifetimeMs);
    const recorded = this.db.sandbox.create({
      data: { id: info.id, userId, labId, driver: this.driver.name, hostname: info.hostname, state: "starting", createdAt: now, lastActiveAt: now, expiresAt },
    });
    const written = Promise.all([owned, recorded]);
    written.catch(() => undefined); // awaited below; this only covers a connect that throws first
    const sb = await this.connect({ id: info.id, userId, labId, hostname: info.hostname, createdAt: now, expiresAt, ready: false }, warm);
    try {
      await written;
    } catch (err) {
      this.log.error({ sandbox: info.id, err: String(err) }, "hand-over failed");
      await this.end(info.id, "setup-failed");
      throw err;
    }
    report("booting", "Preparing the lab");
    try {
      await this.prepare(sb);
    } catch (err) {
      this.log.error({ labId, err: String(err) }, "lab setup failed");
      await this.end(sb.id, "setup-failed");
      throw err;
    }
    sb.ready = true;
    // The learner's first shell is part of the hand-over (at a stand-in size: the attach resizes
    // it): whoever acquired the sandbox attaches a terminal next, and the pool's refill waits for it.
    const firstShell = this.terminal(sb, "1", FIRST_SHELL.cols, FIRST_SHELL.rows).catch(() => undefined);
    await this.db.sandbox.update({ where: { id: sb.id }, data: { state: "running" } });
    await firstShell;
    this.emitLifetime({ userId, labId, sandboxId: sb.id, expiresAt });
    return sb;
  }

  /** The orchestrator's link to a sandbox's agent (its warnings logged, at most once a second). */
  private async dialAgent(id: string): Promise<AgentClient> {
    // What the sandbox's agent sent that was dropped, and terminal input dropped for a stopped agent
    // or past the input rate (AgentClient's caps), are logged (at most once a second per link).
    const onWarning = (message: string) => this.log.warn({ sandbox: id }, `agent link: ${message}`);
    return AgentClient.connect(await this.driver.connect(id), { timeoutMs: 10_000, onWarning });
  }

  /** For the warm pool (WarmLink): the agent's link and terminal 1's shell of a sandbox nobody has yet. */
  private async warmLink(id: string): Promise<WarmLink> {
    const agent = await this.dialAgent(id);
    const bytes: Buffer[] = [];
    let size = 0;
    const output = agent.onOutput((_handle, chunk) => {
      if (size + chunk.length > UNCLAIMED_LIMIT) return;
      size += chunk.length;
      bytes.push(Buffer.from(chunk));
    });
    const link = { agent, shell: -1, bytes, exited: false, stop: () => (output.dispose(), exit.dispose()) };
    const exit = agent.onEvent((ev) => {
      if (ev.event === "pty.exit" && ev.handle === link.shell) link.exited = true;
    });
    try {
      link.shell = (await agent.request({ op: "pty.start", key: "1", cols: FIRST_SHELL.cols, rows: FIRST_SHELL.rows })).handle;
      return link;
    } catch (err) {
      link.stop();
      agent.close();
      throw err;
    }
  }

  private async connect(base: Omit<LearnerSandbox, "agent" | "terminals" | "unclaimed">, warm?: WarmLink): Promise<LearnerSandbox> {
    const agent = warm?.agent ?? (await this.dialAgent(base.id));
    const sb: LearnerSandbox = { ...base, agent, terminals: new Map(), unclaimed: new Map() };
    warm?.stop();
    if (warm && !warm.exited) {
      // Terminal 1's shell started in the pool: it is this learner's now, with what it printed.
      // (From here on its output goes to the session below; nothing runs in between.)
      const term = new TerminalSession("1", warm.shell, agent, FIRST_SHELL);
      sb.terminals.set("1", term);
      for (const chunk of warm.bytes) term.output(chunk);
    }
    agent.onOutput((handle, bytes) => {
      const owner = [...sb.terminals.values()].find((t) => t.handle === handle);
      if (owner) return owner.output(bytes);
      const kept = sb.unclaimed.get(handle) ?? [];
      if (kept.reduce((n, b) => n + b.length, 0) < UNCLAIMED_LIMIT) kept.push(Buffer.from(bytes));
      sb.unclaimed.set(handle, kept);
    });
    agent.onEvent((ev) => {
      if (ev.event !== "pty.exit") return;
      sb.unclaimed.delete(ev.handle);
      for (const [key, t] of sb.terminals) {
        if (t.handle !== ev.handle) continue;
        t.exit(ev.exitCode);
        t.dispose();
        sb.terminals.delete(key);
      }
    });
    agent.onClose(() => {
      // The agent went away (sandbox destroyed, or killed by the learner): forget the connection;
      // the next acquire reconnects or starts afresh.
      if (this.live.get(sb.id) === sb) this.live.delete(sb.id);
      for (const t of sb.terminals.values()) t.dispose();
    });
    this.live.set(sb.id, sb);
    for (const listener of this.connectedListeners) {
      try {
        listener(sb);
      } catch (err) {
        this.log.error({ err: String(err) }, "sandbox connect listener failed");
      }
    }
    return sb;
  }

  /** The terminal `key` of a sandbox: the same shell every time while it lives. */
  terminal(sb: LearnerSandbox, key: string, cols: number, rows: number): Promise<TerminalSession> {
    const known = sb.terminals.get(key);
    if (known && !known.exited) return Promise.resolve(known);
    // Two starts of one key at once (sandbox:prepare's and the attach's) share one pty.
    let starting = this.startingTerminals.get(sb);
    if (!starting) this.startingTerminals.set(sb, (starting = new Map()));
    const inFlight = starting.get(key);
    if (inFlight) return inFlight;
    const work = this.startTerminal(sb, key, cols, rows).finally(() => starting.delete(key));
    starting.set(key, work);
    return work;
  }

  private async startTerminal(sb: LearnerSandbox, key: string, cols: number, rows: number): Promise<TerminalSession> {
    // A shell that outlived us (orchestrator restart) is re-attached by the agent, which then sends
    // its replay ring: the new session's screen is rebuilt from it (it arrives before the answer
    // to the gateway's next request, the resize, so before the first viewer's snapshot).
    const started = await sb.agent.request({ op: "pty.start", key, cols, rows });
    const term = new TerminalSession(key, started.handle, sb.agent, { cols, rows });
    term.restoring = started.reattached;
    sb.terminals.set(key, term);
    for (const bytes of sb.unclaimed.get(started.handle) ?? []) term.output(bytes);
    sb.unclaimed.delete(started.handle);
    return term;
  }

  /**
   * Checks and lab setup: run by the driver out of the learner's reach (trusted tools, a script
   * nothing inside can read, a process nothing inside can see or signal). See SandboxDriver.execTrusted.
   */
  async execTrusted(sb: LearnerSandbox, script: string, timeoutMs: number, maxOutputBytes = 16 * 1024): Promise<ExecResult> {
    return this.driver.execTrusted(sb.id, script, { timeoutMs, maxOutputBytes });
  }

  /**
   * A script through the sandbox's agent, as the learner's own shell would run it (solutions, tests):
   * never for grading, since the learner controls everything it runs.
   */
  async exec(sb: LearnerSandbox, script: string, timeoutMs: number, maxOutputBytes = 16 * 1024): Promise<ExecResult> {
    // The script goes in on stdin, so it never shows in the sandbox's process list as an argument.
    const r = await sb.agent.request({
      op: "exec",
      cmd: ["bash", "-s"],
      stdin: Buffer.from(script, "utf8").toString("base64"),
      cwd: "/root",
      env: { HOME: "/root", PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" },
      timeoutMs,
      maxOutputBytes,
    });
    return {
      exitCode: r.exitCode,
      stdout: Buffer.from(r.stdout, "base64"),
      stderr: Buffer.from(r.stderr, "base64"),
      timedOut: r.timedOut,
      truncated: r.truncated,
      durationMs: r.durationMs,
    };
  }

  find(userId: string, labId: string): LearnerSandbox | undefined {
    for (const sb of this.live.values()) if (sb.userId === userId && sb.labId === labId) return sb;
    return undefined;
  }

  async touch(sb: LearnerSandbox): Promise<void> {
    await this.db.sandbox.update({ where: { id: sb.id }, data: { lastActiveAt: new Date() } }).catch(() => undefined);
  }

  /** Destroy sandboxes that nobody watches and nobody used for a while, and those past their lifetime. */
  async reap(now = Date.now()): Promise<void> {
    for (const sb of [...this.live.values()]) {
      const terms = [...sb.terminals.values()];
      const watched = terms.some((t) => t.viewerCount > 0);
      const last = Math.max(sb.createdAt.getTime(), ...terms.map((t) => t.lastActivity));
      if (now >= sb.expiresAt.getTime()) await this.end(sb.id, "expired");
      else if (!watched && now - last > this.config.idleTimeoutMs) await this.end(sb.id, "idle");
      // Keep the database's idea of activity current, for the reaper of a restarted orchestrator.
      else await this.db.sandbox.update({ where: { id: sb.id }, data: { lastActiveAt: new Date(watched ? now : last) } }).catch(() => undefined);
    }
    // Sandboxes kept across a restart whose learner has not come back are only in the database.
    const rows = await this.db.sandbox.findMany({
      where: { state: { in: ["starting", "running"] }, id: { startsWith: `${this.config.instance}-` } },
    });
    for (const row of rows) {
      if (this.live.has(row.id) || this.pending.has(`${row.userId}:${row.labId}`)) continue;
      if (now >= row.expiresAt.getTime()) await this.end(row.id, "expired");
      else if (now - row.lastActiveAt.getTime() > this.config.idleTimeoutMs) await this.end(row.id, "idle");
    }
  }

  async end(id: string, reason: string): Promise<void> {
    const sb = this.live.get(id);
    this.live.delete(id);
    this.caps.release(id);
    if (sb) {
      const why = endNotice(reason, this.config);
      for (const t of sb.terminals.values()) {
        if (why) t.notice(why);
        t.exit(-1);
        t.dispose();
      }
      sb.agent.close();
    }
    await this.driver.destroy(id).catch((err) => this.log.error({ sandbox: id, err: String(err) }, "destroy failed"));
    const ended = await this.db.sandbox.updateMany({ where: { id, state: { not: "ended" } }, data: { state: "ended", endedAt: new Date(), endReason: reason } });
    this.log.info({ sandbox: id, reason }, "sandbox ended");
    if (ended.count > 0) {
      const row = await this.db.sandbox.findUnique({ where: { id } }).catch(() => null);
      if (row) this.emitLifetime({ userId: row.userId, labId: row.labId, sandboxId: id, expiresAt: row.expiresAt, endedReason: reason });
    }
  }

  /** How long a sandbox nobody watches or uses lives on (BERTH_IDLE_MINUTES). */
  get idleTimeoutMs(): number {
    return this.config.idleTimeoutMs;
  }

  /**
   * Listen for a learner's sandbox joining the live ones (handed over, or reconnected), which is
   * before its lab's setup ends (`ready`): the gateway shows terminal 1's warm shell from then on.
   */
  onConnected(listener: (sb: LearnerSandbox) => void): () => void {
    this.connectedListeners.add(listener);
    return () => this.connectedListeners.delete(listener);
  }

  /** Listen for learners' sandboxes starting and ending (the gateway tells their browsers). */
  onLifetime(listener: (change: SandboxLifetimeChange) => void): () => void {
    this.lifetimeListeners.add(listener);
    return () => this.lifetimeListeners.delete(listener);
  }

  private emitLifetime(change: SandboxLifetimeChange): void {
    for (const listener of this.lifetimeListeners) {
      try {
        listener(change);
      } catch (err) {
        this.log.error({ err: String(err) }, "sandbox lifetime listener failed");
      }
    }
  }

  /**
   * What the player shows about the learner's sandbox for a lab: the newest one's state, when it
   * expires, when the reaper would end it for idleness if nobody watched from now on, and why it
   * ended. Null when the learner never had one for this lab.
   */
  async lifetime(userId: string, labId: string, now = Date.now()): Promise<SandboxLifetime | null> {
    const row = await this.db.sandbox.findFirst({ where: { userId, labId }, orderBy: { createdAt: "desc" } });
    if (!row) return null;
    const sb = this.live.get(row.id);
    let idleReapAt: Date | null = null;
    if (row.state !== "ended") {
      const terms = sb ? [...sb.terminals.values()] : [];
      // Watched now: the idle clock starts when the last viewer leaves, so count from now.
      const last = sb
        ? terms.some((t) => t.viewerCount > 0) ? now : Math.max(sb.createdAt.getTime(), ...terms.map((t) => t.lastActivity))
        : row.lastActiveAt.getTime();
      idleReapAt = new Date(Math.min(last + this.config.idleTimeoutMs, row.expiresAt.getTime()));
    }
    return {
      sandboxId: row.id,
      state: row.state,
      driver: row.driver,
      createdAt: row.createdAt,
      expiresAt: row.expiresAt,
      idleReapAt,
      endedReason: row.state === "ended" ? (row.endReason ?? "unknown") : null,
      idleTimeoutMs: this.config.idleTimeoutMs,
    };
  }

  /**
   * The learner asked for a fresh sandbox: the current one (if any) ends with reason "reset" and a
   * new one is acquired (from the warm pool when it can). Progress lives in the database, not in
   * the sandbox, so it stays.
   */
  async reset(userId: string, labId: string, report: PhaseReporter = () => {}): Promise<LearnerSandbox> {
    // An acquire in flight would hand back the sandbox we are about to end: let it finish first.
    await this.pending.get(`${userId}:${labId}`)?.catch(() => undefined);
    const rows = await this.db.sandbox.findMany({ where: { userId, labId, state: { in: ["starting", "running"] } } });
    for (const row of rows) await this.end(row.id, "reset");
    return this.acquire(userId, labId, report);
  }

  /**
   * Let go of everything this process owns, but leave learners' sandboxes running: they survive a
   * restart of the orchestrator. Warm-pool sandboxes are destroyed.
   */
  async dispose(): Promise<void> {
    if (this.reaper) clearInterval(this.reaper);
    if (this.limitWatch) clearInterval(this.limitWatch);
    this.lifetimeListeners.clear();
    this.connectedListeners.clear();
    for (const sb of this.live.values()) {
      for (const t of sb.terminals.values()) t.dispose();
      sb.agent.close();
    }
    this.live.clear();
    await this.pool.dispose();
  }
}
