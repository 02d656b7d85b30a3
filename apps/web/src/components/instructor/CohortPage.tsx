"use client";
// /instructor/cohorts/<id>: one cohort. Its labs (with due dates), invite links, learners, a
// message to one learner or all, the grade sheet, and the live board with a learner's terminal
// mirror and events feed beside it.
import type { BoardRow, CohortDetail, LabSummary, LearnerEventView } from "@berth/protocol";
import Link from "next/link";
import { useCallback, useEffect, useMemo, useState } from "react";
import { Board, type BoardActions } from "./Board";
import { staffApi } from "./client";
import { Gate } from "./Gate";
import { MirrorPanel } from "./MirrorPanel";
import { useStaff } from "./useStaff";
import "./instructor.css";

export function CohortPage({ cohortId }: { cohortId: string }) {
  const gate = useStaff(["instructor", "admin"]);
  return (
    <Gate gate={gate} what="Only instructors run cohorts.">
      {() => <Cohort cohortId={cohortId} />}
    </Gate>
  );
}

type Side = { kind: "mirror"; row: BoardRow; labId: string } | { kind: "events"; row: BoardRow } | null;

function Cohort({ cohortId }: { cohortId: string }) {
  const [cohort, setCohort] = useState<CohortDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [version, setVersion] = useState(0);
  const [side, setSide] = useState<Side>(null);
  const [messageTo, setMessageTo] = useState<string>("");
  const [learners, setLearners] = useState<Array<{ id: string; label: string }> | null>(null);

  useEffect(() => {
    void staffApi.cohort(cohortId).then((res) => (res.ok ? setCohort(res.data.cohort) : setError(res.error.error)));
  }, [cohortId]);
  const changed = useCallback((c: CohortDetail) => {
    setCohort(c);
    setVersion((v) => v + 1);
  }, []);

  const actions = useMemo<BoardActions>(
    () => ({
      mirror: (row, labId) => setSide({ kind: "mirror", row, labId }),
      events: (row) => setSide({ kind: "events", row }),
      message: (row) => {
        setMessageTo(row.userId);
        document.getElementById("message-text")?.focus();
      },
    }),
    [],
  );

  if (error) {
    return (
      <main className="staff-page">
        <h1>Cohort</h1>
        <p className="form-error" role="alert" data-testid="cohort-error">
          {error}
        </p>
        <Link href="/instructor">Your cohorts</Link>
      </main>
    );
  }
  if (!cohort) {
    return (
      <main className="staff-page" role="status">
        <span className="spinner" aria-hidden="true" /> Loading the cohort…
      </main>
    );
  }
  return (
    <main className="staff-page staff-wide">
      <p>
        <Link href="/instructor">← Your cohorts</Link>
      </p>
      <h1 data-testid="cohort-title">{cohort.name}</h1>
      <div className="staff-columns">
        <LabsEditor cohort={cohort} onSaved={changed} />
        <Invites cohort={cohort} onChanged={setCohort} />
      </div>
      <div className="staff-columns">
        <MessageForm cohort={cohort} learners={learners ?? cohort.learners.map((l) => ({ id: l.id, label: l.name ?? l.email }))} to={messageTo} setTo={setMessageTo} />
        <section className="staff-panel" aria-labelledby="grades-title">
          <h2 id="grades-title">Grades</h2>
          <p className="muted">A row per learner; per lab its points, attempts, hints, solutions and minutes; a column per check.</p>
          <a className="btn" href={staffApi.gradesUrl(cohort.id)} download data-testid="grades-link">
            Download CSV
          </a>
        </section>
      </div>
      <section aria-labelledby="board-title" className="board-section">
        <h2 id="board-title">Board</h2>
        <div className={side ? "board-and-side" : undefined}>
          <Board cohortId={cohort.id} actions={actions} version={version} onLearners={setLearners} />
          {side?.kind === "mirror" ? (
            <MirrorPanel key={`${side.row.userId}:${side.labId}`} cohortId={cohort.id} userId={side.row.userId} labId={side.labId} who={side.row.name ?? side.row.email} onClose={() => setSide(null)} />
          ) : side?.kind === "events" ? (
            <EventsPanel key={side.row.userId} cohortId={cohort.id} row={side.row} onClose={() => setSide(null)} />
          ) : null}
        </div>
      </section>
    </main>
  );
}

function LabsEditor({ cohort, onSaved }: { cohort: CohortDetail; onSaved: (c: CohortDetail) => void }) {
  const [catalog, setCatalog] = useState<LabSummary[] | null>(null);
  const [picked, setPicked] = useState(() => new Map(cohort.labs.map((l) => [l.labId, l.dueAt ? l.dueAt.slice(0, 16) : ""])));
  const [status, setStatus] = useState<{ ok: boolean; text: string } | null>(null);
  useEffect(() => {
    void staffApi.labs().then((res) => res.ok && setCatalog(res.data.labs));
  }, []);
  const toggle = (id: string, on: boolean) =>
    setPicked((m) => {
      const next = new Map(m);
      if (on) next.set(id, next.get(id) ?? "");
      else next.delete(id);
      return next;
    });
  const save = async (e: React.FormEvent) => {
    e.preventDefault();
    const order = catalog?.map((l) => l.id) ?? [];
    const labs = [...picked].sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0])).map(([labId, due]) => ({ labId, dueAt: due ? new Date(due).toISOString() : null }));
    const res = await staffApi.setLabs(cohort.id, labs);
    if (res.ok) {
      onSaved(res.data.cohort);
      setStatus({ ok: true, text: "Saved." });
    } else setStatus({ ok: false, text: res.error.error });
  };
  return (
    <section className="staff-panel" aria-labelledby="labs-title">
      <h2 id="labs-title">Labs</h2>
      <form onSubmit={save}>
        <ul className="lab-picker" data-testid="lab-picker">
          {(catalog ?? []).map((lab) => (
            <li key={lab.id}>
              <label>
                <input type="checkbox" checked={picked.has(lab.id)} onChange={(e) => toggle(lab.id, e.target.checked)} data-testid={`lab-pick-${lab.id}`} />{" "}
                {lab.chapter ? `${lab.chapter}. ` : ""}
                {lab.title}
              </label>
              {picked.has(lab.id) ? (
                <label className="lab-due">
                  due{" "}
                  <input type="datetime-local" value={picked.get(lab.id)} onChange={(e) => setPicked((m) => new Map(m).set(lab.id, e.target.value))} data-testid={`lab-due-${lab.id}`} />
                </label>
              ) : null}
            </li>
          ))}
        </ul>
        <button type="submit" className="btn btn-primary" data-testid="labs-save">
          Save labs
        </button>{" "}
        {status ? (
          <span className={status.ok ? "muted" : "form-error"} role="status" data-testid="labs-status">
            {status.text}
          </span>
        ) : null}
      </form>
    </section>
  );
}

function Invites({ cohort, onChanged }: { cohort: CohortDetail; onChanged: (c: CohortDetail) => void }) {
  const [hours, setHours] = useState(72);
  const [seats, setSeats] = useState(30);
  const [fresh, setFresh] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reload = async () => {
    const res = await staffApi.cohort(cohort.id);
    if (res.ok) onChanged(res.data.cohort);
  };
  const create = async (e: React.FormEvent) => {
    e.preventDefault();
    const res = await staffApi.createInvite(cohort.id, hours, seats);
    if (!res.ok) return setError(res.error.error);
    setError(null);
    setFresh(`${window.location.origin}${res.data.invite.url}`);
    await reload();
  };
  return (
    <section className="staff-panel" aria-labelledby="invites-title">
      <h2 id="invites-title">Invite links</h2>
      <form className="staff-inline-form" onSubmit={create}>
        <label className="field">
          <span>Seats</span>
          <input type="number" min={1} max={10000} value={seats} onChange={(e) => setSeats(Number(e.target.value))} data-testid="invite-seats" />
        </label>
        <label className="field">
          <span>Valid for (hours)</span>
          <input type="number" min={1} max={2160} value={hours} onChange={(e) => setHours(Number(e.target.value))} data-testid="invite-hours" />
        </label>
        <button type="submit" className="btn" data-testid="invite-create">
          New link
        </button>
      </form>
      {error ? (
        <p className="form-error" role="alert">
          {error}
        </p>
      ) : null}
      {fresh ? (
        <p className="invite-fresh">
          Send this link to your learners (it is shown only now):{" "}
          <input readOnly value={fresh} onFocus={(e) => e.target.select()} data-testid="invite-url" aria-label="Invite link" />
        </p>
      ) : null}
      <ul className="staff-list">
        {cohort.invites.map((i) => (
          <li key={i.id} data-testid="invite">
            {i.seatsTaken}/{i.seatLimit} seats · {i.revoked ? "withdrawn" : new Date(i.expiresAt) < new Date() ? "expired" : `until ${new Date(i.expiresAt).toLocaleString()}`}{" "}
            {!i.revoked ? (
              <button type="button" className="btn btn-small btn-quiet" onClick={async () => (await staffApi.revokeInvite(cohort.id, i.id), reload())}>
                Withdraw
              </button>
            ) : null}
          </li>
        ))}
      </ul>
      <p className="muted">
        Learners: <span data-testid="learner-count">{cohort.learners.length}</span>
      </p>
    </section>
  );
}

function MessageForm({ cohort, learners, to, setTo }: { cohort: CohortDetail; learners: Array<{ id: string; label: string }>; to: string; setTo: (id: string) => void }) {
  const [text, setText] = useState("");
  const [status, setStatus] = useState<{ ok: boolean; text: string } | null>(null);
  const send = async (e: React.FormEvent) => {
    e.preventDefault();
    const res = await staffApi.message(cohort.id, text, to || undefined);
    if (res.ok) {
      setText("");
      setStatus({ ok: true, text: `Sent to ${res.data.recipients} learner${res.data.recipients === 1 ? "" : "s"}.` });
    } else setStatus({ ok: false, text: res.error.error });
  };
  return (
    <section className="staff-panel" aria-labelledby="message-title">
      <h2 id="message-title">Message</h2>
      <form onSubmit={send}>
        <label className="field">
          <span>To</span>
          <select value={to} onChange={(e) => setTo(e.target.value)} data-testid="message-to">
            <option value="">Everyone in the cohort</option>
            {learners.map((l) => (
              <option key={l.id} value={l.id}>
                {l.label}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span>Text</span>
          <textarea id="message-text" value={text} onChange={(e) => setText(e.target.value)} maxLength={2000} rows={2} required data-testid="message-text" />
        </label>
        <button type="submit" className="btn btn-primary" data-testid="message-send">
          Send
        </button>{" "}
        {status ? (
          <span className={status.ok ? "muted" : "form-error"} role="status" data-testid="message-status">
            {status.text}
          </span>
        ) : null}
      </form>
    </section>
  );
}

function EventsPanel({ cohortId, row, onClose }: { cohortId: string; row: BoardRow; onClose: () => void }) {
  const [events, setEvents] = useState<LearnerEventView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    void staffApi.events(cohortId, row.userId).then((res) => (res.ok ? setEvents(res.data.events) : setError(res.error.error)));
  }, [cohortId, row.userId]);
  return (
    <section className="staff-panel events-panel" aria-label={`Events of ${row.name ?? row.email}`} data-testid="events-panel">
      <header>
        <h2>{row.name ?? row.email}</h2>
        <button type="button" className="btn btn-small" onClick={onClose}>
          Close
        </button>
      </header>
      {error ? <p className="form-error">{error}</p> : null}
      {events === null ? null : events.length === 0 ? (
        <p className="muted">Nothing yet.</p>
      ) : (
        <ol className="events" data-testid="events-list">
          {events.map((e, i) => (
            <li key={i} data-kind={e.kind}>
              <time dateTime={e.at}>{new Date(e.at).toLocaleTimeString()}</time> <span className={`event-kind event-${e.kind.replace(".", "-")}`}>{e.kind}</span>{" "}
              {e.labId ? <span className="muted">{e.labId}: </span> : null}
              {e.text}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
