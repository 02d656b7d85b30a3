// A lab's files: assets delivered into the sandbox (front matter `assets:`) and pictures shown in
// the text (served by the orchestrator at /api/labs/<id>/assets/<path>). Both come only from the
// lab's own folder; nothing climbs out of it, and lab.md (checks, solutions) is never served.
import { randomBytes } from "node:crypto";
import { readFile, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { LAB_RELATIVE_PATH } from "./front-matter.js";
import { LIMITS, type Lab } from "./lab.js";
import { shellQuote } from "./scripts.js";
import { IMAGE_TYPES, imageExtension } from "./syntax.js";

function labDir(lab: Lab): string {
  return path.resolve(path.dirname(lab.file));
}

/** The real path of `rel` in the lab's folder, or undefined when it escapes it (.., symlinks). */
async function inside(lab: Lab, rel: string): Promise<string | undefined> {
  if (!LAB_RELATIVE_PATH.test(rel)) return undefined;
  const dir = labDir(lab);
  try {
    const [real, realDir] = await Promise.all([realpath(path.join(dir, rel)), realpath(dir)]);
    return real.startsWith(realDir + path.sep) ? real : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A picture for the browser: the file's real path and content type, or undefined when the path is
 * not a picture (by extension: png, jpg, gif, webp, avif; never svg, never lab.md) inside the lab's
 * folder. Serve it with that type and `X-Content-Type-Options: nosniff`.
 */
export async function assetFile(lab: Lab, rel: string): Promise<{ path: string; contentType: string; size: number } | undefined> {
  const contentType = IMAGE_TYPES[imageExtension(rel)];
  if (!contentType) return undefined;
  const real = await inside(lab, rel);
  if (!real) return undefined;
  const st = await stat(real);
  return st.isFile() ? { path: real, contentType, size: st.size } : undefined;
}

/**
 * A script for `bash -s` that writes every asset of the lab into the sandbox (parent folders made,
 * modes set); undefined when the lab has none. Run it before the lab's setup. It is not wrapped by
 * prepareScript: it reads nothing from stdin, and an asset's bytes would not fit in one argument.
 */
export async function assetsScript(lab: Lab): Promise<string | undefined> {
  if (lab.assets.length === 0) return undefined;
  const parts = ["set -e"];
  let total = 0;
  for (const a of lab.assets) {
    const real = await inside(lab, a.from);
    if (!real) throw new Error(`${lab.id}: asset ${a.from} is not a file in the lab's folder`);
    const bytes = await readFile(real);
    total += bytes.length;
    if (bytes.length > LIMITS.maxAssetBytes) throw new Error(`${lab.id}: asset ${a.from} is ${bytes.length} bytes, over ${LIMITS.maxAssetBytes}`);
    if (total > LIMITS.maxAssetsBytes) throw new Error(`${lab.id}: the assets add up to more than ${LIMITS.maxAssetsBytes} bytes`);
    const tag = `BERTH_ASSET_${randomBytes(8).toString("hex")}`;
    const to = shellQuote(a.to);
    parts.push(
      `mkdir -p "$(dirname ${to})"`,
      `base64 -d > ${to} <<'${tag}'`,
      ...(bytes.toString("base64").match(/.{1,76}/g) ?? []),
      tag,
      `chmod ${a.mode.toString(8).padStart(4, "0")} ${to}`,
    );
  }
  return parts.join("\n") + "\n";
}
