// The authoring API under /api/authoring (instructors and administrators; access.ts). HTTP only:
// what each request does is in drafts.ts. Bodies bigger than the API's usual 64 KiB (lab.md, a
// file, an archive) are read here with their own caps, and only with a content type a cross-site
// form cannot send (JSON, application/octet-stream), on top of the router's same-origin check.
// "Prove it" answers with a stream of server-sent events (one `data:` line per run, then the
// verdict), read by the page through fetch.
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import type { Logger } from "pino";
import type { SessionStore } from "../auth/sessions.js";
import { HttpError, type Router } from "../http/router.js";
import { requireAuthor } from "./access.js";
import type { ProofEvent } from "@berth/protocol";
import type { Authoring } from "./drafts.js";
import { ASSET_LIMITS } from "./limits.js";

export interface AuthoringRouteDeps {
  sessions: SessionStore;
  authoring: Authoring;
  log: Logger;
}

/**
 * The request's body, at most `max` bytes. A bigger one is refused with 413 once the client has
 * sent it (read and dropped, up to a bound): a client still writing its body when the answer comes
 * would never read the answer.
 */
async function readRaw(req: IncomingMessage, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  const declared = Number(req.headers["content-length"] ?? 0);
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max + DRAIN_BOUND) {
      req.socket.destroy(); // not worth reading on
      break;
    }
    if (size <= max && declared <= max) chunks.push(chunk as Buffer);
  }
  if (size > max || declared > max) {
    throw new HttpError(413, `${what} is too large: at most ${max} bytes (${Math.floor(max / 1024)} KiB)`, undefined, { connection: "close" });
  }
  return Buffer.concat(chunks);
}

/** How much of a too-large body is read (and dropped) so that its sender hears the 413. */
const DRAIN_BOUND = 16 * 1024 * 1024;

function requireType(req: IncomingMessage, type: string): void {
  if (!String(req.headers["content-type"] ?? "").startsWith(type)) throw new HttpError(415, `send the body as ${type}`);
}

/** The picture types a lab may show (labkit's list; never SVG, which can carry script). */
const PICTURES: Record<string, string> = { png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", webp: "image/webp", avif: "image/avif" };

const CreateBody = z.object({ id: z.string().min(1).max(64) });
const SaveBody = z.object({ markdown: z.string() });

export function registerAuthoringRoutes(router: Router, deps: AuthoringRouteDeps): void {
  const { sessions, authoring } = deps;
  const author = (req: IncomingMessage) => requireAuthor(sessions, req);

  router.on("GET", "/api/authoring/labs", async ({ req }) => ({ drafts: await authoring.list(await author(req)) }));

  router.on("POST", "/api/authoring/labs", async ({ req, body }) => {
    const user = await author(req);
    const { id } = await body(CreateBody);
    return { draft: await authoring.create(user, id.trim()) };
  });

  router.on("GET", "/api/authoring/labs/:labId", async ({ req, params }) => ({ draft: await authoring.detail(await author(req), params.labId!) }));

  router.on("PUT", "/api/authoring/labs/:labId", async ({ req, params }) => {
    const user = await author(req);
    requireType(req, "application/json");
    // Room for lab.md's cap once JSON-escaped.
    const raw = await readRaw(req, ASSET_LIMITS.markdownBytes * 2 + 1024, "the draft");
    let parsed: z.infer<typeof SaveBody>;
    try {
      parsed = SaveBody.parse(JSON.parse(raw.toString("utf8")));
    } catch {
      throw new HttpError(400, "send { markdown: string } as JSON", "markdown");
    }
    return await authoring.save(user, params.labId!, parsed.markdown);
  });

  router.on("DELETE", "/api/authoring/labs/:labId", async ({ req, res, params }) => {
    await authoring.remove(await author(req), params.labId!);
    res.writeHead(204).end();
  });

  router.on("PUT", "/api/authoring/labs/:labId/files/*", async ({ req, params }) => {
    const user = await author(req);
    requireType(req, "application/octet-stream");
    const bytes = await readRaw(req, ASSET_LIMITS.fileBytes, `the file ${params["*"]}`);
    return { draft: await authoring.putFile(user, params.labId!, params["*"]!, bytes) };
  });

  // A draft's file. Pictures go out as pictures (for the editor's preview); anything else as a
  // download. Either way nothing in it runs: nosniff and a sandboxing CSP, as the lab picture route.
  router.on("GET", "/api/authoring/labs/:labId/files/*", async ({ req, res, params }) => {
    const bytes = await authoring.file(await author(req), params.labId!, params["*"]!);
    const ext = /\.([a-z0-9]+)$/i.exec(params["*"]!)?.[1]?.toLowerCase() ?? "";
    const picture = PICTURES[ext];
    res.writeHead(200, {
      "content-type": picture ?? "application/octet-stream",
      ...(picture ? {} : { "content-disposition": `attachment; filename="${(params["*"]!.split("/").pop() ?? "file").replace(/[^A-Za-z0-9._-]/g, "_")}"` }),
      "content-length": String(bytes.length),
      "x-content-type-options": "nosniff",
      "content-security-policy": "default-src 'none'; sandbox",
      "cross-origin-resource-policy": "same-origin",
      "cache-control": "no-store",
    });
    res.end(bytes);
  });

  router.on("DELETE", "/api/authoring/labs/:labId/files/*", async ({ req, params }) => ({
    draft: await authoring.deleteFile(await author(req), params.labId!, params["*"]!),
  }));

  router.on("POST", "/api/authoring/labs/:labId/prove", async ({ req, res, params }) => {
    const user = await author(req);
    let streaming = false;
    const send = (e: ProofEvent) => {
      if (!streaming) {
        streaming = true;
        res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" });
      }
      if (!res.destroyed) res.write(`data: ${JSON.stringify(e)}\n\n`);
    };
    try {
      await authoring.prove(user, params.labId!, send);
    } catch (err) {
      if (!streaming) throw err; // refused before anything ran: an ordinary 4xx
      deps.log.error({ err: String(err), labId: params.labId }, "a proof failed to run");
      send({ kind: "error", error: err instanceof HttpError ? err.message : `the proof could not run: ${err instanceof Error ? err.message : String(err)}` });
    }
    res.end();
  });

  router.on("POST", "/api/authoring/labs/:labId/publish", async ({ req, params }) => ({ version: await authoring.publish(await author(req), params.labId!) }));

  router.on("POST", "/api/authoring/labs/:labId/try", async ({ req, params }) => await authoring.tryIt(await author(req), params.labId!));

  router.on("GET", "/api/authoring/export/:labId", async ({ req, res, params }) => {
    const tar = await authoring.exportLab(await author(req), params.labId!);
    sendFile(res, tar, `${params.labId}.tar`);
  });

  router.on("POST", "/api/authoring/import", async ({ req }) => {
    const user = await author(req);
    requireType(req, "application/octet-stream");
    const archive = await readRaw(req, ASSET_LIMITS.archiveBytes, "the archive");
    const asId = new URL(req.url ?? "/", "http://x").searchParams.get("id")?.trim() || undefined;
    return { draft: await authoring.importLab(user, archive, asId) };
  });
}

function sendFile(res: ServerResponse, bytes: Buffer, name: string): void {
  res.writeHead(200, {
    "content-type": "application/x-tar",
    "content-length": String(bytes.length),
    "content-disposition": `attachment; filename="${name.replace(/[^A-Za-z0-9._-]/g, "_")}"`,
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
  });
  res.end(bytes);
}
