/**
 * Per-container logs, in the spirit of Docker's json-file driver: one JSON object per line,
 * {"log": "...\n", "stream": "stdout"|"stderr", "time": RFC3339Nano}. Output is cut at line ends
 * before it is decoded, so a UTF-8 character split across two reads is never broken; a partial last
 * line is kept until its end arrives (or the container exits).
 */
import { EventEmitter } from "node:events";
import fs from "node:fs";

export type StreamName = "stdout" | "stderr";

export interface LogEntry {
  log: Buffer;
  stream: StreamName;
  time: string;
}

/** Nanosecond timestamps like Docker's, from the millisecond clock plus a monotonic tail. */
let lastNs = 0n;
export function nowRFC3339Nano(): string {
  const ms = BigInt(Date.now());
  let ns = ms * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
  if (ns <= lastNs) ns = lastNs + 1n;
  lastNs = ns;
  const iso = new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 19);
  return `${iso}.${(ns % 1_000_000_000n).toString().padStart(9, "0")}Z`;
}

export class JsonFileLog extends EventEmitter {
  private pending: Record<StreamName, Buffer[]> = { stdout: [], stderr: [] };

  constructor(readonly file: string) {
    super();
  }

  write(stream: StreamName, chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      this.pending[stream].push(chunk.subarray(start, nl + 1));
      this.emitLine(stream, Buffer.concat(this.pending[stream]));
      this.pending[stream] = [];
      start = nl + 1;
    }
    if (start < chunk.length) this.pending[stream].push(Buffer.from(chunk.subarray(start)));
    // A very long line without a newline is written in pieces, as Docker does at 16 KiB.
    if (this.pending[stream].reduce((n, b) => n + b.length, 0) > 16384) this.flush(stream);
  }

  /** Write out what is left of unterminated lines (at exit). */
  flush(stream?: StreamName): void {
    for (const s of stream ? [stream] : (["stdout", "stderr"] as StreamName[])) {
      if (this.pending[s].length) this.emitLine(s, Buffer.concat(this.pending[s]));
      this.pending[s] = [];
    }
  }

  private emitLine(stream: StreamName, line: Buffer): void {
    const entry: LogEntry = { log: line, stream, time: nowRFC3339Nano() };
    fs.appendFileSync(this.file, `${JSON.stringify({ log: line.toString("utf8"), stream, time: entry.time })}\n`);
    this.emit("entry", entry);
  }

  read(): LogEntry[] {
    let text = "";
    try {
      text = fs.readFileSync(this.file, "utf8");
    } catch {
      return [];
    }
    return text
      .split("\n")
      .filter(Boolean)
      .map((l) => {
        const j = JSON.parse(l) as { log: string; stream: StreamName; time: string };
        return { log: Buffer.from(j.log, "utf8"), stream: j.stream, time: j.time };
      });
  }
}
