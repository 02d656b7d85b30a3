// Monaco's AMD build (monaco-editor/min/vs), served from the installed package under
// /monaco/<version>/vs/… for the editor tab (src/lib/monaco.ts). Static files only, from that one
// folder; the version in the URL makes every answer cacheable for good.
import { readFile } from "node:fs/promises";
import path from "node:path";

const ROOT = process.env.BERTH_MONACO_MIN_DIR!;
const VERSION = process.env.NEXT_PUBLIC_MONACO_VERSION!;

const TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".ttf": "font/ttf",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
};

export async function GET(_req: Request, { params }: { params: Promise<{ version: string; path: string[] }> }): Promise<Response> {
  const { version, path: parts } = await params;
  const rel = parts.join("/");
  const type = TYPES[path.extname(rel)];
  // Only the version this build was made with, only known file types, never outside min/.
  if (version !== VERSION || !type || parts.some((p) => p === ".." || p === "." || p.includes("\0"))) {
    return new Response("not found", { status: 404 });
  }
  const file = path.join(ROOT, rel);
  if (!file.startsWith(ROOT + path.sep)) return new Response("not found", { status: 404 });
  try {
    const body = await readFile(file);
    return new Response(body, {
      headers: { "content-type": type, "cache-control": "public, max-age=31536000, immutable", "x-content-type-options": "nosniff" },
    });
  } catch {
    return new Response("not found", { status: 404 });
  }
}
