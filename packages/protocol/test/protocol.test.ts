import { describe, expect, it } from "vitest";
import { AgentRequest, FrameKind, ReplayBuffer, TERMINAL_RESET, TUNNEL_ACK_EVERY, TUNNEL_WINDOW, decodeAck, decodeFrame, encodeAck, encodeFrame } from "../src/index.js";

describe("frames", () => {
  it("round-trips bytes that are not valid UTF-8 on their own", () => {
    const euro = Buffer.from("€", "utf8"); // three bytes: split it
    const frame = encodeFrame(FrameKind.PtyOutput, 0xdeadbeef, euro.subarray(0, 2));
    const back = decodeFrame(frame);
    expect(back.kind).toBe(FrameKind.PtyOutput);
    expect(back.handle).toBe(0xdeadbeef);
    expect([...back.payload]).toEqual([...euro.subarray(0, 2)]);
  });

  it("rejects short and unknown frames", () => {
    expect(() => decodeFrame(Buffer.from([1, 0]))).toThrow(/too short/);
    expect(() => decodeFrame(Buffer.from([9, 0, 0, 0, 1]))).toThrow(/unknown frame kind/);
  });
});

describe("ReplayBuffer", () => {
  it("keeps only the newest bytes up to its capacity and replays after a reset", () => {
    const r = new ReplayBuffer(8);
    r.push(Buffer.from("abcdef"));
    r.push(Buffer.from("ghijk"));
    expect(r.byteLength).toBe(8);
    expect(r.contents().toString()).toBe("defghijk");
    expect(r.replay().subarray(0, TERMINAL_RESET.length).equals(TERMINAL_RESET)).toBe(true);
  });

  it("copies what it keeps (the caller may reuse its buffer)", () => {
    const r = new ReplayBuffer(16);
    const chunk = Buffer.from("xyz");
    r.push(chunk);
    chunk.fill(0);
    expect(r.contents().toString()).toBe("xyz");
  });
});

describe("agent requests", () => {
  it("validates ops and fills defaults", () => {
    const exec = AgentRequest.parse({ op: "exec", cmd: ["true"] });
    expect(exec).toMatchObject({ timeoutMs: 30_000, maxOutputBytes: 65_536 });
    expect(AgentRequest.safeParse({ op: "pty.start", key: "main", cols: 0, rows: 10 }).success).toBe(false);
    expect(AgentRequest.safeParse({ op: "rm -rf" }).success).toBe(false);
  });
});

describe("tunnels", () => {
  it("carries tunnel frames and acknowledgements", () => {
    for (const kind of [FrameKind.TunnelData, FrameKind.TunnelAck, FrameKind.TunnelEnd, FrameKind.TunnelClose]) {
      expect(decodeFrame(encodeFrame(kind, 7, Buffer.from("x"))).kind).toBe(kind);
    }
    const ack = decodeFrame(encodeFrame(FrameKind.TunnelAck, 7, encodeAck(TUNNEL_WINDOW)));
    expect(decodeAck(ack.payload)).toBe(TUNNEL_WINDOW);
    expect(() => decodeAck(Buffer.from([1, 2]))).toThrow(/4 bytes/);
    expect(TUNNEL_ACK_EVERY).toBeLessThanOrEqual(TUNNEL_WINDOW);
  });

  it("validates tunnel.open: a port, an id, a default timeout", () => {
    expect(AgentRequest.parse({ op: "tunnel.open", id: 1, port: 8080 })).toMatchObject({ timeoutMs: 5000 });
    for (const port of [0, 65536, 80.5, "80"]) {
      expect(AgentRequest.safeParse({ op: "tunnel.open", id: 1, port }).success, String(port)).toBe(false);
    }
    expect(AgentRequest.safeParse({ op: "tunnel.open", id: 0, port: 80 }).success).toBe(false);
  });
});
