/**
 * Reading tar: one push parser (TarParser) that is fed bytes as they come (from a file, an HTTP
 * request, a gunzip stream) and hands each member to a callback, which may return a sink for its
 * body. Everything is synchronous per chunk, so a member's bytes are written as they pass and a
 * layer is never held in memory; the caller's stream paces the parser.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import { checksumOk, cString, isZeroBlock, MAX_META_SIZE, padding, parseHeader, parsePax, readNumber, UnsafeArchiveError, type TarEntry } from "./format";

/** Where a member's body goes: called with each piece, then `end` once it is complete. */
export interface EntrySink {
  write(chunk: Buffer): void;
  end(): void;
}

export interface ParserOptions {
  what?: string; // for messages: "layer", "build context", ...
  /**
   * After the end-of-archive blocks: "stop" ignores the rest (a context), "continue" reads on as
   * `tar --ignore-zeros` would (a layer: every member that follows is checked and applied too).
   */
  afterEnd?: "stop" | "continue";
}

export class TarParser {
  private readonly what: string;
  private header = Buffer.alloc(512);
  private have = 0; // bytes of `header` filled
  private body = 0; // body bytes of the current member still to come
  private pad = 0; // padding bytes after it
  private sink: EntrySink | undefined;
  private meta?: { flag: string; left: number; parts: Buffer[] };
  private pax = new Map<string, Buffer>();
  private longName?: string;
  private longLink?: string;
  private ended = false; // an end-of-archive block was seen
  private sawHeader = false;
  /** Total bytes fed. */
  bytes = 0;

  constructor(
    private readonly onEntry: (e: TarEntry) => EntrySink | void,
    private readonly opts: ParserOptions = {},
  ) {
    this.what = opts.what ?? "archive";
  }

  feed(chunk: Buffer): void {
    this.bytes += chunk.length;
    let at = 0;
    while (at < chunk.length) {
      if (this.ended && this.opts.afterEnd === "stop") return;
      if (this.body) {
        const n = Math.min(this.body, chunk.length - at);
        const piece = chunk.subarray(at, at + n);
        if (this.meta) {
          if (this.meta.left > 0) this.meta.parts.push(piece);
          this.meta.left -= n;
        } else this.sink?.write(piece);
        this.body -= n;
        at += n;
        if (!this.body) this.endBody();
        continue;
      }
      if (this.pad) {
        const n = Math.min(this.pad, chunk.length - at);
        this.pad -= n;
        at += n;
        continue;
      }
      const n = Math.min(512 - this.have, chunk.length - at);
      chunk.copy(this.header, this.have, at, at + n);
      this.have += n;
      at += n;
      if (this.have === 512) {
        this.have = 0;
        this.onHeader(this.header);
      }
    }
  }

  /** The input has ended: throws when it stopped inside a member. */
  end(): void {
    if (this.body || this.meta || (this.have && !isZeroBlock(this.header.subarray(0, this.have)))) throw new UnsafeArchiveError(`${this.what}: truncated tar archive`);
    if (this.pax.size || this.longName !== undefined || this.longLink !== undefined) throw new UnsafeArchiveError(`${this.what}: truncated tar archive (an extended header without its member)`);
    if (!this.sawHeader && this.bytes > 0 && !this.ended) throw new UnsafeArchiveError(`${this.what}: not a tar archive`);
  }

  private endBody(): void {
    if (this.meta) {
      const { flag, parts } = this.meta;
      this.meta = undefined;
      const b = Buffer.concat(parts);
      if (flag === "L") this.longName = cString(b);
      else if (flag === "K") this.longLink = cString(b);
      else if (flag === "x") for (const [k, v] of parsePax(b, this.what)) this.pax.set(k, v);
      // "g" (global) records are read and not applied: nothing in them is needed here.
      return;
    }
    const s = this.sink;
    this.sink = undefined;
    s?.end();
  }

  private onHeader(h: Buffer): void {
    if (isZeroBlock(h)) {
      this.ended = true;
      return;
    }
    if (!checksumOk(h)) throw new UnsafeArchiveError(`${this.what}: invalid tar header at byte ${this.bytes} (not a tar archive, or a damaged one)`);
    this.sawHeader = true;
    const flag = String.fromCharCode(h[156]!);
    if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
      const size = readNumber(h.subarray(124, 136), "size");
      if (size > MAX_META_SIZE) throw new UnsafeArchiveError(`${this.what}: an extended header of ${size} bytes (more than ${MAX_META_SIZE}); refused`);
      this.meta = { flag, left: size, parts: [] };
      this.body = size;
      this.pad = padding(size);
      if (!size) this.endBody();
      return;
    }
    const entry = parseHeader(h, this.pax, this.longName, this.longLink, this.what);
    this.pax = new Map();
    this.longName = this.longLink = undefined;
    this.sink = this.onEntry(entry) ?? undefined;
    this.body = entry.size;
    this.pad = padding(entry.size);
    if (!entry.size) this.endBody();
  }
}

/** Feed a stream through a parser; resolves when the stream and the archive have both ended. */
export async function parseStream(src: Readable, parser: TarParser): Promise<void> {
  for await (const chunk of src) parser.feed(chunk as Buffer);
  parser.end();
}

/** Feed a file through a parser, synchronously. */
export function parseFile(file: string, parser: TarParser): void {
  const fd = fs.openSync(file, "r");
  const buf = Buffer.alloc(1 << 20);
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) parser.feed(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  parser.end();
}

/** Visit the members of an (uncompressed) tar file; a visitor that wants a member's body returns a sink for it. */
export function walkTar(file: string, visit: (e: TarEntry) => EntrySink | void, what = "archive"): void {
  parseFile(file, new TarParser(visit, { what, afterEnd: "stop" }));
}

/** A sink that collects a member's body in memory (small members only: JSON, test fixtures). */
export function collect(done: (body: Buffer) => void): EntrySink {
  const parts: Buffer[] = [];
  return { write: (c) => void parts.push(Buffer.from(c)), end: () => done(Buffer.concat(parts)) };
}

/** True when the file starts with a valid tar header. */
export function looksLikeTar(file: string): boolean {
  const fd = fs.openSync(file, "r");
  try {
    const h = Buffer.alloc(512);
    return fs.readSync(fd, h, 0, 512, 0) === 512 && !isZeroBlock(h) && checksumOk(h);
  } finally {
    fs.closeSync(fd);
  }
}

/** gzip, bzip2, xz or zstd, by their magic numbers (as Docker detects them), or null. */
export function compression(file: string): "gzip" | "bzip2" | "xz" | "zstd" | null {
  const fd = fs.openSync(file, "r");
  const b = Buffer.alloc(6);
  try {
    fs.readSync(fd, b, 0, 6, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (b[0] === 0x1f && b[1] === 0x8b) return "gzip";
  if (b.subarray(0, 3).toString("latin1") === "BZh") return "bzip2";
  if (b.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return "xz";
  if (b.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return "zstd";
  return null;
}

/**
 * Decompress into `out` with the system's tool, which the engine does not wait on (other clients
 * are served meanwhile); throws a readable error when it is not valid.
 */
export async function decompress(file: string, kind: "gzip" | "bzip2" | "xz" | "zstd", out: string): Promise<void> {
  const fd = fs.openSync(out, "w");
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(kind === "zstd" ? "zstd" : kind, ["-dc", file], { stdio: ["ignore", fd, "pipe"] });
      let stderr = "";
      child.stderr!.on("data", (c: Buffer) => void (stderr = (stderr + c.toString("utf8")).slice(-2000)));
      child.on("error", (e) => reject(new UnsafeArchiveError(`cannot decompress ${path.basename(file)} (${kind}): ${e.message}`)));
      child.on("close", (code) => (code === 0 ? resolve() : reject(new UnsafeArchiveError(`cannot decompress ${path.basename(file)} (${kind}): ${stderr.trim() || `exit ${code}`}`))));
    });
  } finally {
    fs.closeSync(fd);
  }
}

