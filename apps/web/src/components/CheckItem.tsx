"use client";
// One check of a step: the Check button (runs the check in the sandbox, may take up to its timeout),
// the verdict of the latest attempt, the hints revealed one at a time (each may cost points), and the
// solution behind a confirmation (a revealed solution earns the check no points). Automatic checks
// also pass by themselves: the server runs them while the step is open and the verdict arrives on
// the socket ("check:result"), replacing the progress this component is given.
import type { CheckResultView, CheckView, HintView, ProgressView } from "@berth/protocol";
import { useEffect, useRef, useState } from "react";
import { api } from "@/lib/api";
import { LabHtml } from "./LabHtml";

export function CheckItem({
  labId,
  check,
  result,
  hints,
  solutionHtml,
  needs,
  onProgress,
  onUnauthorized,
}: {
  labId: string;
  check: CheckView;
  result: CheckResultView | undefined;
  hints: HintView[];
  solutionHtml: string | undefined;
  /** The checks this one needs first, with whether each has passed. */
  needs: { id: string; title: string; passed: boolean }[];
  onProgress: (progress: ProgressView) => void;
  onUnauthorized: () => void;
}) {
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [hintBusy, setHintBusy] = useState(false);
  const [confirmSolution, setConfirmSolution] = useState(false);
  const [solutionBusy, setSolutionBusy] = useState(false);
  // Seconds since the Check click: a check may legitimately take up to its timeout (~30 s).
  const [elapsed, setElapsed] = useState(0);
  useEffect(() => {
    if (!running) return;
    const started = Date.now();
    setElapsed(0);
    const timer = setInterval(() => setElapsed(Math.floor((Date.now() - started) / 1000)), 1000);
    return () => clearInterval(timer);
  }, [running]);

  const fail = (status: number, message: string) => {
    if (status === 401) onUnauthorized();
    else if (status === 409 && /sandbox/i.test(message)) setError(`${message} Wait until the terminal says “ready”, then try again.`);
    else setError(message);
  };

  async function runCheck() {
    setRunning(true);
    setError(null);
    const res = await api.runCheck(labId, check.id);
    setRunning(false);
    if (res.ok) onProgress(res.data.progress);
    else fail(res.status, res.error.error);
  }

  // A double click must not reveal (and charge for) two hints: state updates land too late to
  // disable the button for the second click, a ref does not.
  const inFlight = useRef(false);
  async function once(action: () => Promise<void>) {
    if (inFlight.current) return;
    inFlight.current = true;
    try {
      await action();
    } finally {
      inFlight.current = false;
    }
  }

  async function revealHint() {
    setHintBusy(true);
    setError(null);
    const res = await api.nextHint(labId, check.id);
    setHintBusy(false);
    if (res.ok) onProgress(res.data.progress);
    else fail(res.status, res.error.error);
  }

  async function revealSolution() {
    setSolutionBusy(true);
    setError(null);
    const res = await api.solution(labId, check.id);
    setSolutionBusy(false);
    setConfirmSolution(false);
    if (res.ok) onProgress(res.data.progress);
    else fail(res.status, res.error.error);
  }

  const passed = result?.passed === true;
  // Once passed, hints and the solution would only cost points: they are not offered any more.
  const hintsLeft = passed ? 0 : check.hintCount - hints.length;
  const offerSolution = check.hasSolution && solutionHtml === undefined && !passed;
  const blocked = needs.filter((n) => !n.passed);

  return (
    <li className={`check ${passed ? "check-passed" : ""}`} data-testid={`check-${check.id}`} data-auto={check.auto ? "true" : "false"}>
      <div className="check-head">
        <span className={`check-icon ${result ? (passed ? "ok" : "fail") : "todo"}`} aria-hidden="true">
          {result ? (passed ? "✓" : "✗") : "○"}
        </span>
        <span className="check-title">{check.title}</span>
        <span className="check-points">{check.points} pts</span>
        <span className="check-buttons">
          <button
            type="button"
            className="btn btn-small btn-primary"
            data-testid={`check-button-${check.id}`}
            disabled={running}
            aria-busy={running}
            onClick={runCheck}
          >
            {running ? (
              <>
                <span className="spinner spinner-small" aria-hidden="true" /> Checking…
              </>
            ) : passed ? (
              "Check again"
            ) : (
              "Check"
            )}
          </button>
        </span>
      </div>
      {check.auto && !passed ? (
        <p className="check-auto muted" data-testid={`check-auto-${check.id}`}>
          <span className="pulse" aria-hidden="true" /> Checked automatically while you work: no need to click.
        </p>
      ) : null}
      {needs.length > 0 ? (
        <p className="check-needs muted" data-testid={`check-needs-${check.id}`}>
          Needs first:{" "}
          {needs.map((n, i) => (
            <span key={n.id}>
              {i > 0 ? ", " : null}
              <span className={n.passed ? "need-ok" : "need-todo"}>
                {n.passed ? "✓" : "○"} {n.title}
              </span>
            </span>
          ))}
          {blocked.length > 0 ? <span className="visually-hidden"> ({blocked.length} not passed yet)</span> : null}
        </p>
      ) : null}
      <div className="check-body" aria-live="polite">
        {running ? (
          // The previous verdict is hidden while a new attempt runs, so nothing (person or test)
          // mistakes it for the answer to this click.
          <p className="check-running muted" role="status">
            Running the check in your sandbox…{elapsed > 0 ? ` ${elapsed} s` : ""}
          </p>
        ) : result ? (
          <div
            className={`check-result ${passed ? "ok" : "fail"}`}
            data-testid={`check-result-${check.id}`}
            data-passed={passed ? "true" : "false"}
            data-attempt={result.attempt}
          >
            <p className="check-verdict">
              <strong>{passed ? "Passed" : "Not yet"}</strong>
              <span className="muted">
                {" "}
                · {result.points}/{check.points} pts · attempt {result.attempt}
              </span>
            </p>
            {result.message ? <p className="check-message">{result.message}</p> : null}
          </div>
        ) : null}
        {error ? (
          <p className="form-error" role="alert" data-testid={`check-error-${check.id}`}>
            {error}
          </p>
        ) : null}
      </div>
      {hints.length > 0 ? (
        <ol className="hints" aria-label={`Hints for ${check.title}`} data-testid={`hint-${check.id}`}>
          {hints.map((h, i) => (
            <li key={i} className="hint" data-testid={`hint-${check.id}-${i + 1}`}>
              <span className="hint-label">
                Hint {i + 1}
                {h.cost > 0 ? <span className="muted"> (−{h.cost} pt{h.cost === 1 ? "" : "s"})</span> : null}
              </span>
              {/* Hint HTML is sanitized by the server (labkit), like the step text. */}
              <LabHtml html={h.html} />
            </li>
          ))}
        </ol>
      ) : null}
      {solutionHtml !== undefined ? (
        <div className="solution" data-testid={`solution-${check.id}`}>
          <p className="hint-label">Solution (this check earns no points now)</p>
          <LabHtml html={solutionHtml} />
        </div>
      ) : null}
      {hintsLeft > 0 || offerSolution ? (
        <div className="check-help">
          {hintsLeft > 0 ? (
            <button type="button" className="btn btn-small btn-quiet" data-testid={`hint-button-${check.id}`} disabled={hintBusy} onClick={() => void once(revealHint)}>
              {hintBusy ? "Hint…" : `Show hint ${hints.length + 1} of ${check.hintCount}`}
              {check.hintCost > 0 ? ` (costs ${check.hintCost} pt${check.hintCost === 1 ? "" : "s"})` : " (free)"}
            </button>
          ) : null}
          {offerSolution ? (
            confirmSolution ? (
              <span className="confirm" role="group" aria-label="Confirm showing the solution">
                <span>The solution earns this check no points. Show it?</span>
                <button type="button" className="btn btn-small btn-danger" data-testid={`solution-confirm-${check.id}`} disabled={solutionBusy} onClick={() => void once(revealSolution)} autoFocus>
                  {solutionBusy ? "Showing…" : "Show the solution"}
                </button>
                <button type="button" className="btn btn-small btn-quiet" onClick={() => setConfirmSolution(false)}>
                  Cancel
                </button>
              </span>
            ) : (
              <button type="button" className="btn btn-small btn-quiet" data-testid={`solution-button-${check.id}`} onClick={() => setConfirmSolution(true)}>
                Show solution
              </button>
            )
          ) : null}
        </div>
      ) : null}
    </li>
  );
}
