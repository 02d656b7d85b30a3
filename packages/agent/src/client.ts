// The agent's client (the orchestrator's side), kept with the agent so the two change together and
// @berth/agent needs nothing from @berth/sandbox. One websocket to one sandbox's agent. Requests are matched to replies by rid; pty output arrives
// as binary frames (never decoded here) and is handed to onOutput listeners; events (pty.exit) go
// to onEvent listeners. Every listener registration returns a Disposable.
//
// The agent runs inside the learner's sandbox, where root can make it say anything (ptrace it,
// replace it). So everything that arrives is validated against @berth/protocol's schemas, nothing
// it sends can throw out of a listener here, and what we queue towards it is capped: a stopped or
// hostile agent costs its own link at most a few MiB and never takes the orchestrator, or another
// sandbox's link, down (docs/sandboxes.md, "A hostile sandbox").
import { lstatSync } from "node:fs";
import WebSocket from "ws";
import {
  AgentEvent,
  AgentReply,
  AgentReplySchemas,
  FrameKind,
  decodeFrame,
  encodeFrame,
  type AgentOp,
  type AgentReplies,
  type AgentRequestInput,
} from "@berth/protocol";

/** Where an agent listens and the token it wants (what a sandbox driver's connect() returns). */
export interface AgentEndpoint {
  socketPath: string;
  token: string;
  /**
   * How many times slower this sandbox answers than a namespaces sandbox (a VM under emulation),
   * set by its driver. The dial stretches its timeout by it, so no caller has to know which driver
   * it talks to; absent or below 1: 1.
   */
  timeScale?: number;
}

/** The longest a stretched handshake may wait (a guest slower than this is broken, not slow). */
export const MAX_STRETCHED_TIMEOUT_MS = 600_000;

/** A timeout written for a namespaces sandbox, stretched by the endpoint's timeScale (capped). */
export function stretchedTimeout(ep: Pick<AgentEndpoint, "timeScale">, timeoutMs: number): number {
  const scale = ep.timeScale !== undefined && Number.isFinite(ep.timeScale) && ep.timeScale > 1 ? ep.timeScale : 1;
  return scale === 1 ? timeoutMs : Math.min(MAX_STRETCHED_TIMEOUT_MS, Math.round(timeoutMs * scale));
}

/** What every listener registration returns. */
export interface Disposable {
  dispose(): void;
}

export interface DialOptions {
  /** For the upgrade (default 5000), as for a namespaces sandbox: stretched by the endpoint's timeScale. */
  timeoutMs?: number;
  /** Frames larger than this close the connection (ws answers 1009); they are never buffered. */
  maxPayload?: number;
}

/**
 * One websocket to a sandbox's agent, open and authenticated (its token as a bearer header). The
 * orchestrator keeps two per sandbox: AgentClient's (terminals, exec, files) and the preview's
 * tunnels, so a big download never queues behind keystrokes.
 *
 * The socket path must be a socket itself, never a symlink: the token goes to whoever listens.
 */
export function dialAgent(ep: AgentEndpoint, opts: DialOptions | number = {}): Promise<WebSocket> {
  const { timeoutMs = 5000, maxPayload = 64 * 1024 * 1024 } = typeof opts === "number" ? { timeoutMs: opts } : opts;
  try {
    const st = lstatSync(ep.socketPath);
    if (!st.isSocket()) throw new Error(st.isSymbolicLink() ? "it is a symlink, not a socket (refusing to follow it)" : "it is not a socket");
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return Promise.reject(new Error(`could not connect to the agent at ${ep.socketPath}: ${e.code === "ENOENT" ? "no such socket" : e.message}`));
  }
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws+unix://${ep.socketPath}:/`, {
      headers: { authorization: `Bearer ${ep.token}` },
      handshakeTimeout: stretchedTimeout(ep, timeoutMs),
      perMessageDeflate: false,
      maxPayload,
      // An agent answering the upgrade with a redirect must not send us (and the token) elsewhere.
      followRedirects: false,
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

/** What became of a chunk of terminal input (sendInput): sent, or dropped and why. */
export type InputResult =
  | { sent: true }
  /** closed: the link is gone; backlog: the agent is not reading; rate: over the input rate. */
  | { sent: false; reason: "closed" | "backlog" | "rate" };

export interface AgentClientOptions {
  /** For the upgrade (default 5000), stretched by the endpoint's timeScale (a slow VM's agent). */
  timeoutMs?: number;
  /**
   * Told about what the agent sent that was dropped (malformed, unknown rid, a listener that
   * threw) and about input that was dropped; at most one call a second, with a count of the rest.
   */
  onWarning?: (message: string) => void;
  /** Input is dropped while this many bytes wait to go out to the agent (default 1 MiB). */
  maxQueuedBytes?: number;
  /** Sustained terminal input rate, per link (default 1 MiB/s); a paste up to inputBurstBytes passes at once. */
  inputBytesPerSecond?: number;
  /** Default 2 MiB. */
  inputBurstBytes?: number;
  /** Largest frame the agent may send (default 64 MiB: exec returns up to 2×16 MiB in base64). */
  maxPayload?: number;
}

/** Requests one link may have waiting for replies. */
const MAX_PENDING = 1024;
const DEFAULTS = { maxQueuedBytes: 1024 * 1024, inputBytesPerSecond: 1024 * 1024, inputBurstBytes: 2 * 1024 * 1024 };

interface Pending {
  op: AgentOp;
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
  private readonly maxQueuedBytes: number;
  private readonly inputRate: number;
  private readonly inputBurst: number;
  private inputTokens: number;
  private inputRefilledAt = Date.now();
  private readonly warnings: ThrottledWarnings;
  /** Input bytes dropped so far (backlog or rate), for tests and the operator. */
  droppedInputBytes = 0;

  private constructor(private readonly ws: WebSocket, opts: AgentClientOptions) {
    this.maxQueuedBytes = opts.maxQueuedBytes ?? DEFAULTS.maxQueuedBytes;
    this.inputRate = opts.inputBytesPerSecond ?? DEFAULTS.inputBytesPerSecond;
    this.inputBurst = opts.inputBurstBytes ?? DEFAULTS.inputBurstBytes;
    this.inputTokens = this.inputBurst;
    this.warnings = new ThrottledWarnings(opts.onWarning);
    ws.on("message", (data, isBinary) => {
      // The backstop: a bug below (or a listener) must cost this message, never the process.
      try {
        this.onMessage(data as Buffer | Buffer[] | ArrayBuffer, isBinary);
      } catch (err) {
        this.warnings.warn(`dropped a message from the agent: ${(err as Error).message}`);
      }
    });
    ws.on("close", () => this.onClosed());
    ws.on("error", (err) => {
      this.warnings.warn(`the agent's connection failed: ${err.message}`);
      this.onClosed();
    });
  }

  /** Opens the websocket; rejects if the agent refuses the token or does not answer in time. */
  static async connect(ep: AgentEndpoint, opts: AgentClientOptions = {}): Promise<AgentClient> {
    return new AgentClient(await dialAgent(ep, { timeoutMs: opts.timeoutMs ?? 5000, maxPayload: opts.maxPayload }), opts);
  }

  get isOpen(): boolean {
    return !this.closed && this.ws.readyState === WebSocket.OPEN;
  }

  /** Bytes waiting to go out to the agent (its socket's send buffer not counted). */
  get queuedBytes(): number {
    return this.ws.bufferedAmount;
  }

  /**
   * One request, answered by one validated reply. Refused at once (code EAGAIN), not queued, while
   * the agent is not reading (maxQueuedBytes waiting) or MAX_PENDING requests wait for replies: a
   * learner's browser can send resizes and saves to a stopped agent as fast as it likes.
   */
  request<K extends AgentOp>(req: Extract<AgentRequestInput, { op: K }>): Promise<AgentReplies[K]> {
    if (!this.isOpen) return Promise.reject(new AgentRequestError(req.op, "connection is closed"));
    if (this.ws.bufferedAmount > this.maxQueuedBytes || this.pending.size >= MAX_PENDING) {
      const why = this.pending.size >= MAX_PENDING ? `${this.pending.size} requests wait for replies` : `${this.ws.bufferedAmount} bytes wait to be sent`;
      this.warnings.warn(`refused a ${req.op} request: the agent is not keeping up (${why})`);
      return Promise.reject(new AgentRequestError(req.op, `the sandbox's agent is not answering (${why}); try again later`, "EAGAIN"));
    }
    const rid = this.nextRid++;
    return new Promise<AgentReplies[K]>((resolve, reject) => {
      this.pending.set(rid, { op: req.op, resolve: resolve as (v: unknown) => void, reject });
      this.ws.send(JSON.stringify({ ...req, rid }));
    });
  }

  /**
   * Keystrokes for a pty. Never throws and never queues without bound: while the agent is not
   * reading (more than maxQueuedBytes waiting) or the link's input rate is spent, the chunk is
   * dropped, reported to onWarning, and the result says so.
   */
  sendInput(handle: number, bytes: Uint8Array): InputResult {
    if (!this.isOpen) return { sent: false, reason: "closed" };
    if (this.ws.bufferedAmount + bytes.length > this.maxQueuedBytes) return this.dropInput(bytes.length, "backlog");
    const now = Date.now();
    this.inputTokens = Math.min(this.inputBurst, this.inputTokens + ((now - this.inputRefilledAt) * this.inputRate) / 1000);
    this.inputRefilledAt = now;
    if (bytes.length > this.inputTokens) return this.dropInput(bytes.length, "rate");
    this.inputTokens -= bytes.length;
    this.ws.send(encodeFrame(FrameKind.PtyInput, handle, bytes));
    return { sent: true };
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

  private dropInput(length: number, reason: "backlog" | "rate"): InputResult {
    this.droppedInputBytes += length;
    this.warnings.warn(
      reason === "backlog"
        ? `dropped ${length} bytes of terminal input: ${this.ws.bufferedAmount} bytes already wait for the agent, which is not reading (cap ${this.maxQueuedBytes})`
        : `dropped ${length} bytes of terminal input: over the input rate (${this.inputRate} bytes/s, bursts of ${this.inputBurst})`,
    );
    return { sent: false, reason };
  }

  private onMessage(data: Buffer | Buffer[] | ArrayBuffer, isBinary: boolean): void {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (isBinary) {
      let frame;
      try {
        frame = decodeFrame(buf);
      } catch (err) {
        return this.warnings.warn(`dropped a binary frame from the agent: ${(err as Error).message}`);
      }
      if (frame.kind !== FrameKind.PtyOutput) return this.warnings.warn(`dropped a binary frame of kind ${frame.kind} from the agent (only pty output comes this way)`);
      for (const cb of this.outputListeners) this.isolate("output", () => cb(frame.handle, frame.payload));
      return;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(buf.toString("utf8"));
    } catch {
      return this.warnings.warn(`dropped a text frame from the agent that is not JSON (${buf.length} bytes)`);
    }
    if (typeof raw === "object" && raw !== null && "event" in raw) {
      const ev = AgentEvent.safeParse(raw);
      if (!ev.success) return this.warnings.warn(`dropped a malformed event from the agent: ${issues(ev.error)}`);
      for (const cb of this.eventListeners) this.isolate("event", () => cb(ev.data));
      return;
    }
    const reply = AgentReply.safeParse(raw);
    if (!reply.success) return this.warnings.warn(`dropped a malformed message from the agent: ${issues(reply.error)}`);
    const msg = reply.data;
    const p = this.pending.get(msg.rid);
    if (!p) return this.warnings.warn(`dropped a reply from the agent for rid ${msg.rid}, which no request is waiting for`);
    this.pending.delete(msg.rid);
    if (!msg.ok) return p.reject(new AgentRequestError(p.op, msg.error, msg.code));
    const result = AgentReplySchemas[p.op].safeParse(msg.result);
    if (!result.success) {
      this.warnings.warn(`a malformed ${p.op} reply from the agent: ${issues(result.error)}`);
      return p.reject(new AgentRequestError(p.op, `malformed reply from the agent (${issues(result.error)})`, "EPROTO"));
    }
    p.resolve(result.data);
  }

  /** One listener's throw is its own problem: the others, and the process, carry on. */
  private isolate(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.warnings.warn(`an ${what} listener threw: ${(err as Error)?.message ?? String(err)}`);
    }
  }

  private onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [, p] of this.pending) p.reject(new AgentRequestError(p.op, "connection closed before the reply"));
    this.pending.clear();
    for (const cb of this.closeListeners) this.isolate("close", cb);
    this.closeListeners.clear();
    this.outputListeners.clear();
    this.eventListeners.clear();
    this.warnings.flush();
  }
}

function issues(err: { issues: { path: PropertyKey[]; message: string }[] }): string {
  return err.issues
    .slice(0, 3)
    .map((i) => `${i.path.map(String).join(".") || "(message)"}: ${i.message}`)
    .join("; ");
}

/**
 * A hostile agent can send a million bad frames a second: report the first of each second and
 * count the rest, so the log cannot be used to flood the host either.
 */
export class ThrottledWarnings {
  private lastAt = 0;
  private suppressed = 0;

  constructor(private readonly sink: ((message: string) => void) | undefined, private readonly intervalMs = 1000) {}

  warn(message: string): void {
    if (!this.sink) return;
    const now = Date.now();
    if (now - this.lastAt < this.intervalMs) {
      this.suppressed++;
      return;
    }
    this.lastAt = now;
    const more = this.suppressed ? ` (and ${this.suppressed} more since the last report)` : "";
    this.suppressed = 0;
    this.safeSink(message + more);
  }

  /** Reports what is still counted (when the link closes). */
  flush(): void {
    if (this.suppressed && this.sink) this.safeSink(`${this.suppressed} more warnings about this agent link`);
    this.suppressed = 0;
  }

  private safeSink(message: string): void {
    try {
      this.sink!(message);
    } catch {
      // a logger that throws must not turn a warning into a crash
    }
  }
}
