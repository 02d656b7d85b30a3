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

// Replies, by op. The orchestrator validates every reply against these before use: the agent runs
// inside the learner's sandbox, where root can make it say anything (docs/sandboxes.md, "A hostile
// sandbox").
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
export const PtyInfo = z.object({
  handle: count,
  key: z.string().max(64),
  pid: count,
  cols: z.number().int().min(1).max(1000),
  rows: z.number().int().min(1).max(1000),
  exited: z.boolean(),
});
export type PtyInfo = z.infer<typeof PtyInfo>;
/** reattached: true when the key already had a live pty and this call re-attached to it. */
export const PtyStartReply = PtyInfo.extend({ reattached: z.boolean() });
export type PtyStartReply = z.infer<typeof PtyStartReply>;
export const ExecReply = z.object({
  exitCode: z.number().int().nullable(),
  signal: z.string().max(32).nullable(),
  stdout: base64,
  stderr: base64,
  timedOut: z.boolean(),
  truncated: z.boolean(),
  durationMs: z.number().min(0),
});
export type ExecReply = z.infer<typeof ExecReply>;
export const FileStatReply = z.object({
  name: z.string().max(4096),
  size: count,
  mode: count,
  isDir: z.boolean(),
  isSymlink: z.boolean(),
  mtimeMs: z.number(),
});
export type FileStatReply = z.infer<typeof FileStatReply>;
export const HealthReply = z.object({
  version: z.number().int(),
  hostname: z.string().max(255),
  uptimeMs: z.number().min(0),
  ptys: count,
  memoryRss: count,
  /** Tunnels open on all connections (web preview); absent from agents older than tunnels. */
  tunnels: count.optional(),
});
export type HealthReply = z.infer<typeof HealthReply>;
const Empty = z.object({});

/** The result schema of each op's successful reply. */
export const AgentReplySchemas = {
  "pty.start": PtyStartReply,
  "pty.attach": PtyInfo,
  "pty.resize": Empty,
  "pty.flow": Empty,
  "pty.signal": Empty,
  "pty.kill": Empty,
  "pty.list": z.object({ ptys: z.array(PtyInfo).max(10_000) }),
  exec: ExecReply,
  "file.read": z.object({ data: base64, truncated: z.boolean() }),
  "file.write": Empty,
  "file.stat": FileStatReply,
  "file.list": z.object({ entries: z.array(FileStatReply) }),
  health: HealthReply,
  "tunnel.open": Empty,
} satisfies Record<AgentOp, z.ZodTypeAny>;
export type AgentReplies = { [K in AgentOp]: z.infer<(typeof AgentReplySchemas)[K]> };

/** A reply's envelope: exactly one per request, matched by rid. The result is checked per op. */
export const AgentReply = z.discriminatedUnion("ok", [
  z.object({ rid: z.number().int(), ok: z.literal(true), result: z.unknown() }),
  z.object({ rid: z.number().int(), ok: z.literal(false), error: z.string().max(8192), code: z.string().max(64).optional() }),
]);
export type AgentReply =
  | { rid: number; ok: true; result: unknown }
  | { rid: number; ok: false; error: string; code?: string };

export const AgentEvent = z.discriminatedUnion("event", [
  /** Once the pty's process is gone and its last output has been sent. */
  z.object({ event: z.literal("pty.exit"), handle: count, exitCode: z.number().int(), signal: z.number().int().nullable() }),
]);
export type AgentEvent = z.infer<typeof AgentEvent>;
