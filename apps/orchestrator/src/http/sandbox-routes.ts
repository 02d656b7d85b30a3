// The learner's own sandbox for a lab, as the player shows it: how long it has left, why it ended,
// and "Reset my sandbox". HTTP only: what a lifetime is and what a reset does is SandboxManager's.
//   GET  /api/labs/:labId/sandbox        → SandboxLifetimeView (state "none" if never started)
//   POST /api/labs/:labId/sandbox/reset  → { sandbox: SandboxLifetimeView } of the fresh sandbox
// Both answer only about the caller's own sandbox: there is no way to name someone else's.
import type { SandboxLifetimeView } from "@berth/protocol";
import type { IncomingMessage } from "node:http";
import type { Logger } from "pino";
import type { SessionStore, SessionUser } from "../auth/sessions.js";
import type { LabCatalog } from "../labs/catalog.js";
import type { SandboxLifetime, SandboxManager } from "../sandboxes/sandbox-manager.js";
import { HttpError, type Router } from "./router.js";

export interface SandboxRouteDeps {
  sessions: SessionStore;
  catalog: LabCatalog;
  sandboxes: SandboxManager;
  log: Logger;
}

function view(lifetime: SandboxLifetime | null, idleTimeoutMs: number): SandboxLifetimeView {
  const now = new Date().toISOString();
  if (!lifetime) {
    return { state: "none", sandboxId: null, driver: null, createdAt: null, expiresAt: null, idleReapAt: null, endedReason: null, idleTimeoutMs, now };
  }
  return {
    state: lifetime.state as SandboxLifetimeView["state"],
    sandboxId: lifetime.sandboxId,
    driver: lifetime.driver,
    createdAt: lifetime.createdAt.toISOString(),
    expiresAt: lifetime.expiresAt.toISOString(),
    idleReapAt: lifetime.idleReapAt?.toISOString() ?? null,
    endedReason: lifetime.endedReason,
    idleTimeoutMs: lifetime.idleTimeoutMs,
    now,
  };
}

export function registerSandboxRoutes(router: Router, deps: SandboxRouteDeps): void {
  const { sessions, catalog, sandboxes, log } = deps;
  /** Resets in flight, by user and lab: a double click gets the same answer, not two new sandboxes. */
  const resetting = new Map<string, Promise<void>>();

  const requireUser = async (req: IncomingMessage): Promise<SessionUser> => {
    const user = await sessions.fromRequest(req);
    if (!user) throw new HttpError(401, "sign in first");
    return user;
  };
  const requireLab = (labId: string, userId: string) => {
    const entry = catalog.get(labId, userId);
    if (!entry) throw new HttpError(404, `no lab called "${labId}"`);
    return entry.lab.id;
  };

  router.on("GET", "/api/labs/:labId/sandbox", async ({ req, params }) => {
    const user = await requireUser(req);
    const labId = requireLab(params.labId!, user.id);
    return view(await sandboxes.lifetime(user.id, labId), sandboxes.idleTimeoutMs);
  });

  router.on("POST", "/api/labs/:labId/sandbox/reset", async ({ req, params }) => {
    const user = await requireUser(req);
    const labId = requireLab(params.labId!, user.id);
    const key = `${user.id}:${labId}`;
    let work = resetting.get(key);
    if (!work) {
      work = sandboxes
        .reset(user.id, labId)
        .then(() => undefined)
        .finally(() => resetting.delete(key));
      resetting.set(key, work);
    }
    try {
      await work;
    } catch (err) {
      log.error({ err: String(err), labId }, "sandbox reset failed");
      // The caps may refuse a new sandbox, or the lab's setup may fail: the learner can act on both.
      throw new HttpError(503, `Could not start a fresh sandbox: ${err instanceof Error ? err.message : String(err)}`);
    }
    return { sandbox: view(await sandboxes.lifetime(user.id, labId), sandboxes.idleTimeoutMs) };
  });
}
