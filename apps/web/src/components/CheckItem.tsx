"use client";
// One check of a step: the Check button (runs the check in the sandbox, may take up to its timeout),
// the verdict of the latest attempt, and the hint on demand.
import type { CheckResultView, CheckView, ProgressView } from "@berth/protocol";
import { useEffect, useState } from "react";
import { api } from "@/lib/api";

type Hint = { state: "closed" } | { state: "loading" } | { state: "open"; html: string } | { state: "error"; message: string };

export function CheckItem({
  labId,
  check,
  result,
  onProgress,
  onUnauthorized,
}: {
  labId: string;
  check: CheckView;
  result: CheckResultView | undefined;
  onProgress: (progress: ProgressView) => void;
  onUnauthorized: () => void;
}) {
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [hint, setHint] = useState<Hint>({ state: "closed" });
  // Seconds since the Check click: a check may legitimately take up to its timeout (~30 s).
  const [elapsed, setElapsed] = useState(0);
  useEffect(() => {
    if (!running) return;
    const started = Date.now();
    setElapsed(0);
    const timer = setInterval(() => setElapsed(Math.floor((Date.now() - started) / 1000)), 1000);
    return () => clearInterval(timer);
  }, [running]);

  async function runCheck() {
    setRunning(true);
    setError(null);
    const res = await api.runCheck(labId, check.id);
    setRunning(false);
    if (res.ok) onProgress(res.data.progress);
    else if (res.status === 401) onUnauthorized();
    else if (res.status === 409) setError(`${res.error.error} Wait until the terminal says “ready”, then check again.`);
    else setError(res.error.error);
  }

  async function toggleHint() {
    if (hint.state === "open" || hint.state === "error") {
      setHint({ state: "closed" });
      return;
    }
    setHint({ state: "loading" });
    const res = await api.hint(labId, check.id);
    if (res.ok) setHint({ state: "open", html: res.data.html });
    else if (res.status === 401) onUnauthorized();
    else setHint({ state: "error", message: res.error.error });
  }

  const passed = result?.passed === true;

  return (
    <li className={`check ${passed ? "check-passed" : ""}`} data-testid={`check-${check.id}`}>
      <div className="check-head">
        <span className={`check-icon ${result ? (passed ? "ok" : "fail") : "todo"}`} aria-hidden="true">
          {result ? (passed ? "✓" : "✗") : "○"}
        </span>
        <span className="check-title">{check.title}</span>
        <span className="check-points">{check.points} pts</span>
        <span className="check-buttons">
          {check.hasHint ? (
            <button
              type="button"
              className="btn btn-small btn-quiet"
              data-testid={`hint-button-${check.id}`}
              aria-expanded={hint.state === "open" || hint.state === "error"}
              aria-controls={`hint-${check.id}`}
              disabled={hint.state === "loading"}
              onClick={toggleHint}
            >
              {hint.state === "open" ? "Hide hint" : hint.state === "loading" ? "Hint…" : "Hint"}
            </button>
          ) : null}
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
      {hint.state === "open" ? (
        // The hint HTML is sanitized by the server (labkit), like the step text.
        <div className="hint lab-html" id={`hint-${check.id}`} data-testid={`hint-${check.id}`} dangerouslySetInnerHTML={{ __html: hint.html }} />
      ) : hint.state === "error" ? (
        <div className="hint hint-error" id={`hint-${check.id}`} data-testid={`hint-${check.id}`} role="alert">
          Could not load the hint: {hint.message}
        </div>
      ) : null}
    </li>
  );
}
