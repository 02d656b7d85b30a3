/**
 * How much a directory tree holds, as Docker counts it: the bytes of every file, each inode once (a
 * hard-linked file is not counted twice), and how many inodes. A container's SizeRw and a layer's
 * size are both this.
 */
import fs from "node:fs";
import path from "node:path";

export function treeUsage(dir: string): { size: number; inodes: number } {
  let size = 0;
  const seen = new Set<number>();
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      const st = fs.lstatSync(p);
      if (seen.has(st.ino)) continue;
      seen.add(st.ino);
      if (e.isDirectory()) walk(p);
      else size += st.size;
    }
  };
  walk(dir);
  return { size, inodes: seen.size };
}
