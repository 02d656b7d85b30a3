// A command's output, kept up to a cap: the agent's exec op and the host's trusted checks both
// promise "at most N bytes per stream, and `truncated` when more came". Past the cap the stream is
// still read and dropped: a process blocked on a full pipe would only run into its timeout.

export interface CappedOutput {
  /** What was kept (at most the cap). */
  bytes(): Buffer;
  /** Whether anything past the cap was dropped. */
  truncated(): boolean;
}

export function collectCapped(stream: NodeJS.ReadableStream, maxBytes: number): CappedOutput {
  const parts: Buffer[] = [];
  let size = 0;
  let dropped = false;
  stream.on("data", (chunk: Buffer) => {
    const room = maxBytes - size;
    if (chunk.length > room) dropped = true;
    if (room <= 0) return;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    parts.push(kept);
    size += kept.length;
  });
  return { bytes: () => Buffer.concat(parts, size), truncated: () => dropped };
}
