/**
 * Test harness: our engine (in this process) and a real dockerd (a child process) side by side,
 * each with its own state dir and socket, and the real docker CLI pointed at either.
 */
import { execFile, spawn, execFileSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { startEngine, type Engine } from "../src/engine";
import { makeBusyboxTarball } from "../src/images/busybox";

export const CLI_28 = "/usr/local/bin/docker";
export const CLI_20 = "/usr/bin/docker";

export interface Daemon {
  name: "berth" | "dockerd";
  host: string; // unix:///...
  socket: string;
  stop(): Promise<void>;
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function startBerth(): Promise<Daemon & { engine: Engine; root: string }> {
  const root = tmpDir("berth-test-");
  const socket = path.join(root, "docker.sock");
  const engine = await startEngine({ root: path.join(root, "state"), socket });
  return {
    name: "berth",
    host: `unix://${socket}`,
    socket,
    engine,
    root,
    async stop() {
      await engine.close();
      unmountUnder(root);
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A real dockerd (Debian's docker.io) with busybox:latest imported from the same busybox-static. */
export async function startDockerd(): Promise<Daemon> {
  const root = tmpDir("dockerd-test-");
  const socket = path.join(root, "d.sock");
  const log = fs.openSync(path.join(root, "log"), "w");
  const child: ChildProcess = spawn(
    "dockerd",
    ["--data-root", path.join(root, "data"), "--exec-root", path.join(root, "exec"), "-H", `unix://${socket}`, "--bridge=none", "--iptables=false", "--ip-masq=false", "--pidfile", path.join(root, "pid"), "--containerd-namespace", `berthtest${process.pid}`],
    { stdio: ["ignore", log, log] },
  );
  const host = `unix://${socket}`;
  for (let i = 0; i < 150; i++) {
    if (fs.existsSync(socket) && (await ping(socket))) break;
    await sleep(100);
  }
  const tar = path.join(root, "busybox.tar");
  makeBusyboxTarball(tar);
  execFileSync(CLI_28, ["import", "--change", 'CMD ["sh"]', "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", tar, "busybox:latest"], { env: { ...process.env, DOCKER_HOST: host }, stdio: "ignore" });
  return {
    name: "dockerd",
    host,
    socket,
    async stop() {
      try {
        execFileSync(CLI_28, ["rm", "-f", ...listAll(host)], { env: { ...process.env, DOCKER_HOST: host }, stdio: "ignore" });
      } catch {
        /* nothing to remove */
      }
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(15000)]);
      if (child.exitCode === null) child.kill("SIGKILL");
      unmountUnder(root);
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

function listAll(host: string): string[] {
  return execFileSync(CLI_28, ["ps", "-aq"], { env: { ...process.env, DOCKER_HOST: host }, encoding: "utf8" }).split("\n").filter(Boolean);
}

export function unmountUnder(dir: string): void {
  const mounts = fs.readFileSync("/proc/self/mounts", "utf8").split("\n").map((l) => l.split(" ")[1]).filter((m): m is string => !!m && m.startsWith(dir));
  for (const m of mounts.sort().reverse()) {
    try {
      execFileSync("umount", ["-l", m], { stdio: "ignore" });
    } catch {
      /* already gone */
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath: socket, path: "/_ping" }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.end();
  });
}

export interface Result {
  stdout: string;
  stderr: string;
  code: number;
}

/** Run the real docker CLI against a daemon. */
export function docker(d: Daemon | string, args: string[], opts: { input?: string; cli?: string; timeout?: number } = {}): Promise<Result> {
  const host = typeof d === "string" ? d : d.host;
  return new Promise((resolve) => {
    const child = execFile(opts.cli ?? CLI_28, args, { env: { ...process.env, DOCKER_HOST: host, DOCKER_CLI_HINTS: "false" }, timeout: opts.timeout ?? 30000, maxBuffer: 64 << 20, encoding: "buffer" }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 255) : 0;
      resolve({ stdout: stdout.toString(), stderr: stderr.toString(), code });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

/** Raw HTTP on the engine's socket, for the bad-input tests. */
export function request(socket: string, method: string, p: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, method, path: p, headers: { ...(body !== undefined ? { "Content-Type": "application/json" } : {}), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

/** Ids, generated names and times differ between any two engines: replace them before comparing. */
export function normalize(s: string): string {
  return s
    // dockerd 20.10's wording and the current one (which Berth uses) for removing a running container
    .replace(/You cannot remove a running container [0-9a-f]+\. Stop the container before attempting removal or force remove/g, "<rm-running>")
    .replace(/cannot remove container "[^"]+": container is running: stop the container before removing or force remove/g, "<rm-running>")
    .replace(/\b[0-9a-f]{64}\b/g, "<id>")
    .replace(/sha256:<id>/g, "<id>")
    .replace(/\b[0-9a-f]{12}\b/g, "<id>")
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, "<time>")
    .replace(/(Less than a second|About a minute|\d+ seconds?|\d+ minutes?) ago/g, "<ago>")
    .replace(/Up (Less than a second|\d+ seconds?|About a minute)/g, "Up <dur>");
}

/**
 * Drive the docker CLI in a real terminal (node-pty): wait for what the screen should show before
 * each keystroke, because the CLI discards type-ahead when it switches the terminal to raw mode.
 */
export async function ttySession(host: string, args: string[], script: { waitFor: string | RegExp; send?: string }[], opts: { cli?: string; timeout?: number } = {}): Promise<{ output: string; code: number }> {
  const pty = await import("node-pty");
  const term = pty.spawn(opts.cli ?? CLI_28, args, { name: "xterm", cols: 100, rows: 30, env: { ...process.env, DOCKER_HOST: host } as Record<string, string> });
  let output = "";
  const exited = new Promise<number>((resolve) => term.onExit((e) => resolve(e.exitCode)));
  term.onData((d) => (output += d));
  const deadline = Date.now() + (opts.timeout ?? 15000);
  let from = 0;
  for (const step of script) {
    for (;;) {
      const rest = output.slice(from);
      const m = typeof step.waitFor === "string" ? rest.indexOf(step.waitFor) : rest.search(step.waitFor);
      if (m >= 0) {
        from += m + 1;
        break;
      }
      if (Date.now() > deadline) {
        term.kill();
        throw new Error(`timed out waiting for ${step.waitFor} in:\n${output}`);
      }
      await sleep(20);
    }
    if (step.send !== undefined) term.write(step.send);
  }
  const code = await Promise.race([exited, sleep(Math.max(0, deadline - Date.now())).then(() => -1)]);
  if (code === -1) term.kill();
  return { output, code };
}
