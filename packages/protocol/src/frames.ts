// Binary frames on the agent websocket. Terminal bytes never become strings on the way through:
// a UTF-8 character can straddle two chunks, and only xterm.js in the browser decodes them.
//
// Layout: [kind: u8][handle: u32 big-endian][payload bytes ...]
//
// Tunnels (web preview, tunnel.ts) use the same layout with the tunnel's id as the handle: data
// both ways, an acknowledgement of bytes consumed (flow control), a half-close, and a close.

export const FrameKind = {
  /** pty output, agent → orchestrator */
  PtyOutput: 1,
  /** keystrokes, orchestrator → agent */
  PtyInput: 2,
  /** TCP bytes of a tunnel, either direction */
  TunnelData: 3,
  /** payload: u32 big-endian, bytes of TunnelData the sender of this frame has consumed */
  TunnelAck: 4,
  /** the sender will send no more data (TCP half-close); empty payload */
  TunnelEnd: 5,
  /** the tunnel is gone both ways; payload: an optional UTF-8 reason */
  TunnelClose: 6,
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
  if (kind < FrameKind.PtyOutput || kind > FrameKind.TunnelClose) throw new Error(`unknown frame kind ${kind}`);
  return { kind: kind as FrameKind, handle: data.readUInt32BE(1), payload: data.subarray(HEADER) };
}
