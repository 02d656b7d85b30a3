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
import { pipeline } from "node:stream/promises";
import { PassThrough, type Readable, type Transform } from "node:stream";
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
  const t = new PassThrough() as PassThrough & { digest(): string; bytes(): number };
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
 * the sha256 and size of the tar.
 */
export async function extractLayerStream(src: Readable, dir: string): Promise<{ digest: string; size: number }> {
  fs.mkdirSync(dir, { recursive: true });
  const h = createHash("sha256");
  let size = 0;
  try {
    await extractStream(src, dir, { policy: "layer", what: "layer" }, (c) => {
      h.update(c);
      size += c.length;
    });
  } catch (e) {
    if (e instanceof UnsafeArchiveError) throw e;
    throw new Error(`could not unpack the layer: ${(e as Error).message}`);
  }
  return { digest: `sha256:${h.digest("hex")}`, size };
}

/** gzip a stream into `dest`; returns the sha256 of what went in and of what came out, and its size. */
export async function gzipStream(src: Readable, dest: string): Promise<{ inDigest: string; inSize: number; digest: string; size: number }> {
  const hin = hasher();
  const hout = hasher();
  await pipeline(src, hin, zlib.createGzip({ level: 6 }), hout, fs.createWriteStream(dest));
  return { inDigest: hin.digest(), inSize: hin.bytes(), digest: hout.digest(), size: hout.bytes() };
}

/** gzip `src` into `dest`; returns the sha256 and size of the compressed bytes. */
export async function gzipFile(src: string, dest: string): Promise<{ digest: string; size: number }> {
  const h = hasher();
  await pipeline(fs.createReadStream(src, { highWaterMark: 1 << 20 }), zlib.createGzip({ level: 6 }), h, fs.createWriteStream(dest));
  return { digest: h.digest(), size: h.bytes() };
}

/** gunzip `src` into `dest`; returns the sha256 of the uncompressed bytes. */
export async function gunzipFile(src: string, dest: string): Promise<string> {
  const h = hasher();
  await pipeline(fs.createReadStream(src, { highWaterMark: 1 << 20 }), zlib.createGunzip(), h, fs.createWriteStream(dest));
  return h.digest();
}
