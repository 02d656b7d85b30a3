/**
 * A layer has two forms. On disk it is an unpacked directory that overlayfs stacks, where a deleted
 * file is a 0/0 character device and a directory that hides what is below it carries the xattr
 * `trusted.overlay.opaque=y` (`user.overlay.` when nested). On the wire (registries, `docker save`)
 * it is a tar where the same facts are spelled `.wh.<name>` and `.wh..wh..opq` (the OCI
 * convention). The layer's diff id is the sha256 of the wire form, so a layer made here and
 * pushed, or saved, keeps its digest and the image keeps its id in any other engine.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import { pipeline } from "node:stream/promises";
import { PassThrough, Transform, type Readable, type TransformCallback } from "node:stream";
import { promisify } from "node:util";
import zlib from "node:zlib";
import { extractStream, UnsafeArchiveError } from "../tar/extract";
import { packTree, packTreeToFile } from "../tar/writer";

/**
 * Write the wire form of an unpacked layer to `out` (an uncompressed tar): ../tar/writer.ts with
 * `wire`, so whiteouts and opaque directories become `.wh.` members as they are met (no copy or
 * view of the directory is made). Sorted names, numeric owners, whole-second mtimes, xattrs except
 * overlayfs's own, no atime/ctime: the same directory always gives the same bytes, and the same
 * diff id.
 */
export function writeLayerTar(dir: string, out: string): void {
  packTreeToFile({ source: dir, name: ".", wire: true }, out);
}

/** The same tar as writeLayerTar, as a stream (push gzips and hashes it in one pass). `done` settles when it has all been read. */
export function streamLayerTar(dir: string, _scratch?: string): { stdout: Readable; done: Promise<void> } {
  const stdout = packTree({ source: dir, name: ".", wire: true });
  const done = new Promise<void>((resolve, reject) => {
    stdout.on("end", resolve);
    stdout.on("error", (e) => reject(new Error(`tar of the layer failed: ${e.message}`)));
  });
  done.catch(() => {}); // the reader's pipeline reports the same error
  return { stdout, done };
}

/** A stream that hashes what passes through it. */
export function hasher(): Transform & { digest(): string; bytes(): number } {
  const h = createHash("sha256");
  let n = 0;
  const t = new PassThrough({ highWaterMark: 1 << 20 }) as PassThrough & { digest(): string; bytes(): number };
  t.on("data", (c: Buffer) => {
    h.update(c);
    n += c.length;
  });
  let d: string | undefined;
  t.digest = () => (d ??= `sha256:${h.digest("hex")}`);
  t.bytes = () => n;
  return t;
}

/** True when the file starts with gzip's magic bytes. */
export function isGzip(file: string): boolean {
  const fd = fs.openSync(file, "r");
  try {
    const b = Buffer.alloc(2);
    return fs.readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Unpack a layer tar (gzip or plain, from `file`) into `dir` (made here) in overlay form; returns
 * the sha256 of the uncompressed tar (the diff id). `onProgress` gets compressed bytes read.
 */
export async function extractLayer(file: string, dir: string, onProgress?: (read: number) => void): Promise<string> {
  return (await extractLayerSized(file, dir, onProgress)).digest;
}

/** extractLayer, also giving the size of the uncompressed tar. */
export async function extractLayerSized(file: string, dir: string, onProgress?: (read: number) => void): Promise<{ digest: string; size: number }> {
  const gz = isGzip(file);
  const src = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  let read = 0;
  src.on("data", (c) => {
    read += c.length;
    onProgress?.(read);
  });
  if (!gz) return extractLayerStream(src, dir);
  const gunzip = zlib.createGunzip();
  src.on("error", (e) => gunzip.destroy(e));
  return extractLayerStream(src.pipe(gunzip), dir);
}

/**
 * Unpack an uncompressed layer tar arriving on `src` into `dir` (made here), in overlay form, with
 * the strict extractor's "layer" rules (../tar/extract.ts: nothing climbs out, nothing is written
 * through the archive's own links, `.wh.` members become whiteouts and opaque markers); returns
 * the sha256 and size of the tar, and what the unpacked files hold (`usage`, the layer's size as
 * Docker counts it; undefined when it must be walked).
 */
export async function extractLayerStream(src: Readable, dir: string): Promise<{ digest: string; size: number; usage?: number }> {
  fs.mkdirSync(dir, { recursive: true });
  const h = createHash("sha256");
  let size = 0;
  let usage: number | undefined;
  try {
    ({ usage } = await extractStream(src, dir, { policy: "layer", what: "layer" }, (c) => {
      h.update(c);
      size += c.length;
    }));
  } catch (e) {
    if (e instanceof UnsafeArchiveError) throw e;
    throw new Error(`could not unpack the layer: ${(e as Error).message}`);
  }
  return { digest: `sha256:${h.digest("hex")}`, size, usage };
}

const GZ_BLOCK = 1 << 20;
const GZ_WINDOW = 32 << 10; // deflate's window: how far back a block may refer
const GZ_PARALLEL = Math.max(1, Math.min(4, os.availableParallelism()));
const STORED_MAX = 0xffff; // the most one stored deflate block holds
/** gzip's header as zlib writes it (no name, no mtime, OS = Unix). */
const GZ_HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
const deflateRaw = promisify(zlib.deflateRaw) as (b: Buffer, o: zlib.ZlibOptions) => Promise<Buffer>;

/** `len` bytes at `at` of the pieces (a view when one piece holds them all, else a copy). */
function bytesAt(pieces: Buffer[], at: number, len: number): Buffer {
  const out = Buffer.alloc(len);
  let got = 0;
  for (const p of pieces) {
    if (at < p.length) {
      if (!got && at + len <= p.length) return p.subarray(at, at + len);
      got += p.copy(out, got, at, Math.min(p.length, at + len - got));
      if (got === len) break;
      at = 0;
    } else at -= p.length;
  }
  return out.subarray(0, got);
}

/**
 * Whether deflate is worth running on a block: false when a fast compression of eight 4 KiB
 * samples of it saves less than a tenth (random bytes, media, archives, compressed files). Deflate
 * spends ~25 ms per MiB searching such bytes for matches it does not find, and then stores most
 * of them anyway.
 */
export function worthCompressing(pieces: Buffer[], size: number): boolean {
  const SAMPLES = 8;
  const SIZE = 4096;
  if (size < SAMPLES * SIZE * 2) return true;
  const step = Math.floor((size - SIZE) / (SAMPLES - 1));
  const samples = Buffer.concat(Array.from({ length: SAMPLES }, (_, i) => bytesAt(pieces, i * step, SIZE)));
  // One compression of the samples side by side; a 4 KiB window keeps each sample's matches mostly
  // its own (and the memory zlib sets up small).
  return zlib.deflateRawSync(samples, { level: 1, windowBits: 12, memLevel: 4 }).length < samples.length * 0.9;
}

/**
 * Stored deflate blocks for `pieces` (RFC 1951 3.2.4: a byte of block header, as the stream is
 * byte-aligned after every block here, then the length and its complement), each of STORED_MAX
 * bytes but the last whatever the pieces' own sizes, pointing at the input rather than copying
 * it; `last` marks the final one.
 */
function storedBlocks(pieces: Buffer[], length: number, last: boolean, out: Buffer[]): void {
  let i = 0;
  let at = 0; // in pieces[i]
  let left = length;
  do {
    const len = Math.min(STORED_MAX, left);
    const h = Buffer.alloc(5);
    h[0] = last && len === left ? 1 : 0;
    h.writeUInt16LE(len, 1);
    h.writeUInt16LE(~len & 0xffff, 3);
    out.push(h);
    for (let need = len; need > 0; ) {
      const p = pieces[i]!;
      const n = Math.min(need, p.length - at);
      out.push(p.subarray(at, at + n));
      need -= n;
      at += n;
      if (at === p.length) {
        i++;
        at = 0;
      }
    }
    left -= len;
  } while (left > 0);
}

/**
 * gzip the way pigz does it: the input is cut into 1 MiB blocks, each deflated on its own (raw
 * deflate at gzip's default level 6, the 32 KiB before it as its dictionary, so matches still
 * reach across the seams) in libuv's thread pool, up to one per core at once, and the pieces are
 * joined under one gzip header and trailer (each block but the last ends on a sync flush, so they
 * concatenate into one valid deflate stream). A block that worthCompressing says is not worth it
 * is written as stored blocks here, without zlib or a copy. The main thread only hands blocks
 * over and computes the CRC; the same input always gives the same bytes (fixed block boundaries,
 * choices made from the bytes alone), so a layer's blob keeps its digest from one push to the
 * next.
 */
export function gzipBlocks(): Transform {
  let held: Buffer[] = [];
  let heldBytes = 0;
  let before: Buffer | undefined; // the last GZ_WINDOW bytes before the next block
  let crc = 0;
  let size = 0;
  const running: Promise<Buffer[]>[] = [];
  const take = (n: number): Buffer[] => {
    const block: Buffer[] = [];
    let i = 0;
    for (; n > 0; i++) {
      const p = held[i]!;
      if (p.length <= n) {
        block.push(p);
        n -= p.length;
        heldBytes -= p.length;
      } else {
        block.push(p.subarray(0, n));
        held[i] = p.subarray(n);
        heldBytes -= n;
        break;
      }
    }
    held = held.slice(i);
    return block;
  };
  const start = (pieces: Buffer[], last: boolean) => {
    const length = pieces.reduce((n, p) => n + p.length, 0);
    if (worthCompressing(pieces, length)) {
      const opts: zlib.ZlibOptions = { level: 6, chunkSize: GZ_BLOCK + (64 << 10), finishFlush: last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH };
      if (before?.length) opts.dictionary = before;
      const p = deflateRaw(pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, length), opts).then((b) => [b]);
      p.catch(() => {}); // awaited in order by drain; this only keeps a later one's failure from going unhandled
      running.push(p);
    } else {
      const out: Buffer[] = [];
      storedBlocks(pieces.filter((p) => p.length), length, last, out);
      running.push(Promise.resolve(out));
    }
    for (const p of pieces) if (p.length) crc = zlib.crc32(p, crc); // (an empty view would reset it to 0)
    size += length;
    const tail: Buffer[] = [];
    for (let i = pieces.length - 1, n = 0; i >= 0 && n < GZ_WINDOW; i--) {
      const p = pieces[i]!;
      tail.unshift(p.subarray(Math.max(0, p.length - (GZ_WINDOW - n))));
      n += tail[0]!.length;
    }
    if (before) tail.unshift(before);
    const window = Buffer.concat(tail);
    before = window.subarray(Math.max(0, window.length - GZ_WINDOW));
  };
  const drain = async (self: Transform, keep: number) => {
    while (running.length > keep) for (const b of await running.shift()!) self.push(b);
  };
  const t = new Transform({
    writableHighWaterMark: GZ_BLOCK,
    readableHighWaterMark: 4 * GZ_BLOCK,
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      held.push(chunk);
      heldBytes += chunk.length;
      while (heldBytes >= GZ_BLOCK) start(take(GZ_BLOCK), false);
      drain(this, GZ_PARALLEL - 1).then(() => cb(), cb);
    },
    flush(cb: TransformCallback) {
      start(take(heldBytes), true);
      drain(this, 0).then(() => {
        const trailer = Buffer.alloc(8);
        trailer.writeUInt32LE(crc >>> 0, 0);
        trailer.writeUInt32LE(size % 2 ** 32, 4);
        cb(null, trailer);
      }, cb);
    },
  });
  t.push(GZ_HEADER);
  return t;
}

/** gzip a stream into `dest`; returns the sha256 of what went in and of what came out, and its size. */
export async function gzipStream(src: Readable, dest: string): Promise<{ inDigest: string; inSize: number; digest: string; size: number }> {
  const hin = hasher();
  const hout = hasher();
  await pipeline(src, hin, gzipBlocks(), hout, fs.createWriteStream(dest, { highWaterMark: 4 << 20 }));
  return { inDigest: hin.digest(), inSize: hin.bytes(), digest: hout.digest(), size: hout.bytes() };
}

/** gzip `src` into `dest`; returns the sha256 and size of the compressed bytes. */
export async function gzipFile(src: string, dest: string): Promise<{ digest: string; size: number }> {
  const h = hasher();
  await pipeline(fs.createReadStream(src, { highWaterMark: 1 << 20 }), gzipBlocks(), h, fs.createWriteStream(dest, { highWaterMark: 4 << 20 }));
  return { digest: h.digest(), size: h.bytes() };
}

/** gunzip `src` into `dest`; returns the sha256 of the uncompressed bytes. */
export async function gunzipFile(src: string, dest: string): Promise<string> {
  const h = hasher();
  await pipeline(fs.createReadStream(src, { highWaterMark: 1 << 20 }), zlib.createGunzip(), h, fs.createWriteStream(dest));
  return h.digest();
}
