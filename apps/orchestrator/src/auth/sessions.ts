// Sessions: a random token in an httpOnly cookie; the database keeps only its SHA-256, so a leaked
// database does not leak live sessions. Whoever holds something on behalf of a session (the
// socket gateway's live sockets) listens to `onEnded` and lets go when the session is destroyed.
import { createHash, randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Db } from "../db/index.js";
import type { Role, UserView } from "@berth/protocol";

export const SESSION_COOKIE = "berth_session";

export interface SessionUser extends UserView {
  sessionId: string;
  expiresAt: Date;
}

const hashToken = (token: string) => createHash("sha256").update(token).digest("hex");

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    try {
      out[name] = decodeURIComponent(value);
    } catch {
      // A malformed cookie from some other app on the same host: ignore it, do not fail the request.
    }
  }
  return out;
}

/**
 * Secure cookies need TLS, except on localhost where browsers accept them over plain HTTP.
 * `forced` (config.cookieSecure, BERTH_COOKIE_SECURE=1|0) overrides the guess.
 */
function wantsSecureCookie(req: IncomingMessage, forced: boolean | undefined): boolean {
  if (forced !== undefined) return forced;
  const proto = String(req.headers["x-forwarded-proto"] ?? "");
  if (proto === "https" || (req.socket as { encrypted?: boolean }).encrypted) return true;
  const host = String(req.headers.host ?? "").replace(/:\d+$/, "");
  return host === "localhost" || host === "127.0.0.1" || host === "[::1]";
}

export function sessionCookie(req: IncomingMessage, token: string, maxAgeMs: number, secure?: boolean): string {
  const attrs = [`${SESSION_COOKIE}=${token}`, "Path=/", "HttpOnly", "SameSite=Lax", `Max-Age=${Math.floor(maxAgeMs / 1000)}`];
  if (wantsSecureCookie(req, secure)) attrs.push("Secure");
  return attrs.join("; ");
}

export function clearedSessionCookie(): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`;
}

export class SessionStore {
  private readonly endedListeners = new Set<(sessionId: string) => void>();

  constructor(private readonly db: Db, private readonly ttlMs: number) {}

  /** Called with the session's id when it is destroyed (sign-out) or found expired. Returns an unsubscribe. */
  onEnded(listener: (sessionId: string) => void): () => void {
    this.endedListeners.add(listener);
    return () => this.endedListeners.delete(listener);
  }

  private ended(sessionId: string): void {
    for (const l of this.endedListeners) {
      try {
        l(sessionId);
      } catch {
        // A listener's failure must not keep the others from letting go.
      }
    }
  }

  async create(userId: string, userAgent?: string): Promise<string> {
    const token = randomBytes(32).toString("base64url");
    const now = new Date();
    await this.db.session.create({
      data: {
        id: hashToken(token),
        userId,
        createdAt: now,
        lastSeenAt: now,
        expiresAt: new Date(now.getTime() + this.ttlMs),
        userAgent: userAgent?.slice(0, 200) ?? null,
      },
    });
    return token;
  }

  async lookup(token: string | undefined): Promise<SessionUser | null> {
    if (!token || token.length > 100) return null;
    const row = await this.db.session.findUnique({ where: { id: hashToken(token) }, include: { user: true } });
    if (!row) return null;
    if (row.expiresAt.getTime() < Date.now()) {
      await this.db.session.delete({ where: { id: row.id } }).catch(() => undefined);
      this.ended(row.id);
      return null;
    }
    return { sessionId: row.id, expiresAt: row.expiresAt, id: row.user.id, email: row.user.email, name: row.user.name, role: row.user.role as Role };
  }

  async fromRequest(req: IncomingMessage): Promise<SessionUser | null> {
    return this.fromCookie(req.headers.cookie);
  }

  /** The same from a Cookie header's value (the web app's server renders pages with the visitor's). */
  async fromCookie(cookieHeader: string | null | undefined): Promise<SessionUser | null> {
    return this.lookup(parseCookies(cookieHeader ?? undefined)[SESSION_COOKIE]);
  }

  async destroy(sessionId: string): Promise<void> {
    await this.db.session.deleteMany({ where: { id: sessionId } });
    this.ended(sessionId);
  }

  /** Every session of a user (their password was changed from the console). */
  async destroyAllOf(userId: string): Promise<void> {
    const rows = await this.db.session.findMany({ where: { userId }, select: { id: true } });
    await this.db.session.deleteMany({ where: { userId } });
    for (const r of rows) this.ended(r.id);
  }
}
