// Binary frames on the agent websocket. Terminal bytes never become strings on the way through:
// a UTF-8 character can straddle two chunks, and only xterm.js in the browser decodes them.
//
// Layout: [kind: u8][handle: u32 big-endian][payload bytes ...]

export const FrameKind = {
  /** pty output, agent → orchestrator */
  PtyOutput: 1,
  /** keystrokes, orchestrator → agent */
  PtyInput: 2,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

const HEADER = 5;

export function encodeFrame(kind: FrameKind, handle: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER + payload.length);
  out.writeUInt8(kind, 0);
  out.writeUInt32BE(handle >>> 0, 1);
  out.set(payload, HEADER);
  return out;
}

export interface Frame {
  kind: FrameKind;
  handle: number;
  payload: Buffer;
}

export function decodeFrame(data: Buffer): Frame {
  if (data.length < HEADER) throw new Error(`frame too short: ${data.length} bytes, need at least ${HEADER}`);
  const kind = data.readUInt8(0);
  if (kind !== FrameKind.PtyOutput && kind !== FrameKind.PtyInput) throw new Error(`unknown frame kind ${kind}`);
  return { kind, handle: data.readUInt32BE(1), payload: data.subarray(HEADER) };
}
