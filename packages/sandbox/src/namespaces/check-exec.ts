// Trusted checks: a check's (or a lab setup's) script runs in the learner's sandbox with tools the
// learner cannot change, where the learner's processes cannot see, signal or ptrace it, and its
// text never appears anywhere inside. The work is done by berth-check (check-exec.c beside this
// file, compiled with the host's cc at prepare(), never committed); this file builds it, gives the
// check a cgroup under the sandbox's limits, feeds the script through a pipe, caps the output and
// kills the check's whole pid namespace on timeout. Why each step: docs/sandboxes.md ("What a root
// learner can and cannot influence").
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { mkdir, rmdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { collectCapped } from "@berth/protocol";
import type { TrustedExecOptions, TrustedExecResult } from "../driver.js";
import { CGROUP_ROOT, type CgroupVersion } from "./cgroups.js";
import type { HostTools } from "./host-tools.js";

const SOURCE = join(dirname(fileURLToPath(import.meta.url)), "check-exec.c");
/** berth-check's own failures (not the script's) exit with this and say why on stderr. */
const HELPER_FAILED = 125;
/** After berth-check exits, how long to wait for the pipes (PID 1's death has killed the rest). */
const CLOSE_GRACE_MS = 500;

/** Compiles berth-check into binDir (named by a hash of its source; reused while unchanged). */
export function buildCheckHelper(binDir: string): string {
  const source = readFileSync(SOURCE);
  const bin = join(binDir, `berth-check-${createHash("sha256").update(source).digest("hex").slice(0, 12)}`);
  if (existsSync(bin)) return bin;
  mkdirSync(binDir, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  try {
    execFileSync("cc", ["-O2", "-Wall", "-o", tmp, SOURCE], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (e) {
    throw new Error(`could not compile ${SOURCE} with cc (install Debian's gcc and libc6-dev): ${(e as { stderr?: Buffer }).stderr?.toString() ?? e}`);
  }
  renameSync(tmp, bin);
  return bin;
}

export interface TrustedCheckTarget {
  sandboxId: string;
  /** The sandbox's init as the host sees it. */
  pid: number;
  cgroupVersion: CgroupVersion;
  /** The sandbox's read-only base root filesystem (the check's /usr and /etc). */
  baseRootfs: string;
  hostTools: HostTools;
}

/**
 * Runs `script` as a trusted check in the sandbox. Resolves with the script's result (exitCode
 * null when it was killed); rejects only when berth-check itself could not set the check up.
 */
export async function runTrustedCheck(helper: string, t: TrustedCheckTarget, script: string, opts: TrustedExecOptions): Promise<TrustedExecResult> {
  const maxOutputBytes = opts.maxOutputBytes ?? 16 * 1024;
  const cgroups = await makeCheckCgroups(t.sandboxId, t.cgroupVersion);
  const args = ["--pid", String(t.pid), "--cgroup-of", `berth/${t.sandboxId}/box`, "--base", t.baseRootfs];
  if (t.hostTools.dockerCli) args.push("--tool", `${t.hostTools.dockerCli}:docker`);
  if (t.hostTools.busybox) args.push("--tool", `${t.hostTools.busybox}:busybox`);
  for (const dir of cgroups) args.push("--join", join(dir, "cgroup.procs"));
  try {
    return await runHelper(helper, args, script, opts.timeoutMs, maxOutputBytes);
  } finally {
    await removeCgroups(cgroups);
  }
}

function runHelper(helper: string, args: string[], script: string, timeoutMs: number, maxOutputBytes: number): Promise<TrustedExecResult> {
  const started = performance.now();
  // No environment at all: berth-check sets the check's own.
  const child = spawn(helper, args, { stdio: ["pipe", "pipe", "pipe"], env: {} as NodeJS.ProcessEnv });
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const out = collectCapped(child.stdout, maxOutputBytes);
    const errs = collectCapped(child.stderr, maxOutputBytes);
    // Killing berth-check kills the check's PID 1 (its parent-death signal), which takes every
    // process of the check's pid namespace with it.
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    // The script goes in through the pipe and the pipe is closed: bash reads it to the end. A
    // check that exits before reading it all makes the write fail with EPIPE, which is fine.
    child.stdin.on("error", () => {});
    child.stdin.end(script);

    let finished = false;
    let grace: NodeJS.Timeout | undefined;
    const finish = (code: number | null) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (grace) clearTimeout(grace);
      child.stdout.destroy();
      child.stderr.destroy();
      const err = errs.bytes();
      if (code === HELPER_FAILED && /^berth-check: /m.test(err.toString("utf8")) && !timedOut) {
        const reason = /^berth-check: (.*)$/m.exec(err.toString("utf8"))![1];
        reject(new Error(`the trusted check runner failed: ${reason}`));
        return;
      }
      resolve({ exitCode: code, stdout: out.bytes(), stderr: err, timedOut, truncated: out.truncated() || errs.truncated(), durationMs: Math.round(performance.now() - started) });
    };
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`could not run ${helper}: ${e.message}`));
    });
    // exit: the check's PID 1 is gone and with it the pid namespace; what still holds the pipes
    // is dying. close: both pipes reached EOF.
    child.on("exit", (code, signal) => {
      const result = signal ? null : code;
      grace = setTimeout(() => finish(result), CLOSE_GRACE_MS);
      child.on("close", () => finish(result));
    });
  });
}

/**
 * The check's cgroups: berth/<id>/check-<random>, a sibling of the sandbox's box in every
 * hierarchy that carries a limit (v1: memory, pids, cpu; v2: the one tree). So the check counts
 * against the sandbox's memory, pids and cpu limits, and sits outside the part of the tree the
 * learner sees (their cgroup namespace starts at box), where they could freeze or kill it.
 */
async function makeCheckCgroups(sandboxId: string, version: CgroupVersion): Promise<string[]> {
  const name = `check-${randomBytes(4).toString("hex")}`;
  const parents: string[] = [];
  if (version === 2) parents.push(join(CGROUP_ROOT, "berth", sandboxId));
  else {
    for (const line of readFileSync("/proc/self/mounts", "utf8").split("\n")) {
      const [, mountPoint, type, options] = line.split(" ");
      if (type !== "cgroup" || !mountPoint || !options) continue;
      if (!options.split(",").some((o) => o === "memory" || o === "pids" || o === "cpu")) continue;
      parents.push(join(mountPoint, "berth", sandboxId));
    }
  }
  const made: string[] = [];
  try {
    for (const parent of parents) {
      if (!existsSync(parent)) throw new Error(`no cgroup ${parent}: is the sandbox running?`);
      await mkdir(join(parent, name));
      made.push(join(parent, name));
    }
  } catch (err) {
    await removeCgroups(made);
    throw err;
  }
  return made;
}

/** rmdir, retried while the check's last processes are still leaving (a destroy() removes leftovers). */
async function removeCgroups(dirs: string[]): Promise<void> {
  for (const dir of dirs) {
    for (let i = 0; ; i++) {
      try {
        await rmdir(dir);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT") break;
        if (i === 100) throw new Error(`could not remove the check's cgroup ${dir}: ${code}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
}
