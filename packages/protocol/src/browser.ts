// Browser ↔ orchestrator over socket.io (websocket transport only). The socket is authenticated by
// the session cookie at the handshake. Terminal output arrives as binary (ArrayBuffer) and is
// written to xterm.js as Uint8Array without decoding.
import { z } from "zod";
import type { BoardRow, BoardView, ClassMessageView, ClassWatchingEvent } from "./cohorts.js";

/**
 * The terminals of a lab session: a sandbox has at most these shells (the player's tabs; a code
 * block's `data-term` names one). A closed list, not any string: every key is a pty in the sandbox
 * and a kept screen in the orchestrator's memory.
 */
export const TERMINAL_KEYS = ["1", "2", "3"] as const;
export type TerminalKey = (typeof TERMINAL_KEYS)[number];
export const TermKey = z.enum(TERMINAL_KEYS, { error: () => `a terminal is one of ${TERMINAL_KEYS.join(", ")}` });

export const TermAttach = z.object({
  /** The lab session (one sandbox per learner and lab). */
  labId: z.string().min(1).max(100),
  term: TermKey.default("1"),
  cols: z.number().int().min(1).max(1000),
  rows: z.number().int().min(1).max(1000),
});
export type TermAttach = z.infer<typeof TermAttach>;

export const TermInput = z.object({
  term: TermKey,
  /** Keystrokes as a string (xterm's onData) or bytes (onBinary). */
  data: z.union([z.string().max(64 * 1024), z.instanceof(Uint8Array)]),
});
export const TermResize = z.object({
  term: TermKey,
  cols: z.number().int().min(1).max(1000),
  rows: z.number().int().min(1).max(1000),
});
export const TermAck = z.object({ term: TermKey, bytes: z.number().int().min(0) });
/**
 * "I am about to attach to this lab": the server starts handing over the learner's sandbox (warm
 * pool, lab setup) while the page still lays out its terminal, whose size the attach needs.
 */
export const SandboxPrepare = z.object({ labId: z.string().min(1).max(100) });

/** Events the browser sends. */
export interface ClientToServerEvents {
  "term:attach": (msg: TermAttach, reply: (res: { ok: true } | { ok: false; error: string }) => void) => void;
  "term:input": (msg: z.input<typeof TermInput>) => void;
  "term:resize": (msg: z.infer<typeof TermResize>) => void;
  "term:ack": (msg: z.infer<typeof TermAck>) => void;
  "sandbox:prepare": (msg: z.infer<typeof SandboxPrepare>) => void;
  // Instructors only (cohorts.ts; each is checked on the server against the cohort's owner).
  "board:watch": (msg: { cohortId: string }, reply: (res: { ok: true; board: BoardView } | { ok: false; error: string }) => void) => void;
  "board:unwatch": (msg: { cohortId: string }) => void;
  "mirror:open": (
    msg: { cohortId: string; userId: string; labId: string; term?: string; cols: number; rows: number },
    reply: (res: { ok: true; mirrorId: string; cols: number; rows: number } | { ok: false; error: string }) => void,
  ) => void;
  "mirror:ack": (msg: { mirrorId: string; bytes: number }) => void;
  "mirror:close": (msg: { mirrorId: string }) => void;
}

export type SandboxPhase = "queued" | "allocating" | "booting" | "ready" | "error" | "ended";

/**
 * A learner's sandbox for a lab started or ended (sent to all of the learner's sockets). Times are
 * ISO strings. The player counts down from them on its own and warns before either deadline; with
 * `endedReason` ("idle", "expired", "reset", "lost" ...) the sandbox is gone.
 */
export interface SandboxLifetimeEvent {
  labId: string;
  sandboxId: string;
  expiresAt: string;
  /** When the reaper would end it for idleness if nobody watched from now on; null once ended. */
  idleReapAt: string | null;
  warning?: string;
  endedReason?: string;
}

/** GET /api/labs/:lab/sandbox: the newest sandbox of the caller for that lab ("none": never had one). */
export interface SandboxLifetimeView {
  state: "none" | "starting" | "running" | "stopped" | "ended";
  sandboxId: string | null;
  driver: string | null;
  createdAt: string | null;
  expiresAt: string | null;
  idleReapAt: string | null;
  endedReason: string | null;
  /** BERTH_IDLE_MINUTES in ms: how long a sandbox nobody watches or uses lives on. */
  idleTimeoutMs: number;
  /** The server's clock when it answered, so the browser can count down with its own clock's offset. */
  now: string;
}

/** Events the server sends. */
export interface ServerToClientEvents {
  /**
   * Output bytes. `reset` means: reset the terminal first; the bytes are then the kept screen
   * (scrollback, screen, cursor and modes, made for the size the viewer attached with), and
   * live output follows. `preparing`: the sandbox's lab setup is still running; show the bytes,
   * but keystrokes wait for the attach's answer (the server routes none to the shell before it).
   */
  "term:data": (msg: { term: string; data: ArrayBuffer | Uint8Array; reset?: boolean; preparing?: boolean }) => void;
  "term:exit": (msg: { term: string; exitCode: number }) => void;
  "sandbox:status": (msg: { labId: string; phase: SandboxPhase; message: string }) => void;
  "sandbox:lifetime": (msg: SandboxLifetimeEvent) => void;
  /** To an instructor watching a board: a learner's row changed. */
  "board:row": (msg: { cohortId: string; row: BoardRow }) => void;
  /** A mirrored terminal's bytes (like term:data: `reset` first means the kept screen follows). */
  "mirror:data": (msg: { mirrorId: string; data: ArrayBuffer | Uint8Array; reset?: boolean; cols?: number; rows?: number }) => void;
  "mirror:exit": (msg: { mirrorId: string; reason: string }) => void;
  /** To a learner: an instructor opened or closed a mirror of their terminal. */
  "class:watching": (msg: ClassWatchingEvent) => void;
  /** To a learner: a message from their instructor. */
  "class:message": (msg: ClassMessageView) => void;
}
