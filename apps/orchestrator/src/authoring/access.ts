// Who may author labs. One place, so the rule can follow the roles module when it gains one: today
// instructors and administrators author; a learner is refused, and so is anyone signed out.
// Owning a draft is separate (drafts.ts): an instructor reaches only their own drafts, an
// administrator every draft.
import type { IncomingMessage } from "node:http";
import type { SessionStore, SessionUser } from "../auth/sessions.js";
import { HttpError } from "../http/router.js";

export function canAuthor(user: Pick<SessionUser, "role">): boolean {
  return user.role === "instructor" || user.role === "admin";
}

/** The signed-in author of this request, or a 401 (signed out) / 403 (not an instructor). */
export async function requireAuthor(sessions: SessionStore, req: IncomingMessage): Promise<SessionUser> {
  const user = await sessions.fromRequest(req);
  if (!user) throw new HttpError(401, "sign in first");
  if (!canAuthor(user)) throw new HttpError(403, "only instructors and administrators author labs");
  return user;
}
