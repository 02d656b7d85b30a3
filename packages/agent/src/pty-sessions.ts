// The agent's terminals. A PtySession owns one node-pty process, its replay buffer and its output
// batcher; PtySessions finds them by handle or by key ("main") so a reconnecting orchestrator gets the
// same shell back. Output stays bytes (node-pty with encoding: null) from the pty to the websocket.
import { closeSync, constants as fsConstants, openSync } from "node:fs";
import * as pty from "node-pty";
import { ReplayBuffer, type PtyInfo } from "@berth/protocol";
import { raiseOomScore } from "./oom.js";

/** Coalesce pty output for this long, or until this many bytes are pending, before sending a frame. */
export const BATCH_MS = 5;
export const BATCH_BYTES = 32 * 1024;
/** Exited sessions are kept (so their last screen can be read) up to this many. */
const KEEP_EXITED = 16;

export interface PtySink {
  output(handle: number, bytes: Buffer): void;
  exit(handle: number, exitCode: number, signal: number | null): void;
}

export interface PtyStartOptions {
  key: string;
  cols: number;
  rows: number;
  cmd: string[];
  cwd: string;
  env: Record<string, string>;
}

export class PtySession {
  readonly replay = new ReplayBuffer();
  exited = false;
  exitCode = 0;
  exitSignal: number | null = null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly proc: pty.IPty;
  /** Our own fd on the pty's slave side; see the constructor. */
  private slaveFd: number | undefined;
  private cols: number;
  private rows: number;

  constructor(
    readonly handle: number,
    readonly key: string,
    opts: PtyStartOptions,
    private readonly sink: PtySink,
  ) {
    this.cols = opts.cols;
    this.rows = opts.rows;
    this.proc = pty.spawn(opts.cmd[0]!, opts.cmd.slice(1), {
      name: opts.env.TERM ?? "xterm-256color",
      cols: opts.cols,
      rows: opts.rows,
      cwd: opts.cwd,
      env: opts.env,
      // null: onData hands us Buffers, never decoded strings (the typings still say string).
      encoding: null,
    });
    raiseOomScore(this.proc.pid);
    // Without this, the tail of the output of a process that writes a burst and exits is sometimes
    // lost: its exit closes the last slave fd, and the master's next read can fail with EIO before
    // the kernel has handed over the bytes still queued. With our own slave fd open there is no EIO;
    // node-pty then sees the exit, keeps reading for 200 ms (its DESTROY_SOCKET_TIMEOUT_MS), closes,
    // and only then emits exit: every byte arrives first.
    const ptsName = (this.proc as pty.IPty & { ptsName?: string }).ptsName;
    if (ptsName) {
      try {
        this.slaveFd = openSync(ptsName, fsConstants.O_RDWR | fsConstants.O_NOCTTY);
      } catch {
        // Fall back to node-pty's own behaviour.
      }
    }
    this.proc.onData((data) => this.onData(data as unknown as Buffer));
    // node-pty emits exit only after the pty's socket closed, i.e. after the last data event.
    this.proc.onExit(({ exitCode, signal }) => {
      this.closeSlave();
      this.flush();
      this.exited = true;
      this.exitCode = exitCode;
      this.exitSignal = signal ? signal : null;
      this.sink.exit(this.handle, exitCode, this.exitSignal);
    });
  }

  get pid(): number {
    return this.proc.pid;
  }

  info(): PtyInfo {
    return { handle: this.handle, key: this.key, pid: this.pid, cols: this.cols, rows: this.rows, exited: this.exited };
  }

  write(bytes: Buffer): void {
    if (!this.exited) this.proc.write(bytes);
  }

  resize(cols: number, rows: number): void {
    if (this.exited) return;
    this.cols = cols;
    this.rows = rows;
    this.proc.resize(cols, rows);
  }

  setPaused(paused: boolean): void {
    if (this.exited) return;
    if (paused) this.proc.pause();
    else this.proc.resume();
  }

  signal(name: string): void {
    if (!this.exited) this.proc.kill(name);
  }

  private closeSlave(): void {
    if (this.slaveFd === undefined) return;
    try {
      closeSync(this.slaveFd);
    } catch {
      // Already closed.
    }
    this.slaveFd = undefined;
  }

  /** destroy(), not kill(): it also closes our side of the pty so no fd or socket is left behind. */
  dispose(): void {
    this.closeSlave();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.exited) {
      try {
        // UnixTerminal has destroy() (kill + close the pty's fd); the 1.1.0 typings omit it.
        (this.proc as pty.IPty & { destroy(): void }).destroy();
      } catch {
        // Already gone.
      }
    }
  }

  private onData(chunk: Buffer): void {
    this.replay.push(chunk);
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= BATCH_BYTES) return this.flush();
    if (this.timer) return;
    // Leading edge: after a quiet spell (a keystroke's echo) send at once; within a burst, wait
    // out the rest of the window so a flood still leaves in few, large frames.
    const since = performance.now() - this.lastFlush;
    if (since >= BATCH_MS) this.flush();
    else this.timer = setTimeout(() => this.flush(), BATCH_MS - since);
  }

  private lastFlush = -Infinity;

  private flush(): void {
    this.lastFlush = performance.now();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pendingBytes === 0) return;
    const bytes = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.sink.output(this.handle, bytes);
  }
}

export class PtySessions {
  private nextHandle = 1;
  private readonly byHandle = new Map<number, PtySession>();

  constructor(private readonly sink: PtySink) {}

  get size(): number {
    let live = 0;
    for (const s of this.byHandle.values()) if (!s.exited) live++;
    return live;
  }

  get(handle: number): PtySession {
    const s = this.byHandle.get(handle);
    if (!s) throw new Error(`no pty with handle ${handle} (pty.list shows the open ones)`);
    return s;
  }

  /** The live session started under this key, if any. */
  liveByKey(key: string): PtySession | undefined {
    for (const s of this.byHandle.values()) if (s.key === key && !s.exited) return s;
    return undefined;
  }

  start(opts: PtyStartOptions): PtySession {
    this.dropExitedKey(opts.key);
    const s = new PtySession(this.nextHandle++, opts.key, opts, this.sink);
    this.byHandle.set(s.handle, s);
    this.trimExited();
    return s;
  }

  remove(handle: number): void {
    const s = this.byHandle.get(handle);
    if (!s) return;
    s.dispose();
    this.byHandle.delete(handle);
  }

  list(): PtyInfo[] {
    return [...this.byHandle.values()].map((s) => s.info());
  }

  dispose(): void {
    for (const s of this.byHandle.values()) s.dispose();
    this.byHandle.clear();
  }

  private dropExitedKey(key: string): void {
    for (const s of this.byHandle.values()) if (s.key === key && s.exited) this.remove(s.handle);
  }

  private trimExited(): void {
    const exited = [...this.byHandle.values()].filter((s) => s.exited);
    for (const s of exited.slice(0, Math.max(0, exited.length - KEEP_EXITED))) this.remove(s.handle);
  }
}
