// The orchestrator's end of tunnels (packages/protocol/src/tunnel.ts). One websocket per sandbox,
// separate from the terminal's: a page's assets streaming through must not queue behind, or in
// front of, keystrokes and pty output. Each tunnel is a Duplex that node's HTTP client can use as its
// socket. The client owns its streams: closing it (or losing the agent) destroys every one.
import { Duplex } from "node:stream";
import WebSocket from "ws";
import {
  FrameKind,
  TUNNEL_ACK_EVERY,
  TUNNEL_WINDOW,
  decodeAck,
  decodeFrame,
  encodeAck,
  encodeFrame,
  type AgentReply,
} from "@berth/protocol";
import { dialAgent, type AgentEndpoint } from "@berth/sandbox";

/** Data frames are cut to this size so one large write does not hold the websocket for long. */
const MAX_FRAME_PAYLOAD = 64 * 1024;

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

  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (data: Buffer | Buffer[] | ArrayBuffer, isBinary: boolean) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (isBinary) this.onBinary(buf);
      else this.onText(buf);
    });
    ws.on("close", () => this.onClosed());
    ws.on("error", () => this.onClosed());
  }

  static async connect(ep: AgentEndpoint, timeoutMs = 5000): Promise<TunnelClient> {
    return new TunnelClient(await dialAgent(ep, timeoutMs));
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
    let id = this.nextId;
    while (this.streams.has(id)) id = id >= 0xffffffff ? 1 : id + 1;
    this.nextId = id >= 0xffffffff ? 1 : id + 1;
    // Registered before the request: the agent may send data right behind its reply.
    const stream = new TunnelStream(this, id);
    this.streams.set(id, stream);
    const rid = this.nextRid++;
    try {
      await new Promise<void>((resolve, reject) => {
        this.pending.set(rid, { resolve, reject });
        this.ws.send(JSON.stringify({ rid, op: "tunnel.open", id, port, timeoutMs }));
      });
    } catch (err) {
      // The agent left nothing open: forget the stream without telling it.
      this.streams.delete(id);
      stream.discard();
      throw err;
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

  /** @internal used by TunnelStream */
  send(frame: Buffer): void {
    if (this.isOpen) this.ws.send(frame);
  }

  /** @internal used by TunnelStream */
  forget(id: number): void {
    this.streams.delete(id);
  }

  private onBinary(buf: Buffer): void {
    let frame;
    try {
      frame = decodeFrame(buf);
    } catch {
      return;
    }
    if (frame.kind < FrameKind.TunnelData) return;
    this.streams.get(frame.handle)?.onFrame(frame.kind, frame.payload);
  }

  private onText(buf: Buffer): void {
    let msg: AgentReply;
    try {
      msg = JSON.parse(buf.toString("utf8")) as AgentReply;
    } catch {
      return;
    }
    if (typeof (msg as { rid?: unknown }).rid !== "number") return; // an event: not for us
    const p = this.pending.get(msg.rid);
    if (!p) return;
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
    for (const cb of this.closeListeners) cb();
    this.closeListeners.clear();
  }
}
