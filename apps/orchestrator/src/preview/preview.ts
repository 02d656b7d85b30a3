// The web preview: a port that listens inside a learner's sandbox, shown to that learner's browser.
//
//   /preview/<lab>/<port>/<path>   signed in with the session cookie: checks the caller's own sandbox
//                                  for that lab, then redirects to the grant URL below
//   /preview/~<grant>/<path>       the capability URL the preview is served from
//
// Why a grant in the URL: preview responses carry `Content-Security-Policy: sandbox`, so the
// learner's page runs in an opaque origin and cannot use Berth's API as the learner. The price is
// that its own requests (CSS, images, fetch) carry no SameSite cookie: Chromium sends none from a
// sandboxed document. So the path carries a random grant, bound to one session, user, lab and
// port, that lives in this process, expires with the session (checked again every 5 s) and
// after GRANT_TTL_MS at most. A grant URL presented with another user's cookie is a 404.
//
// The orchestrator never dials into a sandbox's network: each request is one tunnel opened by the
// sandbox's agent to 127.0.0.1:<port> (tunnel-client.ts), used as the socket of an HTTP request.
import { randomBytes } from "node:crypto";
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { AgentEndpoint } from "@berth/sandbox";
import type { Db } from "../db/index.js";
import type { SessionStore } from "../auth/sessions.js";
import type { LearnerSandbox, SandboxManager } from "../sandboxes/sandbox-manager.js";
import { TunnelClient, TunnelOpenError, type TunnelStream } from "./tunnel-client.js";

export const PREVIEW_PREFIX = "/preview/";
/** On every preview response: the learner's page gets an opaque origin, and no MIME guessing. */
export const PREVIEW_CSP = "sandbox allow-scripts allow-forms allow-popups";
const GRANT_TTL_MS = 8 * 60 * 60_000;
/** How long a grant trusts its session without asking the database again (sign-out takes this long). */
const SESSION_RECHECK_MS = 5_000;
const LAB_PATTERN = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const GRANT_PATTERN = /^~([A-Za-z0-9_-]{43})$/;

// Headers that describe one hop, not the message (RFC 9110 §7.6.1), and ones we never forward.
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"]);

export interface PreviewDeps {
  db: Db;
  sessions: SessionStore;
  sandboxes: SandboxManager;
  /** Where a sandbox's agent listens (the driver's connect()). */
  endpoint: (sandboxId: string) => Promise<AgentEndpoint>;
  log: Logger;
}

interface Grant {
  token: string;
  sessionId: string;
  userId: string;
  labId: string;
  port: number;
  expiresAt: number;
  checkedAt: number;
}

/** Where a request goes once it is allowed. */
interface Target {
  sandbox: LearnerSandbox;
  port: number;
  /** The path and query for the server in the sandbox. */
  upstreamPath: string;
  /** What the browser's URL starts with, for rewriting redirects: /preview/~<grant> */
  prefix: string;
}

/** An answer that is not a proxied response: an error page or a redirect. */
class PreviewAnswer {
  constructor(readonly status: number, readonly title: string, readonly message: string, readonly location?: string, readonly link?: { href: string; text: string }) {}
}

export class PreviewServer {
  private readonly grants = new Map<string, Grant>(); // by token
  private readonly grantKeys = new Map<string, string>(); // session:lab:port → token
  private readonly clients = new Map<string, Promise<TunnelClient>>(); // by sandbox id
  private closed = false;

  constructor(private readonly deps: PreviewDeps) {}

  static handles(path: string): boolean {
    return path.startsWith(PREVIEW_PREFIX) || path === "/preview";
  }

  /** Never rejects: every failure becomes an answer to the browser. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.proxy(req, res);
    } catch (err) {
      this.answer(res, err);
    }
  }

  private async proxy(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let target: Target;
    try {
      target = await this.resolve(req);
    } catch (err) {
      return this.answer(res, err);
    }
    let stream: TunnelStream;
    try {
      stream = await this.openTunnel(target);
    } catch (err) {
      return this.answer(res, err);
    }
    // The browser may have gone while the tunnel opened: then nobody would close it.
    if (res.destroyed || req.destroyed) return void stream.destroy();
    const upstream = httpRequest({
      method: req.method,
      path: target.upstreamPath,
      headers: upstreamHeaders(req, target),
      createConnection: () => stream as unknown as Socket,
    });
    // The browser went away, or the response is done: the tunnel goes with it.
    res.on("close", () => {
      upstream.destroy();
      stream.destroy();
    });
    upstream.on("response", (ures) => {
      res.writeHead(ures.statusCode ?? 502, downstreamHeaders(ures.headers, target));
      ures.pipe(res);
      ures.on("error", () => res.destroy());
    });
    upstream.on("error", (err) => {
      stream.destroy();
      if (res.headersSent) return void res.destroy();
      this.answer(res, new PreviewAnswer(502, "No answer", `The server on port ${target.port} in your sandbox closed the connection without an HTTP answer (${err.message}).`));
    });
    req.pipe(upstream);
  }

  /** A WebSocket (or other) upgrade under /preview/: passed through both ways once the server agrees. */
  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    try {
      await this.passUpgrade(req, socket, head);
    } catch (err) {
      this.toAnswer(err);
      socket.destroy();
    }
  }

  private async passUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on("error", () => socket.destroy());
    let target: Target;
    let stream: TunnelStream;
    try {
      target = await this.resolve(req);
      stream = await this.openTunnel(target);
    } catch (err) {
      const a = this.toAnswer(err);
      // An entry URL answers with its redirect here too (a WebSocket client will not follow it:
      // pages build their socket URL from their own, the grant URL).
      const location = a.location ? `Location: ${a.location}\r\n` : "";
      socket.end(`HTTP/1.1 ${a.status} ${a.title}\r\n${location}Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n${a.message}\n`);
      return;
    }
    if (socket.destroyed) return void stream.destroy();
    const headers = upstreamHeaders(req, target);
    headers.connection = "Upgrade";
    headers.upgrade = req.headers.upgrade ?? "websocket";
    const upstream = httpRequest({ method: req.method, path: target.upstreamPath, headers, createConnection: () => stream as unknown as Socket });
    const closeBoth = () => {
      socket.destroy();
      stream.destroy();
    };
    socket.on("close", closeBoth);
    upstream.on("upgrade", (ures, upSocket, upHead) => {
      socket.write(statusLine(ures) + headerLines(downstreamHeaders(ures.headers, target, { upgrade: true })) + "\r\n");
      if (upHead.length) socket.write(upHead);
      if (head.length) upSocket.write(head);
      upSocket.pipe(socket);
      socket.pipe(upSocket);
      upSocket.on("close", closeBoth);
      upSocket.on("error", closeBoth);
    });
    upstream.on("response", (ures) => {
      // The server declined the upgrade: relay its answer and close.
      socket.write(statusLine(ures) + headerLines({ ...downstreamHeaders(ures.headers, target), connection: "close" }) + "\r\n");
      // pipe() ends the browser's socket once the body is through; the tunnel can go at once.
      ures.pipe(socket);
      ures.on("end", () => stream.destroy());
    });
    upstream.on("error", (err) => {
      socket.end(`HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nThe server on port ${target.port} in your sandbox did not answer the upgrade (${err.message}).\n`);
      stream.destroy();
    });
    upstream.end();
  }

  close(): void {
    this.closed = true;
    for (const p of this.clients.values()) void p.then((c) => c.close(), () => undefined);
    this.clients.clear();
    this.grants.clear();
    this.grantKeys.clear();
  }

  /** Decides who may see what; throws a PreviewAnswer for everything that is not a proxied request. */
  private async resolve(req: IncomingMessage): Promise<Target> {
    const raw = req.url ?? "/";
    const q = raw.indexOf("?");
    const path = q < 0 ? raw : raw.slice(0, q);
    const query = q < 0 ? "" : raw.slice(q);
    const parts = path.slice(PREVIEW_PREFIX.length).split("/");
    const first = parts[0] ?? "";

    const grantMatch = GRANT_PATTERN.exec(first);
    if (grantMatch) {
      const grant = await this.grantFor(grantMatch[1]!, req);
      // A grant URL without a slash after it: relative links need one.
      if (parts.length === 1) throw new PreviewAnswer(308, "Moved", "", `${path}/${query}`);
      const sandbox = this.deps.sandboxes.find(grant.userId, grant.labId);
      if (!sandbox) throw notRunning(grant.labId);
      return { sandbox, port: grant.port, upstreamPath: "/" + parts.slice(1).join("/") + query, prefix: `${PREVIEW_PREFIX}~${grant.token}` };
    }

    // The entry URL: /preview/<lab>/<port>/<path>
    const [lab, portText] = parts;
    if (!lab || !LAB_PATTERN.test(lab)) throw new PreviewAnswer(404, "Not found", "A preview address looks like /preview/<lab>/<port>/.");
    const port = parsePort(portText);
    const user = await this.deps.sessions.fromRequest(req);
    if (!user) {
      const next = `${path}${query}`;
      throw new PreviewAnswer(401, "Sign in first", "Previews are for the learner whose sandbox it is: sign in to see yours.", undefined, { href: `/signin?next=${encodeURIComponent(next)}`, text: "Sign in" });
    }
    if (!this.deps.sandboxes.find(user.id, lab)) throw notRunning(lab);
    const rest = parts.length > 2 ? "/" + parts.slice(2).join("/") : "/";
    const token = this.mint(user.sessionId, user.id, lab, port);
    // 307 keeps the method and body of a form post.
    throw new PreviewAnswer(307, "Preview", "", `${PREVIEW_PREFIX}~${token}${rest}${query}`);
  }

  private async grantFor(token: string, req: IncomingMessage): Promise<Grant> {
    const gone = new PreviewAnswer(404, "Preview link expired", "This preview link is not valid (any more): open the preview again from your lab.");
    const grant = this.grants.get(token);
    if (!grant) throw gone;
    const now = Date.now();
    if (now > grant.expiresAt) {
      this.dropGrant(grant);
      throw gone;
    }
    if (now - grant.checkedAt > SESSION_RECHECK_MS) {
      const session = await this.deps.db.session.findUnique({ where: { id: grant.sessionId } });
      if (!session || session.expiresAt.getTime() < now) {
        this.dropGrant(grant);
        throw gone;
      }
      grant.checkedAt = now;
    }
    // A signed-in browser of someone else: as if the link did not exist. (Requests from the
    // sandboxed page itself carry no cookie; the grant alone decides those.)
    if (req.headers.cookie) {
      const user = await this.deps.sessions.fromRequest(req);
      if (user && user.id !== grant.userId) throw gone;
    }
    return grant;
  }

  private mint(sessionId: string, userId: string, labId: string, port: number): string {
    const key = `${sessionId}:${labId}:${port}`;
    const now = Date.now();
    const known = this.grantKeys.get(key);
    const existing = known ? this.grants.get(known) : undefined;
    if (existing && existing.expiresAt - now > GRANT_TTL_MS / 2) return existing.token;
    for (const g of this.grants.values()) if (now > g.expiresAt) this.dropGrant(g);
    const token = randomBytes(32).toString("base64url");
    const grant: Grant = { token, sessionId, userId, labId, port, expiresAt: now + GRANT_TTL_MS, checkedAt: now };
    this.grants.set(token, grant);
    this.grantKeys.set(key, token);
    return token;
  }

  private dropGrant(g: Grant): void {
    this.grants.delete(g.token);
    const key = `${g.sessionId}:${g.labId}:${g.port}`;
    if (this.grantKeys.get(key) === g.token) this.grantKeys.delete(key);
  }

  private async openTunnel(target: Target): Promise<TunnelStream> {
    const client = await this.client(target.sandbox.id);
    try {
      return await client.open(target.port);
    } catch (err) {
      if (err instanceof TunnelOpenError && err.code === "ECONNREFUSED") {
        throw new PreviewAnswer(502, "Nothing listens there", `Nothing listens on port ${target.port} in your sandbox. Start a server on that port (for example: busybox httpd -f -p ${target.port}) and reload.`);
      }
      throw new PreviewAnswer(502, "Sandbox unreachable", `Could not reach port ${target.port} in your sandbox: ${(err as Error).message}`);
    }
  }

  private async client(sandboxId: string): Promise<TunnelClient> {
    const known = this.clients.get(sandboxId);
    if (known) {
      const c = await known.catch(() => undefined);
      if (c?.isOpen) return c;
      if (this.clients.get(sandboxId) === known) this.clients.delete(sandboxId);
    }
    // What the sandbox's agent sent that was dropped, and a link closed for not reading, go to the
    // log (throttled per link): a hostile sandbox must not be able to flood it.
    const onWarning = (message: string) => this.deps.log.warn({ sandbox: sandboxId }, `preview: ${message}`);
    const attempt = this.deps.endpoint(sandboxId).then((ep) => TunnelClient.connect(ep, { onWarning }));
    this.clients.set(sandboxId, attempt);
    try {
      const c = await attempt;
      c.onClose(() => {
        if (this.clients.get(sandboxId) === attempt) this.clients.delete(sandboxId);
      });
      if (this.closed) c.close();
      return c;
    } catch (err) {
      if (this.clients.get(sandboxId) === attempt) this.clients.delete(sandboxId);
      throw new PreviewAnswer(502, "Sandbox unreachable", `Could not reach your sandbox: ${(err as Error).message}`);
    }
  }

  private toAnswer(err: unknown): PreviewAnswer {
    if (err instanceof PreviewAnswer) return err;
    this.deps.log.error({ err: String(err) }, "preview failed");
    return new PreviewAnswer(500, "Preview failed", "Something went wrong on our side; it has been logged.");
  }

  private answer(res: ServerResponse, err: unknown): void {
    const a = this.toAnswer(err);
    if (res.headersSent) return void res.destroy();
    const headers: OutgoingHttpHeaders = {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      // Our own page, no scripts: nothing to sandbox, and its links must work in a tab of their own.
      "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
    };
    if (a.location) headers.location = a.location;
    res.writeHead(a.status, headers);
    res.end(a.location ? "" : errorPage(a));
  }
}

function parsePort(text: string | undefined): number {
  const port = /^\d{1,5}$/.test(text ?? "") ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new PreviewAnswer(400, "Bad port", `"${text ?? ""}" is not a port: give a number from 1 to 65535, as in /preview/<lab>/8080/.`);
  }
  return port;
}

function notRunning(lab: string): PreviewAnswer {
  // The same answer whether the lab exists, or someone else has a sandbox for it: nothing leaks.
  return new PreviewAnswer(404, "No sandbox", `You have no running sandbox for the lab "${lab}": open the lab first, then the preview.`, undefined, { href: `/labs/${lab}`, text: "Open the lab" });
}

function upstreamHeaders(req: IncomingMessage, target: Target): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    // Berth's cookie is never the learner's server's business.
    if (value === undefined || HOP_BY_HOP.has(name) || name === "cookie" || name === "host") continue;
    out[name] = value;
  }
  out.host = `localhost:${target.port}`;
  out["x-forwarded-host"] = req.headers.host ?? "";
  out["x-forwarded-proto"] = (req.socket as { encrypted?: boolean }).encrypted ? "https" : "http";
  out["x-forwarded-prefix"] = target.prefix;
  // One request per tunnel: the server closes after answering and the tunnel goes with it.
  out.connection = "close";
  return out;
}

function downstreamHeaders(headers: IncomingHttpHeaders, target: Target, opts: { upgrade?: boolean } = {}): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name === "set-cookie") continue;
    if (HOP_BY_HOP.has(name) && !(opts.upgrade && (name === "connection" || name === "upgrade"))) continue;
    out[name] = value;
  }
  const location = headers.location;
  if (typeof location === "string") out.location = rewriteLocation(location, target);
  // Ours first; a policy of the learner's own still applies on top: a comma separates policies in
  // one header, and the browser enforces each of them.
  const theirs = headers["content-security-policy"];
  out["content-security-policy"] = theirs ? `${PREVIEW_CSP}, ${theirs}` : PREVIEW_CSP;
  out["x-content-type-options"] = "nosniff";
  out["referrer-policy"] = "same-origin";
  return out;
}

/** A redirect to /x, or to http://localhost:<port>/x, stays inside the preview. */
function rewriteLocation(location: string, target: Target): string {
  if (location.startsWith("/") && !location.startsWith("//")) return target.prefix + location;
  try {
    const u = new URL(location);
    const local = ["localhost", "127.0.0.1", "[::1]"].includes(u.hostname);
    if (local && (u.port === String(target.port) || (!u.port && target.port === 80))) return target.prefix + u.pathname + u.search + u.hash;
  } catch {
    // relative without a slash: the browser resolves it against the preview URL already
  }
  return location;
}

function statusLine(res: IncomingMessage): string {
  return `HTTP/1.1 ${res.statusCode ?? 502} ${res.statusMessage ?? ""}\r\n`;
}

function headerLines(headers: OutgoingHttpHeaders): string {
  let out = "";
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) out += `${name}: ${String(v).replace(/[\r\n]/g, "")}\r\n`;
  }
  return out;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function errorPage(a: PreviewAnswer): string {
  const link = a.link ? `<p><a href="${escapeHtml(a.link.href)}">${escapeHtml(a.link.text)}</a></p>` : "";
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(a.title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;margin:2rem;color:#222}h1{font-size:1.25rem}</style></head>
<body><h1>${escapeHtml(a.title)}</h1><p data-preview-error="${a.status}">${escapeHtml(a.message)}</p>${link}</body></html>\n`;
}
