/**
 * Writing tar: a directory (or one file) as a stream, deterministic so that the same directory
 * always gives the same bytes, and so the same layer digest:
 *   - members in byte order of their names, each directory before what it holds;
 *   - owners by number only, whole-second mtimes, no atime or ctime;
 *   - xattrs read with fs-xattr (on the file we opened, through /proc/self/fd, so a link swapped
 *     in meanwhile is never followed), except overlayfs's own (trusted.overlay.*, user.overlay.*);
 *   - hard links kept as links (the second name of an inode refers to the first);
 *   - long or non-ASCII names and xattrs in pax records; GNU tar's posix format byte for byte
 *     (./format.ts), so layers written before this writer existed keep their digests.
 * With `wire`, a layer's overlay markers are written in their wire form as they are met: a
 * whiteout (a 0/0 character device) as an empty `.wh.<name>`, an opaque directory with a
 * `.wh..wh..opq` member, both with their directory's mtime. Files are read in 1 MiB pieces as the
 * consumer asks for them; nothing is held whole.
 */
import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { getAttributeSync, listAttributesSync } from "fs-xattr";
import { OPAQUE_XATTRS } from "../snapshots/overlay";
import { encodeHeader, padding, trailer, type TarEntry } from "./format";

export interface PackOptions {
  /** The host directory or file to pack. */
  source: string;
  /** Its name in the archive: "." gives "./" and "./x" (a layer, an export), "foo" gives "foo/" and "foo/x" (docker cp). */
  name: string;
  /** Write overlay whiteouts and opaque directories in wire form (a layer). */
  wire?: boolean;
}

const OVERLAY_XATTR = /^(trusted|user)\.overlay\./;
const O_PATH = 0o10000000; // Linux: a descriptor that names the file without opening it (a fifo would block)
const CHUNK = 1 << 20;
/** Byte order of the names' UTF-8, as GNU tar's --sort=name (for ASCII, plain string order is the same). */
const ASCII = /^[\x00-\x7f]*$/;
const byName = (a: string, b: string) => (ASCII.test(a) && ASCII.test(b) ? (a < b ? -1 : a > b ? 1 : 0) : Buffer.compare(Buffer.from(a), Buffer.from(b)));
/** Pieces smaller than this are gathered into one buffer before they are handed on (a header, a small file). */
const SMALL = 64 << 10;

interface Item {
  host: string; // "" for a made-up wire marker
  name: string; // archive name, without a directory's trailing slash
  marker?: TarEntry; // a wire marker: its entry is complete
}

/** Read xattrs of the file behind `fd`, overlay bookkeeping left out; `opaque` is set when overlayfs's opaque marker says "y". */
function readXattrs(fd: number, seen?: { opaque: boolean }): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const p = `/proc/self/fd/${fd}`;
  let names: string[];
  try {
    names = listAttributesSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOTSUP" || code === "EOPNOTSUPP") return out;
    throw e;
  }
  for (const n of names) {
    if (OVERLAY_XATTR.test(n)) {
      if (seen && OPAQUE_XATTRS.includes(n) && getAttributeSync(p, n).toString() === "y") seen.opaque = true;
      continue;
    }
    try {
      out.set(n, getAttributeSync(p, n));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENODATA") throw e; // removed since listed
    }
  }
  return out;
}

/** The walk itself; `out` takes each piece and says whether to go on now (false: wait to be run again). */
class Packer {
  private readonly queue: Item[][] = []; // per open directory, what is left of it (reversed: pop takes the next)
  private readonly links = new Map<string, string>(); // dev:ino -> first archive name
  private file?: { fd: number; left: number; size: number };
  private written = 0;
  private started = false;
  private readonly uid = process.getuid?.() ?? 0;
  private readonly gid = process.getgid?.() ?? 0;

  constructor(
    private readonly opts: PackOptions,
    private readonly sink: (b: Buffer) => boolean,
  ) {}

  private stage = Buffer.allocUnsafe(CHUNK); // small pieces gathered here
  private used = 0;

  private out(b: Buffer): boolean {
    this.written += b.length;
    if (b.length < SMALL) {
      if (this.used + b.length > this.stage.length) {
        const more = this.flush();
        b.copy(this.stage, 0);
        this.used = b.length;
        return more;
      }
      b.copy(this.stage, this.used);
      this.used += b.length;
      return true;
    }
    // Both are handed on whatever the first answers: `false` only means "wait before the next".
    const more = this.flush();
    return this.sink(b) && more;
  }

  /** Hand on what is gathered (a fresh buffer follows: the consumer may keep the old one). */
  private flush(): boolean {
    if (!this.used) return true;
    const piece = this.stage.subarray(0, this.used);
    this.stage = Buffer.allocUnsafe(CHUNK);
    this.used = 0;
    return this.sink(piece);
  }

  /** Go on until `out` asks to wait (false) or the archive is complete (true). Throws on a read error, with the open file closed. */
  run(): boolean {
    try {
      if (!this.started) {
        this.started = true;
        this.queue.push([{ host: this.opts.source, name: this.opts.name }]);
      }
      for (let more = true; more; ) {
        if (this.file) {
          more = this.fileChunk();
          continue;
        }
        const item = this.next();
        if (!item) {
          this.out(trailer(this.written));
          this.flush();
          return true;
        }
        more = this.member(item);
      }
      return false;
    } catch (e) {
      this.closeFile();
      throw e;
    }
  }

  closeFile(): void {
    if (this.file) fs.closeSync(this.file.fd);
    this.file = undefined;
  }

  private next(): Item | undefined {
    while (this.queue.length) {
      const top = this.queue[this.queue.length - 1]!;
      const item = top.pop();
      if (item) return item;
      this.queue.pop();
    }
    return undefined;
  }

  private fileChunk(): boolean {
    const f = this.file!;
    if (f.left === 0) {
      this.closeFile();
      const pad = padding(f.size);
      return pad ? this.out(Buffer.alloc(pad)) : true;
    }
    if (f.left < SMALL && this.used + f.left <= this.stage.length) {
      // A small file: read straight into the gathered buffer.
      const want = f.left;
      let n = 0;
      while (n < want) {
        const r = fs.readSync(f.fd, this.stage, this.used + n, want - n, null);
        if (r === 0) break;
        n += r;
      }
      if (n < want) this.stage.fill(0, this.used + n, this.used + want);
      this.used += want;
      this.written += want;
      f.left = 0;
      return true;
    }
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, f.left));
    let n = 0;
    while (n < buf.length) {
      const r = fs.readSync(f.fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
    }
    // A file that shrank while being read: its header already promised `size` bytes, so zeros make up the rest.
    if (n < buf.length) buf.fill(0, n);
    f.left -= buf.length;
    return this.out(buf);
  }

  /** The archive name of an item as a member: "./" for the root, "dir/" for a directory. */
  private memberName(item: Item, dir: boolean): string {
    if (!dir) return item.name;
    return item.name === "." ? "./" : `${item.name}/`;
  }

  private member(item: Item): boolean {
    if (item.marker) return this.out(encodeHeader(item.marker));
    const st = fs.lstatSync(item.host);
    const base = { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000), size: 0, linkname: "", devmajor: 0, devminor: 0 };
    if (st.isSocket()) return true; // as tar: sockets are not archived
    if ((st.isFile() || st.isSymbolicLink()) && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.links.get(key);
      if (first !== undefined) return this.out(encodeHeader({ ...base, name: item.name, type: "hardlink", linkname: first, xattrs: new Map() }));
      this.links.set(key, item.name);
    }
    if (st.isSymbolicLink()) {
      // The link's own xattrs are not read (getxattr would follow it).
      return this.out(encodeHeader({ ...base, name: item.name, type: "symlink", linkname: fs.readlinkSync(item.host), xattrs: new Map() }));
    }
    if (st.isFile()) {
      const fd = fs.openSync(item.host, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        const xattrs = readXattrs(fd);
        this.file = { fd, left: st.size, size: st.size };
        return this.out(encodeHeader({ ...base, name: item.name, type: "file", size: st.size, xattrs }));
      } catch (e) {
        if (this.file?.fd !== fd) fs.closeSync(fd);
        throw e;
      }
    }
    if (st.isDirectory()) {
      const fd = fs.openSync(item.host, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
      let xattrs: Map<string, Buffer>;
      const seen = { opaque: false };
      try {
        xattrs = readXattrs(fd, seen);
      } finally {
        fs.closeSync(fd);
      }
      this.queue.push(this.children(item, base.mtime, seen.opaque).reverse());
      return this.out(encodeHeader({ ...base, name: this.memberName(item, true), type: "dir", xattrs }));
    }
    // fifo or device node
    const fd = fs.openSync(item.host, O_PATH | fs.constants.O_NOFOLLOW);
    let xattrs: Map<string, Buffer>;
    try {
      xattrs = readXattrs(fd);
    } finally {
      fs.closeSync(fd);
    }
    const type = st.isFIFO() ? "fifo" : st.isCharacterDevice() ? "char" : "block";
    const rdev = Number(st.rdev);
    // Linux's encoding of a device number: major in bits 8-19 and 32-43, minor in bits 0-7 and 12-31 (glibc's gnu_dev_major/minor).
    const major = ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
    const minor = (rdev & 0xff) | ((rdev >>> 12) & ~0xff);
    return this.out(encodeHeader({ ...base, name: item.name, type, devmajor: type === "fifo" ? 0 : major, devminor: type === "fifo" ? 0 : minor, xattrs }));
  }

  /** A directory's members in name order; in wire form, whiteouts and the opaque marker as `.wh.` members. */
  private children(dir: Item, mtime: number, opaque: boolean): Item[] {
    const prefix = dir.name === "." ? "./" : `${dir.name}/`;
    const items: Item[] = [];
    const marker = (name: string): Item => ({ host: "", name: `${prefix}${name}`, marker: { name: `${prefix}${name}`, type: "file", mode: 0o644, uid: this.uid, gid: this.gid, size: 0, mtime, linkname: "", devmajor: 0, devminor: 0, xattrs: new Map() } });
    for (const e of fs.readdirSync(dir.host, { withFileTypes: true })) {
      const host = path.join(dir.host, e.name);
      if (this.opts.wire && e.isCharacterDevice() && Number(fs.lstatSync(host).rdev) === 0) items.push(marker(`.wh.${e.name}`));
      else items.push({ host, name: `${prefix}${e.name}` });
    }
    if (this.opts.wire && opaque) items.push(marker(".wh..wh..opq"));
    return items.sort((a, b) => byName(a.name, b.name));
  }
}

class TreeStream extends Readable {
  private readonly packer: Packer;
  private sent = 0; // bytes handed on in this turn of the event loop
  constructor(opts: PackOptions) {
    super({ highWaterMark: CHUNK });
    // push() answers true for as long as a flowing consumer keeps up (a hash, a socket with
    // room), so it alone would never stop the walk: a MiB a turn is the limit.
    this.packer = new Packer(opts, (b) => {
      this.sent += b.length;
      return this.push(b) && this.sent < CHUNK;
    });
  }

  override _read(): void {
    // Each MiB is packed in a macrotask of its own, so other clients are served between them
    // (at once, a 70 MB layer held every other API client for 400-500 ms).
    setImmediate(() => {
      if (this.destroyed) return;
      this.sent = 0;
      try {
        if (this.packer.run()) this.push(null);
      } catch (e) {
        this.destroy(e as Error);
      }
    });
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.packer.closeFile();
    cb(err);
  }
}

/** A tar of `source` as a stream (see PackOptions). */
export function packTree(opts: PackOptions): Readable {
  return new TreeStream(opts);
}

/** A tar of `source` written to the file `out`, synchronously. */
export function packTreeToFile(opts: PackOptions, out: string): void {
  const fd = fs.openSync(out, "w");
  try {
    new Packer(opts, (b) => {
      for (let off = 0; off < b.length; ) off += fs.writeSync(fd, b, off, b.length - off);
      return true;
    }).run();
  } finally {
    fs.closeSync(fd);
  }
}
