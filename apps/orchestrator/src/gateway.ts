// The browser's live channel: socket.io over websocket only, authenticated by the session cookie at
// the handshake, from this site's own pages only. It relays terminal bytes both ways; it never
// decodes them. A socket lives no longer than its session: sign-out and expiry disconnect it, a
// sweep catches sessions removed any other way, and every term:attach looks the session up again.
import {
  SandboxPrepare,
  TermAck,
  TermAttach,
  TermInput,
  TermResize,
  type ClientToServerEvents,
  type ServerToClientEvents,
} from "@berth/protocol";
import type { Server as HttpServer } from "node:http";
import type { Logger } from "pino";
import { Server, type Socket } from "socket.io";
import type { SessionStore, SessionUser } from "./auth/sessions.js";
import { clientAddress } from "./http/router.js";
import type { LabCatalog } from "./labs/catalog.js";
import type { CheckResultPush, LabPresence } from "./labs/presence.js";
import { SandboxCapError } from "./sandboxes/sandbox-caps.js";
import type { LearnerSandbox, SandboxManager } from "./sandboxes/sandbox-manager.js";
import { prepareLabSandbox } from "./terminals/prepare.js";
import type { TerminalSession, TerminalViewer } from "./terminals/terminal-session.js";
import { XrayHub, type XraySocket } from "./xray/xray-hub.js";

type BerthSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, { user: SessionUser }>;

/** The socket.io room of one learner's sockets (every tab), for events about their sandboxes. */
const userRoom = (userId: string) => `user:${userId}`;

export function createGateway(
  http: HttpServer,
  deps: {
    sessions: SessionStore;
    sandboxes: SandboxManager;
    catalog: LabCatalog;
    log: Logger;
    /** Told which labs each socket has open (automatic checks run for them, grading/auto-checks.ts). */
    presence?: LabPresence;
    /** Live sockets per client address (0: no cap). */
    maxSocketsPerIp?: number;
    trustProxy?: boolean;
    /** How often every socket's session is looked up again (sessions ended outside this process). */
    sessionSweepMs?: number;
  },
): Server {
  const { sessions, sandboxes, catalog, log } = deps;
  // The X-ray panel: a learner's own containers, pushed from the engine in their sandbox.
  const xray = new XrayHub({ sandboxes, catalog, log });
  http.once("close", () => xray.dispose());
  const maxSocketsPerIp = deps.maxSocketsPerIp ?? 0;
  const bySession = new Map<string, Set<BerthSocket>>();
  const byAddress = new Map<string, number>();
  const addressOf = (socket: BerthSocket) => clientAddress(socket.request, deps.trustProxy);
  const io = new Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, { user: SessionUser }>(http, {
    transports: ["websocket"],
    maxHttpBufferSize: 256 * 1024,
    // Cross-site websocket hijacking guard: the Origin must be this host.
    allowRequest: (req, callback) => {
      const origin = req.headers.origin;
      if (!origin) return callback(null, true); // not a browser (tests, tools): the cookie still decides
      const host = (deps.trustProxy && String(req.headers["x-forwarded-host"] ?? "").split(",")[0]!.trim()) || req.headers.host;
      try {
        callback(null, new URL(origin).host === host);
      } catch {
        callback(null, false);
      }
    },
  });

  io.use(async (socket, next) => {
    const user = await sessions.fromRequest(socket.request).catch(() => null);
    if (!user) return next(new Error("unauthorized: sign in first"));
    if (maxSocketsPerIp > 0 && (byAddress.get(addressOf(socket)) ?? 0) >= maxSocketsPerIp) {
      return next(new Error(`too many live connections from your address (at most ${maxSocketsPerIp}): close some Berth tabs`));
    }
    socket.data.user = user;
    next();
  });

  /** Ends a socket whose session is over; the browser then finds its handshake refused. */
  const endSession = (sessionId: string) => {
    for (const socket of bySession.get(sessionId) ?? []) {
      log.info({ user: socket.data.user.id }, "session ended: closing its socket");
      socket.disconnect(true);
    }
  };
  const unsubscribe = sessions.onEnded(endSession);
  const sweep = setInterval(() => {
    for (const [sessionId, sockets] of bySession) {
      const [socket] = sockets;
      if (!socket) continue;
      void sessions.fromRequest(socket.request).then(
        (user) => (!user || user.sessionId !== sessionId ? endSession(sessionId) : undefined),
        (err) => log.warn({ err: String(err) }, "session sweep: lookup failed"),
      );
    }
  }, deps.sessionSweepMs ?? 60_000);
  sweep.unref();
  http.once("close", () => {
    clearInterval(sweep);
    unsubscribe();
  });

  // A learner's sandbox starting or ending (reaped, reset) reaches every tab of theirs: the player
  // shows the time left and, when it ended, why.
  const stopRelay = sandboxes.onLifetime((change) => {
    io.to(userRoom(change.userId)).emit("sandbox:lifetime", {
      labId: change.labId,
      sandboxId: change.sandboxId,
      expiresAt: change.expiresAt.toISOString(),
      idleReapAt: change.endedReason ? null : new Date(Math.min(Date.now() + sandboxes.idleTimeoutMs, change.expiresAt.getTime())).toISOString(),
      ...(change.endedReason ? { endedReason: change.endedReason } : {}),
    });
  });
  http.once("close", stopRelay);

  io.on("connection", (socket: BerthSocket) => {
    const attached = new Map<string, TerminalSession>();
    // The newest term:attach of each terminal on this socket. The browser sends a second one while
    // the first still waits for the sandbox (the click's attach at a remembered size the terminal
    // did not get): both share this socket's viewer id, so only the newest may touch it.
    const newestAttach = new Map<string, number>();
    let attachCount = 0;
    // Aborted when the socket goes: a learner waiting in the sandbox queue leaves it.
    const gone = new AbortController();
    void socket.join(userRoom(socket.data.user.id));
    xray.attach(socket as unknown as XraySocket, socket.data.user.id);
    const { sessionId, expiresAt } = socket.data.user;
    const address = addressOf(socket);
    byAddress.set(address, (byAddress.get(address) ?? 0) + 1);
    const mine = bySession.get(sessionId) ?? new Set<BerthSocket>();
    mine.add(socket);
    bySession.set(sessionId, mine);
    // Expiry needs no sweep: the socket knows when its session ends. (Timers top out at ~24.8 days;
    // a longer session is caught by the sweep.)
    const untilExpiry = expiresAt.getTime() - Date.now();
    const expiry = untilExpiry < 2 ** 31 - 1 ? setTimeout(() => endSession(sessionId), Math.max(0, untilExpiry)) : undefined;
    expiry?.unref();
    const viewer: TerminalViewer = {
      id: socket.id,
      send: (msg) => socket.emit("term:data", msg),
      exited: (msg) => socket.emit("term:exit", msg),
    };

    socket.on("term:attach", async (raw, reply) => {
      const ack = typeof reply === "function" ? reply : () => {};
      const parsed = TermAttach.safeParse(raw);
      if (!parsed.success) return ack({ ok: false, error: `bad term:attach: ${parsed.error.issues[0]?.message}` });
      const { labId, term, cols, rows } = parsed.data;
      const seq = ++attachCount;
      newestAttach.set(term, seq);
      const superseded = () => newestAttach.get(term) !== seq;
      const replaced = () => ack({ ok: false, error: "replaced by a newer attach of this terminal" });
      // The handshake's session may have ended since (another tab signed out, the database changed).
      const current = await sessions.fromRequest(socket.request).catch(() => null);
      if (!current || current.sessionId !== sessionId) {
        ack({ ok: false, error: "your session has ended: sign in again" });
        return endSession(sessionId);
      }
      if (!catalog.get(labId, socket.data.user.id)) return ack({ ok: false, error: `no lab called "${labId}"` });
      const report = (phase: Parameters<ServerToClientEvents["sandbox:status"]>[0]["phase"], message: string) =>
        socket.emit("sandbox:status", { labId, phase, message });
      // Terminal 1 of a sandbox still being handed over (its shell came warm from the pool; the
      // lab's setup is running): its screen is shown at once, marked `preparing`, while the setup
      // finishes. Nothing typed reaches the shell before then: the session joins `attached` (the
      // input route) only below, and the browser holds keystrokes until the attach's answer.
      const shown: { early?: TerminalSession; preparing: boolean } = { preparing: false };
      const showEarly = (sb: LearnerSandbox) => {
        if (shown.early || superseded() || term !== "1" || sb.userId !== socket.data.user.id || sb.labId !== labId || sb.ready) return;
        const early = sb.terminals.get("1");
        if (!early) return;
        shown.early = early;
        shown.preparing = true;
        early.resize(cols, rows).catch(() => undefined);
        early.attach({ ...viewer, send: (msg) => socket.emit("term:data", shown.preparing ? { ...msg, preparing: true } : msg) });
      };
      // Being handed over already (the click's prepare came first), or from when it is.
      const starting = sandboxes.find(socket.data.user.id, labId);
      if (starting) showEarly(starting);
      const stopWatching = sandboxes.onConnected(showEarly);
      const early = () => shown.early;
      try {
        // A prepare from the page's request (no one to report to) may have been the attempt this
        // joined, and it does not queue: when the caps said "wait", ask again, as this socket.
        const sb = await sandboxes.acquire(socket.data.user.id, labId, report, gone.signal).catch((err: unknown) => {
          if (!(err instanceof SandboxCapError) || gone.signal.aborted) throw err;
          return sandboxes.acquire(socket.data.user.id, labId, report, gone.signal);
        });
        stopWatching();
        if (superseded()) return replaced();
        const session = await sandboxes.terminal(sb, term, cols, rows);
        // Gone while the sandbox came up (signed out, tab closed): attach nothing to a dead socket.
        if (socket.disconnected) return early()?.detach(socket.id);
        // A newer attach of this terminal came meanwhile: it owns the viewer (whose id this one
        // shares), and its size is the terminal's. The browser dropped this one already.
        if (superseded()) return replaced();
        const previous = attached.get(term);
        if (previous !== session) previous?.detach(socket.id);
        attached.set(term, session);
        if (session === early()) {
          shown.preparing = false; // its screen is on the viewer's screen already; live bytes follow
        } else {
          early()?.detach(socket.id);
          // The screen takes the viewer's size at once (the snapshot below is made at it); the pty's
          // resize is not waited for (an agent round trip: up to half a second on a busy host), except
          // for a shell re-attached after a restart, whose replay arrives before that answer.
          const resized = session.resize(cols, rows).catch(() => undefined);
          if (session.restoring) {
            await resized;
            session.restoring = false;
          }
          session.attach(viewer);
        }
        report("ready", `Connected to ${sb.hostname}`);
        // (Checked again after the awaits above: a presence joined after "disconnect" would never leave.)
        if (socket.connected) deps.presence?.join(socket.data.user.id, labId, {
          id: socket.id,
          // ("check:result" is in the contract; cast until ServerToClientEvents lists it.)
          pushCheckResult: (msg) => (socket as unknown as { emit(ev: "check:result", m: CheckResultPush): void }).emit("check:result", msg),
        });
        ack({ ok: true });
      } catch (err) {
        stopWatching();
        if (!superseded()) early()?.detach(socket.id);
        log.error({ err: String(err), labId }, "term:attach failed");
        report("error", err instanceof Error ? err.message : String(err));
        ack({ ok: false, error: err instanceof Error ? err.message : String(err) });
      }
    });

    // The player says which lab it opens before its terminal is laid out: the sandbox's hand-over,
    // the lab's setup and terminal 1's shell start (at a stand-in size; the attach resizes it)
    // overlap with the page's own work. term:attach shares these attempts.
    socket.on("sandbox:prepare", (raw) => {
      const parsed = SandboxPrepare.safeParse(raw);
      if (!parsed.success || !catalog.get(parsed.data.labId, socket.data.user.id)) return;
      const { labId } = parsed.data;
      const report = (phase: Parameters<ServerToClientEvents["sandbox:status"]>[0]["phase"], message: string) =>
        socket.emit("sandbox:status", { labId, phase, message });
      prepareLabSandbox(sandboxes, socket.data.user.id, labId, report, gone.signal)
        .catch((err) => {
          // The attach that follows meets the same failure and reports it.
          log.debug({ err: String(err), labId }, "sandbox:prepare failed");
        });
    });

    socket.on("term:input", (raw) => {
      const parsed = TermInput.safeParse(raw);
      if (!parsed.success) return;
      const bytes = typeof parsed.data.data === "string" ? Buffer.from(parsed.data.data, "utf8") : parsed.data.data;
      attached.get(parsed.data.term)?.input(bytes);
    });

    socket.on("term:resize", (raw) => {
      const parsed = TermResize.safeParse(raw);
      if (!parsed.success) return;
      attached.get(parsed.data.term)?.resize(parsed.data.cols, parsed.data.rows).catch(() => undefined);
    });

    socket.on("term:ack", (raw) => {
      const parsed = TermAck.safeParse(raw);
      if (parsed.success) attached.get(parsed.data.term)?.ack(socket.id, parsed.data.bytes);
    });

    socket.on("disconnect", () => {
      gone.abort();
      deps.presence?.leave(socket.id);
      for (const session of attached.values()) session.detach(socket.id);
      attached.clear();
      if (expiry) clearTimeout(expiry);
      mine.delete(socket);
      if (mine.size === 0 && bySession.get(sessionId) === mine) bySession.delete(sessionId);
      const left = (byAddress.get(address) ?? 1) - 1;
      if (left <= 0) byAddress.delete(address);
      else byAddress.set(address, left);
    });
  });

  return io;
}
