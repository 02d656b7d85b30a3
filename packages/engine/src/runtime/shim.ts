/**
 * The runtime: compile berth-shim (shim.c, beside this file) once, then spawn it per container or
 * exec. The engine speaks to it on two extra pipes (see the comment at the top of shim.c):
 *   fd 3: engine -> shim   "go", "resize R C"
 *   fd 4: shim -> engine   "pid N", "started" | "error MESSAGE", "exit N", and before "started"
 *                          "report\tKIND\tLINE\tFIELD..." for each step the child took (kept in
 *                          `reports`, in order: the recipe is built from them, src/recipe/)
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { EventEmitter } from "node:events";
import fs from "node:fs";
import path from "node:path";
import type { Readable, Writable } from "node:stream";

const SOURCE = path.join(path.dirname(new URL(import.meta.url).pathname), "shim.c");

/** Build the shim into `binDir` if the source changed since the last build; returns its path. */
export function buildShim(binDir: string, cc = "cc"): string {
  const source = fs.readFileSync(SOURCE);
  const tag = createHash("sha256").update(source).digest("hex").slice(0, 12);
  const bin = path.join(binDir, `berth-shim-${tag}`);
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(binDir, { recursive: true });
  try {
    execFileSync(cc, ["-O2", "-Wall", "-o", `${bin}.tmp`, SOURCE], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (e) {
    throw new Error(`could not compile ${SOURCE} with ${cc} (install gcc, or set CC): ${(e as { stderr?: Buffer }).stderr?.toString() ?? e}`);
  }
  fs.renameSync(`${bin}.tmp`, bin);
  return bin;
}

export interface ShimSpec {
  mode: "run" | "exec";
  target?: number; // exec: host pid of the container's init
  rootfs?: string; // run
  overlay?: string; // run: mount the rootfs first (overlayfs options), unless the engine already did
  unmountAtExit?: boolean; // run: `--rm`, the shim unmounts the rootfs when the container ends
  hostname?: string;
  cwd: string;
  uid: number;
  gid: number;
  groups: number[];
  env: string[];
  binds: string[]; // "src:dst[:ro]"
  tmpfs?: string[]; // destinations
  caps: bigint;
  tty: boolean;
  readOnly?: boolean;
  noNewPrivileges?: boolean;
  hostNetwork?: boolean;
  netns?: string; // a network namespace to join (/proc/<pid>/ns/net of another container)
  hostPid?: boolean; // --pid host
  pidns?: string; // --pid container:x (/proc/<pid>/ns/pid of that container)
  hostUts?: boolean; // --uts host
  privileged?: boolean; // --privileged: /sys mounted writable
  exitFile?: string; // live restore: the shim survives the engine and writes the exit code here
  domainname?: string;
  sysctls?: string[]; // "key=value"
  rlimits?: string[]; // "RESOURCE:SOFT:HARD", resource by number (RLIMITS)
  oomScoreAdj?: number;
  size?: { rows: number; cols: number };
  /** A veth pair per network, made and addressed by the shim: "HOSTIF,IFACE,MAC,BRIDGE,ADDR/PREFIX,GATEWAY|-" (network/endpoints.ts). */
  veths?: string[];
  argv: string[];
  stdin: boolean;
}

export function shimArgs(s: ShimSpec): string[] {
  const a: string[] = [s.mode];
  if (s.target) a.push("--target", String(s.target));
  if (s.rootfs) a.push("--rootfs", s.rootfs);
  if (s.overlay) a.push("--overlay", s.overlay);
  if (s.unmountAtExit) a.push("--unmount-at-exit");
  if (s.hostname) a.push("--hostname", s.hostname);
  a.push("--cwd", s.cwd || "/", "--uid", String(s.uid), "--gid", String(s.gid));
  for (const g of s.groups) a.push("--group", String(g));
  for (const e of s.env) a.push("--env", e);
  for (const b of s.binds) a.push("--bind", b);
  for (const t of s.tmpfs ?? []) a.push("--tmpfs", t);
  a.push("--caps", s.caps.toString(16));
  if (s.tty) a.push("--tty");
  if (s.readOnly) a.push("--read-only");
  if (s.noNewPrivileges) a.push("--no-new-privileges");
  if (s.hostNetwork) a.push("--host-network");
  if (s.netns) a.push("--netns", s.netns);
  if (s.hostPid) a.push("--host-pid");
  if (s.pidns) a.push("--pidns", s.pidns);
  if (s.hostUts) a.push("--host-uts");
  if (s.privileged) a.push("--privileged");
  if (s.exitFile) a.push("--exit-file", s.exitFile);
  if (s.domainname) a.push("--domainname", s.domainname);
  for (const x of s.sysctls ?? []) a.push("--sysctl", x);
  for (const x of s.rlimits ?? []) a.push("--rlimit", x);
  if (s.oomScoreAdj !== undefined && s.oomScoreAdj !== 0) a.push("--oom-score-adj", String(s.oomScoreAdj));
  if (s.size && s.size.rows && s.size.cols) a.push("--size", `${s.size.rows},${s.size.cols}`);
  for (const v of s.veths ?? []) a.push("--veth", v);
  a.push("--", ...s.argv);
  return a;
}

/** One step the shim's child reported: what it did, and the line of shim.c that did it. */
export interface ShimReport {
  kind: string;
  line: number;
  fields: string[];
}

/** "report\tmount\t212\t/a\\tb\t..." -> { kind: "mount", line: 212, fields: ["/a\tb", ...] } */
export function parseReport(line: string): ShimReport | undefined {
  const [word, kind, at, ...fields] = line.split("\t");
  if (word !== "report" || !kind || !/^\d+$/.test(at ?? "")) return undefined;
  const unescape = (f: string) => f.replace(/\\([\\tn])/g, (_, c: string) => (c === "t" ? "\t" : c === "n" ? "\n" : "\\"));
  return { kind, line: Number(at), fields: fields.map(unescape) };
}

/**
 * One running shim. Events: "pid" (host pid; the engine must answer with go()), "started",
 * "failed" (message), "exit" (code) — always emitted last, once.
 */
export class ShimProcess extends EventEmitter {
  readonly child: ChildProcess;
  pid = 0;
  /** The steps the child reported, in order, until execve. */
  readonly reports: ShimReport[] = [];
  /** The exact command line it was started with. */
  readonly argv: string[];
  private exitCode: number | undefined;

  /** `warm`: a shim the pool started ahead of time ("berth-shim ready"), given its command line on fd 3. */
  constructor(bin: string, spec: ShimSpec, warm?: ChildProcess) {
    super();
    this.argv = [bin, ...shimArgs(spec)];
    if (warm) {
      this.child = warm;
      const [mode, ...rest] = this.argv.slice(1);
      const args = spec.stdin ? [mode, ...rest] : [mode, "--stdin-null", ...rest];
      (warm.stdio[3] as Writable).write(Buffer.from(`${args.join("\0")}\0\0`));
      if (!spec.stdin) warm.stdin?.end();
    } else {
      this.child = spawn(bin, this.argv.slice(1), { stdio: [spec.stdin ? "pipe" : "ignore", "pipe", "pipe", "pipe", "pipe"] });
    }
    const status = this.child.stdio[4] as Readable;
    let buf = "";
    status.setEncoding("utf8");
    status.on("data", (chunk: string) => {
      buf += chunk;
      for (let nl; (nl = buf.indexOf("\n")) >= 0; ) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.onStatus(line);
      }
    });
    this.child.on("close", (code, signal) => {
      this.emit("exit", this.exitCode ?? (code ?? (signal ? 128 + (signalNumbers[signal] ?? 0) : 255)));
    });
    this.child.on("error", (e) => this.emit("failed", `berth-shim: ${e.message}`));
  }

  private onStatus(line: string): void {
    if (line.startsWith("report\t")) {
      const r = parseReport(line);
      if (r) this.reports.push(r);
      return;
    }
    const [word, ...rest] = line.split(" ");
    const value = rest.join(" ");
    if (word === "pid") {
      this.pid = Number(value);
      this.emit("pid", this.pid);
    } else if (word === "started") this.emit("started");
    else if (word === "error") this.emit("failed", value);
    else if (word === "exit") this.exitCode = Number(value);
  }

  get stdin(): Writable | null {
    return this.child.stdin;
  }
  get stdout(): Readable {
    return this.child.stdout!;
  }
  get stderr(): Readable {
    return this.child.stderr!;
  }

  private control(line: string): void {
    const ctl = this.child.stdio[3] as Writable;
    if (ctl.writable) ctl.write(`${line}\n`);
  }

  go(): void {
    this.control("go");
  }

  resize(rows: number, cols: number): void {
    this.control(`resize ${rows} ${cols}`);
  }
}

/**
 * One shim started ahead of time for the next `docker run` ("berth-shim ready", waiting for its
 * command line): Node's spawn blocks the event loop until the child has exec'd, which on a busy
 * two-core host is tens of milliseconds a start would otherwise wait for. After each take the next
 * one is started a little later, off the start's path. close() ends the idle one.
 */
export class ShimPool {
  private idle?: ChildProcess;
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly bin: string) {
    this.refillSoon();
  }

  /** The idle shim (the caller owns it now), or undefined: then spawn one as before. */
  take(): ChildProcess | undefined {
    const c = this.idle;
    this.idle = undefined;
    this.refillSoon();
    return c && c.exitCode === null && c.signalCode === null ? c : undefined;
  }

  private refillSoon(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.closed || this.idle) return;
      const c = spawn(this.bin, ["ready"], { stdio: ["pipe", "pipe", "pipe", "pipe", "pipe"] });
      c.on("error", () => {});
      c.stdin?.on("error", () => {});
      c.once("exit", () => {
        if (this.idle === c) this.idle = undefined;
      });
      this.idle = c;
    }, 100);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.idle?.kill("SIGKILL");
    this.idle = undefined;
  }
}

export const signalNumbers: Record<string, number> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9,
  SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15, SIGSTKFLT: 16, SIGCHLD: 17,
  SIGCONT: 18, SIGSTOP: 19, SIGTSTP: 20, SIGTTIN: 21, SIGTTOU: 22, SIGURG: 23, SIGXCPU: 24, SIGXFSZ: 25,
  SIGVTALRM: 26, SIGPROF: 27, SIGWINCH: 28, SIGIO: 29, SIGPWR: 30, SIGSYS: 31,
};

/** "TERM", "SIGTERM", "15" -> 15; undefined if unknown. */
export function parseSignal(s: string | undefined, fallback: number): number | undefined {
  if (!s) return fallback;
  if (/^\d+$/.test(s)) return Number(s) > 0 && Number(s) < 65 ? Number(s) : undefined;
  const name = s.toUpperCase().startsWith("SIG") ? s.toUpperCase() : `SIG${s.toUpperCase()}`;
  return signalNumbers[name];
}

/** Docker's default capability set, by number (linux/capability.h). */
export const CAPABILITIES: Record<string, number> = {
  CHOWN: 0, DAC_OVERRIDE: 1, DAC_READ_SEARCH: 2, FOWNER: 3, FSETID: 4, KILL: 5, SETGID: 6, SETUID: 7, SETPCAP: 8,
  LINUX_IMMUTABLE: 9, NET_BIND_SERVICE: 10, NET_BROADCAST: 11, NET_ADMIN: 12, NET_RAW: 13, IPC_LOCK: 14,
  IPC_OWNER: 15, SYS_MODULE: 16, SYS_RAWIO: 17, SYS_CHROOT: 18, SYS_PTRACE: 19, SYS_PACCT: 20, SYS_ADMIN: 21,
  SYS_BOOT: 22, SYS_NICE: 23, SYS_RESOURCE: 24, SYS_TIME: 25, SYS_TTY_CONFIG: 26, MKNOD: 27, LEASE: 28,
  AUDIT_WRITE: 29, AUDIT_CONTROL: 30, SETFCAP: 31, MAC_OVERRIDE: 32, MAC_ADMIN: 33, SYSLOG: 34, WAKE_ALARM: 35,
  BLOCK_SUSPEND: 36, AUDIT_READ: 37, PERFMON: 38, BPF: 39, CHECKPOINT_RESTORE: 40,
};
export const DEFAULT_CAPABILITIES = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"];

/** The capability names a container keeps: the defaults, plus --cap-add, minus --cap-drop ("ALL" allowed). */
export function capabilitySet(add: string[] = [], drop: string[] = [], privileged = false): string[] {
  const norm = (c: string) => c.toUpperCase().replace(/^CAP_/, "");
  if (privileged) return Object.keys(CAPABILITIES);
  let set = new Set(DEFAULT_CAPABILITIES);
  const a = add.map(norm), d = drop.map(norm);
  if (a.includes("ALL")) set = new Set(Object.keys(CAPABILITIES));
  for (const c of a) if (c !== "ALL") {
    if (!(c in CAPABILITIES)) throw new Error(`invalid capability: CAP_${c}`);
    set.add(c);
  }
  if (d.includes("ALL")) set = new Set(a.filter((c) => c !== "ALL"));
  for (const c of d) set.delete(c);
  return [...set].sort();
}

export function capabilityMask(names: string[]): bigint {
  let m = 0n;
  for (const n of names) m |= 1n << BigInt(CAPABILITIES[n]!);
  return m;
}

/** setrlimit's resource numbers (asm-generic/resource.h), by the names `--ulimit` takes. */
export const RLIMITS: Record<string, number> = {
  cpu: 0, fsize: 1, data: 2, stack: 3, core: 4, rss: 5, nproc: 6, nofile: 7, memlock: 8, as: 9,
  locks: 10, sigpending: 11, msgqueue: 12, nice: 13, rtprio: 14, rttime: 15,
};
