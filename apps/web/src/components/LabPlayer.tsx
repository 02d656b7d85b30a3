"use client";
// The lab player's instructions: one step at a time (an outline, Back/Next, the URL names the
// step) with its checks and quizzes, in the left pane of the player's frame (LabShell: the
// terminals, the editor, the preview and the X-ray on the right, made before this arrives). The
// page (app/labs/[labId]/[[...step]]) renders it on the server with the lab already loaded; without
// that (no orchestrator beside Next) it loads the lab itself. Signed-out visitors are sent to
// /signin?next=<this lab>.
import type { LabView, ProgressView } from "@berth/protocol";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { api, signInUrl } from "@/lib/api";
import { stepComplete, stepLocked, stepUrl } from "@/lib/lab-steps";
import { useLabEvents } from "@/lib/lab-events";
import { CheckItem } from "./CheckItem";
import { LabHtml } from "./LabHtml";
import { useLabShell } from "./LabShell";
import { QuizForm } from "./QuizForm";
import { LockIcon, StepOutline } from "./StepOutline";

type Load =
  | { kind: "loading" }
  | { kind: "missing" }
  | { kind: "error"; message: string }
  | { kind: "ready"; lab: LabView; progress: ProgressView };

export function LabPlayer({ labId, stepId, initial }: { labId: string; stepId: string | null; initial: { lab: LabView; progress: ProgressView } | null }) {
  const router = useRouter();
  const [load, setLoad] = useState<Load>(initial ? { kind: "ready", ...initial } : { kind: "loading" });
  const toSignIn = useCallback(() => router.replace(signInUrl(stepUrl(labId, stepId))), [router, labId, stepId]);

  useEffect(() => {
    if (initial) return;
    let live = true;
    void api.lab(labId).then((res) => {
      if (!live) return;
      if (res.ok) setLoad({ kind: "ready", lab: res.data.lab, progress: res.data.progress });
      else if (res.status === 401) toSignIn();
      else if (res.status === 404) setLoad({ kind: "missing" });
      else setLoad({ kind: "error", message: res.error.error });
    });
    return () => {
      live = false;
    };
    // `initial` is fixed for the page's life; the lab is loaded once.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [labId]);

  const onProgress = useCallback(
    (progress: ProgressView) => setLoad((prev) => (prev.kind === "ready" && progress.labId === prev.lab.id ? { ...prev, progress } : prev)),
    [],
  );

  if (load.kind === "loading") return <LabLoading />;
  if (load.kind === "missing") {
    return (
      <div className="player-message">
        <h1>Lab not found</h1>
        <p>
          There is no lab called “{labId}”. <Link href="/">Back to the catalog</Link>
        </p>
      </div>
    );
  }
  if (load.kind === "error") {
    return (
      <div className="player-message">
        <h1>Could not load the lab</h1>
        <p role="alert">{load.message}</p>
      </div>
    );
  }
  return <Player lab={load.lab} progress={load.progress} initialStepId={stepId} onProgress={onProgress} onUnauthorized={toSignIn} />;
}

function Player({
  lab,
  progress,
  initialStepId,
  onProgress,
  onUnauthorized,
}: {
  lab: LabView;
  progress: ProgressView;
  initialStepId: string | null;
  onProgress: (p: ProgressView) => void;
  onUnauthorized: () => void;
}) {
  const { attached, narrow, select } = useLabShell();

  // The step shown: from the URL at first, then from Back/Next and the outline (history entries).
  const indexOf = useCallback((id: string | null) => Math.max(0, id === null ? lab.steps.findIndex((s) => s.id === progress.currentStep) : lab.steps.findIndex((s) => s.id === id)), [lab, progress.currentStep]);
  const [current, setCurrent] = useState(() => (initialStepId === null ? 0 : indexOf(initialStepId)));
  const headingRef = useRef<HTMLHeadingElement>(null);
  const focusHeading = useRef(false);

  const goTo = useCallback(
    (index: number) => {
      const step = lab.steps[index];
      if (!step) return;
      setCurrent(index);
      focusHeading.current = true;
      window.history.pushState(null, "", stepUrl(lab.id, step.id));
      if (narrow) select("instructions");
    },
    [lab, narrow, select],
  );
  useEffect(() => {
    const onPop = () => {
      const id = decodeURIComponent(window.location.pathname.split("/")[3] ?? "");
      const i = lab.steps.findIndex((s) => s.id === id);
      setCurrent(i < 0 ? 0 : i);
    };
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, [lab]);
  useEffect(() => {
    if (focusHeading.current) {
      focusHeading.current = false;
      headingRef.current?.focus();
    }
    document.querySelector(".split-left")?.scrollTo({ top: 0 });
  }, [current]);

  const step = lab.steps[current]!;
  const locked = stepLocked(lab, current, progress);

  // Entering a step runs its setup (once per sandbox) and records it as the learner's current step.
  // It needs the sandbox, so it waits for the terminal to attach, and is asked once per step.
  const entered = useRef(new Set<string>());
  useEffect(() => {
    if (!attached || locked || entered.current.has(step.id)) return;
    entered.current.add(step.id);
    void api.enterStep(lab.id, step.id).then((res) => {
      if (res.ok) onProgress(res.data.progress);
      else if (res.status === 401) onUnauthorized();
      else entered.current.delete(step.id); // e.g. 409 while the sandbox restarts: next attach retries
    });
  }, [attached, locked, lab.id, step.id, onProgress, onUnauthorized]);

  // Automatic checks' verdicts, pushed by the server.
  useLabEvents(lab.id, onProgress);

  const [skipConfirm, setSkipConfirm] = useState(false);
  const [skipBusy, setSkipBusy] = useState(false);
  const [skipError, setSkipError] = useState<string | null>(null);
  useEffect(() => {
    setSkipConfirm(false);
    setSkipError(null);
  }, [current]);
  const skipping = useRef(false);
  const skip = async () => {
    if (skipping.current) return; // a double click runs the solution once
    skipping.current = true;
    setSkipBusy(true);
    setSkipError(null);
    const res = await api.skipStep(lab.id, step.id);
    skipping.current = false;
    setSkipBusy(false);
    setSkipConfirm(false);
    if (res.ok) onProgress(res.data.progress);
    else if (res.status === 401) onUnauthorized();
    else setSkipError(res.error.error);
  };

  const allChecks = useMemo(() => new Map(lab.steps.flatMap((s) => s.checks.map((c) => [c.id, c] as const))), [lab]);
  const isLast = current === lab.steps.length - 1;
  const nextLocked = !isLast && stepLocked(lab, current + 1, progress);
  const done = stepComplete(step, progress);

  const instructions = (
    <article className="lab-text" aria-label="Instructions">
      <header className="lab-head">
        <p className="lab-meta">
          {lab.chapter === null ? null : <>Chapter {lab.chapter} · </>}
          {lab.duration} · <span className={`difficulty difficulty-${lab.difficulty}`}>{lab.difficulty}</span>
        </p>
        <h1>{lab.title}</h1>
        <div className="progress">
          <progress value={progress.score} max={Math.max(progress.maxScore, 1)} aria-label="Score">
            {progress.percent}%
          </progress>
          <span className="progress-text">
            <span data-testid="score" data-score={progress.score} data-max-score={progress.maxScore}>
              {progress.score} / {progress.maxScore}
            </span>{" "}
            points · <span data-testid="percent">{progress.percent}%</span> done
          </span>
        </div>
      </header>
      <StepOutline lab={lab} progress={progress} current={current} onSelect={goTo} />

      {current === 0 && lab.introHtml ? <LabHtml html={lab.introHtml} className="lab-intro" /> : null}

      <section className={`step ${done ? "step-done" : ""}`} data-testid={`step-${step.id}`} data-step-index={current + 1} aria-labelledby="step-title">
        <p className="step-count" data-testid="step-count">
          Step {current + 1} of {lab.steps.length}
        </p>
        <h2 id="step-title" ref={headingRef} tabIndex={-1}>
          {step.title}
          {done && (step.checks.length > 0 || step.quizzes.length > 0) ? <span className="step-done-mark">✓ done</span> : null}
        </h2>
        {locked ? (
          <div className="callout callout-warning" role="note" data-testid="step-locked">
            <p>
              <strong>Locked.</strong> Finish step {current}, “{lab.steps[current - 1]!.title}”, first: its checks must pass.
            </p>
            <button type="button" className="btn btn-small" onClick={() => goTo(current - 1)}>
              ← Go to step {current}
            </button>
          </div>
        ) : (
          <>
            <LabHtml key={step.id} html={step.html} />
            {step.checks.length > 0 ? (
              <ul className="checks" aria-label={`Checks for step ${current + 1}`}>
                {step.checks.map((check) => (
                  <CheckItem
                    key={check.id}
                    labId={lab.id}
                    check={check}
                    result={progress.checks[check.id]}
                    hints={progress.hints[check.id] ?? []}
                    solutionHtml={progress.solutions[check.id]}
                    needs={check.needs.map((id) => ({ id, title: allChecks.get(id)?.title ?? id, passed: progress.checks[id]?.passed === true }))}
                    onProgress={onProgress}
                    onUnauthorized={onUnauthorized}
                  />
                ))}
              </ul>
            ) : null}
            {step.quizzes.map((quiz) => (
              <QuizForm key={quiz.id} labId={lab.id} quiz={quiz} result={progress.quizzes[quiz.id]} onProgress={onProgress} onUnauthorized={onUnauthorized} />
            ))}
            {step.hasSolution && !done ? (
              <div className="skip">
                {skipConfirm ? (
                  <span className="confirm" role="group" aria-label="Confirm skipping the step">
                    <span>Skipping runs the solution in your sandbox; its checks earn no points. Skip?</span>
                    <button type="button" className="btn btn-small btn-danger" data-testid="skip-confirm" disabled={skipBusy} onClick={skip} autoFocus>
                      {skipBusy ? "Running the solution…" : "Skip this step"}
                    </button>
                    <button type="button" className="btn btn-small btn-quiet" onClick={() => setSkipConfirm(false)}>
                      Cancel
                    </button>
                  </span>
                ) : (
                  <button type="button" className="btn btn-small btn-quiet" data-testid="skip-button" onClick={() => setSkipConfirm(true)}>
                    Skip step
                  </button>
                )}
                {skipError ? (
                  <p className="form-error" role="alert" data-testid="skip-error">
                    {skipError}
                  </p>
                ) : null}
              </div>
            ) : null}
          </>
        )}
      </section>

      {isLast && progress.completed ? <Completion lab={lab} progress={progress} /> : null}

      <nav className="step-nav" aria-label="Step navigation">
        <button type="button" className="btn" data-testid="step-back" disabled={current === 0} onClick={() => goTo(current - 1)}>
          ← Back
        </button>
        <span className="muted step-nav-count">
          {current + 1} / {lab.steps.length}
        </span>
        {isLast ? (
          progress.completed ? null : (
            <span className="muted">Last step: pass its checks to finish the lab.</span>
          )
        ) : (
          <button
            type="button"
            className="btn btn-primary"
            data-testid="step-next"
            aria-disabled={nextLocked}
            title={nextLocked ? "Locked until this step is complete" : undefined}
            onClick={() => (nextLocked ? undefined : goTo(current + 1))}
          >
            {nextLocked ? (
              <>
                <LockIcon /> Next
              </>
            ) : (
              "Next →"
            )}
          </button>
        )}
      </nav>
    </article>
  );

  return instructions;
}

/** The instructions' place while the lab's text and progress are on their way (the route's loading.tsx too). */
export function LabLoading() {
  return (
    <div className="player-message" role="status" data-testid="lab-loading">
      <span className="spinner" aria-hidden="true" /> Loading the lab…
    </div>
  );
}

function Completion({ lab, progress }: { lab: LabView; progress: ProgressView }) {
  return (
    <section className="completion" data-testid="completion" aria-labelledby="completion-title">
      <h2 id="completion-title">Lab complete</h2>
      <p>
        You scored <strong data-testid="final-score">{progress.score} / {progress.maxScore}</strong> points ({progress.percent}%).
      </p>
      {lab.recapHtml ? <LabHtml html={lab.recapHtml} className="recap" /> : null}
      <p className="completion-links">
        {lab.next ? (
          <Link className="btn btn-primary" href={`/labs/${encodeURIComponent(lab.next.id)}`} data-testid="next-lab">
            Next lab: {lab.next.title} →
          </Link>
        ) : null}
        <Link className="btn" href="/">
          Back to the catalog
        </Link>
      </p>
    </section>
  );
}
