/**
 * A layer has two forms. On disk it is an unpacked directory that overlayfs stacks, where a deleted
 * file is a 0/0 character device and a directory that hides what is below it carries the xattr
 * `trusted.overlay.opaque=y` (`user.overlay.` when nested). On the wire (registries, `docker save`)
 * it is a tar where the same facts are spelled `.wh.<name>` and `.wh..wh..opq` (the OCI
 * convention). The layer's diff id is the sha256 of the wire form, so a layer made here and
 * pushed, or saved, keeps its digest and the image keeps its id in any other engine.
 */
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { PassThrough, type Readable, type Transform } from "node:stream";
import zlib from "node:zlib";
import { LayerTarGuard, UnsafeArchiveError } from "../build/tar";
import { isOpaqueDir, markOpaque } from "../snapshots/overlay";

/**
 * Every layer tar we write: sorted names, numeric owners, whole-second mtimes, xattrs except
 * overlayfs's own bookkeeping, and no atime/ctime (they change when the files are merely read or
 * linked, and would make the same directory give a different digest each time).
 */
export const TAR_CREATE = ["--sort=name", "--numeric-owner", "--xattrs", "--xattrs-exclude=trusted.overlay.*", "--xattrs-exclude=user.overlay.*", "--format=posix", "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime,delete=mtime"];

interface Markers {
  whiteouts: string[]; // paths (relative) of 0/0 character devices
  opaque: string[]; // relative dirs marked opaque
}

/** Find overlayfs whiteouts and opaque directories in an unpacked layer. */
function findMarkers(dir: string): Markers {
  const whiteouts: string[] = [];
  const opaque: string[] = [];
  const walk = (rel: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(dir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isCharacterDevice() && fs.lstatSync(path.join(dir, r)).rdev === 0) whiteouts.push(r);
      else if (e.isDirectory()) {
        // (readdir's types come from lstat: a symlink to a directory is not walked or asked)
        if (isOpaqueDir(path.join(dir, r))) opaque.push(r);
        walk(r);
      }
    }
  };
  walk("");
  return { whiteouts, opaque };
}

/**
 * Write the wire form of an unpacked layer to `out` (an uncompressed tar). Without markers the
 * directory is tarred as it is; with markers, a hard-linked view is made (no data copied), the
 * markers rewritten in it, and the directories' times put back so the tar does not depend on when
 * it was made.
 */
export function writeLayerTar(dir: string, out: string): void {
  const { src, cleanup } = wireView(dir, `${out}.view`);
  try {
    execFileSync("tar", [...TAR_CREATE, "-C", src, "-cf", out, "."]);
  } finally {
    cleanup();
  }
}

/** The same tar as writeLayerTar, as a stream (push gzips and hashes it in one pass). */
export function streamLayerTar(dir: string, scratch: string): { stdout: Readable; done: Promise<void> } {
  const { src, cleanup } = wireView(dir, `${scratch}.view`);
  const tar = spawn("tar", [...TAR_CREATE, "-C", src, "-cf", "-", "."], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  tar.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const done = new Promise<void>((resolve, reject) =>
    tar.on("close", (code) => {
      cleanup();
      if (code === 0) resolve();
      else reject(new Error(`tar of the layer failed: ${err.trim()}`));
    }),
  );
  return { stdout: tar.stdout, done };
}

/** The directory to tar: the layer itself, or a hard-linked view with its markers in wire form. */
function wireView(dir: string, view: string): { src: string; cleanup: () => void } {
  const m = findMarkers(dir);
  if (!m.whiteouts.length && !m.opaque.length) return { src: dir, cleanup: () => {} };
  fs.rmSync(view, { recursive: true, force: true });
  execFileSync("cp", ["-al", fs.realpathSync(dir), view]);
  try {
    const touched = new Set<string>();
    for (const r of m.whiteouts) {
      fs.rmSync(path.join(view, r));
      fs.writeFileSync(path.join(view, path.dirname(r), `.wh.${path.basename(r)}`), "");
      touched.add(path.dirname(r));
    }
    for (const r of m.opaque) {
      fs.writeFileSync(path.join(view, r, ".wh..wh..opq"), "");
      touched.add(r);
    }
    // The marker files carry the time of their directory, so two writes give the same bytes.
    for (const d of touched) {
      const st = fs.lstatSync(path.join(dir, d));
      for (const f of [...m.whiteouts.filter((w) => path.dirname(w) === d).map((w) => `.wh.${path.basename(w)}`), ...(m.opaque.includes(d) ? [".wh..wh..opq"] : [])]) {
        fs.utimesSync(path.join(view, d, f), st.atime, st.mtime);
      }
      fs.utimesSync(path.join(view, d), st.atime, st.mtime);
    }
  } catch (e) {
    fs.rmSync(view, { recursive: true, force: true });
    throw e;
  }
  return { src: view, cleanup: () => fs.rmSync(view, { recursive: true, force: true }) };
}

/**
 * Turn a wire-form layer unpacked in `dir` into overlayfs form: `.wh.` files become markers. The
 * directories keep the times the tar gave them (tar restored them; making the markers would not):
 * tarring the layer again gives the same bytes, so the diff id still holds.
 */
export function tarToOverlay(dir: string): void {
  const walk = (d: string) => {
    let changed = false;
    for (const name of fs.readdirSync(d)) {
      const p = path.join(d, name);
      if (name === ".wh..wh..opq") {
        fs.rmSync(p);
        markOpaque(d);
        changed = true;
      } else if (name.startsWith(".wh.")) {
        fs.rmSync(p);
        const target = path.join(d, name.slice(4));
        fs.rmSync(target, { recursive: true, force: true });
        mknodWhiteout(target);
        changed = true;
      } else if (fs.lstatSync(p).isDirectory()) walk(p);
    }
    return changed;
  };
  const times = new Map<string, fs.Stats>();
  const record = (d: string) => {
    times.set(d, fs.lstatSync(d));
    for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) record(path.join(d, e.name));
  };
  if (!hasWireMarkers(dir)) return;
  record(dir);
  walk(dir);
  for (const [d, st] of times) if (fs.existsSync(d)) fs.utimesSync(d, st.atime, st.mtime);
}

function hasWireMarkers(dir: string): boolean {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith(".wh.")) return true;
    if (e.isDirectory() && hasWireMarkers(path.join(dir, e.name))) return true;
  }
  return false;
}

/** An overlayfs whiteout: a character device 0/0. */
function mknodWhiteout(target: string): void {
  execFileSync("mknod", [target, "c", "0", "0"]);
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
 * Unpack an uncompressed layer tar arriving on `src` into `dir` (made here), in overlay form;
 * returns its sha256 and size.
 */
export async function extractLayerStream(src: Readable, dir: string): Promise<{ digest: string; size: number }> {
  fs.mkdirSync(dir, { recursive: true });
  const h = hasher();
  // --ignore-zeros: read to the very end; tar would otherwise stop at the end-of-archive blocks
  // and close its stdin while padding is still coming, failing the pipeline ("Premature close").
  const tar = spawn("tar", ["-x", "--ignore-zeros", "--numeric-owner", "--same-owner", "-p", "--xattrs", "--xattrs-include=*", "--no-overwrite-dir", "-C", dir, "-f", "-"], { stdio: ["pipe", "ignore", "pipe"] });
  let err = "";
  tar.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const done = new Promise<number>((r) => tar.on("close", (code) => r(code ?? 1)));
  // Every member is checked before tar sees it (build/tar.ts): nothing climbs out of dir.
  await pipeline(src, h, new LayerTarGuard(), tar.stdin).catch((e: Error) => {
    tar.kill();
    throw e instanceof UnsafeArchiveError ? e : new Error(`could not read the layer: ${e.message}`);
  });
  const code = await done;
  if (code !== 0) throw new Error(`could not unpack the layer: ${err.trim().split("\n").slice(-2).join(" ")}`);
  tarToOverlay(dir);
  return { digest: h.digest(), size: h.bytes() };
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
