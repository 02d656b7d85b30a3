// The instructor's and admin's routes (apps/orchestrator/src/cohorts/routes.ts,
// auth/roles-routes.ts), typed. Same tagged results as lib/api.ts.
import type {
  AdminUserView,
  BoardView,
  ClassMessageView,
  CohortDetail,
  CohortInviteView,
  CohortSummary,
  InviteInfo,
  LabSummary,
  LearnerEventView,
} from "@berth/protocol";
import { call } from "@/lib/api";

const seg = encodeURIComponent;

export const staffApi = {
  users: (q = "") => call<{ users: AdminUserView[]; truncated: boolean }>("GET", `/api/admin/users${q ? `?q=${seg(q)}` : ""}`),
  setRole: (userId: string, role: "learner" | "instructor") => call<{ user: AdminUserView }>("PUT", `/api/admin/users/${seg(userId)}/role`, { role }),
  labs: () => call<{ labs: LabSummary[] }>("GET", "/api/labs"),
  cohorts: () => call<{ cohorts: CohortSummary[] }>("GET", "/api/cohorts"),
  createCohort: (name: string) => call<{ cohort: CohortDetail }>("POST", "/api/cohorts", { name }),
  cohort: (id: string) => call<{ cohort: CohortDetail }>("GET", `/api/cohorts/${seg(id)}`),
  updateCohort: (id: string, patch: { name?: string; stuckMinutes?: number; stuckFails?: number }) =>
    call<{ cohort: CohortDetail }>("PATCH", `/api/cohorts/${seg(id)}`, patch),
  setLabs: (id: string, labs: Array<{ labId: string; dueAt: string | null }>) => call<{ cohort: CohortDetail }>("PUT", `/api/cohorts/${seg(id)}/labs`, { labs }),
  createInvite: (id: string, expiresInHours: number, seatLimit: number) =>
    call<{ invite: CohortInviteView }>("POST", `/api/cohorts/${seg(id)}/invites`, { expiresInHours, seatLimit }),
  revokeInvite: (id: string, inviteId: string) => call<void>("DELETE", `/api/cohorts/${seg(id)}/invites/${seg(inviteId)}`),
  board: (id: string) => call<{ board: BoardView }>("GET", `/api/cohorts/${seg(id)}/board`),
  events: (id: string, userId: string) => call<{ events: LearnerEventView[] }>("GET", `/api/cohorts/${seg(id)}/learners/${seg(userId)}/events`),
  message: (id: string, text: string, toUserId?: string) =>
    call<{ message: ClassMessageView; recipients: number }>("POST", `/api/cohorts/${seg(id)}/messages`, { text, ...(toUserId ? { toUserId } : {}) }),
  gradesUrl: (id: string) => `/api/cohorts/${seg(id)}/grades.csv`,
  inviteInfo: (token: string) => call<{ invite: InviteInfo }>("POST", "/api/invites/lookup", { token }),
  join: (token: string) => call<{ cohortId: string; cohortName: string; alreadyMember: boolean }>("POST", "/api/invites/join", { token }),
  myMessages: () => call<{ messages: ClassMessageView[] }>("GET", "/api/me/messages"),
};
