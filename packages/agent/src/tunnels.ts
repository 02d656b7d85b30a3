// The agent's end of tunnels (packages/protocol/src/tunnel.ts): TCP connections to 127.0.0.1:<port>
// inside this sandbox's network namespace, carried as frames over one websocket connection. The
// connection owns its tunnels: each socket is destroyed when its tunnel closes, when the peer asks,
// or when the websocket goes away (closeAll), so nothing outlives the orchestrator's interest.
import { connect, type Socket } from "node:net";
import {
  FrameKind,
  TUNNEL_ACK_EVERY,
  TUNNEL_MAX_PER_CONNECTION,
  TUNNEL_WINDOW,
  decodeAck,
  encodeAck,
  encodeFrame,
  type Frame,
} from "@berth/protocol";

interface Tunnel {
  socket: Socket;
  /** Bytes sent to the peer that it has not acknowledged yet. */
  inFlight: number;
  /** Bytes received from the peer and written, not yet acknowledged back. */
  toAck: number;
  /** The socket's write buffer is full: acknowledge nothing until it drains. */
  blocked: boolean;
  /** The peer sent TunnelClose: do not send it one back. */
  closedByPeer: boolean;
  error?: string;
}

export class TunnelError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
  }
}

/** One TCP connection, allowed half-open (the peer's TunnelEnd and the server's FIN are separate events). */
function connectTo(host: string, port: number, timeoutMs: number): Promise<Socket> {
  const socket = connect({ host, port, allowHalfOpen: true, noDelay: true });
  return new Promise<Socket>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TunnelError(`connecting to port ${port} timed out after ${timeoutMs} ms`, "ETIMEDOUT"));
    }, timeoutMs);
    const onError = (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      const code = err.code ?? "EIO";
      reject(new TunnelError(code === "ECONNREFUSED" ? `nothing listens on port ${port}` : `port ${port}: ${err.message}`, code));
    };
    socket.once("error", onError);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.off("error", onError);
      resolve(socket);
    });
  });
}

export class Tunnels {
  private readonly tunnels = new Map<number, Tunnel>();
  private disposed = false;

  constructor(
    /** Sends one binary frame on the websocket (dropped when it is closed). */
    private readonly send: (frame: Buffer) => void,
  ) {}

  get size(): number {
    return this.tunnels.size;
  }

  /** Connects to 127.0.0.1:<port> (or [::1]); resolves once connected, with frames flowing from then on. */
  async open(id: number, port: number, timeoutMs: number): Promise<void> {
    if (this.disposed) throw new TunnelError("the connection is closing", "ECONNRESET");
    if (this.tunnels.has(id)) throw new TunnelError(`tunnel ${id} is open already`, "EEXIST");
    if (this.tunnels.size >= TUNNEL_MAX_PER_CONNECTION) {
      throw new TunnelError(`too many tunnels open on this connection (at most ${TUNNEL_MAX_PER_CONNECTION})`, "EMFILE");
    }
    // 127.0.0.1 first; then ::1, because a server that listens on "localhost" may have picked the
    // IPv6 loopback only (Node 17+ and many dev servers do). Nothing on either: ECONNREFUSED.
    let socket: Socket;
    try {
      socket = await connectTo("127.0.0.1", port, timeoutMs);
    } catch (err) {
      if ((err as TunnelError).code !== "ECONNREFUSED") throw err;
      socket = await connectTo("::1", port, timeoutMs).catch(() => Promise.reject(err));
    }
    // The connection may have closed while we were connecting.
    if (this.disposed || this.tunnels.has(id)) {
      socket.destroy();
      throw new TunnelError(this.disposed ? "the connection is closing" : `tunnel ${id} is open already`, this.disposed ? "ECONNRESET" : "EEXIST");
    }
    const t: Tunnel = { socket, inFlight: 0, toAck: 0, blocked: false, closedByPeer: false };
    this.tunnels.set(id, t);
    socket.on("data", (chunk: Buffer) => {
      this.send(encodeFrame(FrameKind.TunnelData, id, chunk));
      t.inFlight += chunk.length;
      // The peer has not consumed a window's worth yet: stop reading until it acknowledges.
      if (t.inFlight >= TUNNEL_WINDOW) socket.pause();
    });
    socket.on("end", () => this.send(encodeFrame(FrameKind.TunnelEnd, id, Buffer.alloc(0))));
    socket.on("drain", () => {
      t.blocked = false;
      this.flushAck(id, t, 0);
    });
    socket.on("error", (err) => {
      t.error = err.message;
    });
    socket.on("close", () => {
      if (this.tunnels.get(id) === t) this.tunnels.delete(id);
      if (!t.closedByPeer) this.send(encodeFrame(FrameKind.TunnelClose, id, Buffer.from(t.error ?? "", "utf8")));
    });
  }

  /** A tunnel frame from the peer. Frames for unknown ids are dropped (a close crossed them). */
  onFrame(frame: Frame): void {
    const t = this.tunnels.get(frame.handle);
    if (!t) return;
    switch (frame.kind) {
      case FrameKind.TunnelData: {
        if (t.socket.writableEnded) return;
        t.toAck += frame.payload.length;
        if (!t.socket.write(frame.payload)) t.blocked = true;
        if (!t.blocked) this.flushAck(frame.handle, t, TUNNEL_ACK_EVERY);
        return;
      }
      case FrameKind.TunnelAck: {
        t.inFlight = Math.max(0, t.inFlight - decodeAck(frame.payload));
        if (t.inFlight < TUNNEL_WINDOW && t.socket.isPaused()) t.socket.resume();
        return;
      }
      case FrameKind.TunnelEnd:
        t.socket.end();
        return;
      case FrameKind.TunnelClose:
        t.closedByPeer = true;
        this.tunnels.delete(frame.handle);
        t.socket.destroy();
        return;
    }
  }

  /** Destroys every socket (the websocket closed). */
  closeAll(): void {
    this.disposed = true;
    for (const t of this.tunnels.values()) {
      t.closedByPeer = true;
      t.socket.destroy();
    }
    this.tunnels.clear();
  }

  private flushAck(id: number, t: Tunnel, atLeast: number): void {
    if (t.toAck === 0 || t.toAck < atLeast) return;
    this.send(encodeFrame(FrameKind.TunnelAck, id, encodeAck(t.toAck)));
    t.toAck = 0;
  }
}
