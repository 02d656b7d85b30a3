// A small JSON router for /api: method + path pattern → handler. Errors a client can fix become 4xx
// with a message; anything else is logged and answered 500 without internals. Every state-changing
// request must come from this site's own pages (see `crossSiteRefusal`).
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";

export class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly field?: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  /** The parsed JSON body, validated against `schema`. */
  body<T extends z.ZodType>(schema: T): Promise<z.infer<T>>;
}

type Handler = (ctx: RouteContext) => Promise<unknown>;

interface Route {
  method: string;
  parts: string[];
  handler: Handler;
}

const MAX_BODY = 64 * 1024;

/** The client's address: the socket's peer, or behind a trusted proxy the last X-Forwarded-For hop. */
export function clientAddress(req: IncomingMessage, trustProxy = false): string {
  if (trustProxy) {
    const hops = String(req.headers["x-forwarded-for"] ?? "").split(",").map((h) => h.trim()).filter(Boolean);
    if (hops.length > 0) return normalizeAddress(hops[hops.length - 1]!);
  }
  return normalizeAddress(req.socket.remoteAddress ?? "unknown");
}

/** `::ffff:1.2.3.4` (an IPv4 peer on a dual-stack socket) is 1.2.3.4. */
export function normalizeAddress(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

/** The host the browser thinks it talks to (for the same-origin checks). */
function publicHost(req: IncomingMessage, trustProxy: boolean): string | undefined {
  const forwarded = trustProxy ? String(req.headers["x-forwarded-host"] ?? "").split(",")[0]!.trim() : "";
  return forwarded || req.headers.host;
}

/**
 * CSRF guard for state-changing requests. Browsers send `Origin` with every POST (and
 * `Sec-Fetch-Site` to https and localhost sites): when one is there it must say "this site", so a
 * cross-site form or `text/plain` fetch is refused before any handler runs. A request with neither
 * header is not from a browser (curl, tests, scripts), and carries no ambient credentials a third
 * party could borrow, so it passes. Returns why the request is refused, or undefined.
 */
export function crossSiteRefusal(req: IncomingMessage, trustProxy = false): string | undefined {
  const site = req.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin") return `cross-site request refused (Sec-Fetch-Site: ${site})`;
  const origin = req.headers.origin;
  if (origin === undefined) return undefined;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return `cross-site request refused (Origin: ${origin.slice(0, 100)})`;
  }
  // An opaque origin ("null": sandboxed frames such as the web preview) is never this site.
  if (!host || host !== publicHost(req, trustProxy)) return `cross-site request refused (Origin: ${origin.slice(0, 100)})`;
  return undefined;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export function sendJson(res: ServerResponse, status: number, data: unknown, headers: Record<string, string | string[]> = {}): void {
  const body = data === undefined ? "" : JSON.stringify(data);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", ...headers });
  res.end(body);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > MAX_BODY) throw new HttpError(413, `request body too large: at most ${MAX_BODY} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, `request body too large: at most ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export class Router {
  private routes: Route[] = [];

  constructor(
    private readonly onError: (err: unknown, req: IncomingMessage) => void,
    private readonly opts: { trustProxy?: boolean } = {},
  ) {}

  on(method: string, pattern: string, handler: Handler): this {
    this.routes.push({ method, parts: pattern.split("/").filter(Boolean), handler });
    return this;
  }

  /** Returns false when no route matches the path (so the caller can answer 404). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const parts = url.pathname.split("/").filter(Boolean);
    let pathMatched = false;
    for (const route of this.routes) {
      const params = match(route.parts, parts);
      if (!params) continue;
      pathMatched = true;
      if (route.method !== req.method) continue;
      if (!SAFE_METHODS.has(req.method ?? "")) {
        const refused = crossSiteRefusal(req, this.opts.trustProxy);
        if (refused) return sendJson(res, 403, { error: refused });
      }
      try {
        const ctx: RouteContext = {
          req,
          res,
          params,
          body: async (schema) => {
            const type = String(req.headers["content-type"] ?? "");
            // JSON only: a cross-site HTML form cannot send it without a CORS preflight (CSRF guard).
            if (!type.startsWith("application/json")) throw new HttpError(415, "send the body as JSON (Content-Type: application/json)");
            let parsed: unknown;
            try {
              parsed = JSON.parse((await readBody(req)).toString("utf8") || "null");
            } catch (err) {
              if (err instanceof HttpError) throw err;
              throw new HttpError(400, "the request body is not valid JSON");
            }
            const result = schema.safeParse(parsed);
            if (!result.success) {
              const issue = result.error.issues[0]!;
              const field = issue.path.join(".") || undefined;
              throw new HttpError(400, field ? `${field}: ${issue.message}` : issue.message, field);
            }
            return result.data;
          },
        };
        const out = await route.handler(ctx);
        if (!res.headersSent) sendJson(res, 200, out);
      } catch (err) {
        if (err instanceof HttpError) {
          if (!res.headersSent) sendJson(res, err.status, { error: err.message, ...(err.field ? { field: err.field } : {}) }, err.headers);
        } else {
          this.onError(err, req);
          if (!res.headersSent) sendJson(res, 500, { error: "something went wrong on our side; it has been logged" });
        }
      }
      return;
    }
    if (pathMatched) sendJson(res, 405, { error: `${req.method} is not allowed here` });
    else sendJson(res, 404, { error: `no such API endpoint: ${req.method} ${url.pathname}` });
  }
}

/** `:name` matches one part; a last `*` matches one or more parts (params["*"], joined by "/"). */
function match(pattern: string[], parts: string[]): Record<string, string> | null {
  const rest = pattern[pattern.length - 1] === "*";
  if (rest ? parts.length < pattern.length : pattern.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    const v = parts[i]!;
    if (rest && i === pattern.length - 1) {
      try {
        params["*"] = parts.slice(i).map(decodeURIComponent).join("/");
      } catch {
        return null;
      }
    } else if (p.startsWith(":")) {
      try {
        params[p.slice(1)] = decodeURIComponent(v);
      } catch {
        return null;
      }
    } else if (p !== v) return null;
  }
  return params;
}
