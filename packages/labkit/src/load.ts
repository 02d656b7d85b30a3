// loadLabs: every labs/<id>/lab.md under a directory, parsed; folders without lab.md are skipped
// (they may hold shared files), unreadable ones are reported. A lab's own folder (one holding
// lab.md) is read as that one lab; a directory with no lab at all is an error, so a mistyped
// path never "passes" by testing nothing.
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { Lab, LabError } from "./lab.js";
import { parseLab } from "./parse.js";

export async function loadLabs(dir: string): Promise<{ labs: Lab[]; errors: LabError[] }> {
  const labs: Lab[] = [];
  const errors: LabError[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  const single = entries.some((e) => e.isFile() && e.name === "lab.md");
  const folders = single ? [""] : entries.filter((e) => e.isDirectory() && !e.name.startsWith(".")).map((e) => e.name).sort();
  for (const name of folders) {
    const file = path.join(dir, name, "lab.md");
    let source: string;
    try {
      source = await readFile(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
      errors.push({ file, line: 1, message: `cannot read lab.md: ${(e as Error).message}`, fix: "check the file's permissions" });
      continue;
    }
    const res = parseLab(source, file);
    errors.push(...res.errors);
    if (res.lab) labs.push(res.lab);
  }
  if (labs.length === 0 && errors.length === 0) {
    errors.push({ file: dir, line: 1, message: "no lab here: neither a lab.md nor folders holding one", fix: "pass the labs directory (e.g. labs/) or one lab's folder (labs/<id>)" });
  }
  return { labs, errors };
}
