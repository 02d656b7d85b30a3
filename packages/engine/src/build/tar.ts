/**
 * A tar reader and a careful extractor, for the two archives a build unpacks: the build context
 * the client uploads, and a local archive that `ADD` extracts into the image; and the same rules
 * as a guard in front of `tar -x` for image layers (LayerTarGuard, at the end).
 *
 * Why not GNU tar: a context is untrusted input, and the rules Docker applies to it are ours to
 * state and test. Every member's name is cleaned and must stay below the destination; nothing is
 * ever written *through* a symbolic link; a hard link may only point at a member already inside.
 * Two policies for symbolic links:
 *   "context": a link whose target is absolute or climbs out of the context is refused, and so is
 *              any member below a link (the context must be plain files the builder can read);
 *   "image":   links are image content (a root filesystem is full of absolute ones), so they are
 *              kept, and a member below one is placed by resolving the link inside the
 *              destination, the way the container would see it.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { Transform } from "node:stream";
import { lstatOrNull, resolveInRoot } from "./fsutil";

export class UnsafeArchiveError extends Error {}

export interface TarEntry {
  name: string; // as in the archive (cleaned later)
  type: "file" | "dir" | "symlink" | "hardlink" | "fifo" | "device" | "other";
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number; // seconds
  linkname: string;
}

function cString(b: Buffer): string {
  const z = b.indexOf(0);
  return b.subarray(0, z < 0 ? b.length : z).toString("utf8");
}

function octal(b: Buffer): number {
  if (b[0]! & 0x80) {
    // base-256 (GNU) for values that do not fit in octal digits
    let v = 0;
    for (let i = 1; i < b.length; i++) v = v * 256 + b[i]!;
    return v + (b[0]! & 0x7f) * 256 ** (b.length - 1);
  }
  const s = cString(b).trim();
  return s ? parseInt(s, 8) : 0;
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum === octal(h.subarray(148, 156));
}

/** True when the file starts with a valid tar header. */
export function looksLikeTar(file: string): boolean {
  const fd = fs.openSync(file, "r");
  try {
    const h = Buffer.alloc(512);
    return fs.readSync(fd, h, 0, 512, 0) === 512 && !h.every((x) => x === 0) && checksumOk(h);
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

/** Decompress into `out` with the system's tool; throws a readable error when it is not valid. */
export function decompress(file: string, kind: "gzip" | "bzip2" | "xz" | "zstd", out: string): void {
  const fd = fs.openSync(out, "w");
  try {
    execFileSync(kind === "zstd" ? "zstd" : kind, ["-dc", file], { stdio: ["ignore", fd, "pipe"] });
  } catch (e) {
    throw new UnsafeArchiveError(`cannot decompress ${path.basename(file)} (${kind}): ${String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim()}`);
  } finally {
    fs.closeSync(fd);
  }
}

/** Walk the members of an (uncompressed) tar; `data` copies the member's bytes to an fd. */
export function walkTar(file: string, visit: (e: TarEntry, data: (fd: number) => void) => void): void {
  const fd = fs.openSync(file, "r");
  const total = fs.fstatSync(fd).size;
  const h = Buffer.alloc(512);
  let pos = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Record<string, string> = {};
  const readBody = (size: number): Buffer => {
    const b = Buffer.alloc(size);
    if (fs.readSync(fd, b, 0, size, pos) !== size) throw new UnsafeArchiveError("truncated tar archive");
    return b;
  };
  try {
    while (pos + 512 <= total) {
      fs.readSync(fd, h, 0, 512, pos);
      if (h.every((x) => x === 0)) break; // end of archive
      if (!checksumOk(h)) throw new UnsafeArchiveError(`invalid tar header at byte ${pos} (not a tar archive, or a damaged one)`);
      pos += 512;
      const flag = String.fromCharCode(h[156]!);
      let size = octal(h.subarray(124, 136));
      if (pax.size) size = Number(pax.size);
      const padded = Math.ceil(size / 512) * 512;
      if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
        const body = readBody(size);
        if (flag === "L") longName = cString(body);
        else if (flag === "K") longLink = cString(body);
        else if (flag === "x") pax = parsePax(body);
        pos += padded;
        continue;
      }
      const magic = h.subarray(257, 263).toString("latin1");
      const prefix = magic.startsWith("ustar") ? cString(h.subarray(345, 500)) : "";
      let name = cString(h.subarray(0, 100));
      if (prefix) name = `${prefix}/${name}`;
      const entry: TarEntry = {
        name: pax.path ?? longName ?? name,
        type: flag === "0" || flag === "\0" || flag === "7" ? "file" : flag === "5" ? "dir" : flag === "2" ? "symlink" : flag === "1" ? "hardlink" : flag === "6" ? "fifo" : flag === "3" || flag === "4" ? "device" : "other",
        mode: octal(h.subarray(100, 108)) & 0o7777,
        uid: pax.uid ? Number(pax.uid) : octal(h.subarray(108, 116)),
        gid: pax.gid ? Number(pax.gid) : octal(h.subarray(116, 124)),
        size,
        mtime: pax.mtime ? Math.floor(Number(pax.mtime)) : octal(h.subarray(136, 148)),
        linkname: pax.linkpath ?? longLink ?? cString(h.subarray(157, 257)),
      };
      if (entry.type === "file" && entry.name.endsWith("/")) entry.type = "dir"; // old tars
      if (pos + (entry.type === "file" ? size : 0) > total) throw new UnsafeArchiveError("truncated tar archive");
      const start = pos;
      visit(entry, (out) => {
        const buf = Buffer.alloc(Math.min(size, 1 << 20) || 1);
        for (let done = 0; done < size; ) {
          const n = fs.readSync(fd, buf, 0, Math.min(buf.length, size - done), start + done);
          if (n <= 0) throw new UnsafeArchiveError("truncated tar archive");
          fs.writeSync(out, buf, 0, n);
          done += n;
        }
      });
      pos += entry.type === "file" ? padded : 0;
      longName = longLink = undefined;
      pax = {};
    }
  } finally {
    fs.closeSync(fd);
  }
}

function parsePax(b: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < b.length) {
    const sp = b.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number(b.subarray(i, sp).toString());
    if (!len) break;
    const rec = b.subarray(sp + 1, i + len - 1).toString("utf8");
    const eq = rec.indexOf("=");
    out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/** A member name made relative and clean; refused when it climbs out ("../x"). */
export function cleanMemberName(name: string): string {
  const n = path.posix.normalize(name.replace(/^\/+/, "") || ".");
  if (n === ".." || n.startsWith("../")) throw new UnsafeArchiveError(`archive member "${name}" points outside the destination (it climbs out with "..")`);
  return n === "." ? "" : n.replace(/\/$/, "");
}

/**
 * Unpack `file` (already decompressed) into `dest`. Returns the number of members written.
 * Owners from the archive are kept only with `keepOwners` (ADD keeps them; a context does not need them).
 */
export function extractTar(file: string, dest: string, opts: { policy: "context" | "image"; keepOwners?: boolean; what?: string }): number {
  const what = opts.what ?? "archive";
  let count = 0;
  const dirTimes: [string, number][] = [];
  walkTar(file, (e, data) => {
    let rel: string;
    try {
      rel = cleanMemberName(e.name);
    } catch (err) {
      throw new UnsafeArchiveError(`${what}: ${(err as Error).message}; refused, nothing was written outside`);
    }
    if (rel === "") return;
    const refuse = (why: string) => {
      throw new UnsafeArchiveError(`${what}: member "${e.name}" ${why}`);
    };
    // The parent directory, resolved without ever leaving dest.
    let parent: string;
    try {
      parent = resolveInRoot(dest, path.posix.dirname(rel), { mkdir: true, followSymlinks: opts.policy === "image" });
    } catch (err) {
      return refuse(`would be written through a symbolic link (${(err as Error).message}); refused so nothing lands outside the ${opts.policy === "context" ? "build context" : "destination"}`);
    }
    const target = path.join(parent, path.posix.basename(rel));
    if (e.type === "symlink" && opts.policy === "context") {
      if (path.posix.isAbsolute(e.linkname)) refuse(`is an absolute symbolic link (-> ${e.linkname}) pointing outside the build context`);
      if (path.posix.normalize(path.posix.join(path.posix.dirname(rel), e.linkname)).startsWith("..")) refuse(`is a symbolic link (-> ${e.linkname}) pointing outside the build context`);
    }
    if (e.type === "device") {
      if (opts.policy === "context") refuse("is a device node; a build context may not hold device nodes");
      return; // ADD of an archive with device nodes: skipped (an unprivileged build could not make them either)
    }
    if (e.type === "other") return;
    const existing = lstatOrNull(target);
    if (existing) {
      if (e.type === "dir" && existing.isDirectory()) {
        fs.chmodSync(target, e.mode);
        return;
      }
      fs.rmSync(target, { recursive: true, force: true });
    }
    switch (e.type) {
      case "dir":
        fs.mkdirSync(target, { mode: e.mode });
        fs.chmodSync(target, e.mode);
        dirTimes.push([target, e.mtime]);
        break;
      case "file": {
        // O_EXCL: if anything appeared there meanwhile (a link), fail rather than follow it.
        const fd = fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
        try {
          data(fd);
        } finally {
          fs.closeSync(fd);
        }
        fs.chmodSync(target, e.mode);
        fs.utimesSync(target, e.mtime, e.mtime);
        break;
      }
      case "symlink":
        fs.symlinkSync(e.linkname, target);
        break;
      case "hardlink": {
        let lrel: string;
        try {
          lrel = cleanMemberName(e.linkname);
        } catch {
          return refuse(`is a hard link to "${e.linkname}", outside the ${opts.policy === "context" ? "build context" : "destination"}`);
        }
        let source: string;
        try {
          source = path.join(resolveInRoot(dest, path.posix.dirname(lrel), { mkdir: false, followSymlinks: opts.policy === "image" }), path.posix.basename(lrel));
        } catch {
          return refuse(`is a hard link to "${e.linkname}" through a symbolic link`);
        }
        const st = lstatOrNull(source);
        if (!st || st.isDirectory()) return refuse(`is a hard link to "${e.linkname}", which is not a file earlier in the archive`);
        fs.linkSync(source, target);
        break;
      }
      case "fifo":
        execFileSync("mkfifo", ["-m", (e.mode & 0o777).toString(8), target]);
        break;
    }
    if (opts.keepOwners) fs.lchownSync(target, e.uid, e.gid);
    count++;
  });
  for (const [d, t] of dirTimes.reverse()) {
    try {
      fs.utimesSync(d, t, t);
    } catch {
      /* removed by a later member */
    }
  }
  return count;
}


/**
 * The same rules for a layer tar on its way to `tar -x` (images/layers.ts: pulled layers,
 * `docker load`, `docker import`): a stream that parses each header and checks it before passing
 * a byte of it on, so a member that breaks a rule never reaches the extractor, and the pipeline
 * fails with the reason. A layer is unpacked into a fresh, empty directory, so only the archive's
 * own links matter:
 *   - a name that climbs out ("../x") is refused;
 *   - a member below a symbolic link of the same archive is refused (it would be written through
 *     the link: with an absolute one, onto the host); links themselves are image content, kept;
 *   - a hard link must name a member that came earlier, by a name that stays inside and does not
 *     pass through a symbolic link;
 *   - member types tar would read differently from this parser (sparse files, volume labels,
 *     multi-volume parts) are refused rather than guessed.
 */
const LAYER_MEMBER_TYPES = new Set(["0", "\0", "1", "2", "3", "4", "5", "6", "7"]);

export class LayerTarGuard extends Transform {
  private header = Buffer.alloc(0); // a header being collected
  private body = 0; // bytes of the current member's body still to pass on
  private meta?: { flag: string; left: number; padded: number; bytes: Buffer[] }; // a pax or GNU long-name record
  private pax: Record<string, string> = {};
  private longName?: string;
  private longLink?: string;
  private readonly symlinks = new Set<string>();
  private readonly members = new Set<string>(); // non-directory members so far, for hard links

  constructor(private readonly what = "layer") {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error) => void): void {
    try {
      this.consume(chunk);
      done();
    } catch (e) {
      done(e as Error);
    }
  }

  override _flush(done: (e?: Error) => void): void {
    const partial = this.header.length && !this.header.every((x) => x === 0);
    done(partial || this.body || this.meta ? new UnsafeArchiveError(`${this.what}: truncated tar archive`) : undefined);
  }

  private consume(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.body) {
        const n = Math.min(this.body, chunk.length - at);
        this.push(chunk.subarray(at, at + n));
        this.body -= n;
        at += n;
        continue;
      }
      if (this.meta) {
        const n = Math.min(this.meta.padded, chunk.length - at);
        const part = chunk.subarray(at, at + n);
        this.push(part);
        if (this.meta.left > 0) this.meta.bytes.push(part.subarray(0, Math.min(n, this.meta.left)));
        this.meta.left -= n;
        this.meta.padded -= n;
        at += n;
        if (!this.meta.padded) this.endMeta();
        continue;
      }
      const n = Math.min(512 - this.header.length, chunk.length - at);
      this.header = Buffer.concat([this.header, chunk.subarray(at, at + n)]);
      at += n;
      if (this.header.length === 512) {
        const h = this.header;
        this.header = Buffer.alloc(0);
        this.onHeader(h);
      }
    }
  }

  private endMeta(): void {
    const { flag, bytes } = this.meta!;
    const body = Buffer.concat(bytes);
    this.meta = undefined;
    if (flag === "L") this.longName = cString(body);
    else if (flag === "K") this.longLink = cString(body);
    else if (flag === "x") this.pax = parsePax(body);
  }

  private onHeader(h: Buffer): void {
    // Zero blocks end an archive, but `tar -x --ignore-zeros` reads on past them: so does this.
    if (h.every((x) => x === 0)) {
      this.push(h);
      return;
    }
    if (!checksumOk(h)) throw new UnsafeArchiveError(`${this.what}: invalid tar header (not a tar archive, or a damaged one)`);
    const flag = String.fromCharCode(h[156]!);
    let size = octal(h.subarray(124, 136));
    if (this.pax.size) size = Number(this.pax.size);
    const padded = Math.ceil(size / 512) * 512;
    if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
      this.push(h);
      this.meta = { flag, left: size, padded, bytes: [] };
      if (!padded) this.endMeta();
      return;
    }
    const magic = h.subarray(257, 263).toString("latin1");
    const prefix = magic.startsWith("ustar") ? cString(h.subarray(345, 500)) : "";
    const raw = cString(h.subarray(0, 100));
    const name = this.pax.path ?? this.longName ?? (prefix ? `${prefix}/${raw}` : raw);
    const linkname = this.pax.linkpath ?? this.longLink ?? cString(h.subarray(157, 257));
    this.pax = {};
    this.longName = this.longLink = undefined;
    this.check(flag, name, linkname);
    this.push(h);
    // Only regular files carry a body (as GNU tar reads them); every other kind is refused above or has none.
    this.body = flag === "0" || flag === "\0" || flag === "7" ? padded : 0;
  }

  private check(flag: string, name: string, linkname: string): void {
    const refuse = (why: string) => {
      throw new UnsafeArchiveError(`${this.what}: member "${name}" ${why}; refused, nothing was written outside`);
    };
    if (!LAYER_MEMBER_TYPES.has(flag)) refuse(`has a member type this engine does not unpack ("${flag}")`);
    let rel: string;
    try {
      rel = cleanMemberName(name);
    } catch (e) {
      return refuse((e as Error).message.replace(/^archive member "[^"]*" /, ""));
    }
    const throughLink = (r: string) => {
      const parts = r.split("/");
      for (let i = 1; i < parts.length; i++) if (this.symlinks.has(parts.slice(0, i).join("/"))) return parts.slice(0, i).join("/");
      return undefined;
    };
    const via = throughLink(rel);
    if (via) refuse(`would be written through the symbolic link "${via}" of the same archive`);
    if (flag === "1") {
      let target: string;
      try {
        target = cleanMemberName(linkname);
      } catch {
        return refuse(`is a hard link to "${linkname}", outside the layer`);
      }
      const linkVia = throughLink(target);
      if (linkVia) refuse(`is a hard link through the symbolic link "${linkVia}"`);
      if (!this.members.has(target)) refuse(`is a hard link to "${linkname}", which is not a file earlier in the archive`);
    }
    if (flag === "2") this.symlinks.add(rel);
    else this.symlinks.delete(rel); // a later member of the same name replaces the link
    if (flag !== "5") this.members.add(rel);
  }
}
