/**
 * The build context: the tar the client uploads (plain or gzip/bzip2/xz-compressed, as dockerd
 * accepts it), unpacked with the "context" policy of the strict extractor (../tar/extract.ts), then filtered by `.dockerignore`.
 *
 * What dockerd does with .dockerignore (checked with dockerd 20.10): the CLI filters the context
 * before sending it, and the daemon itself only drops `.dockerignore` and the Dockerfile when the
 * file excludes them. Berth goes one step further and applies every pattern, so a client that
 * sends an unfiltered tar (curl, a script) gets the same image as the CLI would; for the CLI's
 * already-filtered tar the result is the same as dockerd's.
 */
import fs from "node:fs";
import path from "node:path";
import { extractStream } from "../tar/extract";
import { compression, decompress } from "../tar/reader";

/** Unpack the uploaded context into `dir`, read a MiB at a time so the engine serves others meanwhile. */
export async function unpackContext(tarFile: string, dir: string): Promise<void> {
  if (fs.statSync(tarFile).size === 0) return; // an empty body: an empty context
  let plain = tarFile;
  const kind = compression(tarFile);
  if (kind) {
    plain = `${tarFile}.plain`;
    await decompress(tarFile, kind, plain);
  }
  try {
    await extractStream(fs.createReadStream(plain, { highWaterMark: 1 << 20 }), dir, { policy: "context", what: "build context" });
  } finally {
    if (plain !== tarFile) fs.rmSync(plain, { force: true });
  }
}

interface Pattern {
  re: RegExp;
  negate: boolean;
}

/** Docker's .dockerignore syntax: Go's filepath.Match plus `**` and `!exceptions`. */
export function parseDockerignore(text: string): Pattern[] {
  const out: Pattern[] = [];
  for (let line of text.split(/\r?\n/)) {
    if (line.startsWith("#")) continue;
    line = line.trim();
    if (!line) continue;
    let negate = false;
    if (line.startsWith("!")) {
      negate = true;
      line = line.slice(1).trim();
    }
    line = path.posix.normalize(line).replace(/^\/+/, "").replace(/\/+$/, "");
    if (!line || line === ".") continue;
    out.push({ re: patternRegex(line), negate });
  }
  return out;
}

function patternRegex(p: string): RegExp {
  let re = "";
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === "*" && p[i + 1] === "*") {
      i++;
      if (p[i + 1] === "/") {
        i++;
        re += "(?:.*/)?";
      } else re += ".*";
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "\\" && i + 1 < p.length) re += escapeRe(p[++i]!);
    else if (c === "[") {
      const end = p.indexOf("]", i + 2);
      if (end < 0) re += "\\[";
      else {
        let cls = p.slice(i + 1, end);
        if (cls.startsWith("^") || cls.startsWith("!")) cls = `^${cls.slice(1)}`;
        re += `[${cls}]`;
        i = end;
      }
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`);
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** Excluded when the last pattern that matches the path, or one of its parent dirs, is not an exception. */
export function isExcluded(rel: string, patterns: Pattern[]): boolean {
  const parents: string[] = [];
  const parts = rel.split("/");
  for (let i = 1; i <= parts.length; i++) parents.push(parts.slice(0, i).join("/"));
  let excluded = false;
  for (const p of patterns) {
    if (parents.some((x) => p.re.test(x))) excluded = !p.negate;
  }
  return excluded;
}

/** Remove what .dockerignore excludes from an unpacked context; returns the paths removed. */
export function applyDockerignore(dir: string): string[] {
  const file = path.join(dir, ".dockerignore");
  let text: string;
  try {
    const st = fs.lstatSync(file);
    if (!st.isFile()) return [];
    text = fs.readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const patterns = parseDockerignore(text);
  if (!patterns.length) return [];
  const removed: string[] = [];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const abs = path.join(dir, r);
      const st = fs.lstatSync(abs);
      if (isExcluded(r, patterns)) {
        // A directory may still hold an exception ("!dir/keep"): look inside before removing it.
        if (st.isDirectory() && patterns.some((p) => p.negate)) {
          walk(r);
          if (fs.readdirSync(abs).length === 0) fs.rmdirSync(abs);
          continue;
        }
        fs.rmSync(abs, { recursive: true, force: true });
        removed.push(r);
      } else if (st.isDirectory()) walk(r);
    }
  };
  walk("");
  return removed;
}
