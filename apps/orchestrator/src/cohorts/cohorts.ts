// Cohorts: a class an instructor runs. What each cohort route does is decided here (routes.ts only
// translates HTTP). Every method that takes a cohort id first loads it for the caller (`load`):
// an instructor gets only the cohorts they own, an admin any; anyone else is refused. A cohort
// that is not the caller's answers 404 exactly like one that does not exist, so ids cannot be probed.
//
// Invites: a random token shown once (the link `/join#<token>`: a fragment never reaches server
// logs or Referer headers), stored as its SHA-256, with an expiry and a seat limit. Joining raises
// `seatsTaken` with one conditional UPDATE (seatsTaken < seatLimit), atomic on SQLite and
// PostgreSQL alike, so a full link stays full under concurrent joins.
import { createHash, randomBytes } from "node:crypto";
import type {
  ClassMessageView,
  CohortDetail,
  CohortInviteView,
  CohortSummary,
  InviteInfo,
  Role,
} from "@berth/protocol";
import type { Logger } from "pino";
import { isUniqueViolation, type Db } from "../db/index.js";
import { HttpError } from "../http/router.js";
import type { LabCatalog } from "../labs/catalog.js";
import { ownsCohort, roleRefusal, STAFF_ROLES } from "../auth/roles.js";

export interface Caller {
  id: string;
  role: Role;
  email: string;
}

export interface CohortRow {
  id: string;
  name: string;
  ownerId: string;
  stuckMinutes: number;
  stuckFails: number;
  createdAt: Date;
}

/** Messages a learner's player shows: the last week's. */
const MESSAGE_WINDOW_MS = 7 * 24 * 3600_000;
const MESSAGES_SHOWN = 50;
const hashToken = (token: string) => createHash("sha256").update(token).digest("hex");

export class Cohorts {
  constructor(private readonly deps: { db: Db; catalog: LabCatalog; log: Logger }) {}

  private get db(): Db {
    return this.deps.db;
  }

  /** The cohort if the caller may run it; 403 for a learner, 404 for a cohort not theirs. */
  async load(caller: Caller, cohortId: string): Promise<CohortRow> {
    if (!STAFF_ROLES.includes(caller.role)) throw new HttpError(403, roleRefusal(["instructor"]));
    const cohort = await this.db.cohort.findUnique({ where: { id: cohortId } });
    if (!cohort || !ownsCohort(caller, cohort)) throw new HttpError(404, "no such cohort");
    return cohort;
  }

  /** For the server's own use (the board's refresh), after the caller was authorized once. */
  loadUnchecked(cohortId: string): Promise<CohortRow | null> {
    return this.db.cohort.findUnique({ where: { id: cohortId } });
  }

  async list(caller: Caller): Promise<CohortSummary[]> {
    const rows = await this.db.cohort.findMany({
      where: caller.role === "admin" ? {} : { ownerId: caller.id },
      orderBy: { createdAt: "desc" },
      include: { _count: { select: { members: { where: { role: "learner" } }, labs: true } } },
    });
    return rows.map((c) => ({
      id: c.id, name: c.name, ownerId: c.ownerId, learnerCount: c._count.members, labCount: c._count.labs, createdAt: c.createdAt.toISOString(),
    }));
  }

  async create(caller: Caller, input: { name: string; stuckMinutes?: number; stuckFails?: number }): Promise<CohortDetail> {
    const cohort = await this.db.cohort.create({
      data: { name: input.name, ownerId: caller.id, ...(input.stuckMinutes ? { stuckMinutes: input.stuckMinutes } : {}), ...(input.stuckFails ? { stuckFails: input.stuckFails } : {}) },
    });
    this.deps.log.info({ cohort: cohort.id, owner: caller.email }, "cohort created");
    return this.detail(cohort);
  }

  async update(cohort: CohortRow, input: { name?: string; stuckMinutes?: number; stuckFails?: number }): Promise<CohortDetail> {
    const updated = await this.db.cohort.update({ where: { id: cohort.id }, data: input });
    return this.detail(updated);
  }

  async remove(cohort: CohortRow): Promise<void> {
    await this.db.cohort.delete({ where: { id: cohort.id } });
  }

  async detail(cohort: CohortRow): Promise<CohortDetail> {
    const [labs, members, invites] = await Promise.all([
      this.labsOf(cohort.id),
      this.db.cohortMember.findMany({ where: { cohortId: cohort.id, role: "learner" }, include: { user: { select: { id: true, email: true, name: true } } }, orderBy: { joinedAt: "asc" } }),
      this.db.cohortInvite.findMany({ where: { cohortId: cohort.id }, orderBy: { createdAt: "desc" } }),
    ]);
    return {
      id: cohort.id,
      name: cohort.name,
      ownerId: cohort.ownerId,
      stuckMinutes: cohort.stuckMinutes,
      stuckFails: cohort.stuckFails,
      createdAt: cohort.createdAt.toISOString(),
      learnerCount: members.length,
      labCount: labs.length,
      labs: labs.map((l) => ({ labId: l.labId, title: this.deps.catalog.get(l.labId)?.summary.title ?? l.labId, dueAt: l.dueAt?.toISOString() ?? null })),
      learners: members.map((m) => ({ id: m.user.id, email: m.user.email, name: m.user.name, joinedAt: m.joinedAt.toISOString() })),
      invites: invites.map(inviteView),
    };
  }

  /** The cohort's labs in order. */
  labsOf(cohortId: string): Promise<Array<{ labId: string; dueAt: Date | null }>> {
    return this.db.cohortLab.findMany({ where: { cohortId }, orderBy: [{ position: "asc" }, { labId: "asc" }], select: { labId: true, dueAt: true } });
  }

  /** The learners' ids (not the instructor's). */
  async learnerIds(cohortId: string): Promise<string[]> {
    const rows = await this.db.cohortMember.findMany({ where: { cohortId, role: "learner" }, select: { userId: true } });
    return rows.map((r) => r.userId);
  }

  async isLearnerOf(cohortId: string, userId: string): Promise<boolean> {
    const m = await this.db.cohortMember.findUnique({ where: { cohortId_userId: { cohortId, userId } } });
    return m?.role === "learner";
  }

  /** Replaces the cohort's labs (order and due dates). Every lab must exist in the catalog. */
  async setLabs(cohort: CohortRow, labs: Array<{ labId: string; dueAt?: string | null }>): Promise<CohortDetail> {
    const seen = new Set<string>();
    labs.forEach((l, i) => {
      if (!this.deps.catalog.get(l.labId)) throw new HttpError(400, `labs.${i}.labId: no lab called "${l.labId}"`, `labs.${i}.labId`);
      if (seen.has(l.labId)) throw new HttpError(400, `labs.${i}.labId: "${l.labId}" is listed twice`, `labs.${i}.labId`);
      seen.add(l.labId);
    });
    await this.db.$transaction([
      this.db.cohortLab.deleteMany({ where: { cohortId: cohort.id } }),
      ...labs.map((l, position) =>
        this.db.cohortLab.create({ data: { cohortId: cohort.id, labId: l.labId, position, dueAt: l.dueAt ? new Date(l.dueAt) : null } }),
      ),
    ]);
    return this.detail(cohort);
  }

  async createInvite(cohort: CohortRow, input: { expiresInHours: number; seatLimit: number }): Promise<CohortInviteView> {
    const token = randomBytes(24).toString("base64url");
    const invite = await this.db.cohortInvite.create({
      data: { cohortId: cohort.id, tokenHash: hashToken(token), seatLimit: input.seatLimit, expiresAt: new Date(Date.now() + input.expiresInHours * 3600_000) },
    });
    return { ...inviteView(invite), url: `/join#${token}` };
  }

  async revokeInvite(cohort: CohortRow, inviteId: string): Promise<void> {
    const { count } = await this.db.cohortInvite.updateMany({ where: { id: inviteId, cohortId: cohort.id }, data: { revokedAt: new Date() } });
    if (count === 0) throw new HttpError(404, "no such invite in this cohort");
  }

  async removeLearner(cohort: CohortRow, userId: string): Promise<void> {
    const { count } = await this.db.cohortMember.deleteMany({ where: { cohortId: cohort.id, userId, role: "learner" } });
    if (count === 0) throw new HttpError(404, "no such learner in this cohort");
  }

  private async inviteByToken(token: string) {
    const invite = await this.db.cohortInvite.findUnique({ where: { tokenHash: hashToken(token) }, include: { cohort: { select: { name: true } } } });
    if (!invite) throw new HttpError(404, "this invite link is not valid: ask your instructor for a new one");
    return invite;
  }

  async inviteInfo(token: string): Promise<InviteInfo> {
    const invite = await this.inviteByToken(token);
    return { cohortName: invite.cohort.name, expiresAt: invite.expiresAt.toISOString(), seatsLeft: Math.max(0, invite.seatLimit - invite.seatsTaken), closed: closedReason(invite) };
  }

  /** A signed-in user joins the invite's cohort as a learner (idempotent: a member joins again for free). */
  async join(caller: Caller, token: string): Promise<{ cohortId: string; cohortName: string; alreadyMember: boolean }> {
    const invite = await this.inviteByToken(token);
    const existing = await this.db.cohortMember.findUnique({ where: { cohortId_userId: { cohortId: invite.cohortId, userId: caller.id } } });
    if (existing) return { cohortId: invite.cohortId, cohortName: invite.cohort.name, alreadyMember: true };
    const closed = closedReason(invite);
    if (closed) throw new HttpError(410, closed);
    const owner = await this.db.cohort.findUnique({ where: { id: invite.cohortId }, select: { ownerId: true } });
    if (owner?.ownerId === caller.id) throw new HttpError(409, "you run this cohort: learners join it by this link");
    // The seat first, atomically; given back if the membership cannot be written.
    const { count } = await this.db.cohortInvite.updateMany({
      where: { id: invite.id, revokedAt: null, expiresAt: { gt: new Date() }, seatsTaken: { lt: invite.seatLimit } },
      data: { seatsTaken: { increment: 1 } },
    });
    if (count === 0) throw new HttpError(410, "this invite link has no seats left: ask your instructor");
    try {
      await this.db.cohortMember.create({ data: { cohortId: invite.cohortId, userId: caller.id, role: "learner" } });
    } catch (err) {
      await this.db.cohortInvite.update({ where: { id: invite.id }, data: { seatsTaken: { decrement: 1 } } });
      if (isUniqueViolation(err)) return { cohortId: invite.cohortId, cohortName: invite.cohort.name, alreadyMember: true };
      throw err;
    }
    this.deps.log.info({ cohort: invite.cohortId, user: caller.email }, "learner joined a cohort");
    return { cohortId: invite.cohortId, cohortName: invite.cohort.name, alreadyMember: false };
  }

  /** Stores a message to one learner of the cohort or to all of them; returns it and who gets it. */
  async message(cohort: CohortRow, from: Caller, input: { text: string; toUserId?: string }): Promise<{ message: Omit<ClassMessageView, "direct">; to: string[]; direct: boolean }> {
    if (input.toUserId && !(await this.isLearnerOf(cohort.id, input.toUserId))) throw new HttpError(400, "toUserId: not a learner of this cohort", "toUserId");
    const row = await this.db.cohortMessage.create({ data: { cohortId: cohort.id, fromUserId: from.id, toUserId: input.toUserId ?? null, text: input.text } });
    const sender = await this.db.user.findUnique({ where: { id: from.id }, select: { name: true, email: true } });
    const to = input.toUserId ? [input.toUserId] : await this.learnerIds(cohort.id);
    return {
      message: { id: row.id, cohortId: cohort.id, cohortName: cohort.name, text: row.text, from: sender?.name ?? sender?.email ?? "your instructor", at: row.createdAt.toISOString() },
      to,
      direct: Boolean(input.toUserId),
    };
  }

  /** The messages a learner's player shows: the last week's, from the cohorts they are in, newest last. */
  async messagesFor(userId: string): Promise<ClassMessageView[]> {
    const cohorts = await this.db.cohortMember.findMany({ where: { userId, role: "learner" }, select: { cohortId: true } });
    if (cohorts.length === 0) return [];
    const rows = await this.db.cohortMessage.findMany({
      where: {
        cohortId: { in: cohorts.map((c) => c.cohortId) },
        OR: [{ toUserId: null }, { toUserId: userId }],
        createdAt: { gt: new Date(Date.now() - MESSAGE_WINDOW_MS) },
      },
      orderBy: { createdAt: "desc" },
      take: MESSAGES_SHOWN,
      include: { cohort: { select: { name: true } }, from: { select: { name: true, email: true } } },
    });
    return rows.reverse().map((m) => ({
      id: m.id, cohortId: m.cohortId, cohortName: m.cohort.name, text: m.text, from: m.from.name ?? m.from.email, direct: m.toUserId !== null, at: m.createdAt.toISOString(),
    }));
  }
}

function inviteView(i: { id: string; expiresAt: Date; seatLimit: number; seatsTaken: number; revokedAt: Date | null }): CohortInviteView {
  return { id: i.id, expiresAt: i.expiresAt.toISOString(), seatLimit: i.seatLimit, seatsTaken: i.seatsTaken, revoked: i.revokedAt !== null };
}

function closedReason(i: { expiresAt: Date; seatLimit: number; seatsTaken: number; revokedAt: Date | null }): string | null {
  if (i.revokedAt) return "this invite link was withdrawn: ask your instructor for a new one";
  if (i.expiresAt.getTime() <= Date.now()) return "this invite link has expired: ask your instructor for a new one";
  if (i.seatsTaken >= i.seatLimit) return "this invite link has no seats left: ask your instructor";
  return null;
}

