// The screen the server keeps per terminal (TerminalScreen) and how a TerminalSession hands it to an
// attaching viewer. The viewer here is xterm.js itself (the headless build of the library the
// browser runs), so "the restored screen" is judged by the same parser that draws it. The agent is
// a recorder: these tests need no sandbox and no root (the browser tests drive the real thing).
import headless from "@xterm/headless";
import { afterEach, describe, expect, it } from "vitest";
import type { AgentClient } from "@berth/sandbox";
import { FLOW_HIGH_WATERMARK } from "@berth/protocol";
import { TerminalScreen } from "../src/terminals/terminal-screen.js";
import { TerminalSession, type TerminalViewer } from "../src/terminals/terminal-session.js";

const { Terminal } = headless;
type Term = InstanceType<typeof Terminal>;

const PROMPT = "root@berth-1a2b3c:~# ";
const LONG_COMMAND = `echo ${"wrapped-".repeat(24)}end`;
const enc = (s: string) => Buffer.from(s, "utf8");

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const fn of cleanups.splice(0).reverse()) fn();
});

function term(cols: number, rows: number): Term {
  const t = new Terminal({ cols, rows, scrollback: 5000, allowProposedApi: true });
  cleanups.push(() => t.dispose());
  return t;
}
function screen(cols: number, rows: number, scrollback?: number): TerminalScreen {
  const s = new TerminalScreen({ cols, rows, scrollback });
  cleanups.push(() => s.dispose());
  return s;
}
const write = (t: Term, data: Uint8Array | string) => new Promise<void>((r) => t.write(data, r));

/** Everything a person could see of a terminal: each line's text and wrap flag, the cursor, the buffer. */
function look(t: Term) {
  const b = t.buffer.active;
  const lines: string[] = [];
  for (let y = 0; y < b.length; y++) {
    const line = b.getLine(y)!;
    lines.push(`${line.isWrapped ? "~" : " "}${line.translateToString(true)}`);
  }
  while (lines.length > 0 && lines[lines.length - 1] === " ") lines.pop();
  return { lines, cursor: [b.cursorX, b.cursorY, b.viewportY], buffer: b.type };
}

/** What a browser does with a snapshot: a fresh terminal of the viewer's size, the bytes written into it. */
async function restore(snapshot: Buffer, cols: number, rows: number): Promise<Term> {
  const viewer = term(cols, rows);
  await write(viewer, snapshot);
  return viewer;
}

function recordingAgent() {
  const requests: Array<Record<string, unknown>> = [];
  const agent = {
    sendInput: () => ({ sent: true }),
    request: async (req: Record<string, unknown>) => {
      requests.push(req);
      return {};
    },
  } as unknown as AgentClient;
  return { agent, requests };
}

/** A viewer that feeds what it is sent into its own xterm, as TerminalLink does (reset → reset()). */
function xtermViewer(id: string, cols: number, rows: number) {
  const t = term(cols, rows);
  let chain = Promise.resolve();
  const sent: Array<{ reset: boolean; bytes: number }> = [];
  const exits: number[] = [];
  const viewer: TerminalViewer = {
    id,
    send: (msg) => {
      sent.push({ reset: msg.reset === true, bytes: msg.data.length });
      const data = Buffer.from(msg.data);
      chain = chain.then(async () => {
        if (msg.reset) t.reset();
        await write(t, data);
      });
    },
    exited: (msg) => exits.push(msg.exitCode),
  };
  return { viewer, term: t, sent, exits, idle: () => chain };
}

describe("TerminalScreen", () => {
  it("gives back a long wrapped command line exactly: text, wrap flags and cursor", async () => {
    const bytes = enc(`${PROMPT}ls\r\nDockerfile  app.py\r\n${PROMPT}${LONG_COMMAND}`);
    const live = term(60, 12); // the browser that saw it all
    await write(live, bytes);
    const s = screen(60, 12);
    s.write(bytes);
    const viewer = await restore(await new Promise<Buffer>((r) => s.snapshot(r)), 60, 12);
    expect(look(live).lines.some((l) => l.startsWith("~"))).toBe(true); // the line did wrap
    expect(look(viewer)).toEqual(look(live));
  });

  it("reflows to the viewer's new width as a live terminal resized at the same point would", async () => {
    // A wrapped command line, its output, and a line a program drew with the cursor at column 70
    // (as readline does when it redraws a line, or a status line would).
    const before = enc(`${PROMPT}${LONG_COMMAND}\r\n${"wrapped-".repeat(24)}end\r\n\x1b[70Gright\r\n${PROMPT}`);
    const after = enc("x");
    const live = term(100, 20);
    await write(live, before);
    live.resize(43, 15);
    await write(live, after);

    const s = screen(100, 20);
    s.write(before);
    s.resize(43, 15); // applied after `before`, whenever xterm gets to it
    s.write(after);
    const restored = await restore(await new Promise<Buffer>((r) => s.snapshot(r)), 43, 15);
    expect(look(restored)).toEqual(look(live));

    // What Berth did before: the raw bytes replayed into a terminal of the new width. The cursor
    // moves assumed the old width, so the screen differs: the garbling this fixes.
    const replayed = term(43, 15);
    await write(replayed, Buffer.concat([before, after]));
    expect(look(replayed)).not.toEqual(look(live));
  });

  it("restores the alternate screen (a full-screen program) and the terminal's modes", async () => {
    const s = screen(80, 24);
    s.write(enc(`${PROMPT}vi notes\r\n`));
    // alternate screen, bracketed paste, application cursor keys, then the editor's screen
    s.write(enc("\x1b[?1049h\x1b[?2004h\x1b[?1h\x1b[H\x1b[2J~\r\n~\r\n\x1b[24;1H\"notes\" [New]"));
    const restored = await restore(await new Promise<Buffer>((r) => s.snapshot(r)), 80, 24);
    expect(restored.buffer.active.type).toBe("alternate");
    expect(restored.modes.bracketedPasteMode).toBe(true);
    expect(restored.modes.applicationCursorKeysMode).toBe(true);
    expect(restored.buffer.active.getLine(23)!.translateToString(true)).toBe('"notes" [New]');
    // Leaving the editor shows the shell's screen underneath, as it was.
    await write(restored, "\x1b[?1049l");
    expect(restored.buffer.active.getLine(0)!.translateToString(true)).toBe(`${PROMPT}vi notes`);
  });

  it("keeps a bounded history: the newest lines of scrollback, not everything ever printed", async () => {
    const s = screen(80, 10, 200);
    const lines = Array.from({ length: 3000 }, (_, i) => `line ${i}`).join("\r\n");
    s.write(enc(lines));
    const restored = await restore(await new Promise<Buffer>((r) => s.snapshot(r)), 80, 10);
    const text = look(restored).lines.map((l) => l.slice(1));
    expect(text.length).toBeLessThanOrEqual(210);
    expect(text[text.length - 1]).toBe("line 2999");
    expect(text).not.toContain("line 100");
  });

  it("is rebuilt from the agent's replay ring after an orchestrator restart (reset, then raw bytes)", async () => {
    const s = screen(80, 24);
    // The agent's ring starts with RIS; it may have been cut inside an escape sequence before it.
    s.write(Buffer.concat([enc("\x1bc"), enc(`${PROMPT}echo kept\r\nkept\r\n${PROMPT}`)]));
    const restored = await restore(await new Promise<Buffer>((r) => s.snapshot(r)), 80, 24);
    expect(look(restored).lines).toEqual([` ${PROMPT}echo kept`, " kept", ` ${PROMPT}`]);
    expect(look(restored).cursor).toEqual([PROMPT.length, 2, 0]);
  });
});

describe("TerminalSession", () => {
  it("attaches a viewer mid-stream without losing or repeating a byte", async () => {
    const { agent } = recordingAgent();
    const session = new TerminalSession("1", 7, agent, { cols: 50, rows: 10 });
    cleanups.push(() => session.dispose());
    const reference = term(50, 10);
    const chunks = Array.from({ length: 60 }, (_, i) => enc(`${i === 0 ? PROMPT : ""}out ${i} ${"·".repeat(i % 7)}\r\n`));
    let viewer: ReturnType<typeof xtermViewer> | undefined;
    // All in one go: xterm parses on a timer, so at the attach the screen has parsed none of it.
    for (const [i, chunk] of chunks.entries()) {
      session.output(chunk);
      if (i === 30) {
        viewer = xtermViewer("v1", 50, 10);
        session.attach(viewer.viewer);
      }
    }
    for (const chunk of chunks) await write(reference, chunk);
    await session.screen.settled();
    await viewer!.idle();
    expect(viewer!.sent[0]!.reset).toBe(true);
    expect(viewer!.sent.slice(1).every((m) => !m.reset)).toBe(true);
    expect(look(viewer!.term)).toEqual(look(reference));
  });

  it("tells a viewer that attaches to an exited shell: the screen first, then the exit", async () => {
    const { agent } = recordingAgent();
    const session = new TerminalSession("2", 3, agent, { cols: 80, rows: 24 });
    cleanups.push(() => session.dispose());
    session.output(enc(`${PROMPT}exit\r\nlogout\r\n`));
    session.exit(0);
    const v = xtermViewer("v", 80, 24);
    session.attach(v.viewer);
    expect(v.exits).toEqual([]); // not before its screen
    await session.screen.settled();
    await v.idle();
    expect(v.exits).toEqual([0]);
    expect(look(v.term).lines).toContain(" logout");
  });

  it("pauses the pty while its own screen is a flood behind, with no browser watching, and resumes", async () => {
    const { agent, requests } = recordingAgent();
    const session = new TerminalSession("1", 9, agent, { cols: 80, rows: 24 });
    cleanups.push(() => session.dispose());
    const chunk = enc(`${"y\r\n".repeat(4096)}`);
    for (let sent = 0; sent <= FLOW_HIGH_WATERMARK * 2; sent += chunk.length) session.output(chunk);
    expect(requests.filter((r) => r.op === "pty.flow")).toEqual([{ op: "pty.flow", handle: 9, paused: true }]);
    await session.screen.settled();
    expect(requests.filter((r) => r.op === "pty.flow").at(-1)).toEqual({ op: "pty.flow", handle: 9, paused: false });
  });

  it("resizes the pty and the kept screen together, and a viewer waiting at dispose still gets a screen", async () => {
    const { agent, requests } = recordingAgent();
    const session = new TerminalSession("3", 4, agent, { cols: 80, rows: 24 });
    session.output(enc(`${PROMPT}${LONG_COMMAND}`));
    await session.resize(40, 12);
    expect(requests).toContainEqual({ op: "pty.resize", handle: 4, cols: 40, rows: 12 });
    await session.screen.settled();
    expect([session.screen.cols, session.screen.rows]).toEqual([40, 12]);
    session.output(enc("\r\nmore"));
    const v = xtermViewer("v", 40, 12);
    session.attach(v.viewer);
    session.dispose(); // before xterm parsed "more": the waiting viewer is not left hanging
    await v.idle();
    expect(v.sent[0]!.reset).toBe(true);
    expect(look(v.term).lines.join("\n")).toContain("wrapped-");
  });
});
