// Who may do what. Three roles (User.role): a learner takes labs; an instructor also runs cohorts
// (sees only the cohorts they own and their learners' work); an admin also makes instructors and
// may open any cohort. Every instructor and admin route and socket event asks here, on the server,
// with the role read from the database for that request (a demotion acts on the next request).
import type { IncomingMessage } from "node:http";
import type { Role } from "@berth/protocol";
import { HttpError } from "../http/router.js";
import type { SessionStore, SessionUser } from "./sessions.js";

export const STAFF_ROLES: readonly Role[] = ["instructor", "admin"];

/** The signed-in user, or 401. */
export async function requireSignedIn(sessions: SessionStore, req: IncomingMessage): Promise<SessionUser> {
  const user = await sessions.fromRequest(req);
  if (!user) throw new HttpError(401, "sign in first");
  return user;
}

/** The signed-in user if their role is one of `roles`; 401 signed out, 403 otherwise. */
export async function requireRole(sessions: SessionStore, req: IncomingMessage, roles: readonly Role[]): Promise<SessionUser> {
  const user = await requireSignedIn(sessions, req);
  if (!roles.includes(user.role)) throw new HttpError(403, roleRefusal(roles));
  return user;
}

export function roleRefusal(roles: readonly Role[]): string {
  return roles.includes("instructor") ? "only instructors may do this" : "only administrators may do this";
}

export const isStaff = (user: { role: Role }): boolean => STAFF_ROLES.includes(user.role);

/** May this user see and run this cohort? Its owner, or an admin. */
export const ownsCohort = (user: { id: string; role: Role }, cohort: { ownerId: string }): boolean =>
  user.role === "admin" || (user.role === "instructor" && cohort.ownerId === user.id);
