// A lab's folder as a tar archive (POSIX ustar), both ways, in memory: exports of labs (file or
// authored) and imports of a folder as a draft. Written here rather than by running tar(1): an
// archive from a stranger is parsed by code that only ever yields (path, bytes) pairs, never
// touches the file system, refuses links and devices, and stops at a size cap; gzip is unwrapped
// by node:zlib with its own output cap.
import { gunzipSync } from "node:zlib";

export interface TarFile {
  path: string;
  bytes: Buffer;
  /** Permission bits (0o644 when not given). */
  mode?: number;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

function header(name: string, size: number, mode: number, type: "0" | "5" | "L"): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name.slice(0, 100), 0, "utf8");
  h.write(octal(mode & 0o7777, 8), 100, "ascii");
  h.write(octal(0, 8), 108, "ascii"); // uid
  h.write(octal(0, 8), 116, "ascii"); // gid
  h.write(octal(size, 12), 124, "ascii");
  h.write(octal(0, 12), 136, "ascii"); // mtime: 0, so an export of the same folder is the same bytes
  h.write("        ", 148, "ascii"); // the checksum counts itself as spaces
  h.write(type, 156, "ascii");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + " ", 148, "ascii");
  return h;
}

function padded(bytes: Buffer): Buffer[] {
  const rest = bytes.length % BLOCK;
  return rest ? [bytes, Buffer.alloc(BLOCK - rest)] : [bytes];
}

/** Files into one uncompressed tar; names over 100 bytes get a GNU long-name record before them. */
export function writeTar(files: TarFile[]): Buffer {
  const out: Buffer[] = [];
  for (const f of files) {
    const name = Buffer.from(f.path, "utf8");
    if (name.length > 100) {
      const long = Buffer.concat([name, Buffer.from([0])]);
      out.push(header("././@LongLink", long.length, 0, "L"), ...padded(long));
    }
    out.push(header(f.path, f.bytes.length, f.mode ?? 0o644, "0"), ...padded(f.bytes));
  }
  out.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(out);
}

export class TarError extends Error {}

function readString(b: Buffer, start: number, len: number): string {
  const s = b.subarray(start, start + len);
  const end = s.indexOf(0);
  return s.subarray(0, end < 0 ? s.length : end).toString("utf8");
}

function readOctal(b: Buffer, start: number, len: number): number {
  const s = readString(b, start, len).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarError("not a tar archive (a header's number is not octal)");
  return parseInt(s, 8);
}

/**
 * The regular files of a tar or tar.gz archive. Folders are skipped; links, devices and anything
 * else are refused (a lab's folder holds files). `maxBytes` caps the unpacked size and `maxFiles`
 * the count, so an archive cannot make the server hold more than that.
 */
export function readTar(archive: Buffer, limits: { maxBytes: number; maxFiles: number }): TarFile[] {
  let data = archive;
  if (archive[0] === 0x1f && archive[1] === 0x8b) {
    try {
      data = gunzipSync(archive, { maxOutputLength: limits.maxBytes + 64 * 1024 });
    } catch (err) {
      throw new TarError(/maxOutputLength|buffer/i.test(String(err)) ? `the archive unpacks to more than ${limits.maxBytes} bytes` : "the gzip data is damaged");
    }
  } else if (archive[0] === 0x50 && archive[1] === 0x4b) {
    throw new TarError("this is a zip archive: send the folder as a tar or tar.gz (tar czf lab.tar.gz <lab-folder>)");
  }
  const files: TarFile[] = [];
  let total = 0;
  let longName: string | undefined;
  let paxPath: string | undefined;
  for (let off = 0; off + BLOCK <= data.length; ) {
    const h = data.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) break; // the end marker
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    if (sum !== readOctal(h, 148, 8)) throw new TarError("not a tar archive (a header's checksum is wrong)");
    const size = readOctal(h, 124, 12);
    const type = String.fromCharCode(h[156]!) || "0";
    const bodyStart = off + BLOCK;
    if (bodyStart + size > data.length) throw new TarError("the archive is cut short");
    const body = data.subarray(bodyStart, bodyStart + size);
    off = bodyStart + Math.ceil(size / BLOCK) * BLOCK;
    if (type === "L") {
      longName = readString(body, 0, body.length);
      continue;
    }
    if (type === "x") {
      // A pax header: only its path matters here.
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString("utf8"));
      paxPath = m?.[1];
      continue;
    }
    if (type === "g") continue;
    const prefix = readString(h, 345, 155);
    const name = paxPath ?? longName ?? (prefix ? `${prefix}/${readString(h, 0, 100)}` : readString(h, 0, 100));
    longName = paxPath = undefined;
    if (type === "5") continue;
    if (type !== "0" && type !== "\0" && type !== "7") throw new TarError(`"${name}" is not a plain file (links and devices have no place in a lab's folder)`);
    total += size;
    if (total > limits.maxBytes) throw new TarError(`the archive unpacks to more than ${limits.maxBytes} bytes`);
    if (files.length >= limits.maxFiles) throw new TarError(`the archive holds more than ${limits.maxFiles} files`);
    files.push({ path: name.replace(/^\.\//, ""), bytes: Buffer.from(body), mode: readOctal(h, 100, 8) });
  }
  return files;
}
