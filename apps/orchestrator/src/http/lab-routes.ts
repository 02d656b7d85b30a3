// The lab routes under /api/labs: the catalog, a learner's view of a lab, checks and hints.
// Shapes are in @berth/protocol (api.ts). Check scripts and solutions never leave the server.
import { renderHint } from "@berth/labkit";
import type { IncomingMessage } from "node:http";
import type { Db } from "../db/index.js";
import type { SessionStore, SessionUser } from "../auth/sessions.js";
import type { CheckRunner } from "../grading/check-runner.js";
import type { LabCatalog } from "../labs/catalog.js";
import type { SandboxManager } from "../sandboxes/sandbox-manager.js";
import { HttpError, type Router } from "./router.js";

export interface LabRouteDeps {
  db: Db;
  sessions: SessionStore;
  catalog: LabCatalog;
  sandboxes: SandboxManager;
  checks: CheckRunner;
}

export function registerLabRoutes(router: Router, deps: LabRouteDeps): void {
  const { db, sessions, catalog, sandboxes, checks } = deps;

  const requireUser = async (req: IncomingMessage): Promise<SessionUser> => {
    const user = await sessions.fromRequest(req);
    if (!user) throw new HttpError(401, "sign in first");
    return user;
  };
  const requireLab = (labId: string) => {
    const entry = catalog.get(labId);
    if (!entry) throw new HttpError(404, `no lab called "${labId}"`);
    return entry;
  };

  router.on("GET", "/api/labs", async () => ({ labs: catalog.list() }));

  router.on("GET", "/api/labs/:labId", async ({ req, params }) => {
    const user = await requireUser(req);
    const entry = requireLab(params.labId!);
    return { lab: entry.view, progress: await checks.progress(user.id, entry.lab.id) };
  });

  router.on("POST", "/api/labs/:labId/checks/:checkId", async ({ req, params }) => {
    const user = await requireUser(req);
    const entry = requireLab(params.labId!);
    if (!entry.view.steps.some((s) => s.checks.some((c) => c.id === params.checkId))) {
      throw new HttpError(404, `lab "${entry.lab.id}" has no check "${params.checkId}"`);
    }
    const sb = sandboxes.find(user.id, entry.lab.id);
    if (!sb || !sb.ready) throw new HttpError(409, "your sandbox is not running yet: open the lab's terminal first");
    const result = await checks.run(user.id, entry.lab.id, params.checkId!, sb);
    void sandboxes.touch(sb);
    return { result, progress: await checks.progress(user.id, entry.lab.id) };
  });

  router.on("GET", "/api/labs/:labId/checks/:checkId/hint", async ({ req, params }) => {
    const user = await requireUser(req);
    const entry = requireLab(params.labId!);
    const html = renderHint(entry.lab, params.checkId!);
    if (html === undefined) throw new HttpError(404, `check "${params.checkId}" has no hint`);
    await db.event.create({
      data: { userId: user.id, labId: entry.lab.id, kind: "hint", data: JSON.stringify({ checkId: params.checkId }) },
    });
    return { html };
  });
}
