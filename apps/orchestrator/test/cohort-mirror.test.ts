// A mirror of a learner's terminal (an instructor watching, cohorts/live.ts) gets the same replay
// as the learner (the kept screen first, then live bytes), but never holds the learner's pty back:
// a mirror that stops acknowledging stops getting bytes, and once it acknowledges what it had it
// gets the screen as it is now. No sandbox, no root: the agent records the flow requests.
import type { AgentClient } from "@berth/sandbox";
import { FLOW_HIGH_WATERMARK } from "@berth/protocol";
import { describe, expect, it } from "vitest";
import { TerminalSession, type TerminalViewer } from "../src/terminals/terminal-session.js";

function recordingAgent() {
  const flow: boolean[] = [];
  const agent = {
    sendInput: () => ({ sent: true }),
    request: async (req: { op: string; paused?: boolean }) => {
      if (req.op === "pty.flow") flow.push(req.paused!);
      return {};
    },
  } as unknown as AgentClient;
  return { agent, flow };
}

function viewer(id: string) {
  const got: Array<{ bytes: number; reset: boolean; text: string }> = [];
  const v: TerminalViewer = {
    id,
    send: (m) => got.push({ bytes: m.data.length, reset: m.reset === true, text: Buffer.from(m.data).toString("utf8") }),
    exited: () => undefined,
  };
  return { v, got, total: () => got.reduce((n, g) => n + g.bytes, 0) };
}

/** Output in bursts the kept screen keeps up with (so only viewers can hold the pty back). */
async function flood(session: TerminalSession, bytes: number, after: () => void = () => undefined) {
  const line = Buffer.from(`${"m".repeat(63)}\n`);
  for (let sent = 0; sent < bytes; sent += line.length * 256) {
    session.output(Buffer.concat(Array(256).fill(line)));
    after();
    await session.screen.settled();
  }
}

describe("a terminal mirror", () => {
  it("gets the kept screen, then live bytes, and is not the learner's viewer", async () => {
    const { agent } = recordingAgent();
    const session = new TerminalSession("1", 1, agent, { cols: 80, rows: 24 });
    session.output(Buffer.from("learner$ ls\r\n"));
    const learner = viewer("learner");
    session.attach(learner.v);
    const mirror = viewer("mirror");
    session.attach(mirror.v, { mirror: true });
    await session.screen.settled();
    await new Promise((r) => setTimeout(r, 50));
    session.output(Buffer.from("after"));
    expect(mirror.got[0]!.reset).toBe(true);
    expect(mirror.got[0]!.text).toContain("learner$ ls");
    expect(mirror.got.at(-1)!.text).toBe("after");
    expect([session.viewerCount, session.mirrorCount]).toEqual([1, 1]);
    session.dispose();
  });

  it("that never acknowledges does not pause the pty; it is cut off, then resynced with a fresh screen", async () => {
    const { agent, flow } = recordingAgent();
    const session = new TerminalSession("1", 2, agent, { cols: 80, rows: 24 });
    const learner = viewer("learner");
    const mirror = viewer("mirror");
    session.attach(learner.v);
    session.attach(mirror.v, { mirror: true });
    await session.screen.settled();
    await new Promise((r) => setTimeout(r, 50));
    // The learner acknowledges everything at once; the mirror nothing.
    await flood(session, FLOW_HIGH_WATERMARK * 3, () => session.ack("learner", learner.total()));
    expect(flow).not.toContain(true);
    expect(learner.total()).toBeGreaterThanOrEqual(FLOW_HIGH_WATERMARK * 3);
    const cutAt = mirror.total();
    expect(cutAt).toBeLessThan(FLOW_HIGH_WATERMARK + 64 * 1024);
    // The mirror catches up: it gets the screen as it is now (a reset), then live bytes again.
    session.ack("mirror", cutAt);
    await session.screen.settled();
    await new Promise((r) => setTimeout(r, 50));
    const resync = mirror.got.findLast((g) => g.reset);
    expect(resync).toBeDefined();
    expect(mirror.got.indexOf(resync!)).toBeGreaterThan(0);
    session.output(Buffer.from("live again"));
    expect(mirror.got.at(-1)!.text).toBe("live again");
    session.dispose();
  });

  it("compared with a learner's own slow viewer, which does pause the pty", async () => {
    const { agent, flow } = recordingAgent();
    const session = new TerminalSession("1", 3, agent, { cols: 80, rows: 24 });
    session.attach(viewer("slow-tab").v);
    await flood(session, FLOW_HIGH_WATERMARK * 2);
    expect(flow).toContain(true);
    session.dispose();
  });
});
