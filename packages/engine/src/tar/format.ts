/**
 * The tar format itself: the 512-byte ustar header, pax extended records, and the names a member
 * may have. Shared by the reader (./reader.ts) and the writer (./writer.ts), so the two cannot
 * disagree about a field.
 *
 * Header layout (POSIX ustar): name 0–100, mode 100, uid 108, gid 116, size 124, mtime 136,
 * checksum 148, type 156, linkname 157–257, magic 257 ("ustar\0" "00"), uname 265, gname 297,
 * devmajor 329, devminor 337, prefix 345–500. Numbers are octal text; GNU's base-256 form is read
 * too. What does not fit (long or non-ASCII names, large ids, xattrs) goes in a pax record.
 */
import path from "node:path";

export class UnsafeArchiveError extends Error {}

export type EntryType = "file" | "dir" | "symlink" | "hardlink" | "fifo" | "char" | "block";

export interface TarEntry {
  name: string; // as in the archive (cleaned by whoever uses it)
  type: EntryType;
  mode: number; // permission bits and setuid/setgid/sticky (07777)
  uid: number;
  gid: number;
  size: number; // bytes of body (files only)
  mtime: number; // whole seconds
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer>; // SCHILY.xattr.* records
}

/** The largest member body this engine accepts (a size field beyond it is a hostile or broken archive). */
export const MAX_MEMBER_SIZE = 2 ** 45; // 32 TiB
/** pax and GNU long-name records are read into memory: this much at most. */
export const MAX_META_SIZE = 1 << 20;

export function cString(b: Buffer): string {
  const z = b.indexOf(0);
  return b.subarray(0, z < 0 ? b.length : z).toString("utf8");
}

/** A numeric field: octal text, or GNU base-256 (high bit of the first byte set). */
export function readNumber(b: Buffer, what: string): number {
  if (b[0]! & 0x80) {
    if (b[0] === 0xff) throw new UnsafeArchiveError(`tar header: negative ${what}`);
    let v = b[0]! & 0x7f;
    for (let i = 1; i < b.length; i++) v = v * 256 + b[i]!;
    if (!Number.isSafeInteger(v)) throw new UnsafeArchiveError(`tar header: ${what} too large`);
    return v;
  }
  const s = cString(b).trim();
  if (!s) return 0;
  if (!/^[0-7]+$/.test(s)) throw new UnsafeArchiveError(`tar header: ${what} is not a number ("${s}")`);
  const v = parseInt(s, 8);
  if (!Number.isSafeInteger(v)) throw new UnsafeArchiveError(`tar header: ${what} too large`);
  return v;
}

export function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  try {
    return sum === readNumber(h.subarray(148, 156), "checksum");
  } catch {
    return false;
  }
}

export function isZeroBlock(h: Buffer): boolean {
  for (let i = 0; i < h.length; i++) if (h[i] !== 0) return false;
  return true;
}

/** The member types read; anything else (sparse files, volume labels, multi-volume parts) is refused. */
const TYPES: Record<string, EntryType> = { "0": "file", "\0": "file", "7": "file", "1": "hardlink", "2": "symlink", "3": "char", "4": "block", "5": "dir", "6": "fifo" };

export function parsePax(b: Buffer, what: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let i = 0;
  while (i < b.length) {
    if (b[i] === 0) break; // padding
    const sp = b.indexOf(0x20, i);
    const len = sp < 0 ? NaN : Number(b.subarray(i, sp).toString("latin1"));
    if (!Number.isInteger(len) || len <= sp - i + 1 || i + len > b.length || b[i + len - 1] !== 0x0a) throw new UnsafeArchiveError(`${what}: malformed pax record`);
    const rec = b.subarray(sp + 1, i + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new UnsafeArchiveError(`${what}: malformed pax record`);
    out.set(rec.subarray(0, eq).toString("utf8"), rec.subarray(eq + 1));
    i += len;
  }
  return out;
}

/** The entry a header block describes, with the pax records and GNU long names that came before it. */
export function parseHeader(h: Buffer, pax: Map<string, Buffer>, longName: string | undefined, longLink: string | undefined, what: string): TarEntry {
  const flag = String.fromCharCode(h[156]!);
  let type = TYPES[flag];
  const raw = cString(h.subarray(0, 100));
  const magic = h.subarray(257, 263).toString("latin1");
  const prefix = magic.startsWith("ustar") ? cString(h.subarray(345, 500)) : "";
  const name = pax.get("path")?.toString("utf8") ?? longName ?? (prefix ? `${prefix}/${raw}` : raw);
  if (!type) throw new UnsafeArchiveError(`${what}: member "${name}" has a type this engine does not unpack ("${flag === "\0" ? "\\0" : flag}")`);
  const num = (key: string, field: Buffer) => {
    const p = pax.get(key);
    if (p === undefined) return readNumber(field, key);
    const v = Number(p.toString("latin1"));
    if (!Number.isFinite(v) || v < 0) throw new UnsafeArchiveError(`${what}: member "${name}": pax ${key} is not a number`);
    return Math.floor(v);
  };
  const size = num("size", h.subarray(124, 136));
  if (size > MAX_MEMBER_SIZE) throw new UnsafeArchiveError(`${what}: member "${name}" claims ${size} bytes, more than any layer holds`);
  if (type === "file" && name.endsWith("/")) type = "dir"; // pre-POSIX archives
  const xattrs = new Map<string, Buffer>();
  for (const [k, v] of pax) if (k.startsWith("SCHILY.xattr.")) xattrs.set(k.slice(13), v);
  return {
    name,
    type,
    mode: readNumber(h.subarray(100, 108), "mode") & 0o7777,
    uid: num("uid", h.subarray(108, 116)),
    gid: num("gid", h.subarray(116, 124)),
    size: type === "file" ? size : 0,
    mtime: num("mtime", h.subarray(136, 148)),
    linkname: pax.get("linkpath")?.toString("utf8") ?? longLink ?? cString(h.subarray(157, 257)),
    devmajor: type === "char" || type === "block" ? readNumber(h.subarray(329, 337), "devmajor") : 0,
    devminor: type === "char" || type === "block" ? readNumber(h.subarray(337, 345), "devminor") : 0,
    xattrs,
  };
}

/** A member name made relative and clean; refused when it climbs out ("../x"). "" is the root. */
export function cleanMemberName(name: string): string {
  if (name.includes("\0")) throw new UnsafeArchiveError(`archive member "${name}" has a NUL in its name`);
  const n = path.posix.normalize(name.replace(/^\/+/, "") || ".");
  if (n === ".." || n.startsWith("../")) throw new UnsafeArchiveError(`archive member "${name}" points outside the destination (it climbs out with "..")`);
  return n === "." ? "" : n.replace(/\/$/, "");
}

// ---- writing ----

const TYPE_FLAGS: Record<EntryType, string> = { file: "0", hardlink: "1", symlink: "2", char: "3", block: "4", dir: "5", fifo: "6" };

/** `digits` octal digits and a NUL, as GNU tar writes them; false when the value does not fit. */
function putOctal(h: Buffer, at: number, len: number, v: number): boolean {
  const s = Math.max(0, Math.floor(v)).toString(8);
  if (s.length > len - 1) return false;
  h.write(s.padStart(len - 1, "0"), at, "latin1");
  h[at + len - 1] = 0;
  return true;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7e) return false;
  return true;
}

/** One pax record: "<len> <key>=<value>\n", where <len> counts itself. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, "utf8"), value, Buffer.from("\n")]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), "latin1"), body]);
}

function block(name: Buffer, fields: { mode: number; uid: number; gid: number; size: number; mtime: number; flag: string; linkname?: Buffer; dev?: [number, number] }): Buffer {
  const h = Buffer.alloc(512);
  name.copy(h, 0, 0, Math.min(100, name.length));
  putOctal(h, 100, 8, fields.mode);
  putOctal(h, 108, 8, fields.uid);
  putOctal(h, 116, 8, fields.gid);
  putOctal(h, 124, 12, fields.size);
  putOctal(h, 136, 12, fields.mtime);
  h.write(fields.flag, 156, "latin1");
  fields.linkname?.copy(h, 157, 0, Math.min(100, fields.linkname.length));
  h.write("ustar\u000000", 257, "latin1");
  if (fields.dev) {
    putOctal(h, 329, 8, fields.dev[0]);
    putOctal(h, 337, 8, fields.dev[1]);
  }
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i]!;
  h.write(`${sum.toString(8).padStart(6, "0")}\u0000 `, 148, "latin1");
  return h;
}

/**
 * The header blocks of one member, in GNU tar's posix format as `tar --format=posix
 * --numeric-owner` writes it with atime/ctime/mtime pax records deleted: a pax header
 * ("<dir>/PaxHeaders/<base>") only when a name is too long or not ASCII, a number does not fit, or
 * there are xattrs; owners by number only. Byte for byte the same as GNU tar 1.34, so a layer's diff id
 * does not depend on which of the two wrote it.
 */
export function encodeHeader(e: TarEntry): Buffer {
  const records: Buffer[] = [];
  const name = Buffer.from(e.name, "utf8");
  const link = Buffer.from(e.linkname, "utf8");
  if (e.type === "symlink" || e.type === "hardlink") if (link.length > 100 || !isAscii(e.linkname)) records.push(paxRecord("linkpath", link));
  if (name.length > 100 || !isAscii(e.name)) records.push(paxRecord("path", name));
  const big = (v: number, digits: number) => Math.floor(v).toString(8).length > digits;
  if (big(e.uid, 7)) records.push(paxRecord("uid", Buffer.from(String(e.uid))));
  if (big(e.gid, 7)) records.push(paxRecord("gid", Buffer.from(String(e.gid))));
  if (big(e.size, 11)) records.push(paxRecord("size", Buffer.from(String(e.size))));
  for (const [k, v] of e.xattrs) records.push(paxRecord(`SCHILY.xattr.${k}`, v));
  const dev: [number, number] = e.type === "char" || e.type === "block" ? [e.devmajor, e.devminor] : [0, 0];
  const main = block(name, {
    mode: e.mode & 0o7777,
    uid: big(e.uid, 7) ? 0 : e.uid,
    gid: big(e.gid, 7) ? 0 : e.gid,
    size: big(e.size, 11) ? 0 : e.size,
    mtime: Math.min(Math.max(e.mtime, 0), 0o77777777777),
    flag: TYPE_FLAGS[e.type],
    linkname: e.type === "symlink" || e.type === "hardlink" ? link : undefined,
    dev,
  });
  if (!records.length) return main;
  const body = Buffer.concat(records);
  const trimmed = e.name.replace(/\/+$/, "");
  const slash = trimmed.lastIndexOf("/");
  const paxName = Buffer.from(`${slash < 0 ? "." : trimmed.slice(0, slash)}/PaxHeaders/${trimmed.slice(slash + 1)}`, "utf8");
  const xh = block(paxName, { mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: Math.min(Math.max(e.mtime, 0), 0o77777777777), flag: "x" });
  return Buffer.concat([xh, body, Buffer.alloc(padding(body.length)), main]);
}

export function padding(size: number): number {
  return (512 - (size % 512)) % 512;
}

/** The end of an archive: GNU tar pads the archive to a whole 10240-byte record. */
export function trailer(written: number): Buffer {
  const end = written + 1024;
  return Buffer.alloc(1024 + ((10240 - (end % 10240)) % 10240));
}
