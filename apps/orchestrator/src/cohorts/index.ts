// The instructor's side, assembled: cohorts and their routes, the admin's role routes, the live
// board and terminal mirrors on the gateway's socket.io server. server.ts calls `startCohorts`
// once the API router and the gateway exist, and tells `activity` what learners do.
import type { Logger } from "pino";
import type { Server } from "socket.io";
import { registerRoleRoutes } from "../auth/roles-routes.js";
import type { SessionStore } from "../auth/sessions.js";
import type { Db } from "../db/index.js";
import type { Router } from "../http/router.js";
import type { LabCatalog } from "../labs/catalog.js";
import type { LabPresence } from "../labs/presence.js";
import type { SandboxManager } from "../sandboxes/sandbox-manager.js";
import { BoardBook } from "./board.js";
import { Cohorts } from "./cohorts.js";
import { CohortLive } from "./live.js";
import { registerCohortRoutes } from "./routes.js";

export interface CohortSide {
  cohorts: Cohorts;
  board: BoardBook;
  live: CohortLive;
  /** A learner did something in a lab: boards watching them update. */
  activity(userId: string, labId?: string): void;
  dispose(): void;
}

export function startCohorts(deps: {
  db: Db;
  sessions: SessionStore;
  catalog: LabCatalog;
  presence: LabPresence;
  sandboxes: SandboxManager;
  log: Logger;
  router: Router;
  // (The gateway's typed server; only its connection event and rooms are used here.)
  io: Server;
  boardRefreshMs?: number;
}): CohortSide {
  const cohorts = new Cohorts(deps);
  const board = new BoardBook(deps);
  // How often watched boards are reread whole (config.boardRefreshMs, BERTH_BOARD_REFRESH_SECONDS; default 30 s).
  const refreshMs = deps.boardRefreshMs;
  const live = new CohortLive(deps.io as never, { ...deps, cohorts, board, refreshMs });
  registerRoleRoutes(deps.router, deps);
  registerCohortRoutes(deps.router, { ...deps, cohorts, board, live: () => live });
  return {
    cohorts,
    board,
    live,
    activity: (userId, labId) => live.activity(userId, labId),
    dispose: () => live.dispose(),
  };
}
