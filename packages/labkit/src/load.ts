// loadLabs: every labs/<id>/lab.md under a directory, parsed; folders without lab.md are skipped
// (they may hold shared files), unreadable ones are reported.
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { Lab, LabError } from "./lab.js";
import { parseLab } from "./parse.js";

export async function loadLabs(dir: string): Promise<{ labs: Lab[]; errors: LabError[] }> {
  const labs: Lab[] = [];
  const errors: LabError[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  const folders = entries.filter((e) => e.isDirectory() && !e.name.startsWith(".")).map((e) => e.name).sort();
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
  return { labs, errors };
}
