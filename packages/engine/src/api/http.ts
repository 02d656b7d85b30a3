/**
 * The HTTP side of the Docker Engine API: a router over a UNIX socket, the version prefixes, errors
 * the way the docker CLI expects them, bounded request bodies, and connection hijacking for attach
 * and exec (101 UPGRADED, then raw bytes both ways).
 */
import http from "node:http";
import type { Duplex } from "node:stream";
import { EngineError } from "../errors";
import { mark, profiling } from "../profile";

export const API_VERSION = "1.45";
export const MIN_API_VERSION = "1.24";
/** JSON request bodies are small; anything larger is refused before it is read into memory. */
export const MAX_JSON_BODY = 1 << 20;

export interface Ctx {
  req: http.IncomingMessage;
  method: string;
  path: string; // without the /v1.xx prefix
  query: URLSearchParams;
  version: string; // the API version of this request
  params: string[];
  res?: http.ServerResponse; // an ordinary request
  socket?: Duplex; // an upgrade request (attach, exec start) ...
  head?: Buffer; // ... and the bytes that came after its headers
}

export type Handler = (ctx: Ctx) => unknown; // may return a promise; its value is ignored

interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
}

export class Router {
  private routes: Route[] = [];

  on(method: string, path: string, handler: Handler): this {
    // "/containers/:id/json" -> ^/containers/([^/]+)/json$ ; ":name*" swallows slashes (image names).
    const pattern = new RegExp(`^${path.replace(/:[a-z]+\*/g, "(.+)").replace(/:[a-z]+/g, "([^/]+)")}$`);
    this.routes.push({ method, pattern, handler });
    return this;
  }

  match(method: string, path: string): { handler: Handler; params: string[] } | "method" | undefined {
    let pathMatched = false;
    for (const r of this.routes) {
      const m = r.pattern.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (r.method === method || (method === "HEAD" && r.method === "GET")) return { handler: r.handler, params: m.slice(1).map(decodeURIComponent) };
    }
    return pathMatched ? "method" : undefined;
  }
}

function compareVersions(a: string, b: string): number {
  const [a1, a2] = a.split(".").map(Number);
  const [b1, b2] = b.split(".").map(Number);
  return a1! - b1! || a2! - b2!;
}

export function versionAtLeast(ctx: Ctx, v: string): boolean {
  return compareVersions(ctx.version, v) >= 0;
}

export function createApiServer(router: Router, log: (msg: string) => void = () => {}): http.Server {
  const server = http.createServer();
  // docker build and load can stream for minutes; the CLI keeps idle connections for reuse.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 60_000;
  const dispatch = async (ctx: Omit<Ctx, "path" | "version" | "params" | "query" | "method">) => {
    const url = new URL(ctx.req.url ?? "/", "http://docker");
    let p = url.pathname.replace(/\/+$/, "") || "/";
    let version = API_VERSION;
    const v = /^\/v(\d+\.\d+)(\/.*)$/.exec(p);
    const full: Ctx = { ...ctx, method: ctx.req.method ?? "GET", path: p, version, params: [], query: url.searchParams };
    try {
      if (v) {
        version = v[1]!;
        p = v[2]!;
        if (compareVersions(version, API_VERSION) > 0) throw new EngineError(400, `client version ${version} is too new. Maximum supported API version is ${API_VERSION}`);
        if (compareVersions(version, MIN_API_VERSION) < 0) throw new EngineError(400, `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`);
      }
      full.path = p;
      full.version = version;
      const m = router.match(full.method, p);
      if (m === undefined) throw new EngineError(404, "page not found");
      if (m === "method") throw new EngineError(405, `method ${full.method} not allowed for ${p}`);
      full.params = m.params;
      if (profiling()) mark(`> ${full.method} ${p}`);
      await m.handler(full);
      if (profiling()) mark(`< ${full.method} ${p}`);
    } catch (e) {
      if (!(e instanceof EngineError)) log(`${full.method} ${full.path}: ${(e as Error).stack ?? e}`);
      sendError(full, e);
    }
  };
  server.on("request", (req, res) => void dispatch({ req, res }));
  server.on("upgrade", (req, socket: Duplex, head: Buffer) => {
    socket.on("error", () => {});
    void dispatch({ req, socket, head });
  });
  server.on("clientError", (_e, socket) => {
    if (socket.writable) socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"message":"bad request"}\n`);
  });
  return server;
}

// ---------- answering ----------

const STATUS_TEXT: Record<number, string> = { 101: "UPGRADED", 200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large", 500: "Internal Server Error" };

/** Headers every answer carries, so the CLI can negotiate on any response. */
function commonHeaders(): Record<string, string> {
  return { "Api-Version": API_VERSION, Server: `Docker/berth (linux)`, Ostype: "linux", "Docker-Experimental": "false" };
}

export function send(ctx: Ctx, status: number, body?: Buffer | string, contentType = "application/json", extra: Record<string, string> = {}): void {
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body);
  const headers: Record<string, string> = { ...commonHeaders(), ...extra };
  // A refused body is left unread: close the connection rather than read (or keep) the rest.
  if (status === 413) headers.Connection = "close";
  if (payload !== undefined && status !== 204 && status !== 304) {
    headers["Content-Type"] = contentType;
    headers["Content-Length"] = String(payload.length);
  }
  if (ctx.res) {
    if (ctx.res.headersSent) {
      ctx.res.end();
      return;
    }
    ctx.res.writeHead(status, headers);
    ctx.res.end(ctx.method === "HEAD" || status === 204 || status === 304 ? undefined : payload);
  } else if (ctx.socket && ctx.socket.writable) {
    const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
    ctx.socket.write(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? ""}\r\n${lines}Connection: close\r\n\r\n`);
    ctx.socket.end(payload);
  }
}

export function sendJson(ctx: Ctx, status: number, value: unknown, extra?: Record<string, string>): void {
  send(ctx, status, `${JSON.stringify(value)}\n`, "application/json", extra);
}

/** Docker's error shape: {"message": ...} with Content-Type exactly application/json. */
export function sendError(ctx: Ctx, e: unknown): void {
  const status = e instanceof EngineError ? e.status : 500;
  const message = e instanceof Error ? e.message : String(e);
  if (status === 304) return send(ctx, 304);
  sendJson(ctx, status, { message });
}

/** Start a streaming 200 answer and flush its headers now (wait, logs -f, pull, events). */
export function startStream(ctx: Ctx, contentType: string): http.ServerResponse {
  const res = ctx.res!;
  res.writeHead(200, { ...commonHeaders(), "Content-Type": contentType });
  res.flushHeaders();
  return res;
}

/**
 * Take over the connection for a raw byte stream. Upgrade requests get "101 UPGRADED" as the
 * docker CLI expects; the socket stays writable after the client half-closes its side.
 */
export function hijack(ctx: Ctx, contentType: string): Duplex {
  if (ctx.socket) {
    ctx.socket.write(`HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nApi-Version: ${API_VERSION}\r\n\r\n`);
    return ctx.socket;
  }
  const res = startStream(ctx, contentType);
  return res.socket ? wrapResponse(res) : (res as unknown as Duplex);
}

/** A plain (not upgraded) attach: write through the response, read what the client still sends. */
function wrapResponse(res: http.ServerResponse): Duplex {
  const socket = res.socket!;
  const d = Object.assign(Object.create(socket) as Duplex, {
    write: (b: Buffer | string) => res.write(b),
    end: (b?: Buffer | string) => {
      res.end(b);
      return d;
    },
  });
  return d;
}

// ---------- reading requests ----------

/** Read a body, refusing more than `limit` bytes (413) without buffering the excess. */
export function readBody(ctx: Ctx, limit = MAX_JSON_BODY): Promise<Buffer> {
  const declared = Number(ctx.req.headers["content-length"] ?? NaN);
  if (declared > limit) {
    // Stop reading: the client learns at once, and the engine never holds the excess.
    return Promise.reject(new EngineError(413, `request body too large: ${declared} bytes, the limit is ${limit}`));
  }
  if (ctx.socket) {
    // An upgrade request: the body (exec start JSON) came in `head`, maybe followed by stdin.
    // On a busy machine the body can arrive after the headers: wait for all of it, or those bytes
    // would reach the process's stdin (`echo x | docker exec -i` printed the exec JSON first).
    const want = Number.isFinite(declared) ? declared : 0;
    const socket = ctx.socket;
    let head = ctx.head ?? Buffer.alloc(0);
    const split = () => {
      ctx.head = head.subarray(want);
      return head.subarray(0, want);
    };
    if (head.length >= want) return Promise.resolve(split());
    return new Promise((resolve, reject) => {
      // 'readable' + read(), not 'data': removing the listener afterwards leaves the socket neither
      // flowing nor explicitly paused, so the 'data' listener of whoever takes the stream next
      // starts it again, and bytes past the body (stdin) stay in ctx.head.
      const done = (err?: Error) => {
        socket.off("readable", onReadable);
        socket.off("end", onEnd);
        socket.off("error", done);
        if (err) reject(err);
        else resolve(split());
      };
      const onReadable = () => {
        for (let c: Buffer | null; head.length < want && (c = socket.read() as Buffer | null) !== null; ) head = Buffer.concat([head, c]);
        if (head.length >= want) done();
      };
      const onEnd = () => done(new EngineError(400, `request body ended after ${head.length} of ${want} bytes`));
      socket.on("readable", onReadable);
      socket.on("end", onEnd);
      socket.on("error", done);
    });
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    ctx.req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new EngineError(413, `request body too large: more than ${limit} bytes`));
        ctx.req.pause();
        ctx.req.removeAllListeners("data");
        return;
      }
      chunks.push(c);
    });
    ctx.req.on("end", () => resolve(Buffer.concat(chunks)));
    ctx.req.on("error", reject);
  });
}

export async function readJson(ctx: Ctx): Promise<Record<string, unknown>> {
  const body = await readBody(ctx);
  if (body.length === 0) return {};
  try {
    const v = JSON.parse(body.toString("utf8")) as unknown;
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("expected a JSON object");
    return v as Record<string, unknown>;
  } catch (e) {
    throw new EngineError(400, `invalid JSON: ${(e as Error).message}`);
  }
}

export function boolParam(ctx: Ctx, name: string): boolean {
  const v = ctx.query.get(name);
  return v !== null && v !== "" && v !== "0" && v.toLowerCase() !== "false";
}

/** Docker filters: {"label":{"a=b":true}} (current) or {"label":["a=b"]} (old clients). */
export function parseFilters(ctx: Ctx): Record<string, string[]> {
  const raw = ctx.query.get("filters");
  if (!raw) return {};
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new EngineError(400, `invalid filter: ${raw}`);
  }
  const out: Record<string, string[]> = {};
  for (const [k, val] of Object.entries((v ?? {}) as Record<string, unknown>)) {
    out[k] = Array.isArray(val) ? val.map(String) : Object.keys((val ?? {}) as object);
  }
  return out;
}
