// A draft (or a published version) of an authored lab as what labkit reads: lint in memory for the
// editor (every keystroke), and a real folder (lab.md and its files) for what needs one: assets
// into a sandbox, pictures, `labkit test`. The folder hash versions authored labs the way lab.md's
// hash versions file labs, but covers the files too: a changed asset is a changed lab.
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { loadLabs, parseLab, previewContext, renderLab, type Lab, type LabError } from "@berth/labkit";
import type { LabView } from "@berth/protocol";
import type { TarFile } from "./tar.js";

export interface DraftContent {
  labId: string;
  markdown: string;
  assets: { path: string; bytes: Buffer }[];
}

/** What the editor shows beside the text: problems by line, and the learner's view when it parses. */
export interface DraftLint {
  errors: LabError[];
  warnings: LabError[];
  /** Rendered and sanitized by labkit exactly as a learner gets it (the preview learner's values). */
  view?: LabView;
}

export const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** sha256 over lab.md and every file (path and the sha256 of its bytes), in path order. */
export function contentHash(content: { markdown: string; assets: { path: string; sha256: string }[] }): string {
  const h = createHash("sha256").update("lab.md\0").update(content.markdown).update("\0");
  for (const a of [...content.assets].sort((x, y) => (x.path < y.path ? -1 : 1))) h.update(a.path).update("\0").update(a.sha256).update("\0");
  return h.digest("hex");
}

/** The line of a front matter field (1-based), or 1. */
export function fieldLine(markdown: string, field: string): number {
  return markdown.split(/\r?\n/).findIndex((l) => new RegExp(`^${field}\\s*:`).test(l)) + 1 || 1;
}

/** The id written in the front matter, if any (for imports, before the lab need parse). */
export function frontMatterId(markdown: string): string | undefined {
  const lines = markdown.replace(/^\uFEFF/, "").split(/\r?\n/);
  if (lines[0]?.trimEnd() !== "---") return undefined;
  for (const l of lines.slice(1)) {
    if (l.trimEnd() === "---") break;
    const m = /^id\s*:\s*["']?([^"'\s#]+)/.exec(l);
    if (m) return m[1];
  }
  return undefined;
}

/**
 * labkit's lint of a draft, without touching the disk: parse (with the draft's files for asset
 * and picture checks), plus the rules of drafts: the id is the draft's, `next:` names a lab Berth has.
 */
export function lintDraft(content: { labId: string; markdown: string; assets: { path: string }[] }, labExists: (id: string) => boolean): DraftLint & { lab?: Lab } {
  const files = new Set(content.assets.map((a) => a.path));
  const res = parseLab(content.markdown, "lab.md", { fileExists: (rel) => files.has(rel) });
  const errors = [...res.errors];
  const warnings = [...res.warnings];
  if (res.lab && res.lab.id !== content.labId) {
    errors.push({
      file: "lab.md", line: fieldLine(content.markdown, "id"),
      message: `id "${res.lab.id}" is not this draft's id "${content.labId}"`,
      fix: `keep \`id: ${content.labId}\` (to rename a lab, export it and import it under the new id)`,
    });
  }
  if (res.lab?.next && !labExists(res.lab.next)) {
    warnings.push({
      file: "lab.md", line: fieldLine(content.markdown, "next"), severity: "warning",
      message: `next names "${res.lab.next}", which is not a lab here yet`, fix: "name a lab of the catalog, or publish that one first",
    });
  }
  if (errors.length > 0 || !res.lab) return { errors, warnings };
  return { errors, warnings, lab: res.lab, view: renderLab(res.lab, previewContext(res.lab)) };
}

/** Writes the folder `<root>/<labId>/` (lab.md and files) and reads it back through labkit. */
export async function materialize(root: string, content: DraftContent): Promise<{ dir: string; lab: Lab }> {
  const dir = path.join(root, content.labId);
  await rm(root, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "lab.md"), content.markdown);
  for (const a of content.assets) {
    const file = path.join(dir, a.path);
    // Paths were checked on upload (LAB_RELATIVE_PATH); this keeps a mistake from writing outside.
    if (!file.startsWith(dir + path.sep)) throw new Error(`asset path ${a.path} leaves the lab's folder`);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, a.bytes);
  }
  const { labs, errors } = await loadLabs(dir);
  const lab = labs[0];
  if (!lab) throw new Error(`the lab does not parse: ${errors.map((e) => `line ${e.line}: ${e.message}`).join("; ")}`);
  return { dir, lab };
}

/** Every file of a lab's folder (not dotfiles), for an export: `<labId>/lab.md`, `<labId>/<path>`. */
export async function folderFiles(dir: string, labId: string): Promise<TarFile[]> {
  const out: TarFile[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      if (e.name.startsWith(".")) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile()) out.push({ path: `${labId}/${r}`, bytes: await readFile(path.join(dir, r)) });
    }
  };
  await walk("");
  return out.sort((a, b) => (a.path === `${labId}/lab.md` ? -1 : b.path === `${labId}/lab.md` ? 1 : a.path < b.path ? -1 : 1));
}

/** A draft's content as an archive's files, lab.md first. */
export function contentFiles(content: DraftContent): TarFile[] {
  return [
    { path: `${content.labId}/lab.md`, bytes: Buffer.from(content.markdown, "utf8") },
    ...[...content.assets].sort((a, b) => (a.path < b.path ? -1 : 1)).map((a) => ({ path: `${content.labId}/${a.path}`, bytes: a.bytes })),
  ];
}
