/**
 * The strict extractor: every archive the engine unpacks (a build context, an ADD'ed archive, an
 * image layer from a pull, `docker load` or `docker import`, `docker cp` into a container) goes
 * through this one piece of code. An archive is untrusted input; the rules are ours to state and
 * test (test/unit/tar.test.ts):
 *
 *   - every member's name is cleaned, and a name that climbs out ("../x") is refused;
 *   - nothing is written *through* a symbolic link: where a member's parent directory passes
 *     through a link, the link is either refused ("context" and "layer": the link came from this
 *     very archive, and an absolute one would lead onto the host) or resolved inside the root the
 *     way the container would see it ("image" for ADD, "copy" for docker cp: a root filesystem is
 *     full of absolute links); a file is created with O_EXCL|O_NOFOLLOW, so a link that appears
 *     at its name is never followed;
 *   - a hard link may only point at a member extracted earlier from the same archive;
 *   - member types this engine does not know (sparse files, volume labels) are refused by the
 *     reader rather than guessed;
 *   - overlayfs's own xattrs (trusted.overlay.*, user.overlay.*) in an archive are dropped: an
 *     archive could otherwise plant a redirect or an opaque marker; a layer says "opaque" and
 *     "deleted" only with the `.wh.` names, which the "layer" policy turns into overlay markers.
 *
 * Owners, modes, mtimes, device nodes, fifos and xattrs (fs-xattr, on the file we opened, through
 * /proc/self/fd) are set as the archive says, as far as the policy allows. Directories get their
 * mode and times last, so a read-only directory can still receive its members and its time is
 * not changed by them.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import { setAttributeSync } from "fs-xattr";
import { walkInRoot } from "../paths/in-root";
import { markOpaque } from "../snapshots/overlay";
import { cleanMemberName, UnsafeArchiveError, type TarEntry } from "./format";
import { parseFile, parseStream, TarParser, type EntrySink } from "./reader";

export { UnsafeArchiveError };

export type Policy = "context" | "image" | "layer" | "copy";

export interface ExtractOptions {
  policy: Policy;
  what?: string;
  /** Owners from the archive ("keep"), a fixed owner, or none (files belong to whoever extracts). Default: "keep" for layers and ADD, "none" for a context. */
  owners?: "keep" | "none" | { uid: number; gid: number };
  /**
   * "copy" only: the container's root and the destination's logical path in it (members are
   * resolved below it as the container sees them, volumes and binds of a stopped one included).
   */
  root?: string;
  logicalDest?: string;
  mounts?: { destination: string; source: string }[];
}

const IS_ROOT = process.getuid?.() === 0;
const OVERLAY_XATTR = /^(trusted|user)\.overlay\./;
const O_DIRECTORY = fs.constants.O_DIRECTORY ?? 0o200000;

/** A member's parent would be reached through a symbolic link the policy refuses. */
class ThroughLink extends Error {
  constructor(readonly link: string) {
    super(link);
  }
}

export class Extractor {
  readonly what: string;
  private readonly dirs: [string, TarEntry][] = []; // directories to finish (mode, owner, times)
  private readonly members = new Map<string, string>(); // non-directory member -> its host path (for hard links)
  private readonly checked = new Set<string>(); // "context"/"layer": directories already found to be real ones, not links
  count = 0;
  private bytes = 0; // what the files hold, as ../paths/usage.ts counts it (links once, directories not)
  private replaced = false; // something was written over: `bytes` counts what is gone too

  constructor(
    private readonly dest: string,
    private readonly opts: ExtractOptions,
  ) {
    this.what = opts.what ?? "archive";
  }

  private refuse(e: TarEntry, why: string): never {
    throw new UnsafeArchiveError(`${this.what}: member "${e.name}" ${why}`);
  }

  private get where(): string {
    return this.opts.policy === "context" ? "build context" : this.opts.policy === "layer" ? "layer" : "destination";
  }

  /** The host directory that holds member `rel`'s parent, made when missing. */
  private parentOf(rel: string, e: TarEntry): string {
    const dir = path.posix.dirname(rel);
    const { policy } = this.opts;
    if (policy === "copy") {
      const logical = path.posix.join("/", this.opts.logicalDest ?? "/", dir);
      return walkInRoot(this.opts.root!, logical, { missing: "mkdir", mounts: this.opts.mounts }).host;
    }
    if (policy === "image") return walkInRoot(this.dest, dir, { missing: "mkdir" }).host;
    // context and layer: the destination holds only what this archive put there; a link on the
    // way is refused, never followed.
    if (dir === ".") return this.dest;
    if (this.checked.has(dir)) return path.join(this.dest, dir);
    let p = this.dest;
    const parts = dir.split("/");
    for (let i = 0; i < parts.length; i++) {
      p = path.join(p, parts[i]!);
      const sofar = parts.slice(0, i + 1).join("/");
      if (this.checked.has(sofar)) continue;
      const st = lstatOrNull(p);
      if (!st) fs.mkdirSync(p, { mode: 0o755 });
      else if (st.isSymbolicLink()) throw new ThroughLink(sofar);
      else if (!st.isDirectory()) this.refuse(e, `is below "${sofar}", which is not a directory`);
      this.checked.add(sofar);
    }
    return p;
  }

  /** Handle one member; returns the sink for a file's body. */
  entry(e: TarEntry): EntrySink | void {
    let rel: string;
    try {
      rel = cleanMemberName(e.name);
    } catch (err) {
      // docker cp answers in dockerd's words
      if (this.opts.policy === "copy") throw new UnsafeArchiveError(`${JSON.stringify(e.name)} is outside of ${JSON.stringify(this.opts.logicalDest ?? "/")}`);
      throw new UnsafeArchiveError(`${this.what}: ${(err as Error).message}; refused, nothing was written outside`);
    }
    const { policy } = this.opts;
    if (rel === "") {
      // The archive's root ("./"): a layer's own directory takes its mode, owner, times and xattrs.
      if (policy === "layer" && e.type === "dir") this.dirs.push([this.dest, e]);
      return;
    }
    let parent: string;
    try {
      parent = this.parentOf(rel, e);
    } catch (err) {
      if (err instanceof ThroughLink) {
        if (policy === "layer") this.refuse(e, `would be written through the symbolic link "${err.link}" of the same archive; refused, nothing was written outside`);
        this.refuse(e, `would be written through a symbolic link (${err.link}); refused so nothing lands outside the ${this.where}`);
      }
      if (err instanceof UnsafeArchiveError) throw err;
      this.refuse(e, `cannot be placed: ${(err as Error).message}`);
    }
    const base = path.posix.basename(rel);
    if (policy === "layer" && base.startsWith(".wh.")) return this.whiteout(e, parent, base);
    const target = path.join(parent, base);
    if (e.type === "symlink" && policy === "context") {
      if (path.posix.isAbsolute(e.linkname)) this.refuse(e, `is an absolute symbolic link (-> ${e.linkname}) pointing outside the build context`);
      const to = path.posix.normalize(path.posix.join(path.posix.dirname(rel), e.linkname));
      if (to === ".." || to.startsWith("../")) this.refuse(e, `is a symbolic link (-> ${e.linkname}) pointing outside the build context`);
    }
    if (e.type === "char" || e.type === "block") {
      if (policy === "context") this.refuse(e, "is a device node; a build context may not hold device nodes");
      if (policy === "image") return; // ADD of an archive with device nodes: skipped (an unprivileged build could not make them either)
    }
    let source: string | undefined;
    if (e.type === "hardlink") {
      let lrel: string;
      try {
        lrel = cleanMemberName(e.linkname);
      } catch {
        return this.refuse(e, `is a hard link to "${e.linkname}", outside the ${this.where}; refused, nothing was written outside`);
      }
      source = this.members.get(lrel);
      if (!source) {
        const parts = lrel.split("/");
        for (let i = 1; i < parts.length; i++) {
          const st = lstatOrNull(path.join(this.dest, ...parts.slice(0, i)));
          if (policy === "layer" && st?.isSymbolicLink()) this.refuse(e, `is a hard link through the symbolic link "${parts.slice(0, i).join("/")}"`);
        }
        this.refuse(e, `is a hard link to "${e.linkname}", which is not a file earlier in the archive`);
      }
    }
    this.count++;
    // Made without looking first: a name that is already there (an archive may repeat one, or
    // replace a link by a directory) is met as EEXIST, removed, and made again.
    const make = (create: () => void): boolean => {
      try {
        create();
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const existing = lstatOrNull(target);
      if (e.type === "dir" && existing?.isDirectory()) return false;
      this.replaced = true;
      if (source === target) return false; // a link to itself
      this.remove(rel, target);
      create();
      return true;
    };
    switch (e.type) {
      case "dir":
        make(() => fs.mkdirSync(target, { mode: 0o700 }));
        this.dirs.push([target, e]);
        return;
      case "file": {
        let fd = -1;
        make(() => (fd = fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600)));
        this.members.set(rel, target);
        this.bytes += e.size;
        return this.file(fd, e);
      }
      case "symlink":
        make(() => fs.symlinkSync(e.linkname, target));
        this.members.set(rel, target);
        this.bytes += Buffer.byteLength(e.linkname); // a link's own size is its target's length
        this.chown(target, e, true);
        fs.lutimesSync(target, e.mtime, e.mtime);
        return;
      case "hardlink":
        make(() => fs.linkSync(source!, target));
        this.members.set(rel, target);
        return;
      case "fifo":
      case "char":
      case "block": {
        if (lstatOrNull(target)) this.remove(rel, target);
        if (!this.mknod(target, e)) return;
        this.members.set(rel, target);
        const fd = fs.openSync(target, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK | O_PATH);
        try {
          this.finish(fd, e);
        } finally {
          fs.closeSync(fd);
        }
        return;
      }
    }
  }

  /** Remove what is at `rel` (and forget the directories checked below it). */
  private remove(rel: string, target: string): void {
    if (lstatOrNull(target)) this.replaced = true;
    fs.rmSync(target, { recursive: true, force: true });
    for (const d of this.checked) if (d === rel || d.startsWith(`${rel}/`)) this.checked.delete(d);
  }

  private file(fd: number, e: TarEntry): EntrySink {
    let closed = false;
    const close = () => {
      if (!closed) fs.closeSync(fd);
      closed = true;
    };
    return {
      write: (c) => {
        try {
          for (let off = 0; off < c.length; ) off += fs.writeSync(fd, c, off, c.length - off);
        } catch (err) {
          close();
          throw err;
        }
      },
      end: () => {
        try {
          this.finish(fd, e);
        } finally {
          close();
        }
      },
    };
  }

  /** Owner, mode, xattrs (after chown: chown clears security.capability), then times. */
  private finish(fd: number, e: TarEntry): void {
    const viaPath = e.type !== "file" && e.type !== "dir"; // an O_PATH descriptor: fchown/fchmod do not take it
    this.chown(viaPath ? `/proc/self/fd/${fd}` : fd, e);
    if (viaPath) fs.chmodSync(`/proc/self/fd/${fd}`, e.mode);
    else fs.fchmodSync(fd, e.mode);
    this.xattrs(fd, e);
    if (viaPath) fs.utimesSync(`/proc/self/fd/${fd}`, e.mtime, e.mtime);
    else fs.futimesSync(fd, e.mtime, e.mtime);
  }

  private chown(target: string | number, e: TarEntry, link = false): void {
    const owners = this.opts.owners ?? (this.opts.policy === "context" ? "none" : "keep");
    if (owners === "none") return;
    const [uid, gid] = owners === "keep" ? [e.uid, e.gid] : [owners.uid, owners.gid];
    if (owners === "keep" && !IS_ROOT) return; // as tar: only root gives files away
    if (typeof target === "number") fs.fchownSync(target, uid, gid);
    else if (link) fs.lchownSync(target, uid, gid);
    else fs.chownSync(target, uid, gid);
  }

  private xattrs(fd: number, e: TarEntry): void {
    if (this.opts.policy === "context" || !e.xattrs.size) return;
    for (const [name, value] of e.xattrs) {
      if (OVERLAY_XATTR.test(name)) continue;
      try {
        setAttributeSync(`/proc/self/fd/${fd}`, name, value);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // A filesystem without xattrs, or trusted.* where we are not allowed: what tar also skips.
        if (code === "ENOTSUP" || code === "EOPNOTSUPP" || (code === "EPERM" && name.startsWith("trusted."))) continue;
        throw new UnsafeArchiveError(`${this.what}: member "${e.name}": cannot set xattr ${name}: ${(err as Error).message}`);
      }
    }
  }

  /** fifo or device node; false when it was skipped (a device where we may not make one). */
  private mknod(target: string, e: TarEntry): boolean {
    const mode = (e.mode & 0o777).toString(8);
    const r =
      e.type === "fifo"
        ? spawnSync("mkfifo", ["-m", mode, target], { encoding: "utf8" })
        : spawnSync("mknod", ["-m", mode, target, e.type === "char" ? "c" : "b", String(e.devmajor), String(e.devminor)], { encoding: "utf8" });
    if (r.error) throw new Error(`${this.what}: cannot run ${e.type === "fifo" ? "mkfifo" : "mknod"}: ${r.error.message}`);
    if (r.status === 0) return true;
    // Inside a user namespace the kernel refuses device nodes: skipped, as rootless dockerd does.
    if (e.type !== "fifo" && /Operation not permitted/.test(r.stderr)) return false;
    throw new UnsafeArchiveError(`${this.what}: member "${e.name}": ${r.stderr.trim()}`);
  }

  /** `.wh.<name>` deletes <name> of the layers below: an overlay whiteout; `.wh..wh..opq` hides the whole directory. */
  private whiteout(e: TarEntry, parent: string, base: string): void {
    if (base === ".wh..wh..opq") {
      markOpaque(parent);
      return;
    }
    const name = base.slice(4);
    if (!name || name === "." || name === ".." || name.includes("/")) this.refuse(e, "is a whiteout of no file");
    const target = path.join(parent, name);
    this.remove(path.posix.join(path.posix.dirname(cleanMemberName(e.name)), name), target);
    const r = spawnSync("mknod", [target, "c", "0", "0"], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${this.what}: cannot make the whiteout for "${e.name}": ${(r.error?.message ?? r.stderr).trim()}`);
  }

  /**
   * Bytes the unpacked tree holds as Docker counts a layer's size (../paths/usage.ts), known without
   * walking it; undefined when a member replaced another (the count would include what went).
   */
  get usage(): number | undefined {
    return this.replaced ? undefined : this.bytes;
  }

  /** After the last member: directories get their owner, mode, xattrs and times. */
  end(): void {
    for (const [dir, e] of this.dirs.reverse()) {
      let fd: number;
      try {
        fd = fs.openSync(dir, fs.constants.O_RDONLY | O_DIRECTORY | fs.constants.O_NOFOLLOW);
      } catch {
        continue; // replaced by a later member
      }
      try {
        this.finish(fd, e);
      } finally {
        fs.closeSync(fd);
      }
    }
  }
}

const O_PATH = 0o10000000; // Linux: a descriptor that names a file without opening it (fifos would block)

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch {
    return null;
  }
}

/** Unpack `file` (already decompressed) into `dest`. Returns the number of members written. */
export function extractTar(file: string, dest: string, opts: ExtractOptions): number {
  const x = new Extractor(dest, opts);
  parseFile(file, new TarParser((e) => x.entry(e), { what: x.what, afterEnd: opts.policy === "layer" ? "continue" : "stop" }));
  x.end();
  return x.count;
}

/** Unpack a tar arriving on `src` into `dest`; `onBytes` sees every chunk (to hash or count it). Returns the members written and the tree's size (Extractor.usage). */
export async function extractStream(src: Readable, dest: string, opts: ExtractOptions, onBytes?: (chunk: Buffer) => void): Promise<{ count: number; usage?: number }> {
  const x = new Extractor(dest, opts);
  const parser = new TarParser((e) => x.entry(e), { what: x.what, afterEnd: opts.policy === "layer" ? "continue" : "stop" });
  for await (const chunk of src) {
    onBytes?.(chunk as Buffer);
    parser.feed(chunk as Buffer);
  }
  parser.end();
  x.end();
  return { count: x.count, usage: x.usage };
}
