// A bounded ring of the most recent terminal output. The agent keeps one per pty, so an orchestrator
// that restarts can rebuild the terminal's screen from it (the orchestrator itself keeps screens,
// not bytes: apps/orchestrator/src/terminals/terminal-screen.ts).
// A cut can land inside an escape sequence, so a replay starts with a terminal reset (RIS) and
// then the kept bytes; the shell's next prompt repaints whatever the cut lost.

export const TERMINAL_RESET = Buffer.from("\x1bc", "latin1");

export class ReplayBuffer {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(readonly capacity = 256 * 1024) {}

  push(chunk: Uint8Array): void {
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    // Copy: the caller may reuse its buffer.
    this.chunks.push(Buffer.from(buf));
    this.size += buf.length;
    while (this.size > this.capacity && this.chunks.length > 0) {
      const over = this.size - this.capacity;
      const first = this.chunks[0]!;
      if (first.length <= over) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(over);
        this.size -= over;
      }
    }
  }

  get byteLength(): number {
    return this.size;
  }

  /** The kept bytes, without the reset prefix. */
  contents(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }

  /** What to send a viewer that (re)attaches: reset, then the kept bytes. */
  replay(): Buffer {
    return Buffer.concat([TERMINAL_RESET, this.contents()]);
  }

  clear(): void {
    this.chunks = [];
    this.size = 0;
  }
}
