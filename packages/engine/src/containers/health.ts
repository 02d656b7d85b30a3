/**
 * Health checks (HEALTHCHECK, --health-*): a probe command run in the container as an exec every
 * Interval (StartInterval while starting within StartPeriod), as dockerd runs them:
 *   exit 0           healthy, the failing streak back to 0
 *   anything else    a failure; Retries failures in a row make it unhealthy (failures inside the
 *                    start period, while still "starting", do not count)
 *   Timeout passed   killed, exit code -1, "Health check exceeded timeout (…)"
 * State.Health keeps the status, the streak and the last five results (4 KiB of output each).
 */
import type { Container, HealthConfig, HealthState } from "./container";
import { newExec, type ExecInstance } from "./exec";
import type { ShimProcess } from "../runtime/shim";

const DEFAULTS = { interval: 30e9, timeout: 30e9, startPeriod: 0, startInterval: 5e9, retries: 3 };
const MAX_LOG = 5;
const MAX_OUTPUT = 4096;

/** The argv a probe runs: CMD as given, CMD-SHELL through /bin/sh -c; NONE or nothing: no probe. */
export function probeCommand(h: HealthConfig | undefined): string[] | null {
  const [kind, ...rest] = h?.Test ?? [];
  if (kind === "CMD" && rest.length) return rest;
  if (kind === "CMD-SHELL" && rest.length) return ["/bin/sh", "-c", rest.join(" ")];
  return null;
}

/** Go's time.Duration printing for whole seconds and milliseconds ("1s", "1.5s", "500ms"). */
function goDuration(ns: number): string {
  if (ns < 1e9) return `${ns / 1e6}ms`;
  return `${ns / 1e9}s`;
}

export class HealthMonitor {
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly c: Container,
    /** Runs one probe as an exec (the service's runExec, with the container's root to find its user). */
    private readonly exec: (e: ExecInstance) => Promise<ShimProcess>,
    private readonly changed: (c: Container, status: HealthState["Status"]) => void,
  ) {}

  start(): void {
    const cmd = probeCommand(this.c.record.Config.Healthcheck);
    if (!cmd) return;
    this.c.record.State.Health = { Status: "starting", FailingStreak: 0, Log: [] };
    this.schedule();
  }

  /** The container stopped: no more probes; dockerd then calls it unhealthy. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    const h = this.c.record.State.Health;
    if (h) Object.assign(h, { Status: "unhealthy", FailingStreak: 0 });
  }

  private settings() {
    const h = this.c.record.Config.Healthcheck ?? { Test: [] };
    return {
      interval: h.Interval || DEFAULTS.interval,
      timeout: h.Timeout || DEFAULTS.timeout,
      startPeriod: h.StartPeriod || DEFAULTS.startPeriod,
      startInterval: h.StartInterval || DEFAULTS.startInterval,
      retries: h.Retries || DEFAULTS.retries,
    };
  }

  private inStartPeriod(): boolean {
    return (Date.now() - Date.parse(this.c.record.State.StartedAt)) * 1e6 < this.settings().startPeriod;
  }

  private schedule(): void {
    if (this.stopped) return;
    const s = this.settings();
    const ns = this.inStartPeriod() && this.c.record.State.Health?.Status === "starting" ? s.startInterval : s.interval;
    this.timer = setTimeout(() => void this.probe(), ns / 1e6);
    this.timer.unref();
  }

  private async probe(): Promise<void> {
    const c = this.c;
    const cmd = probeCommand(c.record.Config.Healthcheck);
    if (this.stopped || !cmd || !c.running) return;
    if (c.record.State.Paused) return this.schedule(); // a frozen container cannot answer
    const s = this.settings();
    const start = new Date().toISOString();
    let output = "";
    let exitCode: number;
    try {
      const e = newExec(c, { Cmd: cmd, AttachStdout: true, AttachStderr: true });
      const shim = await this.exec(e);
      const take = (b: Buffer) => {
        if (output.length < MAX_OUTPUT) output = (output + b.toString()).slice(0, MAX_OUTPUT);
      };
      shim.stdout.on("data", take);
      shim.stderr.on("data", take);
      exitCode = await new Promise<number>((resolve) => {
        if (!e.Running) return resolve(e.ExitCode ?? 1);
        const timer = setTimeout(() => {
          try {
            if (e.Pid) process.kill(e.Pid, "SIGKILL");
          } catch {
            /* gone */
          }
          output = `Health check exceeded timeout (${goDuration(s.timeout)})`;
          resolve(-1);
        }, s.timeout / 1e6);
        shim.once("exit", (code: number) => {
          clearTimeout(timer);
          resolve(code);
        });
      });
      if (e.startError) output = e.startError.trim();
    } catch (err) {
      exitCode = 1;
      output = (err as Error).message;
    }
    if (this.stopped) return;
    const h = c.record.State.Health!;
    const before = h.Status;
    h.Log = [...h.Log, { Start: start, End: new Date().toISOString(), ExitCode: exitCode, Output: output }].slice(-MAX_LOG);
    if (exitCode === 0) Object.assign(h, { Status: "healthy", FailingStreak: 0 });
    else if (!(h.Status === "starting" && this.inStartPeriod())) {
      h.FailingStreak++;
      if (h.FailingStreak >= s.retries) h.Status = "unhealthy";
    }
    c.save();
    if (h.Status !== before) this.changed(c, h.Status);
    this.schedule();
  }
}
