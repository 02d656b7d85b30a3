// The orchestrator's end of tunnels (packages/protocol/src/tunnel.ts). One websocket per sandbox,
// separate from the terminal's: a page's assets streaming through must not queue behind, or in
// front of, keystrokes and pty output. Each tunnel is a Duplex that node's HTTP client can use as its
// socket. The client owns its streams: closing it (or losing the agent) destroys every one.
//
// The agent is inside the learner's sandbox and may be hostile or stopped (docs/sandboxes.md, "A
// hostile sandbox"): its messages are validated and can throw nothing out of a listener; a tunnel
// whose agent sends past its window is closed; opens time out; and a link that stops reading is
// closed once TUNNEL_LINK_MAX_QUEUED bytes wait for it, so what we hold for one sandbox is bounded.
import { Duplex } from "node:stream";
import WebSocket from "ws";
import {
  AgentReply,
  FrameKind,
  TUNNEL_ACK_EVERY,
  TUNNEL_MAX_PER_CONNECTION,
  TUNNEL_WINDOW,
  decodeAck,
  decodeFrame,
  encodeAck,
  encodeFrame,
} from "@berth/protocol";
import { ThrottledWarnings, dialAgent, type AgentEndpoint } from "@berth/sandbox";

/** Data frames are cut to this size so one large write does not hold the websocket for long. */
const MAX_FRAME_PAYLOAD = 64 * 1024;
/**
 * Bytes that may wait to go out to one sandbox's agent before its tunnel link is closed. Each
 * tunnel keeps at most TUNNEL_WINDOW in flight, so only an agent that stopped reading gets here.
 */
export const TUNNEL_LINK_MAX_QUEUED = 16 * 1024 * 1024;
/** The agent's frames carry at most one socket read; anything bigger closes the link unread. */
const TUNNEL_LINK_MAX_PAYLOAD = 2 * 1024 * 1024;
/** On top of the agent's own connect timeout: an agent that never answers an open. */
const OPEN_GRACE_MS = 5000;

export class TunnelOpenError extends Error {
  constructor(message: string, readonly code: string | undefined) {
    super(message);
  }
}

export class TunnelStream extends Duplex {
  /** Bytes sent to the agent that it has not acknowledged. */
  private inFlight = 0;
  /** Bytes pushed to our reader and not yet acknowledged to the agent. */
  private toAck = 0;
  /** Our reader is full: acknowledge once it asks for more (_read). */
  private readerFull = false;
  private waitingWrite: (() => void) | undefined;
  private gone = false;

  constructor(private readonly client: TunnelClient, readonly id: number) {
    super({ allowHalfOpen: true });
    // The agent can end a tunnel with an error at any moment, also before the HTTP client has put
    // its listeners on: an 'error' nobody hears would end the process. Users still get it, and 'close'.
    this.on("error", () => {});
  }

  // node's HTTP client calls these on its socket; a tunnel has no TCP options of its own here.
  setTimeout(): this { return this; }
  setNoDelay(): this { return this; }
  setKeepAlive(): this { return this; }
  ref(): this { return this; }
  unref(): this { return this; }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.gone) return cb(new Error("the tunnel is closed"));
    for (let at = 0; at < chunk.length; at += MAX_FRAME_PAYLOAD) {
      this.client.send(encodeFrame(FrameKind.TunnelData, this.id, chunk.subarray(at, at + MAX_FRAME_PAYLOAD)));
    }
    this.inFlight += chunk.length;
    // Over the window: hold the writer until the agent has passed bytes on to the sandbox's socket.
    if (this.inFlight >= TUNNEL_WINDOW) this.waitingWrite = () => cb();
    else cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.gone) this.client.send(encodeFrame(FrameKind.TunnelEnd, this.id, Buffer.alloc(0)));
    cb();
  }

  override _read(): void {
    this.readerFull = false;
    this.flushAck(TUNNEL_ACK_EVERY);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.gone) {
      this.gone = true;
      this.client.send(encodeFrame(FrameKind.TunnelClose, this.id, Buffer.alloc(0)));
    }
    this.client.forget(this.id);
    this.releaseWriter();
    cb(err);
  }

  /** A frame from the agent for this tunnel. */
  onFrame(kind: FrameKind, payload: Buffer): void {
    switch (kind) {
      case FrameKind.TunnelData:
        this.toAck += payload.length;
        // An agent that ignores our window would make us buffer without end: not this tunnel. (An
        // honest one stops reading its socket at the window, so it may overshoot by one read.)
        if (this.toAck > TUNNEL_WINDOW + TUNNEL_LINK_MAX_PAYLOAD) {
          this.client.warn(`tunnel ${this.id}: the agent sent ${this.toAck} unacknowledged bytes, past the ${TUNNEL_WINDOW}-byte window; closed`);
          return void this.destroy(new Error("the sandbox broke the tunnel's flow control"));
        }
        if (!this.push(payload)) this.readerFull = true;
        else if (!this.readerFull) this.flushAck(TUNNEL_ACK_EVERY);
        return;
      case FrameKind.TunnelAck:
        this.inFlight = Math.max(0, this.inFlight - decodeAck(payload));
        if (this.inFlight < TUNNEL_WINDOW) this.releaseWriter();
        return;
      case FrameKind.TunnelEnd:
        this.push(null);
        return;
      case FrameKind.TunnelClose:
        this.closedByAgent(payload.length ? payload.toString("utf8") : undefined);
        return;
    }
  }

  /** Never opened on the agent's side: go without sending it anything. */
  discard(): void {
    this.gone = true;
    this.destroy();
  }

  /** The agent's socket is gone (or the websocket is). */
  closedByAgent(reason?: string): void {
    if (this.gone) return;
    this.gone = true;
    this.client.forget(this.id);
    if (reason) return void this.destroy(new Error(reason));
    // A clean close: let the reader take what is buffered, then go.
    this.push(null);
    if (this.readableEnded) this.destroy();
    else this.once("end", () => this.destroy());
  }

  private releaseWriter(): void {
    const w = this.waitingWrite;
    this.waitingWrite = undefined;
    w?.();
  }

  private flushAck(atLeast: number): void {
    if (this.gone || this.toAck === 0 || this.toAck < atLeast) return;
    this.client.send(encodeFrame(FrameKind.TunnelAck, this.id, encodeAck(this.toAck)));
    this.toAck = 0;
  }
}

export class TunnelClient {
  private readonly streams = new Map<number, TunnelStream>();
  private readonly pending = new Map<number, { resolve(): void; reject(err: Error): void }>();
  private nextId = 1;
  private nextRid = 1;
  private closed = false;
  private readonly closeListeners = new Set<() => void>();
  private readonly warnings: ThrottledWarnings;

  private constructor(private readonly ws: WebSocket, onWarning?: (message: string) => void) {
    this.warnings = new ThrottledWarnings(onWarning);
    ws.on("message", (data: Buffer | Buffer[] | ArrayBuffer, isBinary: boolean) => {
      // Nothing the agent sends may throw out of here (a throw in a ws listener ends the process).
      try {
        const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
        if (isBinary) this.onBinary(buf);
        else this.onText(buf);
      } catch (err) {
        this.warn(`dropped a message from the agent: ${(err as Error).message}`);
      }
    });
    ws.on("close", () => this.onClosed());
    ws.on("error", (err) => {
      this.warn(`the tunnel link failed: ${err.message}`);
      this.onClosed();
    });
  }

  static async connect(ep: AgentEndpoint, opts: { timeoutMs?: number; onWarning?: (message: string) => void } = {}): Promise<TunnelClient> {
    return new TunnelClient(await dialAgent(ep, { timeoutMs: opts.timeoutMs ?? 5000, maxPayload: TUNNEL_LINK_MAX_PAYLOAD }), opts.onWarning);
  }

  get isOpen(): boolean {
    return !this.closed && this.ws.readyState === WebSocket.OPEN;
  }

  /** Tunnels open right now (tests check that none are left behind). */
  get size(): number {
    return this.streams.size;
  }

  /** A stream to 127.0.0.1:<port> in the sandbox; rejects with code ECONNREFUSED when nothing listens. */
  async open(port: number, timeoutMs = 5000): Promise<TunnelStream> {
    if (!this.isOpen) throw new TunnelOpenError("the connection to the sandbox is closed", "ECONNRESET");
    if (this.streams.size >= TUNNEL_MAX_PER_CONNECTION) throw new TunnelOpenError(`too many tunnels open to this sandbox (at most ${TUNNEL_MAX_PER_CONNECTION})`, "EMFILE");
    let id = this.nextId;
    while (this.streams.has(id)) id = id >= 0xffffffff ? 1 : id + 1;
    this.nextId = id >= 0xffffffff ? 1 : id + 1;
    // Registered before the request: the agent may send data right behind its reply.
    const stream = new TunnelStream(this, id);
    this.streams.set(id, stream);
    const rid = this.nextRid++;
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        this.pending.set(rid, { resolve, reject });
        // A stopped agent never answers: the browser's request must not wait forever.
        timer = setTimeout(() => {
          if (!this.pending.delete(rid)) return;
          // Should it open after all, it closes at once.
          this.send(encodeFrame(FrameKind.TunnelClose, id, Buffer.alloc(0)));
          reject(new TunnelOpenError(`the sandbox did not answer within ${timeoutMs + OPEN_GRACE_MS} ms`, "ETIMEDOUT"));
        }, timeoutMs + OPEN_GRACE_MS);
        this.send(JSON.stringify({ rid, op: "tunnel.open", id, port, timeoutMs }));
      });
    } catch (err) {
      // The agent left nothing open: forget the stream without telling it.
      this.streams.delete(id);
      stream.discard();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return stream;
  }

  onClose(cb: () => void): void {
    if (this.closed) cb();
    else this.closeListeners.add(cb);
  }

  close(): void {
    if (this.closed) return;
    this.ws.close();
    this.onClosed();
  }

  /** @internal used by TunnelStream; closes the link, and with it every tunnel, if the agent stopped reading. */
  send(frame: Buffer | string): void {
    if (!this.isOpen) return;
    if (this.ws.bufferedAmount > TUNNEL_LINK_MAX_QUEUED) {
      this.warn(`closing the tunnel link: ${this.ws.bufferedAmount} bytes wait for an agent that is not reading (cap ${TUNNEL_LINK_MAX_QUEUED})`);
      this.ws.terminate();
      this.onClosed();
      return;
    }
    this.ws.send(frame);
  }

  /** Bytes waiting to go out to the agent (tests and the queue bench read it). */
  get queuedBytes(): number {
    return this.ws.bufferedAmount;
  }

  /** @internal used by TunnelStream */
  warn(message: string): void {
    this.warnings.warn(message);
  }

  /** @internal used by TunnelStream */
  forget(id: number): void {
    this.streams.delete(id);
  }

  private onBinary(buf: Buffer): void {
    let frame;
    try {
      frame = decodeFrame(buf);
    } catch (err) {
      return this.warn(`dropped a binary frame from the agent: ${(err as Error).message}`);
    }
    if (frame.kind < FrameKind.TunnelData) return this.warn(`dropped a frame of kind ${frame.kind} on the tunnel link`);
    const stream = this.streams.get(frame.handle);
    if (!stream) return; // a tunnel we closed: its last frames may still be on the way
    try {
      stream.onFrame(frame.kind, frame.payload);
    } catch (err) {
      // (a malformed ack): that tunnel is broken, the others are not
      this.warn(`tunnel ${frame.handle}: ${(err as Error).message}; closed`);
      stream.destroy(new Error(`the sandbox sent a malformed frame: ${(err as Error).message}`));
    }
  }

  private onText(buf: Buffer): void {
    let raw: unknown;
    try {
      raw = JSON.parse(buf.toString("utf8"));
    } catch {
      return this.warn(`dropped a text frame from the agent that is not JSON (${buf.length} bytes)`);
    }
    if (typeof raw === "object" && raw !== null && "event" in raw) return; // an event: not for us
    const parsed = AgentReply.safeParse(raw);
    if (!parsed.success) return this.warn(`dropped a malformed message from the agent (${parsed.error.issues[0]?.message ?? "invalid"})`);
    const msg = parsed.data;
    const p = this.pending.get(msg.rid);
    if (!p) return this.warn(`dropped a reply for rid ${msg.rid}, which no open is waiting for`);
    this.pending.delete(msg.rid);
    if (msg.ok) p.resolve();
    else p.reject(new TunnelOpenError(msg.error, msg.code));
  }

  private onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new TunnelOpenError("the connection to the sandbox closed", "ECONNRESET"));
    this.pending.clear();
    for (const s of [...this.streams.values()]) s.closedByAgent("the connection to the sandbox closed");
    this.streams.clear();
    for (const cb of this.closeListeners) {
      try {
        cb();
      } catch (err) {
        this.warn(`a close listener threw: ${(err as Error).message}`);
      }
    }
    this.closeListeners.clear();
    this.warnings.flush();
  }
}
