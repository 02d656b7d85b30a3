/**
 * Test harness: our engine (in this process) and a real dockerd (a child process) side by side,
 * each with its own state dir and socket, and the real docker CLI pointed at either.
 */
import { execFile, spawn, execFileSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { startEngine, type Engine } from "../src/engine";
import { makeBusyboxTarball } from "../src/images/busybox";
import type { NetworkOptions } from "../src/network/manager";

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

/**
 * Our engine in this process. Networking is off unless asked for (the reference dockerd runs with
 * `--bridge=none`, and an in-process engine shares the host's network namespace); tests of
 * networking use startBerthInNetns.
 */
export async function startBerth(opts: { network?: NetworkOptions } = {}): Promise<Daemon & { engine: Engine; root: string }> {
  const root = tmpDir("berth-test-");
  const socket = path.join(root, "docker.sock");
  const engine = await startEngine({ root: path.join(root, "state"), socket, network: opts.network ?? { enabled: false } });
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

/**
 * A fresh network namespace with loopback up, for an engine with a bridge of its own: its bridge,
 * iptables rules and published ports live and die with the namespace, so nothing reaches the host's
 * tables and two engines never collide. `exec` runs a command inside it (wget, ping, nc).
 */
export function makeNetns(tag: string): { name: string; exec(cmd: string[], timeoutMs?: number): Result; remove(): void } {
  const name = `${tag}-${process.pid}-${Math.random().toString(36).slice(2, 7)}`;
  execFileSync("ip", ["netns", "add", name]);
  execFileSync("ip", ["-n", name, "link", "set", "lo", "up"]);
  return {
    name,
    exec(cmd, timeoutMs = 15000) {
      try {
        // nsenter, not `ip netns exec`: that one remounts /sys, hiding the cgroup mounts.
        const stdout = execFileSync("nsenter", [`--net=/run/netns/${name}`, ...cmd], { encoding: "utf8", timeout: timeoutMs, stdio: ["ignore", "pipe", "pipe"] });
        return { stdout, stderr: "", code: 0 };
      } catch (e) {
        const err = e as { stdout?: string; stderr?: string; status?: number };
        return { stdout: err.stdout ?? "", stderr: err.stderr ?? "", code: err.status ?? 255 };
      }
    },
    remove() {
      try {
        execFileSync("ip", ["netns", "del", name], { stdio: "ignore" });
      } catch {
        /* already gone */
      }
    },
  };
}

/**
 * Our engine as its own process (`src/main.ts`), inside a fresh network namespace: its default
 * bridge, NAT and isolation rules are then the namespace's, as they are a sandbox's.
 */
export async function startBerthInNetns(opts: { netns?: ReturnType<typeof makeNetns>; args?: string[] } = {}): Promise<Daemon & { netns: ReturnType<typeof makeNetns>; root: string }> {
  const root = tmpDir("berth-net-");
  const socket = path.join(root, "docker.sock");
  // A namespace given by the caller (several engines in one) is the caller's to remove.
  const netns = opts.netns ?? makeNetns("berthn");
  const log = fs.openSync(path.join(root, "log"), "w");
  const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../..");
  const main = path.join(repo, "packages/engine/src/main.ts");
  // node itself (nsenter execs it), not the tsx wrapper: SIGTERM must reach the engine.
  const child = spawn("nsenter", [`--net=/run/netns/${netns.name}`, process.execPath, "--import", "tsx", main, "--root", path.join(root, "state"), "--socket", socket, "--no-debian", ...(opts.args ?? [])], { stdio: ["ignore", log, log], cwd: repo });
  for (let i = 0; i < 300 && child.exitCode === null; i++) {
    if (fs.existsSync(socket) && (await ping(socket))) break;
    await sleep(100);
  }
  if (!(await ping(socket))) throw new Error(`our engine did not start: ${fs.readFileSync(path.join(root, "log"), "utf8")}`);
  return {
    name: "berth",
    host: `unix://${socket}`,
    socket,
    netns,
    root,
    async stop() {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(30000)]);
      if (child.exitCode === null) {
        child.kill("SIGKILL");
        // Its containers' shims (and their inits) would outlive it: end them by pid.
        for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
          try {
            if (fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(`${root}/state/bin/berth-shim`)) process.kill(Number(pid), "SIGKILL");
          } catch {
            /* gone */
          }
        }
      }
      if (!opts.netns) netns.remove();
      unmountUnder(root);
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * A real dockerd (Debian's docker.io) with busybox:latest imported from the same busybox-static,
 * always in a fresh network namespace of its own (see makeNetns), removed with it at stop().
 * Never in the host's: a dockerd started with `--bridge=none` deletes the interface named docker0
 * of the namespace it starts in (moby's removeDefaultBridgeInterface), which on a host is the
 * bridge of the host's own dockerd. By default without networking (`--bridge=none
 * --iptables=false`); with `{ network: true }` with its own docker0, iptables and userland proxy.
 * `forward`: TCP ports of this host's 127.0.0.1 (a registry) that dockerd reaches at the same
 * address inside its namespace, through a relay (see relayIntoNetns).
 */
export async function startDockerd(opts: { network?: boolean; forward?: number[] } = {}): Promise<Daemon & { netns: ReturnType<typeof makeNetns>; pid: number }> {
  const root = tmpDir("dockerd-test-");
  const socket = path.join(root, "d.sock");
  const log = fs.openSync(path.join(root, "log"), "w");
  const netns = makeNetns("berthd");
  const relays = await Promise.all((opts.forward ?? []).map((port) => relayIntoNetns(netns.name, port, path.join(root, `relay-${port}.sock`))));
  const args = ["--data-root", path.join(root, "data"), "--exec-root", path.join(root, "exec"), "-H", `unix://${socket}`, "--pidfile", path.join(root, "pid"), "--containerd-namespace", `berthtest${process.pid}`];
  if (!opts.network) args.push("--bridge=none", "--iptables=false", "--ip-masq=false");
  const child: ChildProcess = spawn("nsenter", [`--net=/run/netns/${netns.name}`, "dockerd", ...args], { stdio: ["ignore", log, log] });
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
    netns,
    pid: child.pid!,
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
      for (const r of relays) r.close();
      netns.remove();
      unmountUnder(root);
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * 127.0.0.1:<port> inside a network namespace reaching 127.0.0.1:<port> of this one. A UNIX
 * socket belongs to no network namespace: a small node process inside listens on the port and
 * hands each connection to a UNIX socket, which this process carries on to the real port.
 */
async function relayIntoNetns(netns: string, port: number, via: string): Promise<{ close(): void }> {
  const server = net.createServer((inner) => {
    const outer = net.connect(port, "127.0.0.1");
    inner.pipe(outer).pipe(inner);
    inner.on("error", () => outer.destroy());
    outer.on("error", () => inner.destroy());
  });
  await new Promise<void>((r) => server.listen(via, r));
  const script = `const net=require("node:net");net.createServer((c)=>{const u=net.connect(${JSON.stringify(via)});c.pipe(u).pipe(c);c.on("error",()=>u.destroy());u.on("error",()=>c.destroy());}).listen(${port},"127.0.0.1",()=>console.log("ready"));`;
  const child = spawn("nsenter", [`--net=/run/netns/${netns}`, process.execPath, "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`the relay for port ${port} into ${netns} exited with ${code}`)));
  });
  return {
    close() {
      child.kill("SIGKILL");
      server.close();
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
    .replace(/Up (Less than a second|\d+ seconds?|About a minute)/g, "Up <dur>")
    // A table's columns are as wide as their longest cell, so "2 seconds ago" and "10 seconds ago"
    // move every column after them: compare runs of spaces as one gap.
    .replace(/ {2,}/g, "  ");
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
