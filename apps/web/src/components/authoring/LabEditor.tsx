"use client";
// The lab editor: lab.md in Monaco (the lab format highlighted), the learner's view beside it as
// the server renders and sanitizes it for learners (saved and rendered as you type, after a short
// pause), labkit's problems as markers on their lines and as a list, the draft's files, and the
// four actions: Prove it (streamed run by run), Publish (only what a proof passed), Try it (the
// real player, for the author), Export (a tar of the folder).
import type { LabView } from "@berth/protocol";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useCallback, useEffect, useRef, useState } from "react";
import type * as Monaco from "monaco-editor";
import { signInUrl } from "@/lib/api";
import { loadMonaco, type MonacoApi } from "@/lib/monaco";
import { LabHtml } from "../LabHtml";
import { authoring, type Draft, type LintProblem, type ProofEvent } from "./authoring-api";
import { LAB_LANGUAGE, registerLabLanguage } from "./lab-language";
import "./authoring.css";

type Save = "saved" | "dirty" | "saving" | { error: string };
type Proof = { running: boolean; events: ProofEvent[] } | null;

const SAVE_PAUSE_MS = 400;

declare global {
  interface Window {
    /** Test hook (docs/authoring.md): the lab editor's Monaco instance. */
    __berthLabEditor?: Monaco.editor.IStandaloneCodeEditor;
  }
}

export function LabEditor({ labId }: { labId: string }) {
  const router = useRouter();
  const [draft, setDraft] = useState<Draft | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [problems, setProblems] = useState<{ errors: LintProblem[]; warnings: LintProblem[] }>({ errors: [], warnings: [] });
  const [view, setView] = useState<LabView | undefined>(undefined);
  const [proved, setProved] = useState(false);
  const [save, setSave] = useState<Save>("saved");
  const [proof, setProof] = useState<Proof>(null);
  const [notice, setNotice] = useState<{ kind: "ok" | "error"; text: string } | null>(null);
  const [monacoError, setMonacoError] = useState<string | null>(null);
  const hostRef = useRef<HTMLDivElement>(null);
  const editorRef = useRef<Monaco.editor.IStandaloneCodeEditor | null>(null);
  const monacoRef = useRef<MonacoApi | null>(null);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const saving = useRef<Promise<void> | null>(null);
  const proofAbort = useRef<AbortController | null>(null);

  const applyLint = useCallback((errors: LintProblem[], warnings: LintProblem[]) => {
    setProblems({ errors, warnings });
    const m = monacoRef.current;
    const model = editorRef.current?.getModel();
    if (!m || !model) return;
    const marker = (p: LintProblem, severity: Monaco.MarkerSeverity): Monaco.editor.IMarkerData => {
      const line = Math.min(Math.max(1, p.line), model.getLineCount());
      return {
        severity, message: `${p.message}${p.fix ? `\nFix: ${p.fix}` : ""}`, source: "labkit",
        startLineNumber: line, endLineNumber: line, startColumn: p.column ?? 1, endColumn: model.getLineMaxColumn(line),
      };
    };
    m.editor.setModelMarkers(model, "labkit", [
      ...errors.map((e) => marker(e, m.MarkerSeverity.Error)),
      ...warnings.map((w) => marker(w, m.MarkerSeverity.Warning)),
    ]);
  }, []);

  // The draft, once.
  useEffect(() => {
    let live = true;
    void authoring.get(labId).then((res) => {
      if (!live) return;
      if (res.ok) {
        setDraft(res.data.draft);
        setView(res.data.draft.view);
        setProved(res.data.draft.proved);
        setProblems({ errors: res.data.draft.errors, warnings: res.data.draft.warnings });
      } else if (res.status === 401) router.replace(signInUrl(`/instructor/labs/${labId}`));
      else setLoadError(res.error);
    });
    return () => {
      live = false;
    };
  }, [labId, router]);

  const saveNow = useCallback(async (): Promise<void> => {
    clearTimeout(timer.current);
    const editor = editorRef.current;
    if (!editor) return;
    const markdown = editor.getValue();
    setSave("saving");
    const run = (async () => {
      const res = await authoring.save(labId, markdown);
      // Only the newest text's answer counts: typing on while this was out makes another save.
      if (editor.getValue() !== markdown) return;
      if (!res.ok) return setSave({ error: res.error });
      setSave("saved");
      setView(res.data.view);
      setProved(res.data.proved);
      applyLint(res.data.errors, res.data.warnings);
    })();
    saving.current = run;
    await run;
  }, [labId, applyLint]);

  // Monaco, once the draft is here.
  useEffect(() => {
    if (!draft || editorRef.current) return;
    let disposed = false;
    let sub: Monaco.IDisposable | undefined;
    loadMonaco().then(
      (m) => {
        if (disposed || !hostRef.current) return;
        registerLabLanguage(m);
        monacoRef.current = m;
        const dark = window.matchMedia?.("(prefers-color-scheme: dark)").matches ?? false;
        const editor = m.editor.create(hostRef.current, {
          model: m.editor.createModel(draft.markdown, LAB_LANGUAGE),
          theme: dark ? "berth-lab-dark" : "berth-lab-light",
          automaticLayout: true,
          minimap: { enabled: false },
          fontSize: 14,
          wordWrap: "on",
          scrollBeyondLastLine: false,
          acceptSuggestionOnEnter: "off",
          ariaLabel: "lab.md",
        });
        editorRef.current = editor;
        window.__berthLabEditor = editor;
        applyLint(draft.errors, draft.warnings);
        sub = editor.onDidChangeModelContent(() => {
          setSave("dirty");
          clearTimeout(timer.current);
          timer.current = setTimeout(() => void saveNow(), SAVE_PAUSE_MS);
        });
      },
      (err: unknown) => setMonacoError(err instanceof Error ? err.message : String(err)),
    );
    return () => {
      disposed = true;
      clearTimeout(timer.current);
      sub?.dispose();
      editorRef.current?.getModel()?.dispose();
      editorRef.current?.dispose();
      editorRef.current = null;
      if (window.__berthLabEditor) delete window.__berthLabEditor;
    };
    // The editor is made once per draft load; later saves do not remake it.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [draft?.labId]);

  // A proof still streaming when the page goes away is dropped (the server finishes it).
  useEffect(() => () => proofAbort.current?.abort(), []);

  const goTo = (line: number) => {
    const editor = editorRef.current;
    if (!editor) return;
    editor.revealLineInCenter(line);
    editor.setPosition({ lineNumber: line, column: 1 });
    editor.focus();
  };

  const flush = async () => {
    if (save !== "saved") await saveNow();
    else await saving.current;
  };

  const prove = async () => {
    await flush();
    setNotice(null);
    const abort = new AbortController();
    proofAbort.current = abort;
    setProof({ running: true, events: [] });
    const res = await authoring.prove(labId, (e) => {
      setProof((p) => ({ running: true, events: [...(p?.events ?? []), e] }));
      if (e.kind === "done") setProved(e.publishable);
    }, abort.signal).catch((err: unknown) => ({ ok: false as const, status: 0, error: String(err) }));
    setProof((p) => ({ running: false, events: p?.events ?? [] }));
    if (!res.ok) setNotice({ kind: "error", text: res.error });
  };

  const publish = async () => {
    await flush();
    const res = await authoring.publish(labId);
    if (res.ok) {
      setNotice({ kind: "ok", text: `Published: learners who open “${labId}” from now on get this version (those who started earlier keep theirs).` });
      const again = await authoring.get(labId);
      if (again.ok) setDraft((d) => (d ? { ...d, versions: again.data.draft.versions } : d));
    } else setNotice({ kind: "error", text: res.error });
  };

  const tryIt = async () => {
    await flush();
    const res = await authoring.tryIt(labId);
    if (res.ok) window.open(res.data.url, "_blank", "noopener");
    else setNotice({ kind: "error", text: res.error });
  };

  const onFiles = async (files: FileList | null, folder: string) => {
    if (!files) return;
    for (const file of Array.from(files)) {
      const path = `${folder ? `${folder.replace(/\/+$/, "")}/` : ""}${file.name}`;
      if (draft && file.size > draft.limits.fileBytes) {
        setNotice({ kind: "error", text: `${file.name} is ${file.size} bytes; a file may have at most ${draft.limits.fileBytes}.` });
        continue;
      }
      const res = await authoring.putFile(labId, path, await file.arrayBuffer());
      if (!res.ok) setNotice({ kind: "error", text: res.error });
      else setDraft((d) => (d ? { ...d, files: res.data.draft.files } : d));
    }
    await saveNow(); // the lint of assets and pictures depends on the files
  };

  const deleteFile = async (path: string) => {
    const res = await authoring.deleteFile(labId, path);
    if (!res.ok) setNotice({ kind: "error", text: res.error });
    else setDraft((d) => (d ? { ...d, files: res.data.draft.files } : d));
    await saveNow();
  };

  if (loadError) {
    return (
      <main className="player-message" data-testid="authoring-error">
        <h1>Cannot open this draft</h1>
        <p>{loadError}</p>
        <p>
          <Link href="/instructor/labs">Back to your labs</Link>
        </p>
      </main>
    );
  }
  if (!draft) {
    return (
      <main className="player-message" role="status">
        <span className="spinner" aria-hidden="true" /> Loading the draft…
      </main>
    );
  }
  const saveText = save === "saved" ? "Saved" : save === "saving" ? "Saving…" : save === "dirty" ? "Editing…" : `Not saved: ${save.error}`;
  const done = proof?.events.find((e): e is Extract<ProofEvent, { kind: "done" }> => e.kind === "done");
  return (
    <main className="authoring" data-testid="lab-editor-page">
      <div className="authoring-bar">
        <Link href="/instructor/labs" className="btn btn-quiet btn-small">
          ← Labs
        </Link>
        <h1>{labId}</h1>
        <span className={`authoring-save ${typeof save === "object" ? "is-error" : ""}`} data-testid="save-state" role="status">
          {saveText}
        </span>
        <span className="authoring-status" data-testid="draft-status">
          {problems.errors.length > 0 ? `${problems.errors.length} error(s)` : proved ? "Proved: ready to publish" : "Not proved yet"}
        </span>
        <div className="authoring-actions">
          <button type="button" className="btn btn-small" onClick={tryIt} disabled={problems.errors.length > 0} data-testid="try-it">
            Try it
          </button>
          <button type="button" className="btn btn-small" onClick={prove} disabled={proof?.running || problems.errors.length > 0} data-testid="prove-it">
            {proof?.running ? "Proving…" : "Prove it"}
          </button>
          <button type="button" className="btn btn-primary btn-small" onClick={publish} disabled={!proved || problems.errors.length > 0 || save !== "saved"} data-testid="publish">
            Publish
          </button>
          <a className="btn btn-quiet btn-small" href={authoring.exportUrl(labId)} download data-testid="export">
            Export
          </a>
        </div>
      </div>
      {notice ? (
        <p className={notice.kind === "ok" ? "authoring-notice" : "form-error"} role={notice.kind === "ok" ? "status" : "alert"} data-testid="authoring-notice">
          {notice.text}
        </p>
      ) : null}
      <div className="authoring-panes">
        <section className="authoring-source" aria-label="lab.md">
          {monacoError ? <p className="form-error">The editor could not load: {monacoError}</p> : null}
          <div ref={hostRef} className="authoring-monaco" data-testid="lab-editor" />
          <ProblemList errors={problems.errors} warnings={problems.warnings} goTo={goTo} />
          <FileList draft={draft} onFiles={onFiles} onDelete={deleteFile} />
        </section>
        <section className="authoring-preview" aria-label="What learners see" data-testid="authoring-preview">
          {proof ? <ProofLog proof={proof} done={done} /> : null}
          {view ? <LabPreview view={view} labId={labId} /> : <p className="muted">The learner&apos;s view appears here once lab.md has no errors.</p>}
        </section>
      </div>
    </main>
  );
}

function ProblemList({ errors, warnings, goTo }: { errors: LintProblem[]; warnings: LintProblem[]; goTo: (line: number) => void }) {
  const all = [...errors.map((p) => ({ ...p, kind: "error" })), ...warnings.map((p) => ({ ...p, kind: "warning" }))].sort((a, b) => a.line - b.line);
  if (all.length === 0) return <p className="authoring-problems-none" data-testid="lint-problems">labkit lint: no problems</p>;
  return (
    <ul className="authoring-problems" data-testid="lint-problems" aria-label="Problems">
      {all.map((p, i) => (
        <li key={i} className={`problem-${p.kind}`}>
          <button type="button" className="linklike" onClick={() => goTo(p.line)}>
            line {p.line}
          </button>{" "}
          <strong>{p.kind}</strong>: {p.message} <span className="muted">(fix: {p.fix})</span>
        </li>
      ))}
    </ul>
  );
}

function FileList({ draft, onFiles, onDelete }: { draft: Draft; onFiles: (f: FileList | null, folder: string) => void; onDelete: (path: string) => void }) {
  const [folder, setFolder] = useState("");
  const total = draft.files.reduce((n, f) => n + f.size, 0);
  return (
    <details className="authoring-files" open={draft.files.length > 0} data-testid="lab-files">
      <summary>
        Files ({draft.files.length}; {kib(total)} of {kib(draft.limits.totalBytes)})
      </summary>
      <ul>
        {draft.files.map((f) => (
          <li key={f.path}>
            <a href={`/api/authoring/labs/${encodeURIComponent(draft.labId)}/files/${f.path.split("/").map(encodeURIComponent).join("/")}`} target="_blank" rel="noopener">
              <code>{f.path}</code>
            </a>{" "}
            <span className="muted">{kib(f.size)}</span>{" "}
            <button type="button" className="btn btn-quiet btn-small" onClick={() => onDelete(f.path)} aria-label={`Delete ${f.path}`}>
              Delete
            </button>
          </li>
        ))}
      </ul>
      <div className="authoring-upload">
        <label>
          Folder <input value={folder} onChange={(e) => setFolder(e.target.value)} placeholder="files" size={12} />
        </label>
        <label className="btn btn-small">
          Upload…
          <input type="file" multiple className="sr-only" data-testid="file-upload" onChange={(e) => { onFiles(e.target.files, folder); e.target.value = ""; }} />
        </label>
        <span className="muted">
          at most {kib(draft.limits.fileBytes)} a file; pictures (png, jpg, gif, webp, avif) show in the text, <code>assets:</code> go into the sandbox
        </span>
      </div>
    </details>
  );
}

function ProofLog({ proof, done }: { proof: NonNullable<Proof>; done: Extract<ProofEvent, { kind: "done" }> | undefined }) {
  const error = proof.events.find((e): e is Extract<ProofEvent, { kind: "error" }> => e.kind === "error");
  return (
    <section className="authoring-proof" aria-label="Proof" data-testid="proof-log">
      <h2>Prove it {proof.running ? <span className="spinner spinner-small" aria-hidden="true" /> : null}</h2>
      <ol>
        {proof.events.map((e, i) =>
          e.kind === "step" ? (
            <li key={i} className={e.ok ? "proof-ok" : "proof-fail"} data-testid="proof-step">
              <span aria-hidden="true">{e.ok ? "✓" : "✗"}</span> {e.what} <span className="muted">{e.ms ? `${e.ms} ms` : ""}</span>
              {e.detail && !e.ok ? <pre>{e.detail}</pre> : null}
            </li>
          ) : e.kind === "start" ? (
            <li key={i} className="muted">
              A fresh sandbox; {e.checks} check(s) to prove.
            </li>
          ) : null,
        )}
      </ol>
      {done ? (
        <p className={done.ok ? "proof-ok" : "proof-fail"} data-testid="proof-verdict" role="status">
          {done.ok ? `Proved in ${(done.ms / 1000).toFixed(1)} s: every check fails before its solution and passes after.` : "Not proved:"}
          {done.ok && !done.publishable ? " The draft changed meanwhile: prove it again to publish." : null}
        </p>
      ) : null}
      {done && !done.ok ? (
        <ul className="proof-problems">
          {done.problems.map((p, i) => (
            <li key={i}>{p}</li>
          ))}
        </ul>
      ) : null}
      {error ? <p className="form-error">{error.error}</p> : null}
    </section>
  );
}

/**
 * The learner's view as the player lays it out: intro, then each step with its checks and quizzes.
 * Pictures point at the lab's published files; here they come from the draft's own (the same
 * sanitized HTML, with that one URL prefix swapped).
 */
function LabPreview({ view, labId }: { view: LabView; labId: string }) {
  const from = `"/api/labs/${encodeURIComponent(labId)}/assets/`;
  const to = `"/api/authoring/labs/${encodeURIComponent(labId)}/files/`;
  const local = (html: string) => html.split(from).join(to);
  return (
    <article className="lab-text authoring-learner-view" data-testid="learner-view">
      <h1>{view.title}</h1>
      <p className="muted">
        {view.summary} · {view.duration} · {view.difficulty}
      </p>
      <LabHtml html={local(view.introHtml)} />
      {view.steps.map((s, i) => (
        <section key={s.id} className="authoring-step">
          <h2>
            {i + 1}. {s.title} {s.gated ? <span className="muted">(opens when the step before is complete)</span> : null}
          </h2>
          <LabHtml html={local(s.html)} />
          {s.checks.length > 0 ? (
            <ul className="authoring-checks">
              {s.checks.map((c) => (
                <li key={c.id}>
                  ☐ {c.title} <span className="muted">({c.points} pt{c.points === 1 ? "" : "s"}{c.hintCount ? `, ${c.hintCount} hint(s)` : ""}{c.auto ? ", automatic" : ""})</span>
                </li>
              ))}
            </ul>
          ) : null}
          {s.quizzes.map((q) => (
            <p key={q.id} className="muted">
              Quiz: {q.title} ({q.questions.length} question{q.questions.length === 1 ? "" : "s"})
            </p>
          ))}
        </section>
      ))}
      {view.recapHtml ? (
        <section className="authoring-step">
          <h2>Recap</h2>
          <LabHtml html={local(view.recapHtml)} />
        </section>
      ) : null}
    </article>
  );
}

function kib(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`;
}
