// The screen of one terminal as the server keeps it: a headless xterm.js fed the same pty bytes the
// viewers get, resized with the pty, serialized for a viewer that (re)attaches. A reload then gets
// the screen itself (reflowed to the viewer's width by xterm, as a live terminal would) instead of
// raw bytes replayed into a terminal of another width, which garbles wrapped lines.
//
// Lifecycle: construct → write()/resize() in the order bytes and resizes happen → snapshot() for
// each attaching viewer → dispose(). It is a side consumer: the live path sends the original bytes,
// untouched; xterm's parser decodes them here, as a terminal does, and nothing decoded goes back.
//
// xterm parses written data asynchronously (in slices, off the caller's stack). Everything here is
// ordered through its write queue: a resize, and the serialization for a snapshot, run from the
// write callback of an empty chunk, so they see exactly the bytes written before them.
import headless from "@xterm/headless";
import serializeAddon from "@xterm/addon-serialize";

const { Terminal } = headless;
const { SerializeAddon } = serializeAddon;

export interface TerminalScreenOptions {
  cols: number;
  rows: number;
  /** Lines kept above the screen and restored with it (xterm's `scrollback`). */
  scrollback?: number;
}

/** The default bound on restored history: enough to scroll back over a few commands' output. */
export const SCREEN_SCROLLBACK = 1000;

const EMPTY = new Uint8Array(0);

export class TerminalScreen {
  private readonly term: InstanceType<typeof Terminal>;
  private readonly serializer: InstanceType<typeof SerializeAddon>;
  private disposed = false;
  private unparsed = 0;
  /** Waiters on the write queue, by token, with what to do if the screen is disposed first. */
  private readonly waiting = new Map<object, () => void>();

  constructor(opts: TerminalScreenOptions) {
    this.term = new Terminal({
      cols: opts.cols,
      rows: opts.rows,
      scrollback: opts.scrollback ?? SCREEN_SCROLLBACK,
      // The serialize addon reads the buffer and modes through the proposed API.
      allowProposedApi: true,
    });
    this.serializer = new SerializeAddon();
    // The headless and browser typings declare the same Terminal twice; the addon takes either.
    this.term.loadAddon(this.serializer as unknown as Parameters<typeof this.term.loadAddon>[0]);
    // Queries from the program (device attributes, cursor position ...) make xterm answer through
    // onData; the browser's terminal answers them already, so these answers go nowhere.
  }

  get cols(): number {
    return this.term.cols;
  }

  get rows(): number {
    return this.term.rows;
  }

  /**
   * Pty output, in the order it came (xterm's write queue keeps it). `parsed` is called once
   * xterm has parsed it: the session paces the pty by `backlog` like a slow viewer, so a flood
   * cannot grow the queue without bound.
   */
  write(bytes: Uint8Array, parsed?: () => void): void {
    if (this.disposed || bytes.byteLength === 0) return;
    const length = bytes.byteLength;
    this.unparsed += length;
    this.term.write(bytes, () => {
      this.unparsed -= length;
      parsed?.();
    });
  }

  /** Bytes written and not parsed yet. */
  get backlog(): number {
    return this.unparsed;
  }

  /** The pty's new size, applied after the bytes written so far (they were made for the old size). */
  resize(cols: number, rows: number): void {
    if (this.disposed) return;
    this.afterWrites(() => {
      if (cols !== this.term.cols || rows !== this.term.rows) this.term.resize(cols, rows);
    });
  }

  /**
   * Calls `done` with the screen as bytes once everything written so far is parsed: scrollback,
   * screen, cursor, attributes and modes (alternate screen, bracketed paste, cursor keys ...),
   * meant to be written into a terminal just reset and of this screen's size.
   */
  snapshot(done: (bytes: Buffer) => void): void {
    if (this.disposed) return done(Buffer.alloc(0));
    // Disposed before the queue drained (the shell exited): the screen as far as it was parsed.
    this.afterWrites(() => done(this.snapshotNow()), () => done(this.snapshotNow()));
  }

  /** The screen as parsed so far (bytes still in the write queue are not in it). */
  snapshotNow(): Buffer {
    if (this.disposed) return Buffer.alloc(0);
    return Buffer.from(withoutZeroMoves(this.serializer.serialize()), "utf8");
  }

  /** The visible lines and the cursor, for tests and diagnostics. */
  text(): { lines: string[]; cursor: { x: number; y: number } } {
    const buf = this.term.buffer.active;
    const lines: string[] = [];
    for (let y = 0; y < buf.length; y++) lines.push(buf.getLine(y)?.translateToString(true) ?? "");
    return { lines, cursor: { x: buf.cursorX, y: buf.cursorY } };
  }

  /** Resolves once everything written so far is parsed. */
  settled(): Promise<void> {
    return new Promise((resolve) => (this.disposed ? resolve() : this.afterWrites(resolve, resolve)));
  }

  dispose(): void {
    if (this.disposed) return;
    // Waiters whose turn will not come: each gets its say before the terminal goes.
    for (const onDispose of [...this.waiting.values()]) onDispose();
    this.waiting.clear();
    this.disposed = true;
    this.serializer.dispose();
    this.term.dispose();
  }

  private afterWrites(fn: () => void, onDispose: () => void = () => {}): void {
    const token = {};
    this.waiting.set(token, onDispose);
    this.term.write(EMPTY, () => {
      if (!this.waiting.delete(token) || this.disposed) return;
      fn();
    });
  }
}

/**
 * The serialize addon (0.14) writes cursor moves of zero cells (`CSI 0 C`, `CSI 0 D`) when it
 * rebuilds a blank row that wraps into the next one; a terminal reads a zero count as one, which
 * leaves a stray "-" of its filler on the screen. A zero move means no move: drop them.
 */
function withoutZeroMoves(serialized: string): string {
  return serialized.replace(/\x1b\[0([ABCD])/g, "");
}
