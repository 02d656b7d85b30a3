// Server components' way to the orchestrator's REST API. The web app runs inside the orchestrator's
// process (Next's request handler), which records its own loopback address under a global symbol
// once it listens; a page then asks /api over loopback with the visitor's cookie, so the server
// renders exactly what the browser would have fetched, through the same checks (session, 404).
// Without an orchestrator (`next dev` on its own) there is no address and pages load in the browser.
import type { LabView, ProgressView } from "@berth/protocol";
import { cache } from "react";

/** Set by the orchestrator (apps/orchestrator/src/server.ts) once it listens. */
const API_URL_KEY = Symbol.for("berth.web.apiUrl");

export type ServerLab =
  | { kind: "ready"; lab: LabView; progress: ProgressView }
  | { kind: "missing" }
  | { kind: "signin" }
  /** No orchestrator beside us, or it failed: the browser loads the lab itself. */
  | { kind: "unavailable" };

/**
 * Once per request: the page and its metadata share one answer. With `prepare` (a learner opening
 * the lab, not a prefetch), the API also starts handing over the learner's sandbox and its first
 * shell, so that work runs while this page travels to the browser and starts there.
 */
export const loadLabOnServer = cache(async (labId: string, cookie: string | null, prepare = false): Promise<ServerLab> => {
  const base = (globalThis as Record<symbol, unknown>)[API_URL_KEY];
  if (typeof base !== "string") return { kind: "unavailable" };
  try {
    const res = await fetch(`${base}/api/labs/${encodeURIComponent(labId)}${prepare ? "?prepare=1" : ""}`, {
      headers: { accept: "application/json", ...(cookie ? { cookie } : {}) },
      cache: "no-store",
    });
    if (res.status === 404) return { kind: "missing" };
    if (res.status === 401) return { kind: "signin" };
    if (!res.ok) return { kind: "unavailable" };
    const data = (await res.json()) as { lab: LabView; progress: ProgressView };
    return { kind: "ready", lab: data.lab, progress: data.progress };
  } catch {
    return { kind: "unavailable" };
  }
});
