// The web app's way into this process. Next's request handler runs inside the orchestrator (one
// process: server.ts), so the lab page's server components ask here directly instead of calling
// /api over loopback HTTP: no second request to parse, no JSON to encode and decode, and nothing
// queued behind other requests on the same event loop. The answers are the API's, through the same
// checks: the visitor's session from their cookie, the lab as that learner may see it (a draft of
// another author is "missing"), and the same LabView (no check scripts, solutions or quiz answers).
//
// The web app reads the bridge from a global symbol (apps/web/src/lib/server-api.ts) and describes
// the shape it expects there; without an orchestrator (`next dev` alone) there is none and the page
// loads the lab in the browser.
import type { LabView, ProgressView } from "@berth/protocol";
import type { SessionStore } from "../auth/sessions.js";
import type { LabCatalog } from "../labs/catalog.js";
import type { LearnerLabs } from "../labs/learner-labs.js";
import { LabRefusal } from "../labs/refusal.js";
import type { SandboxManager } from "../sandboxes/sandbox-manager.js";
import { prepareIfReady } from "../terminals/prepare.js";

export const WEB_BRIDGE_KEY = Symbol.for("berth.web.bridge");

export type BridgeLab = { kind: "ready"; lab: LabView; progress: ProgressView } | { kind: "missing" } | { kind: "signin" };
export type BridgeShell = { kind: "ready"; title: string } | { kind: "missing" } | { kind: "signin" };

export interface WebBridge {
  /**
   * What the player's frame needs before anything else: is the visitor signed in, and is there
   * such a lab (and step) for them. A catalog lookup and the session: no progress, no rendering.
   */
  labShell(labId: string, stepId: string | null, cookie: string | null): Promise<BridgeShell>;
  /**
   * The learner's view of the lab and their progress (GET /api/labs/:lab). With `prepare` (a page
   * load or navigation, not a prefetch) the sandbox's hand-over starts too (terminals/prepare.ts).
   */
  labPage(labId: string, cookie: string | null, prepare: boolean): Promise<BridgeLab>;
}

export function createWebBridge(deps: { sessions: SessionStore; catalog: LabCatalog; labs: LearnerLabs; sandboxes: SandboxManager }): WebBridge {
  const { sessions, catalog, labs, sandboxes } = deps;
  const visitor = (cookie: string | null) => sessions.fromCookie(cookie);
  return {
    async labShell(labId, stepId, cookie) {
      const user = await visitor(cookie);
      if (!user) return { kind: "signin" };
      const entry = catalog.get(labId, user.id, { peek: true });
      if (!entry) return { kind: "missing" };
      if (stepId !== null && !entry.lab.steps.some((s) => s.id === stepId)) return { kind: "missing" };
      return { kind: "ready", title: entry.summary.title };
    },
    async labPage(labId, cookie, prepare) {
      const user = await visitor(cookie);
      if (!user) return { kind: "signin" };
      try {
        // The hand-over first: it runs beside the view's database reads.
        if (prepare && catalog.get(labId, user.id, { peek: true })) prepareIfReady(sandboxes, user.id, labId);
        const { lab, progress } = await labs.open(user.id, labId);
        return { kind: "ready", lab, progress };
      } catch (err) {
        if (err instanceof LabRefusal && err.kind === "missing") return { kind: "missing" };
        throw err;
      }
    },
  };
}
