// The REST API under /api: accounts here; the catalog, lab views, checks and hints in lab-routes.ts.
// Shapes are in @berth/protocol (api.ts). Check scripts and solutions never leave the server.
import { SignInBody, SignUpBody, type Role, type UserView } from "@berth/protocol";
import type { IncomingMessage } from "node:http";
import type { Logger } from "pino";
import type { Db } from "../db/index.js";
import { decoyHash, hashPassword, verifyPassword } from "../auth/passwords.js";
import { clearedSessionCookie, sessionCookie, type SessionStore, type SessionUser } from "../auth/sessions.js";
import type { CheckRunner } from "../grading/check-runner.js";
import type { LabCatalog } from "../labs/catalog.js";
import type { SandboxManager } from "../sandboxes/sandbox-manager.js";
import { registerLabRoutes } from "./lab-routes.js";
import { HttpError, Router, sendJson } from "./router.js";

export interface ApiDeps {
  db: Db;
  sessions: SessionStore;
  catalog: LabCatalog;
  sandboxes: SandboxManager;
  checks: CheckRunner;
  sessionTtlMs: number;
  log: Logger;
}

const userView = (u: { id: string; email: string; name: string | null; role: string }): UserView => ({
  id: u.id, email: u.email, name: u.name, role: u.role as Role,
});

export function createApi(deps: ApiDeps): Router {
  const { db, sessions, log } = deps;
  const router = new Router((err, req) => log.error({ err, url: req.url, method: req.method }, "API handler failed"));

  const requireUser = async (req: IncomingMessage): Promise<SessionUser> => {
    const user = await sessions.fromRequest(req);
    if (!user) throw new HttpError(401, "sign in first");
    return user;
  };

  router.on("POST", "/api/auth/signup", async ({ req, res, body }) => {
    const input = await body(SignUpBody);
    const passwordHash = await hashPassword(input.password);
    // The first account administers the installation.
    const user = await db.$transaction(async (tx) => {
      if (await tx.user.findUnique({ where: { email: input.email } })) {
        throw new HttpError(409, "an account with this email exists already: sign in instead", "email");
      }
      const role: Role = (await tx.user.count()) === 0 ? "admin" : "learner";
      return tx.user.create({ data: { email: input.email, name: input.name ?? null, passwordHash, role } });
    });
    const token = await sessions.create(user.id, req.headers["user-agent"]);
    sendJson(res, 201, { user: userView(user) }, { "set-cookie": sessionCookie(req, token, deps.sessionTtlMs) });
  });

  router.on("POST", "/api/auth/signin", async ({ req, res, body }) => {
    const input = await body(SignInBody);
    const user = await db.user.findUnique({ where: { email: input.email } });
    const ok = await verifyPassword(input.password, user?.passwordHash ?? (await decoyHash()));
    if (!user || !ok) throw new HttpError(401, "wrong email or password");
    const token = await sessions.create(user.id, req.headers["user-agent"]);
    sendJson(res, 200, { user: userView(user) }, { "set-cookie": sessionCookie(req, token, deps.sessionTtlMs) });
  });

  router.on("POST", "/api/auth/signout", async ({ req, res }) => {
    const user = await sessions.fromRequest(req);
    if (user) await sessions.destroy(user.sessionId);
    res.writeHead(204, { "set-cookie": clearedSessionCookie() });
    res.end();
  });

  router.on("GET", "/api/me", async ({ req }) => ({ user: userView(await requireUser(req)) }));

  // The lab routes live in their own file (lab-routes.ts).
  registerLabRoutes(router, deps);

  return router;
}
