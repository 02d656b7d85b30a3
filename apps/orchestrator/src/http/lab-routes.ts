// The lab routes under /api/labs: the catalog, a learner's view of a lab and progress, entering and
// skipping steps, checks, hints, solutions, quizzes, and the lab's images. This file translates
// HTTP; what each request does is decided in labs/learner-labs.ts. Shapes are in @berth/protocol
// (api.ts). Check scripts, solutions, quiz answers and hint texts never leave the server unasked:
// hints and solutions appear in the progress only once revealed.
import { QuizAnswersBody } from "@berth/protocol";
import type { IncomingMessage } from "node:http";
import type { SessionStore, SessionUser } from "../auth/sessions.js";
import type { LearnerLabs } from "../labs/learner-labs.js";
import { LabRefusal } from "../labs/refusal.js";
import { HttpError, type RouteContext, type Router } from "./router.js";

export interface LabRouteDeps {
  sessions: SessionStore;
  labs: LearnerLabs;
}

const STATUS = { missing: 404, conflict: 409, invalid: 400 } as const;

/** A handler whose refusals become 4xx answers with the refusal's message. */
const translated =
  (handler: (ctx: RouteContext) => Promise<unknown>) =>
  async (ctx: RouteContext): Promise<unknown> => {
    try {
      return await handler(ctx);
    } catch (err) {
      if (err instanceof LabRefusal) throw new HttpError(STATUS[err.kind], err.message);
      throw err;
    }
  };

export function registerLabRoutes(router: Router, deps: LabRouteDeps): void {
  const { sessions, labs } = deps;

  const requireUser = async (req: IncomingMessage): Promise<SessionUser> => {
    const user = await sessions.fromRequest(req);
    if (!user) throw new HttpError(401, "sign in first");
    return user;
  };

  // Signed in or not; a signed-in learner sees each lab's state.
  router.on("GET", "/api/labs", translated(async ({ req }) => {
    const user = await sessions.fromRequest(req);
    return { labs: await labs.summaries(user?.id) };
  }));

  router.on("GET", "/api/labs/:labId", translated(async ({ req, params }) => {
    const user = await requireUser(req);
    return labs.open(user.id, params.labId!); // a missing lab stops here (404)
  }));

  router.on("POST", "/api/labs/:labId/steps/:stepId/enter", translated(async ({ req, params }) => {
    const user = await requireUser(req);
    return { progress: await labs.enter(user.id, params.labId!, params.stepId!) };
  }));

  router.on("POST", "/api/labs/:labId/steps/:stepId/skip", translated(async ({ req, params }) => {
    const user = await requireUser(req);
    return { progress: await labs.skip(user.id, params.labId!, params.stepId!) };
  }));

  router.on("POST", "/api/labs/:labId/checks/:checkId", translated(async ({ req, params }) => {
    const user = await requireUser(req);
    return labs.check(user.id, params.labId!, params.checkId!);
  }));

  router.on("POST", "/api/labs/:labId/checks/:checkId/hints", translated(async ({ req, params }) => {
    const user = await requireUser(req);
    return { progress: await labs.hint(user.id, params.labId!, params.checkId!) };
  }));

  router.on("POST", "/api/labs/:labId/checks/:checkId/solution", translated(async ({ req, params }) => {
    const user = await requireUser(req);
    return { progress: await labs.solution(user.id, params.labId!, params.checkId!) };
  }));

  router.on("POST", "/api/labs/:labId/quizzes/:quizId", translated(async ({ req, params, body }) => {
    const user = await requireUser(req);
    const { answers } = await body(QuizAnswersBody);
    return labs.quiz(user.id, params.labId!, params.quizId!, answers);
  }));

  // Images the lab's text shows (<img src="/api/labs/<lab>/assets/<path>">): lab content, like the
  // catalog, so no session is needed (an <img> on a signed-out page still loads).
  // With a session, the picture comes from the version of the lab this user started (labs authored
  // in the browser), and an author's "Try it" preview shows its own pictures.
  router.on("GET", "/api/labs/:labId/assets/*", translated(async ({ req, res, params }) => {
    const user = await sessions.fromRequest(req).catch(() => null);
    const asset = await labs.asset(params.labId!, params["*"]!, user?.id);
    res.writeHead(200, {
      "content-type": asset.contentType,
      "content-length": String(asset.bytes.length),
      "x-content-type-options": "nosniff",
      // A picture needs nothing else: should one be opened as a page, it runs and loads nothing.
      "content-security-policy": "default-src 'none'; sandbox",
      "cross-origin-resource-policy": "same-origin",
      "cache-control": "private, max-age=300",
    });
    res.end(asset.bytes);
  }));
}
