// The installation's administrators come from the console, never from a sign-up race:
// - `BERTH_ADMIN_EMAIL` + `BERTH_ADMIN_PASSWORD` (unattended installs, tests): that account is
//   created, or updated to admin with that password, at every start;
// - otherwise, while no admin exists, every start prints a one-time setup link (`/setup#<token>`).
//   The token lives only in this process (its SHA-256), works once, and expires; a restart prints
//   a new one. Whoever opens it sets the admin's email and password.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { SignUpBody } from "@berth/protocol";
import type { Db } from "../db/index.js";
import { hashPassword, verifyPassword } from "./passwords.js";

/**
 * Creates the account as an admin, or makes an existing one admin with this password.
 * `passwordChanged`: the account existed with another password, so whoever signed in with the old
 * one should be signed out (the caller ends its sessions); the same password at every start
 * changes nothing.
 */
export async function ensureAdmin(
  db: Db,
  admin: { email: string; password: string },
): Promise<{ id: string; created: boolean; passwordChanged: boolean }> {
  const parsed = SignUpBody.safeParse(admin);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`BERTH_ADMIN_${String(issue.path[0] ?? "").toUpperCase()} is not usable: ${issue.message}`);
  }
  const existing = await db.user.findUnique({ where: { email: parsed.data.email } });
  if (existing) {
    const same = await verifyPassword(parsed.data.password, existing.passwordHash);
    const passwordHash = same ? existing.passwordHash : await hashPassword(parsed.data.password);
    await db.user.update({ where: { id: existing.id }, data: { role: "admin", passwordHash } });
    return { id: existing.id, created: false, passwordChanged: !same };
  }
  const user = await db.user.create({ data: { email: parsed.data.email, passwordHash: await hashPassword(parsed.data.password), role: "admin" } });
  return { id: user.id, created: true, passwordChanged: false };
}

export async function hasAdmin(db: Db): Promise<boolean> {
  return (await db.user.count({ where: { role: "admin" } })) > 0;
}

const sha256 = (s: string) => createHash("sha256").update(s).digest();

export class SetupLink {
  private tokenHash: Buffer | undefined;
  private expiresAt = 0;

  /** A new token, replacing any earlier one. */
  issue(ttlMs: number, now = Date.now()): string {
    const token = randomBytes(32).toString("base64url");
    this.tokenHash = sha256(token);
    this.expiresAt = now + ttlMs;
    return token;
  }

  get open(): boolean {
    return this.tokenHash !== undefined && Date.now() < this.expiresAt;
  }

  /** True once for the right token before it expires; the token is spent either way if right. */
  redeem(token: string, now = Date.now()): boolean {
    if (!this.tokenHash) return false;
    const right = timingSafeEqual(sha256(token), this.tokenHash);
    if (!right) return false;
    this.tokenHash = undefined;
    return now < this.expiresAt;
  }

  close(): void {
    this.tokenHash = undefined;
  }
}
