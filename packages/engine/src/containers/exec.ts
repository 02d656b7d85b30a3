/**
 * `docker exec`: a second process in a running container. berth-shim's exec mode joins the
 * container's namespaces with setns (pid last, so its child is born inside), the engine puts that
 * child in the container's cgroup, and it execs the command as the user asked for.
 */
import { randomBytes } from "node:crypto";
import { EngineError } from "../errors";
import { capabilityMask, capabilitySet, ShimProcess } from "../runtime/shim";
import type { Container } from "./container";
import { asStrings, consoleSize, daemonEnvironment, mergeEnv } from "./spec";
import { resolveUser } from "./user";

export interface ExecConfig {
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  Tty: boolean;
  Cmd: string[];
  Env: string[];
  WorkingDir: string;
  User: string;
  Privileged: boolean;
  ConsoleSize?: [number, number];
}

export interface ExecInstance {
  ID: string;
  container: Container;
  config: ExecConfig;
  Running: boolean;
  ExitCode: number | null;
  Pid: number;
  shim?: ShimProcess;
  startError?: string; // execve failed: Docker prints this on the exec's stream
}

/** POST /containers/{id}/exec's body, checked (pure). */
export function execConfig(body: Record<string, unknown>): ExecConfig {
  const cmd = asStrings(body.Cmd);
  if (cmd.length === 0) throw new EngineError(400, "No exec command specified");
  return {
    AttachStdin: !!body.AttachStdin,
    AttachStdout: !!body.AttachStdout,
    AttachStderr: !!body.AttachStderr,
    Tty: !!body.Tty,
    Cmd: cmd,
    Env: asStrings(body.Env),
    WorkingDir: String(body.WorkingDir ?? ""),
    User: String(body.User ?? ""),
    Privileged: !!body.Privileged,
    ConsoleSize: Array.isArray(body.ConsoleSize) ? (body.ConsoleSize as [number, number]) : undefined,
  };
}

/** Docker refuses an exec in a container that is not running, or paused (named as the user named it), in these words. */
export function checkExecable(c: Container, ref = c.id): void {
  if (!c.running) throw new EngineError(409, `container ${c.id} is not running`);
  if (c.record.State.Paused) throw new EngineError(409, `Container ${ref} is paused, unpause the container before exec`);
}

export function newExec(c: Container, body: Record<string, unknown>, ref?: string): ExecInstance {
  checkExecable(c, ref);
  return { ID: randomBytes(32).toString("hex"), container: c, config: execConfig(body), Running: false, ExitCode: null, Pid: 0 };
}

/**
 * Start an exec: berth-shim exec joins the container's namespaces (setns) and cgroup. `rootfs`
 * gives the container's mounted root (the snapshotter's), where its /etc/passwd names the user.
 */
export function runExec(shimBin: string, e: ExecInstance, rootfs: (c: Container) => string): Promise<ShimProcess> {
  const c = e.container;
  try {
    checkExecable(c);
  } catch (err) {
    return Promise.reject(err);
  }
  if (e.Running || e.ExitCode !== null) return Promise.reject(new EngineError(409, `Error: Exec command ${e.ID} is already running`));
  const cfg = c.record.Config;
  const user = resolveUser(rootfs(c), e.config.User || cfg.User);
  const caps = capabilitySet(c.record.HostConfig.CapAdd ?? [], c.record.HostConfig.CapDrop ?? [], c.record.HostConfig.Privileged || e.config.Privileged);
  const shim = new ShimProcess(shimBin, {
    mode: "exec",
    target: c.record.State.Pid,
    cwd: e.config.WorkingDir || cfg.WorkingDir || "/",
    ...user,
    env: mergeEnv(daemonEnvironment(cfg.Env, cfg.Hostname, e.config.Tty, user.home), e.config.Env),
    binds: [],
    caps: capabilityMask(caps),
    tty: e.config.Tty,
    size: consoleSize(e.config.ConsoleSize),
    argv: e.config.Cmd,
    stdin: e.config.AttachStdin,
  });
  e.shim = shim;
  e.Running = true;
  return new Promise((resolve, reject) => {
    let settled = false;
    shim.once("pid", (pid: number) => {
      e.Pid = pid;
      try {
        c.cgroup?.addProcess(pid);
      } catch {
        /* the container is exiting; execve will fail on its own */
      }
      shim.go();
    });
    shim.once("started", () => {
      settled = true;
      resolve(shim);
    });
    shim.once("failed", (message: string) => {
      e.ExitCode = 126; // dockerd answers 126 for any exec that could not start
      // Docker reports this on the stream and through the exit code, not as an HTTP error.
      e.startError = `OCI runtime exec failed: exec failed: unable to start container process: ${message}: unknown\r\n`;
      if (!settled) {
        settled = true;
        resolve(shim);
      }
    });
    shim.once("exit", (code: number) => {
      e.Running = false;
      if (e.ExitCode === null) e.ExitCode = code;
      if (!settled) {
        settled = true;
        reject(new EngineError(500, `exec failed to start (code ${code})`));
      }
    });
  });
}
