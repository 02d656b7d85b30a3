// The container engine the learner's `docker` talks to, supervised by the agent. It runs as a child
// process (node + the engine bundle from /opt/berth), serving the Docker API on
// /var/run/docker.sock, with its output appended to a log file the learner can read. If it dies it
// is started again (after 1 s, doubling to 30 s while it keeps dying quickly); stop() ends it with
// SIGTERM (the engine then kills its containers and unmounts) and SIGKILL after a grace period.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";

export interface EngineProcessOptions {
  /** The engine bundle (engine.mjs). */
  bundle: string;
  /** The prebuilt berth-shim (the sandbox has no compiler). */
  shim: string;
  /** The engine's state: must be a real filesystem, not the sandbox's overlay. */
  root: string;
  socket: string;
  logFile: string;
  node?: string;
  /** The agent's own log, for start/exit/restart lines. */
  log?: (line: string) => void;
  /** First restart delay; doubles while the engine keeps dying within a minute of its start. */
  restartDelayMs?: number;
  stopGraceMs?: number;
  /** Read-only image stores the engine imports from at start (the sandbox's /opt/berth-images). */
  sharedImages?: string[];
  /** Paths no container may bind-mount (`--bind-deny`): the agent's own, /opt/berth. */
  bindDeny?: string[];
  /** The lab registry docker.io names are pulled from (the engine's BERTH_REGISTRY_MIRROR), if the sandbox has one. */
  registryMirror?: string;
}

const MAX_RESTART_DELAY_MS = 30_000;
const HEALTHY_RUN_MS = 60_000;

export class EngineProcess {
  private child: ChildProcess | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private delayMs: number;
  private stopping = false;
  private startedAt = 0;
  private reportedMissing = false;
  /** How many times the engine was started (1 + restarts). */
  starts = 0;

  constructor(private readonly opts: EngineProcessOptions) {
    this.delayMs = opts.restartDelayMs ?? 1000;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the engine unless it is running (or stopping). Safe to call more than once. */
  start(): void {
    if (this.child || this.stopping) return;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const { bundle, shim, root, socket, logFile } = this.opts;
    const log = this.opts.log ?? (() => {});
    if (!existsSync(bundle)) {
      if (!this.reportedMissing) log(`engine: ${bundle} is missing; docker will not work in this sandbox`);
      this.reportedMissing = true;
      return;
    }
    mkdirSync(dirname(logFile), { recursive: true });
    const out = openSync(logFile, "a");
    let child: ChildProcess;
    try {
      child = spawn(this.opts.node ?? process.execPath, [bundle, "--root", root, "--socket", socket, "--no-debian", ...(this.opts.sharedImages ?? []).flatMap((d) => ["--shared-images", d]), ...(this.opts.bindDeny ?? []).flatMap((d) => ["--bind-deny", d])], {
        stdio: ["ignore", out, out],
        // Only what the engine needs: never the agent's own environment (the token's file name, etc.).
        // (plus the lab registry the sandbox's docker.io names come from, when it has one)
        env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/root", LANG: "C.UTF-8", BERTH_SHIM: shim, ...(this.opts.registryMirror ? { BERTH_REGISTRY_MIRROR: this.opts.registryMirror } : {}) } as Record<string, string> as NodeJS.ProcessEnv,
      });
    } finally {
      closeSync(out);
    }
    this.child = child;
    this.starts++;
    this.startedAt = Date.now();
    log(`engine: started (pid ${child.pid}), Docker API on ${socket}, log in ${logFile}`);
    child.on("error", (err) => log(`engine: ${err.message}`));
    child.on("exit", (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (this.stopping) return;
      const ranMs = Date.now() - this.startedAt;
      this.delayMs = ranMs > HEALTHY_RUN_MS ? (this.opts.restartDelayMs ?? 1000) : this.delayMs;
      log(`engine: exited (${signal ?? `code ${code}`}) after ${ranMs} ms; restarting in ${this.delayMs} ms`);
      this.restartTimer = setTimeout(() => this.start(), this.delayMs);
      this.delayMs = Math.min(this.delayMs * 2, MAX_RESTART_DELAY_MS);
    });
  }

  /** Stops the engine for good (no restart): SIGTERM, then SIGKILL after the grace period. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const grace = setTimeout(() => child.kill("SIGKILL"), this.opts.stopGraceMs ?? 5000);
    await exited;
    clearTimeout(grace);
  }
}
