"use client";
// The lab player: instructions and checks on the left, the learner's terminal (and, in a second
// tab, the web preview of a port in their sandbox) on the right.
// Signed-out visitors are sent to /signin?next=<this lab>.
import type { LabView, ProgressView } from "@berth/protocol";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { api, signInUrl } from "@/lib/api";
import { CheckItem } from "./CheckItem";
import { LabHtml, RunContext, type RunTarget } from "./LabHtml";
import { SplitPane } from "./SplitPane";
import { loadTerminalModules, TerminalPane, type TerminalHandle } from "./TerminalPane";
import { Workspace } from "./Workspace";

type Load =
  | { kind: "loading" }
  | { kind: "missing" }
  | { kind: "error"; message: string }
  | { kind: "ready"; lab: LabView; progress: ProgressView };

export function LabPlayer({ labId }: { labId: string }) {
  const router = useRouter();
  const [load, setLoad] = useState<Load>({ kind: "loading" });
  const here = `/labs/${encodeURIComponent(labId)}`;
  const toSignIn = useCallback(() => router.replace(signInUrl(here)), [router, here]);

  useEffect(() => {
    let live = true;
    // In parallel with the lab's JSON: the terminal's code (a failed download surfaces in the pane).
    loadTerminalModules().catch(() => undefined);
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
  }, [labId, toSignIn]);

  if (load.kind === "loading") {
    return (
      <main className="player-message" role="status">
        <span className="spinner" aria-hidden="true" /> Loading the lab…
      </main>
    );
  }
  if (load.kind === "missing") {
    return (
      <main className="player-message">
        <h1>Lab not found</h1>
        <p>
          There is no lab called “{labId}”. <Link href="/">Back to the catalog</Link>
        </p>
      </main>
    );
  }
  if (load.kind === "error") {
    return (
      <main className="player-message">
        <h1>Could not load the lab</h1>
        <p role="alert">{load.message}</p>
      </main>
    );
  }
  return (
    <Player
      lab={load.lab}
      progress={load.progress}
      onProgress={(progress) => setLoad((prev) => (prev.kind === "ready" ? { ...prev, progress } : prev))}
      onUnauthorized={toSignIn}
    />
  );
}

function Player({
  lab,
  progress,
  onProgress,
  onUnauthorized,
}: {
  lab: LabView;
  progress: ProgressView;
  onProgress: (p: ProgressView) => void;
  onUnauthorized: () => void;
}) {
  const handle = useRef<TerminalHandle | null>(null);
  const [attached, setAttached] = useState(false);
  const runTarget = useMemo<RunTarget>(
    () => ({ canRun: attached, run: (code) => handle.current?.input(code) ?? false }),
    [attached],
  );
  const onHandle = useCallback((h: TerminalHandle | null) => {
    handle.current = h;
  }, []);

  const pct = progress.maxScore > 0 ? Math.round((progress.score / progress.maxScore) * 100) : 0;

  const instructions = (
    <article className="lab-text" aria-label="Instructions">
      <header className="lab-head">
        <p className="lab-meta">
          {lab.chapter === null ? null : <>Chapter {lab.chapter} · </>}
          {lab.duration} · {lab.stepCount} {lab.stepCount === 1 ? "step" : "steps"}
        </p>
        <h1>{lab.title}</h1>
        <div className="progress">
          <progress value={progress.score} max={Math.max(progress.maxScore, 1)} aria-label="Score">
            {pct}%
          </progress>
          <span className="progress-text">
            <span data-testid="score" data-score={progress.score} data-max-score={progress.maxScore}>
              {progress.score} / {progress.maxScore}
            </span>{" "}
            points
          </span>
        </div>
      </header>
      {lab.introHtml ? <LabHtml html={lab.introHtml} className="lab-intro" /> : null}
      <ol className="steps">
        {lab.steps.map((step, i) => {
          const done = step.checks.length > 0 && step.checks.every((c) => progress.checks[c.id]?.passed);
          return (
            <li key={step.id} className={`step ${done ? "step-done" : ""}`} data-testid={`step-${step.id}`} aria-labelledby={`step-title-${step.id}`}>
              <h2 id={`step-title-${step.id}`}>
                <span className="step-number">{i + 1}</span> {step.title}
                {done ? <span className="step-done-mark">✓ done</span> : null}
              </h2>
              <LabHtml html={step.html} />
              {step.checks.length > 0 ? (
                <ul className="checks" aria-label={`Checks for step ${i + 1}`}>
                  {step.checks.map((check) => (
                    <CheckItem
                      key={check.id}
                      labId={lab.id}
                      check={check}
                      result={progress.checks[check.id]}
                      onProgress={onProgress}
                      onUnauthorized={onUnauthorized}
                    />
                  ))}
                </ul>
              ) : null}
            </li>
          );
        })}
      </ol>
    </article>
  );

  return (
    <RunContext.Provider value={runTarget}>
      <title>{`${lab.title} · Berth`}</title>
      <main className="player">
        <SplitPane
          label="Resize instructions and terminal"
          left={instructions}
          right={<Workspace labId={lab.id} terminal={<TerminalPane labId={lab.id} onHandle={onHandle} onAttachedChange={setAttached} />} />}
        />
      </main>
    </RunContext.Provider>
  );
}
