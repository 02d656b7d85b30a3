// The REST API under /api: accounts here; the catalog, lab views, checks and hints in lab-routes.ts.
// Shapes are in @berth/protocol (api.ts). Check scripts and solutions never leave the server.
import { SetupAdminBody, SignInBody, SignUpBody, type Role, type SignUpResult, type UserView } from "@berth/protocol";
import type { IncomingMessage } from "node:http";
import type { Logger } from "pino";
import type { Db } from "../db/index.js";
import { ensureAdmin, type SetupLink } from "../auth/admin.js";
import { decoyHash, hashPassword, verifyPassword } from "../auth/passwords.js";
import { FailureBackoff, TokenBucket, type Verdict } from "../auth/rate-limit.js";
import { clearedSessionCookie, sessionCookie, type SessionStore, type SessionUser } from "../auth/sessions.js";
import type { CheckRunner } from "../grading/check-runner.js";
import type { LabCatalog } from "../labs/catalog.js";
import type { LearnerLabs } from "../labs/learner-labs.js";
import type { SandboxManager } from "../sandboxes/sandbox-manager.js";
import { registerLabRoutes } from "./lab-routes.js";
import { registerSandboxRoutes } from "./sandbox-routes.js";
import { registerFileRoutes } from "./file-routes.js";
import type { Authoring } from "../authoring/drafts.js";
import { registerAuthoringRoutes } from "../authoring/routes.js";
import { HttpError, Router, clientAddress, sendJson } from "./router.js";

export interface ApiDeps {
  db: Db;
  sessions: SessionStore;
  catalog: LabCatalog;
  sandboxes: SandboxManager;
  checks: CheckRunner;
  /** A learner working through labs (lab-routes.ts). */
  labs: LearnerLabs;
  sessionTtlMs: number;
  /** Mark the session cookie Secure (true), never (false), or by the request (undefined: TLS or not localhost). */
  cookieSecure?: boolean;
  log: Logger;
  /** Sign-up and sign-in throttles (config.authLimits). */
  authLimits: { signupsPerIpPerHour: number; signinFreeFailuresPerAccount: number; signinFreeFailuresPerIp: number };
  /** Behind a reverse proxy: client addresses and hosts from X-Forwarded-*. */
  trustProxy?: boolean;
  /** Open while the installation has no administrator (auth/admin.ts). */
  setupLink?: SetupLink;
  /** Labs authored in the browser (authoring/): instructors' routes under /api/authoring. */
  authoring?: Authoring;
  /** A learner saved a file from the editor (file-routes.ts): the automatic checks look again. */
  onFileSaved?: (userId: string, labId: string) => void;
}

/** 429 with Retry-After when a throttle says wait. */
function refuseIfThrottled(verdict: Verdict, what: string): void {
  if (verdict.allowed) return;
  throw new HttpError(429, `${what}: try again in ${verdict.retryAfterSeconds} s.`, undefined, { "retry-after": String(verdict.retryAfterSeconds) });
}

const userView = (u: { id: string; email: string; name: string | null; role: string }): UserView => ({
  id: u.id, email: u.email, name: u.name, role: u.role as Role,
});

export function createApi(deps: ApiDeps): Router {
  const { db, sessions, log } = deps;
  const trustProxy = deps.trustProxy ?? false;
  const router = new Router((err, req) => log.error({ err, url: req.url, method: req.method }, "API handler failed"), { trustProxy });
  const signups = new TokenBucket(deps.authLimits.signupsPerIpPerHour);
  const signinsByAccount = new FailureBackoff(deps.authLimits.signinFreeFailuresPerAccount);
  const signinsByIp = new FailureBackoff(deps.authLimits.signinFreeFailuresPerIp);

  const requireUser = async (req: IncomingMessage): Promise<SessionUser> => {
    const user = await sessions.fromRequest(req);
    if (!user) throw new HttpError(401, "sign in first");
    return user;
  };

  // Sign-up never signs in and answers a taken email exactly as a new one (same status, body, no
  // cookie, the same scrypt work): its answer does not tell a stranger who has an account. The web
  // form signs in right after. Roles come from the console (auth/admin.ts), never from sign-up.
  router.on("POST", "/api/auth/signup", async ({ req, body }) => {
    const input = await body(SignUpBody);
    refuseIfThrottled(signups.take(clientAddress(req, trustProxy)), "Too many sign-ups from your network");
    const passwordHash = await hashPassword(input.password);
    if (!(await db.user.findUnique({ where: { email: input.email } }))) {
      await db.user.create({ data: { email: input.email, name: input.name ?? null, passwordHash, role: "learner" } }).catch(async (err) => {
        // Two sign-ups for one email at once: the other won, which is an answer like any other.
        if (!(await db.user.findUnique({ where: { email: input.email } }))) throw err;
      });
    }
    const answer: SignUpResult = { ok: true, message: "Your account is ready: sign in with your email and password." };
    return answer;
  });

  router.on("POST", "/api/auth/signin", async ({ req, res, body }) => {
    const input = await body(SignInBody);
    const ip = clientAddress(req, trustProxy);
    // Asked before scrypt runs, so a throttled guess costs the server nothing. Unknown emails are
    // throttled like known ones (the answer must not tell them apart).
    const account = signinsByAccount.check(input.email);
    const address = signinsByIp.check(ip);
    refuseIfThrottled(account.retryAfterSeconds >= address.retryAfterSeconds ? account : address, "Too many wrong passwords");
    const user = await db.user.findUnique({ where: { email: input.email } });
    const ok = await verifyPassword(input.password, user?.passwordHash ?? (await decoyHash()));
    if (!user || !ok) {
      signinsByAccount.failed(input.email);
      signinsByIp.failed(ip);
      throw new HttpError(401, "wrong email or password");
    }
    signinsByAccount.succeeded(input.email);
    const token = await sessions.create(user.id, req.headers["user-agent"]);
    sendJson(res, 200, { user: userView(user) }, { "set-cookie": sessionCookie(req, token, deps.sessionTtlMs, deps.cookieSecure) });
  });

  // The one-time link printed at start while the installation has no administrator.
  router.on("POST", "/api/setup/admin", async ({ req, res, body }) => {
    const input = await body(SetupAdminBody);
    if (!deps.setupLink?.redeem(input.token)) {
      throw new HttpError(403, "This setup link is not valid: it was used already, it expired, or Berth restarted since. Restart Berth for a new one (it is printed while no administrator exists).");
    }
    deps.setupLink.close();
    const { id, passwordChanged } = await ensureAdmin(db, { email: input.email, password: input.password });
    if (passwordChanged) await sessions.destroyAllOf(id);
    if (input.name) await db.user.update({ where: { id }, data: { name: input.name } });
    const user = await db.user.findUniqueOrThrow({ where: { id } });
    log.info({ email: user.email }, "administrator created through the setup link");
    const token = await sessions.create(user.id, req.headers["user-agent"]);
    sendJson(res, 201, { user: userView(user) }, { "set-cookie": sessionCookie(req, token, deps.sessionTtlMs, deps.cookieSecure) });
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
  registerSandboxRoutes(router, deps);
  registerFileRoutes(router, deps);
  if (deps.authoring) registerAuthoringRoutes(router, { sessions, authoring: deps.authoring, log });

  return router;
}
