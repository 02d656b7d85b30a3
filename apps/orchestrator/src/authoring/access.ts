// Who may author labs: staff (instructors and administrators), by the roles module's rule, so one
// rule decides who is staff everywhere. Owning a draft is separate (drafts.ts): an instructor
// reaches only their own drafts, an administrator every draft.
import type { IncomingMessage } from "node:http";
import { requireRole, STAFF_ROLES } from "../auth/roles.js";
import type { SessionStore, SessionUser } from "../auth/sessions.js";

/** The signed-in author of this request, or a 401 (signed out) / 403 (a learner). */
export function requireAuthor(sessions: SessionStore, req: IncomingMessage): Promise<SessionUser> {
  return requireRole(sessions, req, STAFF_ROLES);
}
