// Server components' way to the orchestrator. The web app runs inside the orchestrator's process
// (Next's request handler), which puts a small bridge under a global symbol once it listens
// (apps/orchestrator/src/http/web-bridge.ts): the lab page asks it directly, with the visitor's
// cookie, and gets what GET /api/labs/:lab would have answered, through the same checks (session,
// 404), without a loopback HTTP request. Without an orchestrator (`next dev` on its own) there is
// no bridge and pages load in the browser.
import type { LabView, ProgressView } from "@berth/protocol";
import { cache } from "react";

/** Set by the orchestrator (apps/orchestrator/src/server.ts) once it listens. */
const BRIDGE_KEY = Symbol.for("berth.web.bridge");

/** The bridge as this app uses it (the orchestrator's WebBridge has this shape). */
interface Bridge {
  labShell(labId: string, stepId: string | null, cookie: string | null): Promise<{ kind: "ready"; title: string } | { kind: "missing" } | { kind: "signin" }>;
  labPage(labId: string, cookie: string | null, prepare: boolean): Promise<{ kind: "ready"; lab: LabView; progress: ProgressView } | { kind: "missing" } | { kind: "signin" }>;
}

const bridge = (): Bridge | undefined => (globalThis as Record<symbol, unknown>)[BRIDGE_KEY] as Bridge | undefined;

/** No orchestrator beside us, or it failed: the browser loads the lab itself. */
type Unavailable = { kind: "unavailable" };

export type ServerShell = Awaited<ReturnType<Bridge["labShell"]>> | Unavailable;
export type ServerLab = Awaited<ReturnType<Bridge["labPage"]>> | Unavailable;

/**
 * Once per request (the layout and its metadata share it): signed in, and a lab (and step) that
 * exists for this visitor. Cheap: the player's frame, its terminal included, waits for nothing else.
 */
export const labShellOnServer = cache(async (labId: string, stepId: string | null, cookie: string | null): Promise<ServerShell> => {
  const b = bridge();
  if (!b) return { kind: "unavailable" };
  try {
    return await b.labShell(labId, stepId, cookie);
  } catch {
    return { kind: "unavailable" };
  }
});

/**
 * Once per request: the learner's view of the lab and their progress. With `prepare` (a learner
 * opening the lab, not a prefetch), the sandbox's hand-over starts as well, so that work runs while
 * the page travels to the browser.
 */
export const loadLabOnServer = cache(async (labId: string, cookie: string | null, prepare = false): Promise<ServerLab> => {
  const b = bridge();
  if (!b) return { kind: "unavailable" };
  try {
    return await b.labPage(labId, cookie, prepare);
  } catch {
    return { kind: "unavailable" };
  }
});
