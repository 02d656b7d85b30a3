// File operations for the editor and for labs: read, write, stat, list. Paths are the sandbox's own:
// the agent runs inside it, so there is nothing outside to guard against here.
import { lstat, open, readdir, writeFile, chmod } from "node:fs/promises";
import { basename, join } from "node:path";
import type { FileStatReply } from "@berth/protocol";

export async function statFile(path: string): Promise<FileStatReply> {
  const st = await lstat(path);
  return {
    name: basename(path) || "/",
    size: st.size,
    mode: st.mode,
    isDir: st.isDirectory(),
    isSymlink: st.isSymbolicLink(),
    mtimeMs: st.mtimeMs,
  };
}

export async function readFileCapped(path: string, maxBytes: number): Promise<{ data: string; truncated: boolean }> {
  const fh = await open(path, "r");
  try {
    // Read one byte past the cap to learn whether there was more, without reading a huge file whole.
    const buf = Buffer.alloc(Math.max(0, maxBytes) + 1);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, null);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    const truncated = got > maxBytes;
    return { data: buf.subarray(0, Math.min(got, maxBytes)).toString("base64"), truncated };
  } finally {
    await fh.close();
  }
}

export async function writeFileBytes(path: string, data: Buffer, mode?: number): Promise<void> {
  await writeFile(path, data, mode === undefined ? undefined : { mode });
  // writeFile's mode only applies when it creates the file.
  if (mode !== undefined) await chmod(path, mode);
}

export async function listDir(path: string): Promise<FileStatReply[]> {
  const names = await readdir(path);
  names.sort();
  const out: FileStatReply[] = [];
  for (const name of names) {
    try {
      out.push(await statFile(join(path, name)));
    } catch {
      // Vanished between readdir and lstat.
    }
  }
  return out;
}
