// One terminal of one sandbox as the orchestrator sees it: the agent's pty handle, the screen kept
// on the server (TerminalScreen) that gives an attaching browser its screen back at its own size,
// the browsers watching it, and flow control.
// The orchestrator holds no pty: bytes come from the agent and go to the viewers untouched; the
// screen is fed the same bytes beside them.
//
// Attach is ordered with the output: a viewer that attaches waits (its live bytes queued) until
// the screen has parsed every byte that came before the attach, then gets that screen (with
// `reset`), then the queued bytes, then live output. So nothing is shown twice or lost between
// the snapshot and the live stream.
//
// A mirror (an instructor watching the learner's terminal, cohorts/live.ts) is a viewer that does
// not hold the pty back: when it falls more than the high watermark behind, it stops getting live
// bytes, and once its acknowledgements bring it under the low watermark it gets the kept screen
// again (a fresh snapshot with `reset`). The learner's own flow control is untouched by it, and it
// does not count as someone watching (the reaper and lifetime go by the learner's viewers).
import { FLOW_HIGH_WATERMARK, FLOW_LOW_WATERMARK } from "@berth/protocol";
import type { AgentClient } from "@berth/sandbox";
import { TerminalScreen } from "./terminal-screen.js";

/** What the session needs from a browser connection (a socket.io socket in production). */
export interface TerminalViewer {
  readonly id: string;
  send(msg: { term: string; data: Buffer; reset?: boolean }): void;
  exited(msg: { term: string; exitCode: number }): void;
}

interface ViewerEntry {
  viewer: TerminalViewer;
  /** Bytes sent (or queued) and not yet acknowledged by the browser. */
  unacked: number;
  /** Live output that arrived while the viewer's snapshot was being made; null once it is live. */
  queued: Buffer[] | null;
  /** False for a mirror: it never pauses the pty (see the top of the file). */
  holdsFlow: boolean;
  /** A mirror that fell too far behind: no live bytes until it has caught up, then a new snapshot. */
  stale: boolean;
}

export class TerminalSession {
  readonly screen: TerminalScreen;
  private readonly viewers = new Map<string, ViewerEntry>();
  private paused = false;
  private exitCode: number | null = null;
  private disposed = false;
  /**
   * A shell that outlived the orchestrator, re-attached: the agent's replay of its output is on its
   * way, ahead of the answer to the next request. The first viewer's attach waits for that answer
   * (gateway.ts), so its snapshot includes the replay.
   */
  restoring = false;
  lastActivity = Date.now();
  /** When the pty last sent output (ms). */
  lastOutputAt = 0;
  /** When the learner last typed anything (ms). */
  lastInputAt = 0;
  /**
   * When the learner last ended a line they had typed something on (Enter after text: a command,
   * a pasted script, a Run block). Enter on an empty line does not count: it changes nothing.
   * Automatic checks look again once its output has settled (grading/auto-checks.ts).
   */
  lastCommandAt = 0;
  /** Something other than Enter was typed since the last Enter. */
  private typedSinceEnter = false;
  private readonly commandListeners = new Set<() => void>();

  constructor(
    readonly key: string,
    readonly handle: number,
    private readonly agent: AgentClient,
    size: { cols: number; rows: number } = { cols: 80, rows: 24 },
  ) {
    this.screen = new TerminalScreen(size);
  }

  get exited(): boolean {
    return this.exitCode !== null;
  }

  /** The learner's own viewers (mirrors not counted). */
  get viewerCount(): number {
    let n = 0;
    for (const v of this.viewers.values()) if (v.holdsFlow) n++;
    return n;
  }

  /** Mirrors attached now. */
  get mirrorCount(): number {
    return this.viewers.size - this.viewerCount;
  }

  /** Bytes from the agent's pty. */
  output(bytes: Buffer): void {
    this.lastActivity = this.lastOutputAt = Date.now();
    this.screen.write(bytes, this.onScreenParsed);
    for (const v of this.viewers.values()) this.deliver(v, bytes, true);
    this.updateFlow();
  }

  /** Live bytes to one viewer: queued during its snapshot, dropped while a mirror is stale. */
  private deliver(v: ViewerEntry, bytes: Buffer, copy: boolean): void {
    if (v.stale) return;
    if (!v.holdsFlow && v.unacked > FLOW_HIGH_WATERMARK) {
      v.stale = true; // caught up again in ack(), with a fresh snapshot
      v.queued = null;
      return;
    }
    if (v.queued) v.queued.push(copy ? Buffer.from(bytes) : bytes);
    else v.viewer.send({ term: this.key, data: bytes });
    v.unacked += bytes.length;
  }

  exit(exitCode: number): void {
    if (this.exitCode !== null) return;
    this.exitCode = exitCode;
    // A viewer still waiting for its snapshot hears of the exit after it (see attach).
    for (const v of this.viewers.values()) if (!v.queued) v.viewer.exited({ term: this.key, exitCode });
  }

  /** A browser (re)attaches: it gets the kept screen (after a reset), then live bytes. */
  attach(viewer: TerminalViewer, opts: { mirror?: boolean } = {}): void {
    const entry: ViewerEntry = { viewer, unacked: 0, queued: [], holdsFlow: !opts.mirror, stale: false };
    this.viewers.set(viewer.id, entry);
    this.sendSnapshot(entry);
    this.updateFlow();
  }

  /** The kept screen (after a reset), then what arrived meanwhile; then the viewer is live. */
  private sendSnapshot(entry: ViewerEntry): void {
    const { viewer } = entry;
    this.screen.snapshot((screen) => {
      if (this.viewers.get(viewer.id) !== entry) return; // detached (or attached again) meanwhile
      viewer.send({ term: this.key, data: screen, reset: true });
      entry.unacked += screen.length;
      for (const bytes of entry.queued ?? []) viewer.send({ term: this.key, data: bytes });
      entry.queued = null;
      if (this.exitCode !== null) viewer.exited({ term: this.key, exitCode: this.exitCode });
      this.updateFlow();
    });
  }

  detach(viewerId: string): void {
    this.viewers.delete(viewerId);
    this.updateFlow();
  }

  input(bytes: Uint8Array): void {
    if (this.exitCode !== null) return;
    const now = (this.lastActivity = this.lastInputAt = Date.now());
    let command = false;
    for (const b of bytes) {
      if (b === 0x0d || b === 0x0a) {
        if (this.typedSinceEnter) command = true;
        this.typedSinceEnter = false;
      } else this.typedSinceEnter = true;
    }
    this.agent.sendInput(this.handle, bytes);
    if (!command) return;
    this.lastCommandAt = now;
    for (const fn of this.commandListeners) fn();
  }

  /** Calls `fn` whenever the learner enters a command (see lastCommandAt). Returns the unsubscribe. */
  onCommand(fn: () => void): () => void {
    this.commandListeners.add(fn);
    return () => this.commandListeners.delete(fn);
  }

  ack(viewerId: string, bytes: number): void {
    const v = this.viewers.get(viewerId);
    if (!v) return;
    v.unacked = Math.max(0, v.unacked - bytes);
    if (v.stale && v.unacked < FLOW_LOW_WATERMARK) {
      // The mirror caught up with what it was sent: give it the screen as it is now.
      v.stale = false;
      v.unacked = 0;
      v.queued = [];
      this.sendSnapshot(v);
    }
    this.updateFlow();
  }

  /** The pty and the kept screen take the new size (the screen after the bytes already received). */
  resize(cols: number, rows: number): Promise<unknown> {
    this.screen.resize(cols, rows);
    return this.agent.request({ op: "pty.resize", handle: this.handle, cols, rows });
  }

  /** The session is over (its pty exited, or the sandbox went): free the screen. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.commandListeners.clear();
    // Viewers still waiting get the screen as far as it was parsed (TerminalScreen.dispose).
    this.screen.dispose();
  }

  /** The screen caught up a little: it may have been what held the pty back. */
  private readonly onScreenParsed = () => {
    if (this.paused) this.updateFlow();
  };

  /**
   * Pause the pty while the slowest viewer is more than the high watermark behind; resume below the
   * low one. The server's own screen counts as a viewer: it parses on this process's thread, and a
   * flood it cannot keep up with would otherwise queue in memory. With no browser watching, the pty
   * runs as fast as the screen parses.
   */
  private updateFlow(): void {
    if (this.disposed) return;
    let worst = this.screen.backlog;
    for (const v of this.viewers.values()) if (v.holdsFlow) worst = Math.max(worst, v.unacked);
    if (!this.paused && worst > FLOW_HIGH_WATERMARK) this.setPaused(true);
    else if (this.paused && worst < FLOW_LOW_WATERMARK) this.setPaused(false);
  }

  private setPaused(paused: boolean): void {
    this.paused = paused;
    this.agent.request({ op: "pty.flow", handle: this.handle, paused }).catch(() => {
      // The agent is gone; the sandbox manager notices through the client's close event.
    });
  }

  /**
   * A line from Berth itself (a limit acted, the sandbox is ending; limit-notices.ts): to every
   * viewer and into the kept screen like output, on a line of its own, but never into the pty
   * (the learner's programs do not read it) and not counted as the learner's activity.
   */
  notice(text: string): void {
    if (this.disposed) return;
    const bytes = Buffer.from(`\r\n\x1b[1;33m${text.replace(/[\x00-\x1f\x7f]/g, " ")}\x1b[0m\r\n`, "utf8");
    this.screen.write(bytes, this.onScreenParsed);
    for (const v of this.viewers.values()) this.deliver(v, bytes, false);
    this.updateFlow();
  }
}
