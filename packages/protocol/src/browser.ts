// Browser ↔ orchestrator over socket.io (websocket transport only). The socket is authenticated by
// the session cookie at the handshake. Terminal output arrives as binary (ArrayBuffer) and is
// written to xterm.js as Uint8Array without decoding.
import { z } from "zod";

export const TERMINAL_KEYS = ["main"] as const;

export const TermAttach = z.object({
  /** The lab session (one sandbox per learner and lab). */
  labId: z.string().min(1).max(100),
  term: z.string().min(1).max(64).default("main"),
  cols: z.number().int().min(1).max(1000),
  rows: z.number().int().min(1).max(1000),
});
export type TermAttach = z.infer<typeof TermAttach>;

export const TermInput = z.object({
  term: z.string().min(1).max(64),
  /** Keystrokes as a string (xterm's onData) or bytes (onBinary). */
  data: z.union([z.string().max(64 * 1024), z.instanceof(Uint8Array)]),
});
export const TermResize = z.object({
  term: z.string().min(1).max(64),
  cols: z.number().int().min(1).max(1000),
  rows: z.number().int().min(1).max(1000),
});
export const TermAck = z.object({ term: z.string().min(1).max(64), bytes: z.number().int().min(0) });

/** Events the browser sends. */
export interface ClientToServerEvents {
  "term:attach": (msg: TermAttach, reply: (res: { ok: true } | { ok: false; error: string }) => void) => void;
  "term:input": (msg: z.input<typeof TermInput>) => void;
  "term:resize": (msg: z.infer<typeof TermResize>) => void;
  "term:ack": (msg: z.infer<typeof TermAck>) => void;
}

export type SandboxPhase = "queued" | "allocating" | "booting" | "ready" | "error" | "ended";

/** Events the server sends. */
export interface ServerToClientEvents {
  /** Output bytes; `reset` means: clear the screen first (a replay follows). */
  "term:data": (msg: { term: string; data: ArrayBuffer | Uint8Array; reset?: boolean }) => void;
  "term:exit": (msg: { term: string; exitCode: number }) => void;
  "sandbox:status": (msg: { labId: string; phase: SandboxPhase; message: string }) => void;
}
