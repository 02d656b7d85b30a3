// The admin's routes: list accounts, make an account an instructor (or a learner again). Admins
// themselves come from the console only (auth/admin.ts): no route makes or unmakes one.
import { SetRoleBody, type AdminUserView, type Role } from "@berth/protocol";
import type { Logger } from "pino";
import type { Db } from "../db/index.js";
import { HttpError, type Router } from "../http/router.js";
import { requireRole } from "./roles.js";
import type { SessionStore } from "./sessions.js";

const MAX_LISTED = 500;

export function registerRoleRoutes(router: Router, deps: { db: Db; sessions: SessionStore; log: Logger }): void {
  const { db, sessions, log } = deps;
  const view = (u: { id: string; email: string; name: string | null; role: string; createdAt: Date }): AdminUserView => ({
    id: u.id, email: u.email, name: u.name, role: u.role as Role, createdAt: u.createdAt.toISOString(),
  });

  // ?q= narrows by email (case-insensitive: emails are stored lower-case).
  router.on("GET", "/api/admin/users", async ({ req }) => {
    await requireRole(sessions, req, ["admin"]);
    const q = new URL(req.url ?? "/", "http://x").searchParams.get("q")?.trim().toLowerCase().slice(0, 254) ?? "";
    const users = await db.user.findMany({
      where: q ? { email: { contains: q } } : {},
      orderBy: [{ role: "asc" }, { email: "asc" }],
      take: MAX_LISTED,
      select: { id: true, email: true, name: true, role: true, createdAt: true },
    });
    return { users: users.map(view), truncated: users.length === MAX_LISTED };
  });

  router.on("PUT", "/api/admin/users/:userId/role", async ({ req, params, body }) => {
    const admin = await requireRole(sessions, req, ["admin"]);
    const { role } = await body(SetRoleBody);
    const target = await db.user.findUnique({ where: { id: params.userId! } });
    if (!target) throw new HttpError(404, "no such account");
    if (target.role === "admin") throw new HttpError(409, "administrators are made and unmade from the console (BERTH_ADMIN_EMAIL), not here");
    const updated = await db.user.update({ where: { id: target.id }, data: { role } });
    log.info({ admin: admin.email, user: target.email, from: target.role, to: role }, "role changed");
    return { user: view(updated) };
  });
}
