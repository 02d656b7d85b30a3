"use client";
// A read-only mirror of a learner's terminal. The server attaches it to the learner's terminal
// like another tab (the kept screen, then live bytes) but it never holds the learner's shell back:
// it acknowledges what xterm has parsed, and if it falls far behind the server stops sending and
// later sends the screen afresh (mirror:data with `reset`). Keystrokes go nowhere: there is no
// input path for a mirror. Closing the panel (or the page) closes the mirror; the learner sees
// that someone watches while it is open.
import type { Terminal } from "@xterm/xterm";
import "@xterm/xterm/css/xterm.css";
import { FLOW_ACK_EVERY } from "@berth/protocol/flow";
import { useEffect, useRef, useState } from "react";
import { openLabSocket } from "@/lib/terminal-link";

export function MirrorPanel({ cohortId, userId, labId, who, onClose }: { cohortId: string; userId: string; labId: string; who: string; onClose: () => void }) {
  const box = useRef<HTMLDivElement>(null);
  const [state, setState] = useState<{ phase: "opening" | "live" | "ended"; message: string }>({ phase: "opening", message: "Opening the mirror…" });

  useEffect(() => {
    let gone = false;
    let cleanup = () => {};
    void (async () => {
      const [{ Terminal }, { socket, release }] = await Promise.all([import("@xterm/xterm"), openLabSocket()]);
      if (gone) return release();
      let term: Terminal | null = null;
      let mirrorId: string | null = null;
      let unacked = 0;
      let inFlight = 0;
      const ack = (n: number) => {
        unacked += n;
        if (mirrorId && (unacked >= FLOW_ACK_EVERY || inFlight === 0)) {
          socket.emit("mirror:ack", { mirrorId, bytes: unacked });
          unacked = 0;
        }
      };
      const onData = (msg: { mirrorId: string; data: ArrayBuffer | Uint8Array; reset?: boolean; cols?: number; rows?: number }) => {
        if (msg.mirrorId !== mirrorId || !term) return;
        const t = term;
        if (msg.reset) {
          // In order with what xterm still has queued (as the learner's own terminal does).
          t.write(new Uint8Array(0), () => {
            t.reset();
            if (msg.cols && msg.rows && (msg.cols !== t.cols || msg.rows !== t.rows)) t.resize(msg.cols, msg.rows);
          });
        }
        const bytes = msg.data instanceof Uint8Array ? msg.data : new Uint8Array(msg.data);
        inFlight++;
        t.write(bytes, () => {
          inFlight--;
          ack(bytes.byteLength);
        });
      };
      const onExit = (msg: { mirrorId: string; reason: string }) => {
        if (msg.mirrorId === mirrorId) setState({ phase: "ended", message: `Mirror closed: ${msg.reason}` });
      };
      socket.on("mirror:data", onData);
      socket.on("mirror:exit", onExit);
      const open = () =>
        socket.emit("mirror:open", { cohortId, userId, labId, term: "1", cols: 80, rows: 24 }, (res) => {
          if (gone) return;
          if (!res.ok) return setState({ phase: "ended", message: res.error });
          term?.dispose();
          term = new Terminal({ cols: res.cols, rows: res.rows, disableStdin: true, cursorBlink: false, convertEol: false, scrollback: 2000, fontSize: 13 });
          if (box.current) term.open(box.current);
          mirrorId = res.mirrorId;
          setState({ phase: "live", message: "Watching (read-only)" });
        });
      const reopen = () => {
        mirrorId = null;
        open();
      };
      socket.on("connect", reopen);
      if (socket.connected) open();
      else socket.connect();
      cleanup = () => {
        socket.off("mirror:data", onData);
        socket.off("mirror:exit", onExit);
        socket.off("connect", reopen);
        if (mirrorId && socket.connected) socket.emit("mirror:close", { mirrorId });
        term?.dispose();
        release();
      };
    })();
    return () => {
      gone = true;
      cleanup();
    };
  }, [cohortId, userId, labId]);

  return (
    <section className="staff-panel mirror-panel" aria-label={`Terminal of ${who}`} data-testid="mirror-panel" data-phase={state.phase}>
      <header>
        <h2>
          {who} · {labId} · terminal 1
        </h2>
        <button type="button" className="btn btn-small" onClick={onClose} data-testid="mirror-close">
          Close
        </button>
      </header>
      <p className="muted" role="status" data-testid="mirror-status">
        {state.message}
      </p>
      <div ref={box} className="mirror-terminal" data-testid="mirror-terminal" />
    </section>
  );
}
