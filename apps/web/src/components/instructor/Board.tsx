"use client";
// The live board: a row per learner, a cell per check and quiz of each of the cohort's labs. It
// watches the cohort over the page's socket (board:watch answers with the whole board; board:row
// replaces one learner's row whenever it changes) and watches again after a reconnect. Stuck
// learners come first (the server says who is stuck and why; the order is kept here).
//
// Rows are memoized by their object: a push re-renders one row, not the table, so an update stays
// cheap with a hundred learners. Each push's cost (receipt → the frame after React committed it)
// is kept in window.__berthBoard.updates for test/bench/board.ts.
import type { BoardColumnLab, BoardRow, BoardView } from "@berth/protocol";
import { memo, useEffect, useLayoutEffect, useRef, useState } from "react";
import { openLabSocket } from "@/lib/terminal-link";

declare global {
  interface Window {
    __berthBoard?: { updates: number[]; rows: number };
  }
}

export interface BoardActions {
  mirror(row: BoardRow, labId: string): void;
  events(row: BoardRow): void;
  message(row: BoardRow): void;
}

function sortRows(rows: BoardRow[]): BoardRow[] {
  const label = (r: BoardRow) => (r.name ?? r.email).toLowerCase();
  return [...rows].sort((a, b) => {
    if (a.stuck && !b.stuck) return -1;
    if (!a.stuck && b.stuck) return 1;
    if (a.stuck && b.stuck && a.stuck.since !== b.stuck.since) return a.stuck.since < b.stuck.since ? -1 : 1;
    return label(a).localeCompare(label(b));
  });
}

export function Board({
  cohortId,
  actions,
  version,
  onLearners,
}: {
  cohortId: string;
  actions: BoardActions;
  version: number;
  /** The learners on the board, when they change (someone joined): the message form lists them. */
  onLearners?: (learners: Array<{ id: string; label: string }>) => void;
}) {
  const [board, setBoard] = useState<BoardView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState(false);
  const pending = useRef<number[]>([]);

  useEffect(() => {
    let gone = false;
    let release = () => {};
    void openLabSocket().then(({ socket, release: r }) => {
      release = r;
      if (gone) return r();
      const watch = () =>
        socket.emit("board:watch", { cohortId }, (res) => {
          if (gone) return;
          if (res.ok) {
            setBoard({ ...res.board, rows: sortRows(res.board.rows) });
            setError(null);
            setLive(true);
          } else setError(res.error);
        });
      // Rows that arrive together are applied together, once per frame: a busy class costs one
      // render per frame, not one per message.
      let queued = new Map<string, BoardRow>();
      let frame = 0;
      const apply = () => {
        frame = 0;
        const batch = queued;
        queued = new Map();
        setBoard((b) => {
          if (!b) return b;
          const rows = b.rows.map((r) => batch.get(r.userId) ?? r);
          for (const [id, row] of batch) if (!b.rows.some((r) => r.userId === id)) rows.push(row);
          return { ...b, rows: sortRows(rows) };
        });
      };
      const onRow = ({ cohortId: id, row }: { cohortId: string; row: BoardRow }) => {
        if (id !== cohortId) return;
        pending.current.push(performance.now());
        queued.set(row.userId, row);
        frame ||= requestAnimationFrame(apply);
      };
      const onDown = () => setLive(false);
      socket.on("connect", watch);
      socket.on("disconnect", onDown);
      socket.on("board:row", onRow);
      if (socket.connected) watch();
      else socket.connect();
      const stop = () => {
        if (frame) cancelAnimationFrame(frame);
        socket.off("connect", watch);
        socket.off("disconnect", onDown);
        socket.off("board:row", onRow);
        if (socket.connected) socket.emit("board:unwatch", { cohortId });
      };
      release = () => {
        stop();
        r();
      };
    });
    return () => {
      gone = true;
      release();
    };
    // `version` changes when the cohort's labs or learners changed on this page: watch afresh.
  }, [cohortId, version]);

  const learnerKey = board ? board.rows.map((r) => r.userId).sort().join(",") : "";
  useEffect(() => {
    if (board && onLearners) onLearners(board.rows.map((r) => ({ id: r.userId, label: r.name ?? r.email })).sort((a, b) => a.label.localeCompare(b.label)));
    // Only when the set of learners changes, not on every push.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [learnerKey, onLearners]);

  // The cost of each push, measured to the frame after the commit (what the instructor sees).
  useLayoutEffect(() => {
    const w = (window.__berthBoard ??= { updates: [], rows: 0 });
    w.rows = board?.rows.length ?? 0;
    const started = pending.current.splice(0);
    if (started.length === 0) return;
    requestAnimationFrame(() =>
      setTimeout(() => {
        const now = performance.now();
        for (const t of started) w.updates.push(now - t);
      }, 0),
    );
  }, [board]);

  if (error) {
    return (
      <p className="form-error" role="alert" data-testid="board-error">
        {error}
      </p>
    );
  }
  if (!board) {
    return (
      <p className="muted" role="status">
        <span className="spinner" aria-hidden="true" /> Loading the board…
      </p>
    );
  }
  if (board.labs.length === 0) return <p className="muted">Pick the cohort&apos;s labs above: the board has a column for each of their checks.</p>;
  return (
    <div className="board-wrap">
      <p className="muted board-status" data-testid="board-status" data-live={live}>
        {live ? "Live" : "Reconnecting…"} · stuck: a check failed {board.stuckFails} times in a row, or no progress for {board.stuckMinutes} min with the lab open
      </p>
      <table className="board" data-testid="board" style={{ width: `${COL.who + COL.actions + board.labs.reduce((n, l) => n + COL.score + COL.item * itemCount(l), 0)}em` }}>
        <colgroup>
          <col style={{ width: `${COL.who}em` }} />
          {board.labs.map((lab) => [
            <col key={`${lab.id}:score`} style={{ width: `${COL.score}em` }} />,
            ...lab.steps.flatMap((s) => s.items.map((i) => <col key={`${lab.id}:${i.id}`} style={{ width: `${COL.item}em` }} />)),
          ])}
          <col style={{ width: `${COL.actions}em` }} />
        </colgroup>
        <thead>
          <tr>
            <th scope="col" rowSpan={2}>
              Learner
            </th>
            {board.labs.map((lab) => (
              <th key={lab.id} scope="colgroup" colSpan={1 + itemCount(lab)} className="board-lab">
                {lab.title}
                {lab.dueAt ? <span className="muted"> · due {new Date(lab.dueAt).toLocaleDateString()}</span> : null}
              </th>
            ))}
            <th scope="col" rowSpan={2}>
              <span className="sr-only">Actions</span>
            </th>
          </tr>
          <tr>
            {board.labs.map((lab) => [
              <th key={`${lab.id}:score`} scope="col" className="board-item">
                Score
              </th>,
              ...lab.steps.flatMap((s) =>
                s.items.map((i) => (
                  <th key={`${lab.id}:${i.id}`} scope="col" className="board-item" title={`${s.title}: ${i.title}`}>
                    <span>{i.id}</span>
                  </th>
                )),
              ),
            ])}
          </tr>
        </thead>
        <tbody>
          {board.rows.length === 0 ? (
            <tr>
              <td colSpan={2 + board.labs.reduce((n, l) => n + 1 + itemCount(l), 0)} className="muted">
                No learners yet: send them an invite link.
              </td>
            </tr>
          ) : (
            board.rows.map((row) => <Row key={row.userId} row={row} labs={board.labs} actions={actions} />)
          )}
        </tbody>
      </table>
    </div>
  );
}

/** Column widths (em): the table has a fixed layout, so a changed row never re-measures the others. */
const COL = { who: 16, score: 4.5, item: 4.5, actions: 17 };

const itemCount = (lab: BoardColumnLab) => lab.steps.reduce((n, s) => n + s.items.length, 0);

const Row = memo(function Row({ row, labs, actions }: { row: BoardRow; labs: BoardColumnLab[]; actions: BoardActions }) {
  const openLab = labs.find((l) => row.labs[l.id]?.open);
  return (
    <tr data-testid={`board-row-${row.userId}`} data-stuck={row.stuck ? "yes" : "no"} className={row.stuck ? "board-stuck" : undefined}>
      <th scope="row" className="board-who">
        <span title={row.email}>{row.name ?? row.email}</span>
        {row.stuck ? (
          <span className="board-stuck-why" data-testid="stuck-reason">
            stuck: {row.stuck.reason}
          </span>
        ) : null}
      </th>
      {labs.map((lab) => {
        const state = row.labs[lab.id];
        return [
          <td key={`${lab.id}:score`} className="board-score" data-testid={`score-${row.userId}-${lab.id}`}>
            {state ? `${state.score}/${state.maxScore}` : "–"}
            {state?.open ? <span className="board-open" title="has the lab open" aria-label="has the lab open"> ●</span> : null}
          </td>,
          ...lab.steps.flatMap((s) =>
            s.items.map((i) => {
              const c = state?.cells[i.id];
              const status = c?.status ?? "untried";
              const here = state?.currentStep === s.id;
              const detail = c
                ? `${i.title}: ${status}, ${c.attempts} attempt${c.attempts === 1 ? "" : "s"}${c.hints ? `, ${c.hints} hint${c.hints === 1 ? "" : "s"}` : ""}${c.solution ? ", solution taken" : ""}`
                : i.title;
              return (
                <td
                  key={`${lab.id}:${i.id}`}
                  className={`board-cell board-${status}${here ? " board-here" : ""}`}
                  title={detail}
                  data-testid={`cell-${row.userId}-${lab.id}-${i.id}`}
                  data-status={status}
                  data-attempts={c?.attempts ?? 0}
                >
                  <span aria-hidden="true">{status === "passed" ? "✓" : status === "failing" ? `✗${c!.failStreak > 1 ? c!.failStreak : ""}` : "·"}</span>
                  {c?.hints ? <sup aria-hidden="true">h{c.hints}</sup> : null}
                  {c?.solution ? <sup aria-hidden="true">S</sup> : null}
                  <span className="sr-only">{detail}</span>
                </td>
              );
            }),
          ),
        ];
      })}
      <td className="board-actions">
        <button type="button" className="btn btn-small" disabled={!openLab} title={openLab ? undefined : "the learner has no lab open"} onClick={() => openLab && actions.mirror(row, openLab.id)} data-testid={`mirror-open-${row.userId}`}>
          Terminal
        </button>
        <button type="button" className="btn btn-small btn-quiet" onClick={() => actions.events(row)} data-testid={`events-open-${row.userId}`}>
          Events
        </button>
        <button type="button" className="btn btn-small btn-quiet" onClick={() => actions.message(row)} data-testid={`message-open-${row.userId}`}>
          Message
        </button>
      </td>
    </tr>
  );
});
