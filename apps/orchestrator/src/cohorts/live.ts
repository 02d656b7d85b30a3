// The instructor's live channel, on the gateway's socket.io server (same handshake: session cookie,
// same-origin): the board (board:watch → the whole board in the answer, then board:row whenever
// a learner's row changes), read-only mirrors of a learner's terminal (mirror:*), and what the
// learner hears of it (class:watching, class:message, to every socket of theirs).
//
// Authorization: every board:watch and mirror:open looks the session up again and loads the
// cohort for that user (Cohorts.load: owner or admin); the periodic refresh does it again for
// every socket still watching or mirroring, so a demoted instructor or an ended session stops
// receiving within one refresh. Learners' own events are untouched by any of this.
//
// Updates: the grading code tells `activity(userId, labId)` after each attempt, hint, solution,
// quiz or step entered; presence changes (lab opened or closed) come from LabPresence. Each is
// coalesced per (cohort, learner) for PUSH_DELAY_MS, then that one row is read (six narrow
// queries) and pushed to the cohort's room. A refresh every `refreshMs` rereads whole boards
// that someone watches (the "no progress for N minutes" clock moves without any event) and pushes
// rows that changed.
import { randomBytes } from "node:crypto";
import { BoardWatch, MirrorAck, MirrorClose, MirrorOpen, type BoardRow, type ClassMessageView, type ClientToServerEvents, type ServerToClientEvents } from "@berth/protocol";
import type { Logger } from "pino";
import type { Server, Socket } from "socket.io";
import type { SessionStore, SessionUser } from "../auth/sessions.js";
import { HttpError } from "../http/router.js";
import type { LabPresence } from "../labs/presence.js";
import type { SandboxManager } from "../sandboxes/sandbox-manager.js";
import type { TerminalSession } from "../terminals/terminal-session.js";
import type { BoardBook } from "./board.js";
import type { Caller, Cohorts } from "./cohorts.js";

type IoServer = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, { user: SessionUser }>;
type IoSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, { user: SessionUser }>;

/** The gateway's room of one user's sockets (gateway.ts names it the same way). */
const userRoom = (userId: string) => `user:${userId}`;
const cohortRoom = (cohortId: string) => `cohort:${cohortId}`;
const PUSH_DELAY_MS = 150;

interface Mirror {
  id: string;
  socket: IoSocket;
  session: TerminalSession;
  cohortId: string;
  userId: string;
  labId: string;
  term: string;
}

interface Watched {
  /** Sockets on the board. */
  sockets: Set<IoSocket>;
  learners: Set<string>;
  labIds: string[];
  /** The JSON last pushed per learner, so the refresh sends only rows that changed. */
  sent: Map<string, string>;
}

export class CohortLive {
  private readonly watched = new Map<string, Watched>();
  private readonly mirrors = new Map<string, Mirror>();
  private readonly pending = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly refresh: ReturnType<typeof setInterval>;
  private readonly stopPresence: () => void;
  private disposed = false;

  constructor(
    private readonly io: IoServer,
    private readonly deps: {
      sessions: SessionStore;
      cohorts: Cohorts;
      board: BoardBook;
      sandboxes: SandboxManager;
      presence: LabPresence;
      log: Logger;
      refreshMs?: number;
    },
  ) {
    io.on("connection", (socket: IoSocket) => this.connected(socket));
    this.stopPresence = deps.presence.onChange((userId, labId) => this.activity(userId, labId));
    this.refresh = setInterval(() => void this.refreshAll(), deps.refreshMs ?? 30_000);
    this.refresh.unref();
  }

  dispose(): void {
    this.disposed = true;
    clearInterval(this.refresh);
    this.stopPresence();
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
    for (const m of [...this.mirrors.values()]) this.closeMirror(m, "the server is stopping");
    this.watched.clear();
  }

  /** A learner did something in a lab (or opened/closed it): their row on every board watching them. */
  activity(userId: string, labId?: string): void {
    for (const [cohortId, w] of this.watched) {
      if (!w.learners.has(userId) || (labId !== undefined && !w.labIds.includes(labId))) continue;
      const k = `${cohortId}\0${userId}`;
      if (this.pending.has(k)) continue;
      this.pending.set(k, setTimeout(() => {
        this.pending.delete(k);
        void this.pushRow(cohortId, userId).catch((err) => this.deps.log.warn({ err: String(err), cohortId }, "board row push failed"));
      }, PUSH_DELAY_MS));
    }
  }

  /** Someone joined or left a cohort (or its labs changed): the next refresh of it starts now. */
  cohortChanged(cohortId: string): void {
    if (this.watched.has(cohortId)) void this.refreshCohort(cohortId);
  }

  /** A message reaches every socket of each recipient (their player shows it). */
  deliver(message: Omit<ClassMessageView, "direct">, to: string[], direct: boolean): void {
    for (const userId of to) this.io.to(userRoom(userId)).emit("class:message", { ...message, direct });
  }

  /** Mirrors open now (tests, the board's status). */
  get mirrorCount(): number {
    return this.mirrors.size;
  }

  private caller(user: SessionUser): Caller {
    return { id: user.id, role: user.role, email: user.email };
  }

  /** The socket's user as the database says now; null when the session is over. */
  private async currentUser(socket: IoSocket): Promise<SessionUser | null> {
    const user = await this.deps.sessions.fromRequest(socket.request).catch(() => null);
    return user && user.sessionId === socket.data.user.sessionId ? user : null;
  }

  private connected(socket: IoSocket): void {
    const refusal = (err: unknown) => (err instanceof HttpError ? err.message : "something went wrong on our side; it has been logged");

    socket.on("board:watch", async (raw, reply) => {
      const ack = typeof reply === "function" ? reply : () => {};
      const parsed = BoardWatch.safeParse(raw);
      if (!parsed.success) return ack({ ok: false, error: `bad board:watch: ${parsed.error.issues[0]?.message}` });
      try {
        const user = await this.currentUser(socket);
        if (!user) return ack({ ok: false, error: "your session has ended: sign in again" });
        const cohort = await this.deps.cohorts.load(this.caller(user), parsed.data.cohortId);
        const labs = await this.deps.cohorts.labsOf(cohort.id);
        const board = await this.deps.board.board(cohort, labs);
        if (socket.disconnected || this.disposed) return;
        const w = this.watched.get(cohort.id) ?? { sockets: new Set(), learners: new Set(), labIds: [], sent: new Map() };
        w.learners = new Set(board.rows.map((r) => r.userId));
        w.labIds = labs.map((l) => l.labId);
        for (const row of board.rows) w.sent.set(row.userId, JSON.stringify(row));
        w.sockets.add(socket);
        this.watched.set(cohort.id, w);
        await socket.join(cohortRoom(cohort.id));
        ack({ ok: true, board });
      } catch (err) {
        if (!(err instanceof HttpError)) this.deps.log.error({ err: String(err) }, "board:watch failed");
        ack({ ok: false, error: refusal(err) });
      }
    });

    socket.on("board:unwatch", (raw) => {
      const parsed = BoardWatch.safeParse(raw);
      if (parsed.success) this.unwatch(socket, parsed.data.cohortId);
    });

    socket.on("mirror:open", async (raw, reply) => {
      const ack = typeof reply === "function" ? reply : () => {};
      const parsed = MirrorOpen.safeParse(raw);
      if (!parsed.success) return ack({ ok: false, error: `bad mirror:open: ${parsed.error.issues[0]?.message}` });
      const { cohortId, userId, labId, term } = parsed.data;
      try {
        const user = await this.currentUser(socket);
        if (!user) return ack({ ok: false, error: "your session has ended: sign in again" });
        const cohort = await this.deps.cohorts.load(this.caller(user), cohortId);
        if (!(await this.deps.cohorts.isLearnerOf(cohort.id, userId))) return ack({ ok: false, error: "not a learner of this cohort" });
        if (!(await this.deps.cohorts.labsOf(cohort.id)).some((l) => l.labId === labId)) return ack({ ok: false, error: "this lab is not one of the cohort's" });
        const session = this.deps.sandboxes.find(userId, labId)?.terminals.get(term);
        if (!session || session.exited) return ack({ ok: false, error: `the learner has no terminal ${term} open in this lab right now` });
        if (socket.disconnected) return;
        const id = `m_${randomBytes(9).toString("base64url")}`;
        const mirror: Mirror = { id, socket, session, cohortId, userId, labId, term };
        this.mirrors.set(id, mirror);
        session.attach(
          {
            id,
            send: (msg) => socket.emit("mirror:data", { mirrorId: id, data: msg.data, ...(msg.reset ? { reset: true, cols: session.screen.cols, rows: session.screen.rows } : {}) }),
            exited: (msg) => this.closeMirror(mirror, `the learner's shell exited (code ${msg.exitCode})`),
          },
          { mirror: true },
        );
        this.tellLearner(mirror);
        this.deps.log.info({ instructor: user.email, learner: userId, labId, term }, "terminal mirror opened");
        ack({ ok: true, mirrorId: id, cols: session.screen.cols, rows: session.screen.rows });
      } catch (err) {
        if (!(err instanceof HttpError)) this.deps.log.error({ err: String(err) }, "mirror:open failed");
        ack({ ok: false, error: refusal(err) });
      }
    });

    // Acks and closes name a mirror: only the socket that opened it may touch it.
    socket.on("mirror:ack", (raw) => {
      const parsed = MirrorAck.safeParse(raw);
      const m = parsed.success ? this.mirrors.get(parsed.data.mirrorId) : undefined;
      if (m && m.socket === socket) m.session.ack(m.id, parsed.data!.bytes);
    });

    socket.on("mirror:close", (raw) => {
      const parsed = MirrorClose.safeParse(raw);
      const m = parsed.success ? this.mirrors.get(parsed.data.mirrorId) : undefined;
      if (m && m.socket === socket) this.closeMirror(m, null);
    });

    socket.on("disconnect", () => {
      for (const cohortId of [...this.watched.keys()]) this.unwatch(socket, cohortId);
      for (const m of [...this.mirrors.values()]) if (m.socket === socket) this.closeMirror(m, null);
    });
  }

  private unwatch(socket: IoSocket, cohortId: string): void {
    const w = this.watched.get(cohortId);
    if (!w?.sockets.delete(socket)) return;
    void socket.leave(cohortRoom(cohortId));
    if (w.sockets.size === 0) this.watched.delete(cohortId);
  }

  private closeMirror(m: Mirror, reason: string | null): void {
    if (!this.mirrors.delete(m.id)) return;
    m.session.detach(m.id);
    if (reason !== null) m.socket.emit("mirror:exit", { mirrorId: m.id, reason });
    this.tellLearner(m);
  }

  private tellLearner(m: Mirror): void {
    this.io.to(userRoom(m.userId)).emit("class:watching", { labId: m.labId, term: m.term, watchers: m.session.mirrorCount });
  }

  private async pushRow(cohortId: string, userId: string): Promise<void> {
    const w = this.watched.get(cohortId);
    if (!w || this.disposed) return;
    const cohort = await this.deps.cohorts.loadUnchecked(cohortId);
    if (!cohort) return;
    const [row] = await this.deps.board.rows(cohort, w.labIds, userId);
    if (row) this.send(cohortId, w, row);
  }

  private send(cohortId: string, w: Watched, row: BoardRow): void {
    const json = JSON.stringify(row);
    if (w.sent.get(row.userId) === json) return;
    w.sent.set(row.userId, json);
    this.io.to(cohortRoom(cohortId)).emit("board:row", { cohortId, row });
  }

  private async refreshAll(): Promise<void> {
    await this.recheckAccess();
    for (const cohortId of [...this.watched.keys()]) await this.refreshCohort(cohortId);
  }

  private async refreshCohort(cohortId: string): Promise<void> {
    try {
      const w = this.watched.get(cohortId);
      const cohort = await this.deps.cohorts.loadUnchecked(cohortId);
      if (!w || !cohort) return;
      const labs = await this.deps.cohorts.labsOf(cohortId);
      w.labIds = labs.map((l) => l.labId);
      const rows = await this.deps.board.rows(cohort, w.labIds);
      w.learners = new Set(rows.map((r) => r.userId));
      for (const row of rows) this.send(cohortId, w, row);
    } catch (err) {
      this.deps.log.warn({ err: String(err), cohortId }, "board refresh failed");
    }
  }

  /** Drops board watches and mirrors whose socket's user may no longer see the cohort. */
  private async recheckAccess(): Promise<void> {
    const sockets = new Set<IoSocket>();
    for (const w of this.watched.values()) for (const s of w.sockets) sockets.add(s);
    for (const m of this.mirrors.values()) sockets.add(m.socket);
    for (const socket of sockets) {
      const user = await this.currentUser(socket);
      const allowed = async (cohortId: string) => {
        if (!user) return false;
        try {
          await this.deps.cohorts.load(this.caller(user), cohortId);
          return true;
        } catch {
          return false;
        }
      };
      for (const [cohortId, w] of [...this.watched]) if (w.sockets.has(socket) && !(await allowed(cohortId))) this.unwatch(socket, cohortId);
      for (const m of [...this.mirrors.values()]) if (m.socket === socket && !(await allowed(m.cohortId))) this.closeMirror(m, "you may no longer see this cohort");
    }
  }
}
