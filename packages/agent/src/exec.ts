// One-shot commands (checks, setup scripts, `labkit test`): spawn, feed stdin, collect capped
// output, and on timeout kill the whole process group so a check's children die with it.
import { spawn } from "node:child_process";
import { collectCapped, type ExecReply } from "@berth/protocol";
import { raiseOomScore } from "./oom.js";

export interface ExecOptions {
  cmd: string[];
  stdin?: Buffer;
  env: Record<string, string>;
  cwd: string;
  timeoutMs: number;
  maxOutputBytes: number;
}

/** After the process exits, wait this long for pipes held open by its background children. */
const CLOSE_GRACE_MS = 200;

export function runExec(opts: ExecOptions): { done: Promise<ExecReply>; kill(): void } {
  const started = Date.now();
  const child = spawn(opts.cmd[0]!, opts.cmd.slice(1), {
    cwd: opts.cwd,
    env: opts.env as NodeJS.ProcessEnv,
    // Its own process group: a timeout kills -pgid, i.e. the command and everything it started.
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
  });
  raiseOomScore(child.pid);
  const killGroup = () => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // The group is already empty.
    }
  };

  const done = new Promise<ExecReply>((resolve, reject) => {
    let timedOut = false;
    const out = collectCapped(child.stdout, opts.maxOutputBytes);
    const errs = collectCapped(child.stderr, opts.maxOutputBytes);

    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, opts.timeoutMs);

    let finished = false;
    let graceTimer: NodeJS.Timeout | undefined;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (graceTimer) clearTimeout(graceTimer);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({
        exitCode: code,
        signal,
        stdout: out.bytes().toString("base64"),
        stderr: errs.bytes().toString("base64"),
        timedOut,
        truncated: out.truncated() || errs.truncated(),
        durationMs: Date.now() - started,
      });
    };
    child.on("error", (err) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      reject(new Error(`exec ${JSON.stringify(opts.cmd[0])}: ${err.message}`));
    });
    child.on("exit", (code, signal) => {
      graceTimer = setTimeout(() => finish(code, signal), CLOSE_GRACE_MS);
    });
    child.on("close", (code, signal) => finish(code, signal));

    child.stdin.on("error", () => {
      // EPIPE: the command did not read its stdin. Not an error of the exec.
    });
    if (opts.stdin && opts.stdin.length > 0) child.stdin.end(opts.stdin);
    else child.stdin.end();
  });
  return { done, kill: killGroup };
}
