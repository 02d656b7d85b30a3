"use client";
// A quiz of a step: single choice (radios), multiple choice (checkboxes) and short text answers in
// one form. The server grades it (the answers never reach the browser) and says, per question,
// right or wrong; the learner may answer again.
import type { ProgressView, QuizAnswers, QuizResultView, QuizView } from "@berth/protocol";
import { useState, type FormEvent } from "react";
import { api } from "@/lib/api";

export function QuizForm({
  labId,
  quiz,
  result,
  onProgress,
  onUnauthorized,
}: {
  labId: string;
  quiz: QuizView;
  result: QuizResultView | undefined;
  onProgress: (progress: ProgressView) => void;
  onUnauthorized: () => void;
}) {
  const [answers, setAnswers] = useState<Record<string, string | string[]>>({});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  // The verdict shown is the one for the answers on screen: editing an answer hides it.
  const [shown, setShown] = useState(true);

  const set = (qid: string, value: string | string[]) => {
    setAnswers((a) => ({ ...a, [qid]: value }));
    setShown(false);
  };

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const body: QuizAnswers = {};
    for (const q of quiz.questions) body[q.id] = answers[q.id] ?? (q.kind === "multiple" ? [] : "");
    const res = await api.answerQuiz(labId, quiz.id, body);
    setBusy(false);
    if (res.ok) {
      onProgress(res.data.progress);
      setShown(true);
    } else if (res.status === 401) onUnauthorized();
    else setError(res.error.error);
  }

  const verdict = shown ? result : undefined;

  return (
    <form className={`quiz ${result?.passed ? "quiz-passed" : ""}`} data-testid={`quiz-${quiz.id}`} onSubmit={submit} noValidate>
      <h3 className="quiz-title">
        {quiz.title} <span className="check-points">{quiz.points} pts</span>
      </h3>
      {quiz.questions.map((q, qi) => {
        const name = `${quiz.id}-${q.id}`;
        const mark = verdict ? verdict.perQuestion[q.id] : undefined;
        return (
          <fieldset key={q.id} className={`quiz-question ${mark === true ? "ok" : mark === false ? "fail" : ""}`} data-testid={`quiz-question-${quiz.id}-${q.id}`} data-correct={mark === undefined ? undefined : String(mark)}>
            <legend>
              <span className="quiz-number">{qi + 1}.</span>{" "}
              {/* Sanitized by the server (labkit). */}
              <span className="quiz-prompt" dangerouslySetInnerHTML={{ __html: q.promptHtml }} />
              {mark !== undefined ? <span className={`quiz-mark ${mark ? "ok" : "fail"}`}>{mark ? " ✓ right" : " ✗ not right"}</span> : null}
            </legend>
            {q.kind === "text" ? (
              <input
                type="text"
                className="quiz-text"
                name={name}
                aria-label={`Answer to question ${qi + 1}`}
                autoComplete="off"
                value={typeof answers[q.id] === "string" ? (answers[q.id] as string) : ""}
                onChange={(e) => set(q.id, e.target.value)}
              />
            ) : (
              (q.options ?? []).map((o) => {
                const multiple = q.kind === "multiple";
                const current = answers[q.id];
                const checked = multiple ? Array.isArray(current) && current.includes(o.id) : current === o.id;
                return (
                  <label key={o.id} className="quiz-option">
                    <input
                      type={multiple ? "checkbox" : "radio"}
                      name={name}
                      value={o.id}
                      checked={checked}
                      onChange={(e) => {
                        if (!multiple) return set(q.id, o.id);
                        const list = Array.isArray(current) ? current : [];
                        set(q.id, e.target.checked ? [...list, o.id] : list.filter((x) => x !== o.id));
                      }}
                    />{" "}
                    <span dangerouslySetInnerHTML={{ __html: o.html }} />
                  </label>
                );
              })
            )}
          </fieldset>
        );
      })}
      <div className="quiz-actions">
        <button type="submit" className="btn btn-small btn-primary" data-testid={`quiz-submit-${quiz.id}`} disabled={busy}>
          {busy ? "Checking…" : result ? "Answer again" : "Submit answers"}
        </button>
        <span aria-live="polite">
          {verdict ? (
            <span className={`quiz-result ${verdict.passed ? "ok" : "fail"}`} data-testid={`quiz-result-${quiz.id}`} data-passed={String(verdict.passed)} data-attempt={verdict.attempt}>
              <strong>{verdict.passed ? "Passed" : "Not yet"}</strong> · {verdict.points}/{quiz.points} pts · attempt {verdict.attempt}
              {verdict.message ? <> · {verdict.message}</> : null}
            </span>
          ) : null}
        </span>
      </div>
      {error ? (
        <p className="form-error" role="alert" data-testid={`quiz-error-${quiz.id}`}>
          {error}
        </p>
      ) : null}
    </form>
  );
}
