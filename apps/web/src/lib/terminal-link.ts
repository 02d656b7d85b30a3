// TerminalLink joins one xterm.js Terminal to one terminal of a learner's sandbox over socket.io.
// Lifecycle: construct → start() (connects; every (re)connect attaches) → reattach() after the shell
// exits or an attach fails → dispose(). It owns the socket's listeners and the terminal's listeners
// it adds; the Terminal and the socket themselves belong to the caller. Several links (the player's
// terminal tabs) share one socket, each with its own term key; `openLabSocket` hands out that
// socket, counted, so the lifetime banner can listen on it too.
//
// Invariants that matter:
// - output bytes are written to xterm as Uint8Array, never decoded here (a UTF-8 character can be
//   split across two frames; xterm's parser keeps the partial sequence);
// - flow control: bytes are counted when xterm has actually parsed them (the write callback) and
//   acknowledged every FLOW_ACK_EVERY bytes and whenever the write queue drains, so the server can
//   pause the pty when we fall behind (a hidden tab acknowledges on receipt, see write());
// - keystrokes are only sent while attached: socket.io would otherwise buffer them while offline
//   and deliver them before the re-attach, to a terminal the server does not know yet. A command
//   from a Run button (run()) is the exception: it waits for the attach, once, in order;
// - on attach the server sends the kept screen (term:data with `reset`), made for the size the
//   attach named: the caller starts the link only once its fit has settled (see TerminalPane).
import type { ClientToServerEvents, SandboxPhase, ServerToClientEvents, TerminalKey } from "@berth/protocol";
import type { Terminal } from "@xterm/xterm";
import { io, type Socket } from "socket.io-client";
// Only the flow-control constants: the package's index would pull zod and the agent schemas in.
import { FLOW_ACK_EVERY } from "@berth/protocol/flow";


export type BerthSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

let shared: { socket: BerthSocket; users: number } | undefined;

/**
 * The page's one socket to the orchestrator (made on first use, not connected until a user
 * connects it, closed when its last user lets go). One socket for all terminals of the player, its
 * lifetime banner and the catalog's warm-up (lab-warmup.ts): one handshake, one session check, one
 * place that learns about a lost network. A client-side navigation from the catalog keeps it.
 */
export function labSocket(): { socket: BerthSocket; release(): void } {
  shared ??= { socket: io({ transports: ["websocket"], autoConnect: false }), users: 0 };
  const mine = shared;
  mine.users++;
  let released = false;
  return {
    socket: mine.socket,
    release: () => {
      if (released) return;
      released = true;
      if (--mine.users > 0) return;
      mine.socket.disconnect();
      if (shared === mine) shared = undefined;
    },
  };
}

/** labSocket(), for callers written when socket.io-client was loaded on demand. */
export async function openLabSocket(): Promise<{ socket: BerthSocket; release(): void }> {
  return labSocket();
}

/**
 * Connects the page's socket now and keeps it for `holdMs` (a catalog card pointed at: the lab is
 * probably about to open; the player's own users hold it from then on).
 */
export function warmLabSocket(holdMs = PREPARE_HOLD_MS): void {
  const { socket, release } = labSocket();
  if (!socket.connected && !socket.active) socket.connect();
  setTimeout(release, holdMs);
}

const prepared = new Set<string>();

/**
 * Connects the page's socket now and asks the server to start handing over the learner's sandbox
 * for `labId` (sandbox:prepare, or terminal 1's attach itself: EarlyAttach), before any terminal is laid out: the hand-over then overlaps with
 * the page's own start. Once per lab and page (the catalog calls it on the click that opens a lab;
 * the player again, which is then a no-op). The socket is held for PREPARE_HOLD_MS, by which time
 * the terminals hold it themselves.
 */
export function prepareLab(labId: string): void {
  if (prepared.has(labId)) return;
  prepared.add(labId);
  const { socket, release } = labSocket();
  if (!socket.connected && !socket.active) socket.connect();
  // Buffered by socket.io until connected. Terminal 1's attach does what a prepare does (the
  // hand-over, the setup, the shell), so it goes instead when the terminal's size is known.
  const size = rememberedTerminalSize();
  if (size) {
    early?.dispose();
    early = new EarlyAttach(socket, labId, size.cols, size.rows);
  } else socket.emit("sandbox:prepare", { labId });
  setTimeout(release, PREPARE_HOLD_MS);
}
const PREPARE_HOLD_MS = 30_000;

const SIZE_KEY = "berth.terminal1Size";

/**
 * Terminal 1's size after the player fitted it, with the window it was fitted in: the next lab
 * opened in a window of the same size gets the same terminal, so its attach can leave with the click.
 */
export function rememberTerminalSize(cols: number, rows: number): void {
  try {
    localStorage.setItem(SIZE_KEY, JSON.stringify({ cols, rows, width: window.innerWidth, height: window.innerHeight, dpr: window.devicePixelRatio }));
  } catch {
    // (storage refused: every attach then waits for the terminal's own fit)
  }
}

export function rememberedTerminalSize(): { cols: number; rows: number } | null {
  try {
    const v = JSON.parse(localStorage.getItem(SIZE_KEY) ?? "null") as { cols: number; rows: number; width: number; height: number; dpr: number } | null;
    if (!v || v.width !== window.innerWidth || v.height !== window.innerHeight || v.dpr !== window.devicePixelRatio) return null;
    return Number.isInteger(v.cols) && Number.isInteger(v.rows) && v.cols > 0 && v.rows > 0 ? { cols: v.cols, rows: v.rows } : null;
  } catch {
    return null;
  }
}

/**
 * xterm parses what is written on a later task (a setTimeout), except right after a keystroke,
 * when it parses at once to keep typing snappy. At the adoption of an early attach that task
 * waited ~130 ms behind the page's own work (the lab's instructions rendering), with the prompt
 * already here: so the adopted screen takes the keystroke path. That switch is xterm's own,
 * but not public API (`_core._writeBuffer.handleUserInput`); without it (another xterm version)
 * nothing breaks, the parse is just later.
 */
function parseNextWriteNow(terminal: Terminal): void {
  (terminal as unknown as { _core?: { _writeBuffer?: { handleUserInput?: () => void } } })._core?._writeBuffer?.handleUserInput?.();
}

type DataMessage = Parameters<ServerToClientEvents["term:data"]>[0];
type ExitMessage = Parameters<ServerToClientEvents["term:exit"]>[0];
type AttachAnswer = { ok: true } | { ok: false; error: string };

/**
 * Terminal 1's attach, sent with the click that opens a lab (prepareLab), at the size the player
 * last gave that terminal in a window like this one: the server's answer and the screen are on their
 * way while the page renders the frame and makes the terminal. The terminal's link adopts it when
 * its own fit gives the same size (TerminalLink.attach); otherwise it attaches as usual, and the
 * server sends the screen again at the right size. What arrives before the adoption is kept here,
 * in order (bounded; the server's flow control pauses a shell nobody acknowledges).
 */
class EarlyAttach {
  readonly events: Array<{ data: DataMessage } | { exit: ExitMessage }> = [];
  answer: AttachAnswer | null = null;
  onAnswer: ((answer: AttachAnswer) => void) | null = null;
  /** The socket dropped since: the server forgot this attach. */
  broken = false;
  private readonly timer: ReturnType<typeof setTimeout>;

  constructor(readonly socket: BerthSocket, readonly labId: string, readonly cols: number, readonly rows: number) {
    socket.on("term:data", this.onData);
    socket.on("term:exit", this.onExit);
    socket.on("disconnect", this.onDisconnect);
    mark("berth:early-attach:1");
    socket.emit("term:attach", { labId, term: "1", cols, rows }, (res) => {
      this.answer = res.ok ? { ok: true } : { ok: false, error: res.error ?? "the attach failed" };
      this.onAnswer?.(this.answer);
    });
    // Not adopted by then (the navigation never happened): stop keeping its output.
    this.timer = setTimeout(() => this.dispose(), PREPARE_HOLD_MS);
  }

  private readonly onData = (msg: DataMessage) => {
    if (msg.term === "1" && this.events.length < 1000) this.events.push({ data: msg });
  };
  private readonly onExit = (msg: ExitMessage) => {
    if (msg.term === "1") this.events.push({ exit: msg });
  };
  private readonly onDisconnect = () => {
    this.broken = true;
  };

  /** Stops listening (the caller now owns what it kept). */
  dispose(): void {
    clearTimeout(this.timer);
    this.socket.off("term:data", this.onData);
    this.socket.off("term:exit", this.onExit);
    this.socket.off("disconnect", this.onDisconnect);
    if (early === this) early = undefined;
  }
}
let early: EarlyAttach | undefined;

/** The early attach for this lab's terminal 1 on this socket, now the caller's (at most once). */
function takeEarlyAttach(labId: string, termKey: TerminalKey, socket: BerthSocket): EarlyAttach | undefined {
  const e = early;
  if (!e || termKey !== "1" || e.labId !== labId || e.socket !== socket) return undefined;
  early = undefined;
  return e;
}

/**
 * Start-up milestones on the page's performance timeline (connected, attach:<term>,
 * first-output:<term>): test/bench/open-lab.ts reads them to say where the time goes.
 */
function mark(name: string): void {
  if (typeof performance !== "undefined" && typeof performance.mark === "function") performance.mark(name);
}

/** After Ctrl-C, how long to wait for the shell's answer (a new prompt) before typing the command. */
const INTERRUPT_SETTLE_MS = 400;
/** Keystrokes held while a preview screen waits for its attach: a few lines of typing, no more. */
const HELD_INPUT_LIMIT = 4096;

/**
 * What the status line shows: the sandbox phase from the server, plus two values the browser adds
 * on its own: "connecting" (socket not yet attached) and "reconnecting" (connection lost).
 */
export type DisplayPhase = SandboxPhase | "connecting" | "reconnecting";

export interface LinkState {
  phase: DisplayPhase;
  /** Human text for the status line (the server's message, or ours). */
  message: string;
  /** True once the server accepted the attach (or sent output for it): input and Run work. */
  attached: boolean;
  /**
   * The shell's screen is shown while the sandbox's lab setup finishes (the server's `preparing`
   * output, before the attach's answer): keystrokes typed meanwhile are held, then sent in order.
   */
  preview: boolean;
  /** Set when the shell exited; cleared by reattach(). */
  exit: { exitCode: number } | null;
  /** Set when the attach was refused or the connection cannot be made (sign-in expired ...). */
  error: string | null;
  /** The server refused the socket itself (no valid session): signing in again is the fix. */
  signInRequired: boolean;
}

export interface TerminalLinkOptions {
  labId: string;
  /** The terminal's key within the lab session ("1", "2", "3"). */
  termKey: TerminalKey;
  terminal: Terminal;
  socket: BerthSocket;
  onState: (state: LinkState) => void;
}

export class TerminalLink {
  private state: LinkState = { phase: "connecting", message: "Connecting…", attached: false, preview: false, exit: null, error: null, signInRequired: false };
  /** Bumped on every attach: write callbacks and acks from an older attach are ignored. */
  private generation = 0;
  private unackedBytes = 0;
  private writesInFlight = 0;
  private readonly disposers: Array<() => void> = [];
  private disposed = false;
  /** Keystrokes typed while the screen was a preview (sent in order once attached). */
  private heldInput: Array<string | Uint8Array<ArrayBuffer>> = [];
  private heldBytes = 0;
  /** Commands from run() waiting for the attach (sent in order once attached). */
  private waitingRuns: Array<{ text: string; interrupt: boolean }> = [];
  /** Set while a run waits for the shell to answer its Ctrl-C: the next output ends the wait. */
  private onNextOutput: (() => void) | null = null;
  private runChain: Promise<void> = Promise.resolve();
  /** For the start-up marks (see mark()): output arrived since the last attach. */
  private sawOutput = false;
  /** start() was called: connects attach from then on. */
  private started = false;
  /** Terminal 1's attach sent with the click (EarlyAttach), until attach() adopts or drops it. */
  private early: EarlyAttach | undefined;
  private readonly handleData: ServerToClientEvents["term:data"];
  private readonly handleExit: ServerToClientEvents["term:exit"];

  constructor(private readonly opts: TerminalLinkOptions) {
    const { socket, terminal } = opts;
    this.early = takeEarlyAttach(opts.labId, opts.termKey, socket);
    if (this.early) this.disposers.push(() => this.early?.dispose());
    const onConnect = () => {
      mark("berth:connected");
      // The socket is shared and may connect before this link was started (its size settled).
      if (!this.started) return;
      this.update({ phase: "connecting", message: "Connected, attaching to your sandbox…", attached: false, error: null, signInRequired: false });
      this.attach();
    };
    const onDisconnect = (reason: string) => {
      this.generation++;
      this.dropHeldInput();
      this.update({ phase: "reconnecting", message: "Connection lost, reconnecting…", attached: false, preview: false });
      // A server-side disconnect is not retried by socket.io on its own; try once more, and let
      // connect_error tell us if the server really does not want us (e.g. the session ended).
      if (reason === "io server disconnect") setTimeout(() => !this.disposed && socket.connect(), 1000);
    };
    const onConnectError = (err: Error) => {
      if (socket.active) {
        this.update({ phase: "reconnecting", message: `Cannot reach the server (${err.message}), retrying…`, attached: false });
      } else {
        // Refused by the server's middleware (no or expired session): socket.io gives up here.
        this.update({ phase: "error", message: err.message, attached: false, error: `The server refused the connection: ${err.message}.`, signInRequired: true });
      }
    };
    socket.on("connect", onConnect);
    socket.on("disconnect", onDisconnect);
    socket.on("connect_error", onConnectError);
    this.disposers.push(() => {
      socket.off("connect", onConnect);
      socket.off("disconnect", onDisconnect);
      socket.off("connect_error", onConnectError);
    });

    const onStatus: ServerToClientEvents["sandbox:status"] = (msg) => {
      if (msg.labId !== opts.labId) return;
      this.update({ phase: msg.phase, message: msg.message });
    };
    const onData: ServerToClientEvents["term:data"] = (msg) => {
      // (While an early attach waits for adoption, it keeps this terminal's output.)
      if (msg.term !== opts.termKey || this.early) return;
      if (msg.reset) this.resetInOrder();
      if (!this.sawOutput) {
        this.sawOutput = true;
        mark(`berth:first-output:${opts.termKey}`);
      }
      const bytes = msg.data instanceof Uint8Array ? msg.data : new Uint8Array(msg.data);
      if (msg.preparing) {
        if (!this.state.attached && !this.state.preview) this.update({ preview: true });
      } else if (this.state.exit === null && (!this.state.attached || this.state.phase !== "ready")) {
        // Output means the shell is live, whatever status messages we may have missed.
        this.update({ attached: true, phase: "ready", message: "Terminal attached" });
      }
      this.write(bytes);
      const next = this.onNextOutput;
      this.onNextOutput = null;
      next?.();
    };
    const onExit: ServerToClientEvents["term:exit"] = (msg) => {
      if (msg.term !== opts.termKey || this.early) return;
      this.update({ attached: false, exit: { exitCode: msg.exitCode }, message: `Shell exited with code ${msg.exitCode}` });
    };
    this.handleData = onData;
    this.handleExit = onExit;
    socket.on("sandbox:status", onStatus);
    socket.on("term:data", onData);
    socket.on("term:exit", onExit);
    this.disposers.push(() => {
      socket.off("sandbox:status", onStatus);
      socket.off("term:data", onData);
      socket.off("term:exit", onExit);
    });

    const input = terminal.onData((data) => this.input(data));
    const binary = terminal.onBinary((data) => {
      // onBinary hands over a "binary string": one char per byte (e.g. some mouse reports).
      const bytes = new Uint8Array(data.length);
      for (let i = 0; i < data.length; i++) bytes[i] = data.charCodeAt(i) & 0xff;
      this.input(bytes);
    });
    const resize = terminal.onResize(({ cols, rows }) => {
      if (this.state.attached) socket.emit("term:resize", { term: opts.termKey, cols, rows });
    });
    this.disposers.push(() => {
      input.dispose();
      binary.dispose();
      resize.dispose();
    });

    // The browser knows about a lost network long before a ping times out: drop the socket so
    // socket.io starts reconnecting, and reconnect right away (skipping the back-off) once online.
    if (typeof window !== "undefined") {
      const offline = () => socket.io.engine?.close();
      const online = () => {
        if (socket.connected || this.disposed) return;
        socket.disconnect();
        socket.connect();
      };
      window.addEventListener("offline", offline);
      window.addEventListener("online", online);
      this.disposers.push(() => {
        window.removeEventListener("offline", offline);
        window.removeEventListener("online", online);
      });
    }
  }

  get current(): LinkState {
    return this.state;
  }

  start(): void {
    this.started = true;
    if (this.opts.socket.connected) this.attach();
    else this.opts.socket.connect();
  }

  /** Attach again: after the shell exited (the server starts a new one) or an attach failed. */
  reattach(): void {
    this.update({ exit: null, error: null, message: "Starting a new shell…" });
    if (this.opts.socket.connected) this.attach();
    else this.opts.socket.connect();
  }

  /** Send keystrokes. False when not attached (they are dropped, see the invariants above). */
  input(data: string | Uint8Array<ArrayBuffer>): boolean {
    if (this.disposed) return false;
    if (!this.state.attached && this.state.preview && this.state.exit === null) {
      // Typed at a prompt whose lab is still being set up: kept (up to a screenful of typing) for the attach.
      const size = typeof data === "string" ? data.length : data.byteLength;
      if (this.heldBytes + size > HELD_INPUT_LIMIT) return false;
      this.heldBytes += size;
      this.heldInput.push(data);
      return true;
    }
    if (!this.state.attached) return false;
    this.opts.socket.emit("term:input", { term: this.opts.termKey, data });
    return true;
  }

  /**
   * Type a command (a Run button): sent now if attached, else as soon as the attach succeeds (a
   * terminal tab opened by this very click is still connecting). With `interrupt`, Ctrl-C goes
   * first and the command follows once the shell answered: the kernel throws away input typed
   * before a SIGINT is delivered, so sending both at once could lose the command.
   * False only when the link is gone.
   */
  run(text: string, opts: { interrupt?: boolean } = {}): boolean {
    if (this.disposed) return false;
    const item = { text, interrupt: opts.interrupt === true };
    if (this.state.attached) this.sendRun(item);
    else this.waitingRuns.push(item);
    return true;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.generation++;
    this.waitingRuns = [];
    this.onNextOutput = null;
    for (const d of this.disposers.splice(0)) d();
  }

  private sendRun(item: { text: string; interrupt: boolean }): void {
    // Runs stay in order even when one waits for its interrupt to land.
    this.runChain = this.runChain.then(async () => {
      if (this.disposed) return;
      if (item.interrupt) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            this.onNextOutput = null;
            resolve();
          }, INTERRUPT_SETTLE_MS);
          this.onNextOutput = () => {
            clearTimeout(timer);
            // The prompt may come in more than one chunk: give it a moment to finish.
            setTimeout(resolve, 50);
          };
          this.input("\x03");
        });
      }
      this.input(item.text);
    });
  }

  private attach(): void {
    const gen = ++this.generation;
    this.unackedBytes = 0;
    this.writesInFlight = 0;
    const { socket, terminal, labId, termKey } = this.opts;
    const { cols, rows } = terminal;
    this.sawOutput = false;
    mark(`berth:attach:${termKey}`);
    // A new attach starts a new shell if the old one exited; if it is still gone, the server says so again.
    if (this.state.exit) this.update({ exit: null });
    this.dropHeldInput();
    const answered = (res: { ok: boolean; error?: string }) => {
      if (gen !== this.generation || this.disposed) return;
      if (res.ok) {
        // The replay may already have reported that this shell is gone (term:exit arrives before
        // the answer): then the overlay stays and input stays off.
        const alive = this.state.exit === null;
        this.update({ attached: alive, preview: false, error: null, ...(alive && this.state.phase === "ready" ? { message: "Terminal attached" } : {}) });
        const held = this.heldInput;
        this.dropHeldInput();
        if (alive) for (const data of held) this.input(data);
        if (alive) for (const item of this.waitingRuns.splice(0)) this.sendRun(item);
        // Resizes are not sent while detached: catch up if the size changed during the attach.
        if (terminal.cols !== cols || terminal.rows !== rows) {
          socket.emit("term:resize", { term: termKey, cols: terminal.cols, rows: terminal.rows });
        }
      } else {
        this.dropHeldInput();
        const error = res.error ?? "the attach failed";
        this.update({ attached: false, preview: false, phase: "error", message: error, error });
      }
    };
    const e = this.early;
    this.early = undefined;
    if (e) {
      e.dispose();
      if (!e.broken && socket.connected && e.cols === cols && e.rows === rows) {
        // Adopted: what the server sent for the click's attach is this attach's, in order; its
        // answer is this attach's answer.
        for (const ev of e.events) {
          parseNextWriteNow(this.opts.terminal);
          if ("data" in ev && ev.data.reset) {
            // Nothing this terminal shows yet needs keeping (a spare's glyph sample has its own
            // reset queued behind it), so the reset needs no ordering.
            this.opts.terminal.reset();
            this.handleData({ ...ev.data, reset: false });
          } else if ("data" in ev) this.handleData(ev.data);
          else this.handleExit(ev.exit);
        }
        if (e.answer) answered(e.answer);
        else e.onAnswer = answered;
        return;
      }
      // Another size (or the socket dropped): a fresh attach below; the server sends the screen again.
    }
    socket.emit("term:attach", { labId, term: termKey, cols, rows }, answered);
  }

  /**
   * Terminal.reset() acts at once, but output written before it may still sit in xterm's write
   * queue and would land on the fresh screen. Resetting from a write callback keeps the order.
   */
  private resetInOrder(): void {
    const terminal = this.opts.terminal;
    terminal.write(new Uint8Array(0), () => terminal.reset());
  }

  private write(bytes: Uint8Array): void {
    const gen = this.generation;
    const length = bytes.byteLength;
    // A hidden tab is throttled by the browser (timers may fire once a minute), so xterm parses
    // slowly there; it must not hold back the pty for the learner's visible tab. It acknowledges
    // on receipt instead (xterm itself caps what it buffers).
    const hidden = typeof document !== "undefined" && document.visibilityState === "hidden";
    if (hidden) this.acknowledge(length, true);
    this.writesInFlight++;
    this.opts.terminal.write(bytes, () => {
      if (gen !== this.generation || this.disposed) return;
      this.writesInFlight--;
      if (!hidden) this.acknowledge(length, false);
    });
  }

  /** Count written bytes; send `term:ack` every FLOW_ACK_EVERY and whenever xterm's queue drains. */
  private acknowledge(bytes: number, now: boolean): void {
    this.unackedBytes += bytes;
    if (this.unackedBytes > 0 && (now || this.unackedBytes >= FLOW_ACK_EVERY || this.writesInFlight === 0)) {
      this.opts.socket.emit("term:ack", { term: this.opts.termKey, bytes: this.unackedBytes });
      this.unackedBytes = 0;
    }
  }

  private dropHeldInput(): void {
    this.heldInput = [];
    this.heldBytes = 0;
  }

  private update(patch: Partial<LinkState>): void {
    if (this.disposed) return;
    this.state = { ...this.state, ...patch };
    this.opts.onState(this.state);
  }
}
