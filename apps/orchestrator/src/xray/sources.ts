// Links from an X-ray item to the engine's code that did it. The engine reports a file and a line
// (berth-shim's own __LINE__) or a file and a text to find (its TypeScript, which it cannot number
// once bundled); here both become a repository path and a line range, read from this checkout.
// Only the engine's source files can be read this way, and only read.
import type { XraySourceLink } from "@berth/protocol";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
const ALLOWED = /^packages\/engine\/src\/(?:[a-z0-9_-]+\/)*[a-z0-9_.-]+\.(?:ts|c)$/i;
/** The most lines one request may read. */
export const MAX_LINES = 120;

/**
 * Where the engine does what a panel section shows, for the parts that no single report names
 * (the layer stack, the upper dir's diff, volumes, ports, networks, the user, the bounding set,
 * the live figures). Sent as links under "section:<name>".
 */
export const SECTION_SOURCES: Record<string, { file: string; find: string }> = {
  layers: { file: "packages/engine/src/snapshots/overlay.ts", find: "export function mountSnapshot(" },
  upper: { file: "packages/engine/src/snapshots/overlay.ts", find: "export function changes(" },
  volumes: { file: "packages/engine/src/volumes/mounts.ts", find: "export function materializeMounts(" },
  ports: { file: "packages/engine/src/network/ports.ts", find: "export async function publish(" },
  networks: { file: "packages/engine/src/network/manager.ts", find: "async prepare(" },
  user: { file: "packages/engine/src/containers/user.ts", find: "export function resolveUser(" },
  capabilities: { file: "packages/engine/src/runtime/shim.c", find: "static void drop_bounding_set(" },
  live: { file: "packages/engine/src/recipe/live.ts", find: "export function readLiveFigures(" },
};

export type SourceLink = XraySourceLink;

export class EngineSources {
  private readonly files = new Map<string, string[] | null>();

  constructor(private readonly root = REPO_ROOT) {}

  /** The lines of an allowed file, or null (not allowed, or missing). */
  lines(file: string): string[] | null {
    if (!ALLOWED.test(file) || file.split("/").includes("..")) return null;
    if (!this.files.has(file)) {
      try {
        this.files.set(file, fs.readFileSync(path.join(this.root, file), "utf8").split("\n"));
      } catch {
        this.files.set(file, null);
      }
    }
    return this.files.get(file) ?? null;
  }

  /**
   * {file, line} -> that line and the statement it starts (up to its ";" or closing brace);
   * {file, find} -> the first line containing the text, and the block it opens if it opens one.
   */
  resolve(ref: { file: string; line?: number; find?: string }): SourceLink | null {
    const lines = this.lines(ref.file);
    if (!lines) return null;
    let from = ref.line ?? 0;
    if (!from && ref.find) from = lines.findIndex((l) => l.includes(ref.find!)) + 1;
    if (from < 1 || from > lines.length) return null;
    let to = from;
    const first = lines[from - 1]!;
    if (/\{\s*$/.test(first)) {
      // A block: up to the line that closes it at the same indentation (at most 40 lines).
      const indent = /^\s*/.exec(first)![0].length;
      for (let i = from; i < Math.min(lines.length, from + 40); i++) {
        const l = lines[i]!;
        if (l.trim().startsWith("}") && /^\s*/.exec(l)![0].length === indent) {
          to = i + 1;
          break;
        }
      }
    } else {
      for (let i = from - 1; i < Math.min(lines.length, from + 6); i++) {
        to = i + 1;
        if (/[;{}]\s*(\/\*.*\*\/|\/\/.*)?$/.test(lines[i]!)) break;
      }
    }
    return { path: ref.file, from, to };
  }

  /** Lines from..to (1-based, inclusive) with a little context, for the panel's source view. */
  excerpt(file: string, from: number, to: number): { path: string; first: number; lines: string[]; from: number; to: number } | null {
    const lines = this.lines(file);
    if (!lines || !Number.isInteger(from) || !Number.isInteger(to) || from < 1 || to < from || from > lines.length) return null;
    const first = Math.max(1, from - 3);
    const last = Math.min(lines.length, to + 3, first + MAX_LINES - 1);
    return { path: file, first, lines: lines.slice(first - 1, last), from, to: Math.min(to, last) };
  }
}
