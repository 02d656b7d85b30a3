// Tunnels: a TCP connection the agent opens inside its sandbox's network namespace, carried over
// the agent websocket so the orchestrator never needs a route into a sandbox's network. The web
// preview is built on it (docs/architecture.md, "Web preview").
//
// 1. The client picks an id and sends {op: "tunnel.open", id, port}. The agent connects to
//    127.0.0.1:<port> (then [::1]:<port> if refused) and replies {} once connected, or an error with code ECONNREFUSED (nothing
//    listens), ETIMEDOUT, ...; a refused open leaves nothing behind.
// 2. Bytes flow as TunnelData frames both ways (frames.ts). Credit-based flow control, per tunnel
//    and per direction, like HTTP/2's windows: a sender keeps at most TUNNEL_WINDOW bytes that the
//    other side has not acknowledged; the receiver acknowledges (TunnelAck) once it has handed the
//    bytes on (written to its socket without back-pressure, or read by its consumer). A slow reader
//    stalls only its own tunnel, never the terminal on the same websocket.
// 3. TunnelEnd is a half-close (no more data from this side); TunnelClose ends the tunnel both
//    ways. The agent sends TunnelClose once its socket is closed; it is the last frame of a tunnel.
//    A websocket that closes takes all its tunnels with it.

/** Bytes a sender may have in flight, unacknowledged, per tunnel and direction. */
export const TUNNEL_WINDOW = 1024 * 1024;
/** A receiver acknowledges once it has consumed at least this many bytes (TUNNEL_WINDOW ≥ it). */
export const TUNNEL_ACK_EVERY = 128 * 1024;
/** Tunnels one agent connection may hold open at once. */
export const TUNNEL_MAX_PER_CONNECTION = 256;

export function encodeAck(bytes: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(bytes >>> 0, 0);
  return b;
}

export function decodeAck(payload: Buffer): number {
  if (payload.length !== 4) throw new Error(`a tunnel ack carries 4 bytes, got ${payload.length}`);
  return payload.readUInt32BE(0);
}
