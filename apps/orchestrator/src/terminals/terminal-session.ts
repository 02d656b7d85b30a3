// One terminal of one sandbox as the orchestrator sees it: the agent's pty handle, the replay buffer
// that gives a reconnecting browser its screen back, the browsers watching it, and flow control.
// The orchestrator holds no pty: bytes come from the agent and go to the viewers untouched.
import {
  FLOW_HIGH_WATERMARK,
  FLOW_LOW_WATERMARK,
  ReplayBuffer,
} from "@berth/protocol";
import type { AgentClient } from "@berth/sandbox";

/** What the session needs from a browser connection (a socket.io socket in production). */
export interface TerminalViewer {
  readonly id: string;
  send(msg: { term: string; data: Buffer; reset?: boolean }): void;
  exited(msg: { term: string; exitCode: number }): void;
}

export class TerminalSession {
  readonly replay = new ReplayBuffer();
  private readonly viewers = new Map<string, { viewer: TerminalViewer; unacked: number }>();
  private paused = false;
  private exitCode: number | null = null;
  lastActivity = Date.now();

  constructor(
    readonly key: string,
    readonly handle: number,
    private readonly agent: AgentClient,
  ) {}

  get exited(): boolean {
    return this.exitCode !== null;
  }

  get viewerCount(): number {
    return this.viewers.size;
  }

  /** Bytes from the agent's pty. */
  output(bytes: Buffer): void {
    this.lastActivity = Date.now();
    this.replay.push(bytes);
    for (const v of this.viewers.values()) {
      v.viewer.send({ term: this.key, data: bytes });
      v.unacked += bytes.length;
    }
    this.updateFlow();
  }

  exit(exitCode: number): void {
    this.exitCode = exitCode;
    for (const v of this.viewers.values()) v.viewer.exited({ term: this.key, exitCode });
  }

  /** A browser (re)attaches: it gets a reset and the kept screen, then live bytes. */
  attach(viewer: TerminalViewer): void {
    this.viewers.set(viewer.id, { viewer, unacked: 0 });
    viewer.send({ term: this.key, data: this.replay.contents(), reset: true });
    if (this.exitCode !== null) viewer.exited({ term: this.key, exitCode: this.exitCode });
    this.updateFlow();
  }

  detach(viewerId: string): void {
    this.viewers.delete(viewerId);
    this.updateFlow();
  }

  input(bytes: Uint8Array): void {
    if (this.exitCode !== null) return;
    this.lastActivity = Date.now();
    this.agent.sendInput(this.handle, bytes);
  }

  ack(viewerId: string, bytes: number): void {
    const v = this.viewers.get(viewerId);
    if (!v) return;
    v.unacked = Math.max(0, v.unacked - bytes);
    this.updateFlow();
  }

  resize(cols: number, rows: number): Promise<unknown> {
    return this.agent.request({ op: "pty.resize", handle: this.handle, cols, rows });
  }

  /**
   * Pause the pty while the slowest viewer is more than the high watermark behind; resume below the
   * low one. With no viewer at all the pty runs free (output only feeds the replay buffer).
   */
  private updateFlow(): void {
    let worst = 0;
    for (const v of this.viewers.values()) worst = Math.max(worst, v.unacked);
    if (!this.paused && worst > FLOW_HIGH_WATERMARK) this.setPaused(true);
    else if (this.paused && worst < FLOW_LOW_WATERMARK) this.setPaused(false);
  }

  private setPaused(paused: boolean): void {
    this.paused = paused;
    this.agent.request({ op: "pty.flow", handle: this.handle, paused }).catch(() => {
      // The agent is gone; the sandbox manager notices through the client's close event.
    });
  }
}
