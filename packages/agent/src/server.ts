// The agent's websocket server on a UNIX socket. Every upgrade must carry the sandbox token; every
// text frame is a request validated by the protocol's zod schemas and answered exactly once; binary
// frames carry keystrokes in and pty output out (frames.ts). Several connections can be open at
// once (an orchestrator that restarted, `labkit test`): each pty's output goes to every connection
// attached to it.
import { createServer, type IncomingMessage, type Server } from "node:http";
import { timingSafeEqual } from "node:crypto";
import { existsSync, unlinkSync, chmodSync } from "node:fs";
import { hostname } from "node:os";
import { constants as osConstants } from "node:os";
import type { Duplex } from "node:stream";
import { WebSocketServer, WebSocket, type RawData } from "ws";
import {
  AGENT_PROTOCOL_VERSION,
  AgentEnvelope,
  AgentRequest,
  FrameKind,
  decodeFrame,
  encodeFrame,
  type AgentEvent,
  type AgentReply,
  type HealthReply,
} from "@berth/protocol";
import { PtySessions, type PtySession } from "./pty-sessions.js";
import { runExec } from "./exec.js";
import { listDir, readFileCapped, statFile, writeFileBytes } from "./files.js";
import { Tunnels } from "./tunnels.js";

export interface AgentOptions {
  /**
   * Where to listen: a path (tests, `labkit`), or a listening UNIX socket inherited as this file
   * descriptor. A sandbox's agent gets the fd (the driver binds the socket in a host directory the
   * sandbox cannot see, so nothing inside can replace what the host dials).
   */
  socketPath?: string;
  listenFd?: number;
  token: string;
  /** Environment for shells and exec (the agent's own, scrubbed of secrets, is a poor default). */
  baseEnv?: Record<string, string>;
  /** Working directory for shells and exec when the request names none. */
  home?: string;
  log?: (line: string) => void;
  /** Called after each health reply (main.ts starts the engine once the sandbox is healthy). */
  onHealth?: () => void;
}

export const DEFAULT_ENV: Record<string, string> = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  HOME: "/root",
  USER: "root",
  LOGNAME: "root",
  SHELL: "/bin/bash",
  LANG: "C.UTF-8",
};

/** A connection this far behind on output is dropped (it can reconnect and get the replay). */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

interface Connection {
  ws: WebSocket;
  attached: Set<number>;
  /** TCP connections inside the sandbox for the web preview; closed with the connection. */
  tunnels: Tunnels;
}

export class AgentServer {
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<Connection>();
  private readonly ptys: PtySessions;
  private readonly execs = new Set<{ kill(): void }>();
  private readonly started = Date.now();
  private readonly token: Buffer;
  private readonly baseEnv: Record<string, string>;
  private readonly home: string;
  private readonly log: (line: string) => void;
  private disposed = false;

  private constructor(private readonly opts: AgentOptions) {
    this.token = Buffer.from(opts.token, "utf8");
    this.baseEnv = opts.baseEnv ?? DEFAULT_ENV;
    this.home = opts.home ?? this.baseEnv.HOME ?? "/";
    this.log = opts.log ?? (() => {});
    this.ptys = new PtySessions({
      output: (handle, bytes) => this.broadcastOutput(handle, bytes),
      exit: (handle, exitCode, signal) =>
        this.broadcastEvent(handle, { event: "pty.exit", handle, exitCode, signal }),
    });
    this.http = createServer((_req, res) => {
      res.writeHead(426, { "content-type": "text/plain" }).end("websocket only\n");
    });
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 32 * 1024 * 1024 });
    this.http.on("upgrade", (req, socket, head) => this.onUpgrade(req, socket, head));
  }

  /**
   * Listens on opts.listenFd, or on opts.socketPath (a stale socket file is replaced), and resolves
   * once it accepts.
   */
  static async listen(opts: AgentOptions): Promise<AgentServer> {
    if (!opts.token) throw new Error("agent: refusing to start without a token");
    if ((opts.socketPath === undefined) === (opts.listenFd === undefined)) throw new Error("agent: give exactly one of socketPath and listenFd");
    const server = new AgentServer(opts);
    if (opts.socketPath !== undefined && existsSync(opts.socketPath)) unlinkSync(opts.socketPath);
    await new Promise<void>((resolve, reject) => {
      server.http.once("error", reject);
      const where = opts.socketPath !== undefined ? { path: opts.socketPath } : { fd: opts.listenFd! };
      server.http.listen(where, () => {
        server.http.off("error", reject);
        resolve();
      });
    });
    if (opts.socketPath !== undefined) chmodSync(opts.socketPath, 0o600);
    return server;
  }

  /** Closes every connection, pty, running exec and timer, and the socket. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const c of this.connections) {
      c.ws.terminate();
      c.tunnels.closeAll();
    }
    this.connections.clear();
    for (const e of this.execs) e.kill();
    this.execs.clear();
    this.ptys.dispose();
    this.wss.close();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
    if (this.opts.socketPath !== undefined && existsSync(this.opts.socketPath)) unlinkSync(this.opts.socketPath);
  }

  private authorized(req: IncomingMessage): boolean {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? "");
    if (!m) return false;
    const given = Buffer.from(m[1]!, "utf8");
    return given.length === this.token.length && timingSafeEqual(given, this.token);
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.disposed || !this.authorized(req)) {
      socket.end("HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      socket.destroy();
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws));
  }

  private onConnection(ws: WebSocket): void {
    const tunnels = new Tunnels((frame) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(frame);
    });
    const conn: Connection = { ws, attached: new Set(), tunnels };
    this.connections.add(conn);
    ws.on("message", (data: RawData, isBinary: boolean) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (isBinary) this.onBinary(conn, buf);
      else void this.onText(conn, buf);
    });
    const gone = () => {
      this.connections.delete(conn);
      tunnels.closeAll();
    };
    ws.on("close", gone);
    ws.on("error", gone);
  }

  private onBinary(conn: Connection, buf: Buffer): void {
    try {
      const frame = decodeFrame(buf);
      if (frame.kind >= FrameKind.TunnelData) return conn.tunnels.onFrame(frame);
      if (frame.kind !== FrameKind.PtyInput) return;
      this.ptys.get(frame.handle).write(frame.payload);
    } catch (err) {
      this.log(`agent: dropped binary frame: ${(err as Error).message}`);
    }
  }

  private async onText(conn: Connection, buf: Buffer): Promise<void> {
    let rid = -1;
    try {
      const raw: unknown = JSON.parse(buf.toString("utf8"));
      const env = AgentEnvelope.safeParse(raw);
      if (!env.success) throw new Error("a request needs an integer rid");
      rid = env.data.rid;
      const parsed = AgentRequest.safeParse(raw);
      if (!parsed.success) {
        const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(request)"}: ${i.message}`).join("; ");
        throw new Error(`invalid request: ${issues}`);
      }
      const result = await this.handle(conn, parsed.data);
      this.reply(conn, { rid, ok: true, result });
      if (parsed.data.op === "pty.attach" || (parsed.data.op === "pty.start" && (result as { reattached: boolean }).reattached)) {
        this.sendReplay(conn, (result as { handle: number }).handle);
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      this.reply(conn, { rid, ok: false, error: e.message, ...(e.code ? { code: e.code } : {}) });
    }
  }

  private reply(conn: Connection, reply: AgentReply): void {
    if (conn.ws.readyState === WebSocket.OPEN) conn.ws.send(JSON.stringify(reply));
  }

  private sendReplay(conn: Connection, handle: number): void {
    const session = this.ptys.get(handle);
    if (conn.ws.readyState === WebSocket.OPEN) conn.ws.send(encodeFrame(FrameKind.PtyOutput, handle, session.replay.replay()));
  }

  private broadcastOutput(handle: number, bytes: Buffer): void {
    const frame = encodeFrame(FrameKind.PtyOutput, handle, bytes);
    for (const c of this.connections) {
      if (!c.attached.has(handle) || c.ws.readyState !== WebSocket.OPEN) continue;
      // A connection that stopped reading would otherwise buffer a busy terminal's output without
      // end. Flow control (pty.flow) is the reader's job; this is the backstop.
      if (c.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
        this.log(`agent: closing a connection that fell ${c.ws.bufferedAmount} bytes behind`);
        c.ws.terminate();
        c.tunnels.closeAll();
        this.connections.delete(c);
        continue;
      }
      c.ws.send(frame);
    }
  }

  private broadcastEvent(handle: number, ev: AgentEvent): void {
    const text = JSON.stringify(ev);
    for (const c of this.connections) {
      if (c.attached.has(handle) && c.ws.readyState === WebSocket.OPEN) c.ws.send(text);
    }
  }

  private async handle(conn: Connection, req: AgentRequest): Promise<unknown> {
    switch (req.op) {
      case "pty.start": {
        const live = this.ptys.liveByKey(req.key);
        if (live) {
          conn.attached.add(live.handle);
          if (live.info().cols !== req.cols || live.info().rows !== req.rows) live.resize(req.cols, req.rows);
          return { ...live.info(), reattached: true };
        }
        const session = this.ptys.start({
          key: req.key,
          cols: req.cols,
          rows: req.rows,
          cmd: req.cmd ?? ["/bin/bash", "-l"],
          cwd: req.cwd ?? this.home,
          env: { ...this.baseEnv, TERM: "xterm-256color", COLORTERM: "truecolor", ...req.env },
        });
        conn.attached.add(session.handle);
        return { ...session.info(), reattached: false };
      }
      case "pty.attach": {
        const session = this.ptys.get(req.handle);
        conn.attached.add(session.handle);
        return session.info();
      }
      case "pty.resize":
        this.ptys.get(req.handle).resize(req.cols, req.rows);
        return {};
      case "pty.flow":
        this.ptys.get(req.handle).setPaused(req.paused);
        return {};
      case "pty.signal": {
        if (!(req.signal in osConstants.signals)) throw new Error(`unknown signal ${JSON.stringify(req.signal)}; use a name such as SIGINT`);
        this.ptys.get(req.handle).signal(req.signal);
        return {};
      }
      case "pty.kill":
        this.ptys.get(req.handle);
        this.ptys.remove(req.handle);
        return {};
      case "pty.list":
        return { ptys: this.ptys.list() };
      case "exec": {
        const run = runExec({
          cmd: req.cmd,
          stdin: req.stdin === undefined ? undefined : Buffer.from(req.stdin, "base64"),
          env: { ...this.baseEnv, ...req.env },
          cwd: req.cwd ?? this.home,
          timeoutMs: req.timeoutMs,
          maxOutputBytes: req.maxOutputBytes,
        });
        this.execs.add(run);
        try {
          return await run.done;
        } finally {
          this.execs.delete(run);
        }
      }
      case "file.read":
        return readFileCapped(req.path, req.maxBytes);
      case "file.write":
        await writeFileBytes(req.path, Buffer.from(req.data, "base64"), req.mode);
        return {};
      case "file.stat":
        return statFile(req.path);
      case "file.list":
        return { entries: await listDir(req.path) };
      case "health": {
        const reply: HealthReply = {
          version: AGENT_PROTOCOL_VERSION,
          hostname: hostname(),
          uptimeMs: Date.now() - this.started,
          ptys: this.ptys.size,
          memoryRss: process.memoryUsage.rss(),
          tunnels: [...this.connections].reduce((n, c) => n + c.tunnels.size, 0),
        };
        if (this.opts.onHealth) setImmediate(this.opts.onHealth);
        return reply;
      }
      case "tunnel.open":
        await conn.tunnels.open(req.id, req.port, req.timeoutMs);
        return {};
    }
  }
}

export type { PtySession };
