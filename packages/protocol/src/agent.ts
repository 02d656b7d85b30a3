// The agent protocol: orchestrator ↔ agent over one websocket per sandbox (a UNIX socket that the
// sandbox driver exposes on the host). Modelled on E2B's envd: processes with or without a pty,
// re-attach by handle, exec with limits, files, events, health.
//
// Text frames carry JSON: a request {rid, op, ...} gets exactly one reply {rid, ok, ...} or
// {rid, ok:false, error}. Events {event, ...} have no rid. Binary frames carry pty bytes (frames.ts).
// Every connection presents the sandbox token as `Authorization: Bearer <token>` on the upgrade.
import { z } from "zod";

export const AGENT_PROTOCOL_VERSION = 1;

const base64 = z.string().describe("base64-encoded bytes");

export const PtyStart = z.object({
  op: z.literal("pty.start"),
  /** A stable name ("main"): starting an existing key re-attaches instead of spawning a second shell. */
  key: z.string().min(1).max(64),
  cols: z.number().int().min(1).max(1000),
  rows: z.number().int().min(1).max(1000),
  cmd: z.array(z.string()).min(1).optional(),
  cwd: z.string().optional(),
  env: z.record(z.string(), z.string()).optional(),
});
export const PtyAttach = z.object({ op: z.literal("pty.attach"), handle: z.number().int() });
export const PtyResize = z.object({
  op: z.literal("pty.resize"),
  handle: z.number().int(),
  cols: z.number().int().min(1).max(1000),
  rows: z.number().int().min(1).max(1000),
});
export const PtyFlow = z.object({ op: z.literal("pty.flow"), handle: z.number().int(), paused: z.boolean() });
export const PtySignal = z.object({ op: z.literal("pty.signal"), handle: z.number().int(), signal: z.string() });
export const PtyKill = z.object({ op: z.literal("pty.kill"), handle: z.number().int() });
export const PtyList = z.object({ op: z.literal("pty.list") });

export const Exec = z.object({
  op: z.literal("exec"),
  cmd: z.array(z.string()).min(1),
  /** Bytes to write to the process's stdin, then stdin is closed. */
  stdin: base64.optional(),
  env: z.record(z.string(), z.string()).optional(),
  cwd: z.string().optional(),
  timeoutMs: z.number().int().min(1).max(10 * 60_000).default(30_000),
  /** Each of stdout and stderr is cut at this many bytes. */
  maxOutputBytes: z.number().int().min(0).max(16 * 1024 * 1024).default(64 * 1024),
});

export const FileRead = z.object({ op: z.literal("file.read"), path: z.string(), maxBytes: z.number().int().default(1024 * 1024) });
export const FileWrite = z.object({ op: z.literal("file.write"), path: z.string(), data: base64, mode: z.number().int().optional() });
export const FileStat = z.object({ op: z.literal("file.stat"), path: z.string() });
export const FileList = z.object({ op: z.literal("file.list"), path: z.string() });
export const Health = z.object({ op: z.literal("health") });
/** Open a TCP connection to 127.0.0.1:<port> inside the sandbox; bytes then flow as frames (tunnel.ts). */
export const TunnelOpen = z.object({
  op: z.literal("tunnel.open"),
  /** Chosen by the client, unique among its connection's open tunnels. */
  id: z.number().int().min(1).max(0xffffffff),
  port: z.number().int().min(1).max(65535),
  timeoutMs: z.number().int().min(1).max(60_000).default(5000),
});

export const AgentRequest = z.discriminatedUnion("op", [
  PtyStart, PtyAttach, PtyResize, PtyFlow, PtySignal, PtyKill, PtyList,
  Exec, FileRead, FileWrite, FileStat, FileList, Health, TunnelOpen,
]);
export type AgentRequest = z.infer<typeof AgentRequest>;
export type AgentRequestInput = z.input<typeof AgentRequest>;
export type AgentOp = AgentRequest["op"];

/** The envelope on the wire: a request plus its request id. */
export const AgentEnvelope = z.object({ rid: z.number().int() }).passthrough();

// Replies, by op.
export interface PtyInfo {
  handle: number;
  key: string;
  pid: number;
  cols: number;
  rows: number;
  exited: boolean;
}
export interface PtyStartReply extends PtyInfo {
  /** True when the key already had a live pty and this call re-attached to it. */
  reattached: boolean;
}
export interface ExecReply {
  exitCode: number | null;
  signal: string | null;
  stdout: string; // base64
  stderr: string; // base64
  timedOut: boolean;
  truncated: boolean;
  durationMs: number;
}
export interface FileStatReply {
  name: string;
  size: number;
  mode: number;
  isDir: boolean;
  isSymlink: boolean;
  mtimeMs: number;
}
export interface HealthReply {
  version: number;
  hostname: string;
  uptimeMs: number;
  ptys: number;
  memoryRss: number;
  /** Tunnels open on all connections (web preview); absent from agents older than tunnels. */
  tunnels?: number;
}
export interface AgentReplies {
  "pty.start": PtyStartReply;
  "pty.attach": PtyInfo;
  "pty.resize": Record<string, never>;
  "pty.flow": Record<string, never>;
  "pty.signal": Record<string, never>;
  "pty.kill": Record<string, never>;
  "pty.list": { ptys: PtyInfo[] };
  exec: ExecReply;
  "file.read": { data: string; truncated: boolean };
  "file.write": Record<string, never>;
  "file.stat": FileStatReply;
  "file.list": { entries: FileStatReply[] };
  health: HealthReply;
  "tunnel.open": Record<string, never>;
}

export type AgentReply =
  | { rid: number; ok: true; result: unknown }
  | { rid: number; ok: false; error: string; code?: string };

export type AgentEvent =
  /** Once the pty's process is gone and its last output has been sent. */
  | { event: "pty.exit"; handle: number; exitCode: number; signal: number | null };
