// The editor's file routes under /api/labs/:labId: list a folder, read a file, save it, all inside
// the learner's own sandbox through its agent (file.list, file.stat, file.read, file.write).
//
// The agent runs inside the sandbox, so every path is the sandbox's own: a learner (root there)
// reaches nothing here they could not reach from their shell. What this file adds is HTTP: absolute
// paths only, regular files only (a FIFO or a device would hang or flood a read), a size cap both
// ways, and a 409 when the file changed since the editor loaded it, so a save never silently
// overwrites what the learner did in the terminal meanwhile.
import type { IncomingMessage } from "node:http";
import path from "node:path";
import { z } from "zod";
import { AgentRequestError } from "@berth/sandbox";
import type { SessionStore } from "../auth/sessions.js";
import type { LabCatalog } from "../labs/catalog.js";
import type { LearnerSandbox, SandboxManager } from "../sandboxes/sandbox-manager.js";
import { HttpError, sendJson, type Router } from "./router.js";

export interface FileRouteDeps {
  sessions: SessionStore;
  catalog: LabCatalog;
  sandboxes: SandboxManager;
  /** A file was saved into a learner's sandbox (the automatic checks look again: AutoChecks.fileSaved). */
  onFileSaved?: (userId: string, labId: string) => void;
}

/** The largest file the editor opens or saves: Monaco stays responsive well past this. */
export const MAX_EDITOR_FILE = 1024 * 1024;
/** A folder listing is cut here (a learner's `node_modules` must not produce a 10 MB answer). */
export const MAX_LIST_ENTRIES = 2000;
/** JSON-escaped content can be up to 6x its UTF-8 size (\u00XX); leave room for that, then check the decoded size. */
const MAX_PUT_BODY = MAX_EDITOR_FILE * 6 + 4096;
const DEFAULT_WORKDIR = "/root";

export interface FileEntry {
  name: string;
  type: "file" | "dir";
  size: number;
  mtimeMs: number;
}

const SaveBody = z.object({
  content: z.string(),
  /** The mtime the editor loaded; null for a new file (then the file must not exist yet). */
  baseMtimeMs: z.number().nullable(),
});

export function registerFileRoutes(router: Router, deps: FileRouteDeps): void {
  const { sessions, catalog, sandboxes } = deps;

  /** The learner's running sandbox for this lab, and the lab's working folder. */
  const target = async (req: IncomingMessage, labId: string): Promise<{ sb: LearnerSandbox; workdir: string; userId: string }> => {
    const user = await sessions.fromRequest(req);
    if (!user) throw new HttpError(401, "sign in first");
    const entry = catalog.get(labId, user.id);
    if (!entry) throw new HttpError(404, `no lab called "${labId}"`);
    const sb = sandboxes.find(user.id, entry.lab.id);
    if (!sb || !sb.ready) throw new HttpError(409, "your sandbox is not running yet: open the lab's terminal first");
    void sandboxes.touch(sb);
    return { sb, workdir: labWorkdir(entry.lab), userId: user.id };
  };

  router.on("GET", "/api/labs/:labId/files", async ({ req, params }) => {
    const { sb, workdir } = await target(req, params.labId!);
    const dir = sandboxPath(queryPath(req) ?? workdir);
    const st = await agentOp(() => sb.agent.request({ op: "file.stat", path: dir }), dir);
    if (!st.isDir) throw new HttpError(400, `${dir} is not a folder`);
    const { entries } = await agentOp(() => sb.agent.request({ op: "file.list", path: dir }), dir);
    const out: FileEntry[] = [];
    for (const e of entries) {
      // Symlinks and special files are left out: the editor opens regular files only.
      if (e.isSymlink) continue;
      const type = e.isDir ? "dir" : (e.mode & 0o170000) === 0o100000 ? "file" : null;
      if (type) out.push({ name: e.name, type, size: e.size, mtimeMs: e.mtimeMs });
    }
    out.sort((a, b) => (a.type === b.type ? a.name.localeCompare(b.name) : a.type === "dir" ? -1 : 1));
    return { path: dir, workdir, entries: out.slice(0, MAX_LIST_ENTRIES), truncated: out.length > MAX_LIST_ENTRIES };
  });

  router.on("GET", "/api/labs/:labId/file", async ({ req, params }) => {
    const { sb } = await target(req, params.labId!);
    const file = requiredPath(req);
    const st = await regularFile(sb, file);
    if (st.size > MAX_EDITOR_FILE) throw new HttpError(413, `${file} is ${st.size} bytes: the editor opens files up to ${MAX_EDITOR_FILE} bytes (use the terminal for bigger ones)`);
    const read = await agentOp(() => sb.agent.request({ op: "file.read", path: file, maxBytes: MAX_EDITOR_FILE }), file);
    if (read.truncated) throw new HttpError(413, `${file} grew past ${MAX_EDITOR_FILE} bytes while it was read`);
    const bytes = Buffer.from(read.data, "base64");
    const content = bytes.toString("utf8");
    // A lossy decode would corrupt the file on the next save: refuse binaries instead.
    if (!Buffer.from(content, "utf8").equals(bytes)) throw new HttpError(415, `${file} is not UTF-8 text: the editor opens text files only`);
    return { path: file, content, mtimeMs: st.mtimeMs, size: st.size };
  });

  router.on("PUT", "/api/labs/:labId/file", async ({ req, res, params }) => {
    const { sb, userId } = await target(req, params.labId!);
    const file = requiredPath(req);
    const input = await readSaveBody(req);
    const data = Buffer.from(input.content, "utf8");
    if (data.length > MAX_EDITOR_FILE) throw new HttpError(413, `the content is ${data.length} bytes: the editor saves files up to ${MAX_EDITOR_FILE} bytes`);
    const current = await statOrNull(sb, file);
    if (current && (current.isDir || current.isSymlink || (current.mode & 0o170000) !== 0o100000)) {
      throw new HttpError(400, `${file} is not a regular file`);
    }
    const changed = input.baseMtimeMs === null ? current !== null : current === null || current.mtimeMs !== input.baseMtimeMs;
    if (changed) {
      sendJson(res, 409, {
        error: current ? `${file} changed since you opened it (in the terminal?): reload it, or save again to overwrite` : `${file} was deleted since you opened it`,
        mtimeMs: current ? current.mtimeMs : null,
      });
      return;
    }
    const parent = path.posix.dirname(file);
    const dirSt = await statOrNull(sb, parent);
    if (!dirSt || !dirSt.isDir) throw new HttpError(404, `folder ${parent} does not exist`);
    await agentOp(() => sb.agent.request({ op: "file.write", path: file, data: data.toString("base64") }), file);
    deps.onFileSaved?.(userId, sb.labId);
    const after = await agentOp(() => sb.agent.request({ op: "file.stat", path: file }), file);
    return { path: file, mtimeMs: after.mtimeMs, size: after.size };
  });
}

/** The folder the file tree opens at: the lab's own `workdir` when it declares one. */
function labWorkdir(lab: object): string {
  const declared = (lab as { workdir?: unknown }).workdir;
  return typeof declared === "string" && declared.startsWith("/") ? path.posix.normalize(declared) : DEFAULT_WORKDIR;
}

function queryPath(req: IncomingMessage): string | null {
  return new URL(req.url ?? "/", "http://x").searchParams.get("path");
}

function requiredPath(req: IncomingMessage): string {
  const p = queryPath(req);
  if (p === null || p === "") throw new HttpError(400, "give the file as ?path=/absolute/path");
  const file = sandboxPath(p);
  if (file === "/") throw new HttpError(400, "/ is a folder, not a file");
  return file;
}

/** An absolute, normalized path inside the sandbox (`..` cannot climb above `/`). */
function sandboxPath(p: string): string {
  if (p.length > 4096) throw new HttpError(400, "path too long (at most 4096 characters)");
  if (p.includes("\0")) throw new HttpError(400, "path contains a NUL byte");
  if (!p.startsWith("/")) throw new HttpError(400, `path must be absolute (start with /): ${JSON.stringify(p)}`);
  const norm = path.posix.normalize(p);
  return norm.length > 1 && norm.endsWith("/") ? norm.slice(0, -1) : norm;
}

async function regularFile(sb: LearnerSandbox, file: string) {
  const st = await agentOp(() => sb.agent.request({ op: "file.stat", path: file }), file);
  if (st.isDir) throw new HttpError(400, `${file} is a folder`);
  if (st.isSymlink) throw new HttpError(400, `${file} is a symbolic link: open the file it points to`);
  if ((st.mode & 0o170000) !== 0o100000) throw new HttpError(400, `${file} is not a regular file`);
  return st;
}

async function statOrNull(sb: LearnerSandbox, p: string) {
  try {
    return await sb.agent.request({ op: "file.stat", path: p });
  } catch (err) {
    if (err instanceof AgentRequestError && err.code === "ENOENT") return null;
    throw translate(err, p);
  }
}

/** Runs an agent file op; the errors a learner can fix (no such file, a file where a folder should be) become 4xx. */
async function agentOp<T>(op: () => Promise<T>, p: string): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw translate(err, p);
  }
}

function translate(err: unknown, p: string): unknown {
  if (!(err instanceof AgentRequestError)) return err;
  switch (err.code) {
    case "ENOENT":
      return new HttpError(404, `${p} does not exist in your sandbox`);
    case "ENOTDIR":
      return new HttpError(400, `a part of ${p} is not a folder`);
    case "EISDIR":
      return new HttpError(400, `${p} is a folder`);
    case "EACCES":
    case "EPERM":
    case "EROFS":
      return new HttpError(403, `${p} cannot be written or read (${err.code})`);
    case "ENOSPC":
    case "EDQUOT":
      return new HttpError(507, `no space left in your sandbox to save ${p}`);
    default:
      if (/connection is closed/.test(err.message)) return new HttpError(409, "your sandbox is not running any more: reload the lab");
      return err;
  }
}

/** The save body can be larger than the router's 64 KiB JSON cap, so it is read here with its own. */
async function readSaveBody(req: IncomingMessage): Promise<z.infer<typeof SaveBody>> {
  const type = String(req.headers["content-type"] ?? "");
  if (!type.startsWith("application/json")) throw new HttpError(415, "send the body as JSON (Content-Type: application/json)");
  if (Number(req.headers["content-length"] ?? 0) > MAX_PUT_BODY) throw new HttpError(413, `request body too large: at most ${MAX_PUT_BODY} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_PUT_BODY) throw new HttpError(413, `request body too large: at most ${MAX_PUT_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString("utf8") || "null");
  } catch {
    throw new HttpError(400, "the request body is not valid JSON");
  }
  const result = SaveBody.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.join(".");
    throw new HttpError(400, field ? `${field}: ${issue.message}` : issue.message, field || undefined);
  }
  return result.data;
}
