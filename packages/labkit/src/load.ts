// loadLabs: every labs/<id>/lab.md under a directory, parsed; folders without lab.md are skipped
// (they may hold shared files), unreadable ones are reported. A lab's own folder (one holding
// lab.md) is read as that one lab; a directory with no lab at all is an error, so a mistyped
// path never "passes" by testing nothing. Here, with the file system at hand, assets and images
// are checked to exist and `next:` to name a lab of the same directory.
import { statSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { Lab, LabError } from "./lab.js";
import { parseLab } from "./parse.js";

export async function loadLabs(dir: string): Promise<{ labs: Lab[]; errors: LabError[]; warnings: LabError[] }> {
  const labs: Lab[] = [];
  const errors: LabError[] = [];
  const warnings: LabError[] = [];
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
    const folder = path.join(dir, name);
    const fileExists = (rel: string) => {
      try {
        return statSync(path.join(folder, rel)).isFile();
      } catch {
        return false;
      }
    };
    const res = parseLab(source, file, { fileExists });
    errors.push(...res.errors);
    warnings.push(...res.warnings);
    if (res.lab) labs.push(res.lab);
  }
  if (labs.length === 0 && errors.length === 0) {
    errors.push({ file: dir, line: 1, message: "no lab here: neither a lab.md nor folders holding one", fix: "pass the labs directory (e.g. labs/) or one lab's folder (labs/<id>)" });
  }
  // `next:` is checked when a whole directory of labs is read (one lab's folder cannot know).
  if (!single) {
    const ids = new Set(labs.map((l) => l.id));
    for (const lab of labs) {
      if (lab.next && !ids.has(lab.next)) {
        const line = lab.source.split(/\r?\n/).findIndex((l) => /^next\s*:/.test(l)) + 1 || 1;
        errors.push({ file: lab.file, line, message: `next names "${lab.next}", which is not a lab in ${path.basename(dir)}/`, fix: `use one of ${[...ids].filter((i) => i !== lab.id).join(", ") || "(no other lab)"}, or remove the line` });
      }
    }
  }
  return { labs, errors, warnings };
}
