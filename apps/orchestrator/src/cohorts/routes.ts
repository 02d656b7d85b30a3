// The cohort routes (HTTP only; behaviour in cohorts.ts, board.ts, grades.ts). Instructor routes
// load the cohort for the caller first (Cohorts.load): 401 signed out, 403 for a learner, 404 for
// a cohort that is not theirs. Learner routes: the invite (look up, join) and their messages.
import {
  CohortLabsBody,
  CreateCohortBody,
  CreateInviteBody,
  MessageBody,
  UpdateCohortBody,
} from "@berth/protocol";
import type { IncomingMessage } from "node:http";
import { z } from "zod";
import type { Db } from "../db/index.js";
import { requireRole, requireSignedIn, STAFF_ROLES } from "../auth/roles.js";
import type { SessionStore } from "../auth/sessions.js";
import { HttpError, sendJson, type Router } from "../http/router.js";
import type { LabCatalog } from "../labs/catalog.js";
import type { BoardBook } from "./board.js";
import type { Caller, Cohorts, CohortRow } from "./cohorts.js";
import { gradesCsv, learnerEvents } from "./grades.js";
import type { CohortLive } from "./live.js";

const TokenBody = z.object({ token: z.string().min(10).max(200) });

export function registerCohortRoutes(
  router: Router,
  deps: { db: Db; sessions: SessionStore; catalog: LabCatalog; cohorts: Cohorts; board: BoardBook; live: () => CohortLive | undefined },
): void {
  const { sessions, cohorts } = deps;
  const caller = (u: { id: string; role: Caller["role"]; email: string }): Caller => ({ id: u.id, role: u.role, email: u.email });
  const owned = async (req: IncomingMessage, cohortId: string): Promise<{ me: Caller; cohort: CohortRow }> => {
    const me = caller(await requireSignedIn(sessions, req));
    return { me, cohort: await cohorts.load(me, cohortId) };
  };

  router.on("GET", "/api/cohorts", async ({ req }) => {
    const me = caller(await requireRole(sessions, req, STAFF_ROLES));
    return { cohorts: await cohorts.list(me) };
  });

  router.on("POST", "/api/cohorts", async ({ req, res, body }) => {
    const me = caller(await requireRole(sessions, req, STAFF_ROLES));
    sendJson(res, 201, { cohort: await cohorts.create(me, await body(CreateCohortBody)) });
  });

  router.on("GET", "/api/cohorts/:cohortId", async ({ req, params }) => {
    const { cohort } = await owned(req, params.cohortId!);
    return { cohort: await cohorts.detail(cohort) };
  });

  router.on("PATCH", "/api/cohorts/:cohortId", async ({ req, params, body }) => {
    const { cohort } = await owned(req, params.cohortId!);
    const input = await body(UpdateCohortBody);
    const updated = await cohorts.update(cohort, input);
    deps.live()?.cohortChanged(cohort.id);
    return { cohort: updated };
  });

  router.on("DELETE", "/api/cohorts/:cohortId", async ({ req, res, params }) => {
    const { cohort } = await owned(req, params.cohortId!);
    await cohorts.remove(cohort);
    res.writeHead(204).end();
  });

  router.on("PUT", "/api/cohorts/:cohortId/labs", async ({ req, params, body }) => {
    const { cohort } = await owned(req, params.cohortId!);
    const { labs } = await body(CohortLabsBody);
    const detail = await cohorts.setLabs(cohort, labs);
    deps.live()?.cohortChanged(cohort.id);
    return { cohort: detail };
  });

  router.on("POST", "/api/cohorts/:cohortId/invites", async ({ req, res, params, body }) => {
    const { cohort } = await owned(req, params.cohortId!);
    sendJson(res, 201, { invite: await cohorts.createInvite(cohort, await body(CreateInviteBody)) });
  });

  router.on("DELETE", "/api/cohorts/:cohortId/invites/:inviteId", async ({ req, res, params }) => {
    const { cohort } = await owned(req, params.cohortId!);
    await cohorts.revokeInvite(cohort, params.inviteId!);
    res.writeHead(204).end();
  });

  router.on("DELETE", "/api/cohorts/:cohortId/learners/:userId", async ({ req, res, params }) => {
    const { cohort } = await owned(req, params.cohortId!);
    await cohorts.removeLearner(cohort, params.userId!);
    deps.live()?.cohortChanged(cohort.id);
    res.writeHead(204).end();
  });

  router.on("GET", "/api/cohorts/:cohortId/board", async ({ req, params }) => {
    const { cohort } = await owned(req, params.cohortId!);
    return { board: await deps.board.board(cohort, await cohorts.labsOf(cohort.id)) };
  });

  router.on("GET", "/api/cohorts/:cohortId/learners/:userId/events", async ({ req, params }) => {
    const { cohort } = await owned(req, params.cohortId!);
    if (!(await cohorts.isLearnerOf(cohort.id, params.userId!))) throw new HttpError(404, "no such learner in this cohort");
    const labIds = (await cohorts.labsOf(cohort.id)).map((l) => l.labId);
    return { events: await learnerEvents(deps, cohort, params.userId!, labIds) };
  });

  router.on("POST", "/api/cohorts/:cohortId/messages", async ({ req, res, params, body }) => {
    const { me, cohort } = await owned(req, params.cohortId!);
    const { message, to, direct } = await cohorts.message(cohort, me, await body(MessageBody));
    deps.live()?.deliver(message, to, direct);
    sendJson(res, 201, { message: { ...message, direct }, recipients: to.length });
  });

  router.on("GET", "/api/cohorts/:cohortId/grades.csv", async ({ req, res, params }) => {
    const { cohort } = await owned(req, params.cohortId!);
    const csv = await gradesCsv(deps, cohort, await cohorts.labsOf(cohort.id));
    const file = `${cohort.name.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "") || "cohort"}-grades.csv`;
    res.writeHead(200, {
      "content-type": "text/csv; charset=utf-8",
      "content-disposition": `attachment; filename="${file}"`,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    });
    res.end(csv);
  });

  // ---- learners ----

  // The token travels in the body, never in a URL (the link carries it in its fragment).
  router.on("POST", "/api/invites/lookup", async ({ body }) => {
    const { token } = await body(TokenBody);
    return { invite: await cohorts.inviteInfo(token) };
  });

  router.on("POST", "/api/invites/join", async ({ req, body }) => {
    const me = caller(await requireSignedIn(sessions, req));
    const { token } = await body(TokenBody);
    const joined = await cohorts.join(me, token);
    if (!joined.alreadyMember) deps.live()?.cohortChanged(joined.cohortId);
    return joined;
  });

  router.on("GET", "/api/me/messages", async ({ req }) => {
    const me = await requireSignedIn(sessions, req);
    return { messages: await cohorts.messagesFor(me.id) };
  });
}
