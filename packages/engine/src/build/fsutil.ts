/**
 * Files for the builder: paths resolved *inside* a root (a context, a container's merged root
 * filesystem) the way the container would resolve them, Docker's COPY semantics, source hashes
 * for the cache, wildcards, and owners looked up in the image's own /etc/passwd and /etc/group.
 *
 * The merged root of a build container is a host directory: following one of its absolute
 * symbolic links from the host would reach the host's own files. So no path in here is handed to
 * the kernel until every component has been resolved by hand inside the root.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { PathError, walkInRoot } from "../paths/in-root";

export { PathError };

/**
 * The builder's view of the one walker (paths/in-root.ts): a missing component is an error unless
 * `mkdir` (then made, owned by `owner`); `followSymlinks: false` refuses any link on the way (a
 * build context's members).
 */
export function resolveInRoot(root: string, rel: string, opts: { mkdir?: boolean; followSymlinks?: boolean; owner?: { uid: number; gid: number } } = {}): string {
  return walkInRoot(root, rel, { missing: opts.mkdir ? "mkdir" : "error", symlinks: opts.followSymlinks === false ? "refuse" : "follow", owner: opts.owner }).host;
}

export function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch {
    return null;
  }
}

/** Go's filepath.Match for one path segment, as a regular expression. */
export function segmentRegex(seg: string): RegExp {
  let re = "";
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "\\" && i + 1 < seg.length) re += escapeRe(seg[++i]!);
    else if (c === "[") {
      const end = seg.indexOf("]", i + 2);
      if (end < 0) re += "\\[";
      else {
        let cls = seg.slice(i + 1, end);
        if (cls.startsWith("^") || cls.startsWith("!")) cls = `^${cls.slice(1)}`;
        re += `[${cls.replace(/\\/g, "\\\\")}]`;
        i = end;
      }
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`);
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

export const hasWildcards = (p: string) => /[*?[]/.test(p);

/** Expand a COPY source with wildcards, segment by segment, inside root (sorted, like Docker). */
export function expandWildcards(root: string, pattern: string): string[] {
  const segs = pattern.split("/").filter((s) => s && s !== ".");
  let current = [""];
  for (const seg of segs) {
    const next: string[] = [];
    for (const base of current) {
      if (!hasWildcards(seg)) {
        if (lstatOrNull(path.join(root, base, seg))) next.push(path.posix.join(base, seg));
        continue;
      }
      const re = segmentRegex(seg);
      let names: string[] = [];
      try {
        names = fs.readdirSync(path.join(root, base));
      } catch {
        continue;
      }
      for (const n of names.sort()) if (re.test(n)) next.push(path.posix.join(base, n));
    }
    current = next;
  }
  return current.filter((c) => c !== "");
}

/**
 * The cache's view of a source: Docker's `file:<sha>` / `dir:<sha>` (content, names, modes, link
 * targets; not times or owners, so a `touch` keeps the cache and a `chmod` does not).
 */
export function sourceHash(abs: string): string {
  const st = fs.lstatSync(abs);
  const h = createHash("sha256");
  const block = Buffer.alloc(1 << 20);
  const add = (p: string, rel: string) => {
    const s = fs.lstatSync(p);
    h.update(`${rel}\0${s.mode.toString(8)}\0`);
    if (s.isDirectory()) {
      h.update("d\0");
      for (const n of fs.readdirSync(p).sort()) add(path.join(p, n), `${rel}/${n}`);
    } else if (s.isSymbolicLink()) h.update(`l\0${fs.readlinkSync(p)}\0`);
    else if (s.isFile()) {
      h.update(`f\0${s.size}\0`);
      // Streamed in blocks: an ADD of a root filesystem tarball is hundreds of MiB.
      const fd = fs.openSync(p, "r");
      try {
        for (let n; (n = fs.readSync(fd, block, 0, block.length, null)) > 0; ) h.update(block.subarray(0, n));
      } finally {
        fs.closeSync(fd);
      }
    }
  };
  add(abs, ".");
  return `${st.isDirectory() ? "dir" : "file"}:${h.digest("hex")}`;
}

export function combinedHash(hashes: string[]): string {
  return hashes.length === 1 ? hashes[0]! : `multi:${createHash("sha256").update(hashes.join(",")).digest("hex")}`;
}

export interface Owner {
  uid: number;
  gid: number;
}

/**
 * Copy src (a file, link or directory, never followed below the top) to dest, a host path that
 * was resolved inside the destination root. A directory's *contents* go into dest, as Docker does.
 * Whatever is in the way is replaced; nothing is written through an existing link.
 */
export function copyTree(src: string, dest: string, owner: Owner): void {
  const st = fs.lstatSync(src);
  const existing = lstatOrNull(dest);
  if (st.isDirectory()) {
    if (existing && !existing.isDirectory()) fs.rmSync(dest, { force: true });
    if (!existing || !existing.isDirectory()) {
      fs.mkdirSync(dest, { mode: st.mode & 0o7777 });
      fs.chmodSync(dest, st.mode & 0o7777);
      fs.lchownSync(dest, owner.uid, owner.gid);
    }
    for (const n of fs.readdirSync(src)) copyEntry(path.join(src, n), path.join(dest, n), owner);
    return;
  }
  copyEntry(src, dest, owner);
}

function copyEntry(src: string, dest: string, owner: Owner): void {
  const st = fs.lstatSync(src);
  const existing = lstatOrNull(dest);
  if (st.isDirectory()) {
    if (existing && !existing.isDirectory()) fs.rmSync(dest, { force: true });
    if (!existing || !existing.isDirectory()) fs.mkdirSync(dest);
    fs.chmodSync(dest, st.mode & 0o7777);
    for (const n of fs.readdirSync(src)) copyEntry(path.join(src, n), path.join(dest, n), owner);
    fs.lchownSync(dest, owner.uid, owner.gid);
    fs.utimesSync(dest, st.atime, st.mtime);
    return;
  }
  if (existing) fs.rmSync(dest, { recursive: true, force: true });
  if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dest);
  else if (st.isFile()) {
    fs.copyFileSync(src, dest, fs.constants.COPYFILE_EXCL);
    fs.chmodSync(dest, st.mode & 0o7777);
    fs.utimesSync(dest, st.atime, st.mtime);
  } else return; // sockets, fifos, devices: not copied
  fs.lchownSync(dest, owner.uid, owner.gid);
}

/** `--chown=user:group` with names looked up in the image's own files (numbers taken as they are). */
export function resolveOwner(spec: string, root: string): Owner {
  const parts = spec.split(":");
  if (parts.length > 2) throw new PathError(`invalid chown string format: ${spec}`);
  const [u, g = u] = parts as [string, string?];
  const read = (f: string) => {
    try {
      return fs.readFileSync(resolveInRoot(root, f), "utf8").split("\n").map((l) => l.split(":"));
    } catch {
      return [];
    }
  };
  const uid = /^\d+$/.test(u) ? Number(u) : Number(read("/etc/passwd").find((l) => l[0] === u)?.[2] ?? NaN);
  if (Number.isNaN(uid)) throw new PathError(`unable to convert uid/gid chown string to host mapping: can't find uid for user ${u}: no such user: ${u}`);
  const gid = /^\d+$/.test(g!) ? Number(g) : Number(read("/etc/group").find((l) => l[0] === g)?.[2] ?? NaN);
  if (Number.isNaN(gid)) throw new PathError(`unable to convert uid/gid chown string to host mapping: can't find gid for group ${g}: no such group: ${g}`);
  return { uid, gid };
}

