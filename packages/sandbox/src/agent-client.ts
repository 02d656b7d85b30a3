// One websocket to one sandbox's agent. Requests are matched to replies by rid; pty output arrives
// as binary frames (never decoded here) and is handed to onOutput listeners; events (pty.exit) go
// to onEvent listeners. Every listener registration returns a Disposable.
import WebSocket from "ws";
import {
  FrameKind,
  decodeFrame,
  encodeFrame,
  type AgentEvent,
  type AgentOp,
  type AgentReplies,
  type AgentReply,
  type AgentRequestInput,
} from "@berth/protocol";
import type { AgentEndpoint, Disposable } from "./driver.js";

/**
 * One websocket to a sandbox's agent, open and authenticated (its token as a bearer header). The
 * orchestrator keeps two per sandbox: AgentClient's (terminals, exec, files) and the preview's
 * tunnels, so a big download never queues behind keystrokes.
 */
export function dialAgent(ep: AgentEndpoint, timeoutMs = 5000): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws+unix://${ep.socketPath}:/`, {
      headers: { authorization: `Bearer ${ep.token}` },
      handshakeTimeout: timeoutMs,
      perMessageDeflate: false,
    });
    const fail = (err: Error) => {
      ws.removeAllListeners();
      ws.on("error", () => {});
      ws.terminate();
      reject(new Error(`could not connect to the agent at ${ep.socketPath}: ${err.message}`));
    };
    ws.once("error", fail);
    ws.once("unexpected-response", (_req, res) => fail(new Error(`HTTP ${res.statusCode} on upgrade`)));
    ws.once("open", () => {
      ws.off("error", fail);
      resolve(ws);
    });
  });
}

export class AgentRequestError extends Error {
  constructor(
    readonly op: string,
    message: string,
    readonly code?: string,
  ) {
    super(`agent ${op}: ${message}`);
    this.name = "AgentRequestError";
  }
}

interface Pending {
  op: string;
  resolve(v: unknown): void;
  reject(e: Error): void;
}

export class AgentClient {
  private nextRid = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly outputListeners = new Set<(handle: number, bytes: Buffer) => void>();
  private readonly eventListeners = new Set<(ev: AgentEvent) => void>();
  private readonly closeListeners = new Set<() => void>();
  private closed = false;

  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (data, isBinary) => this.onMessage(data as Buffer | Buffer[] | ArrayBuffer, isBinary));
    ws.on("close", () => this.onClosed());
    ws.on("error", () => this.onClosed());
  }

  /** Opens the websocket; rejects if the agent refuses the token or does not answer in time. */
  static async connect(ep: AgentEndpoint, opts: { timeoutMs?: number } = {}): Promise<AgentClient> {
    return new AgentClient(await dialAgent(ep, opts.timeoutMs ?? 5000));
  }

  get isOpen(): boolean {
    return !this.closed && this.ws.readyState === WebSocket.OPEN;
  }

  request<K extends AgentOp>(req: Extract<AgentRequestInput, { op: K }>): Promise<AgentReplies[K]> {
    if (!this.isOpen) return Promise.reject(new AgentRequestError(req.op, "connection is closed"));
    const rid = this.nextRid++;
    return new Promise<AgentReplies[K]>((resolve, reject) => {
      this.pending.set(rid, { op: req.op, resolve: resolve as (v: unknown) => void, reject });
      this.ws.send(JSON.stringify({ ...req, rid }));
    });
  }

  sendInput(handle: number, bytes: Uint8Array): void {
    if (this.isOpen) this.ws.send(encodeFrame(FrameKind.PtyInput, handle, bytes));
  }

  onOutput(cb: (handle: number, bytes: Buffer) => void): Disposable {
    this.outputListeners.add(cb);
    return { dispose: () => this.outputListeners.delete(cb) };
  }

  onEvent(cb: (ev: AgentEvent) => void): Disposable {
    this.eventListeners.add(cb);
    return { dispose: () => this.eventListeners.delete(cb) };
  }

  onClose(cb: () => void): Disposable {
    this.closeListeners.add(cb);
    return { dispose: () => this.closeListeners.delete(cb) };
  }

  close(): void {
    if (this.closed) return;
    this.ws.close();
    this.onClosed();
  }

  private onMessage(data: Buffer | Buffer[] | ArrayBuffer, isBinary: boolean): void {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (isBinary) {
      let frame;
      try {
        frame = decodeFrame(buf);
      } catch {
        return; // not ours to crash on; the agent speaks the same frames.ts
      }
      if (frame.kind !== FrameKind.PtyOutput) return;
      for (const cb of this.outputListeners) cb(frame.handle, frame.payload);
      return;
    }
    let msg: AgentReply | AgentEvent;
    try {
      msg = JSON.parse(buf.toString("utf8")) as AgentReply | AgentEvent;
    } catch {
      return;
    }
    if ("event" in msg) {
      for (const cb of this.eventListeners) cb(msg);
      return;
    }
    const p = this.pending.get(msg.rid);
    if (!p) return;
    this.pending.delete(msg.rid);
    if (msg.ok) p.resolve(msg.result);
    else p.reject(new AgentRequestError(p.op, msg.error, msg.code));
  }

  private onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [, p] of this.pending) p.reject(new AgentRequestError(p.op, "connection closed before the reply"));
    this.pending.clear();
    for (const cb of this.closeListeners) cb();
    this.closeListeners.clear();
    this.outputListeners.clear();
    this.eventListeners.clear();
  }
}
