"use client";
// The editor tab: a file tree of the lab's working folder in the learner's sandbox and a Monaco
// editor on the open file. Files are read and saved through the orchestrator's file routes (the
// sandbox's agent does the I/O). A save carries the mtime the editor loaded; if the file changed
// underneath (the learner edited it in the terminal), the server answers 409 and the editor asks
// what to do instead of overwriting. While the tab shows, the open file's folder is polled so a
// change made in the terminal is noticed without saving.
import type * as Monaco from "monaco-editor";
import { useCallback, useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { api, type FileEntry } from "@/lib/api";
import { languageFor, loadMonaco, type MonacoApi } from "@/lib/monaco";

/** How often the open file's folder is listed to notice changes made in the terminal. */
const POLL_MS = 3000;

export interface OpenFileRequest {
  path: string;
  /** A new value re-opens (and focuses) the same path. */
  nonce: number;
}

interface OpenFile {
  path: string;
  mtimeMs: number | null;
  dirty: boolean;
}

type Notice =
  | { kind: "info"; text: string }
  | { kind: "error"; text: string }
  /** The file changed in the sandbox since it was loaded. */
  | { kind: "changed"; text: string };

export function EditorPane({ labId, active, request, sandboxReady }: { labId: string; active: boolean; request: OpenFileRequest | null; sandboxReady: boolean }) {
  const hostRef = useRef<HTMLDivElement>(null);
  const editorRef = useRef<Monaco.editor.IStandaloneCodeEditor | null>(null);
  const monacoRef = useRef<MonacoApi | null>(null);
  const [monacoState, setMonacoState] = useState<"idle" | "loading" | "ready" | "error">("idle");
  const [monacoError, setMonacoError] = useState("");
  const [root, setRoot] = useState<string | null>(null);
  const [dirs, setDirs] = useState<Record<string, FileEntry[] | "loading" | { error: string }>>({});
  const [expanded, setExpanded] = useState<Record<string, boolean>>({});
  const [file, setFile] = useState<OpenFile | null>(null);
  const fileRef = useRef<OpenFile | null>(null);
  fileRef.current = file;
  const [notice, setNotice] = useState<Notice | null>(null);
  const [saving, setSaving] = useState(false);
  const [newName, setNewName] = useState("");

  // Monaco loads the first time the tab is shown.
  useEffect(() => {
    if (!active || monacoState !== "idle") return;
    setMonacoState("loading");
    loadMonaco().then(
      (m) => {
        monacoRef.current = m;
        setMonacoState("ready");
      },
      (err: unknown) => {
        setMonacoError(err instanceof Error ? err.message : String(err));
        setMonacoState("error");
      },
    );
  }, [active, monacoState]);

  useEffect(() => {
    if (monacoState !== "ready" || !hostRef.current || editorRef.current) return;
    const m = monacoRef.current!;
    const dark = window.matchMedia?.("(prefers-color-scheme: dark)").matches ?? false;
    const editor = m.editor.create(hostRef.current, {
      value: "",
      language: "plaintext",
      theme: dark ? "vs-dark" : "vs",
      automaticLayout: true,
      minimap: { enabled: false },
      fontSize: 14,
      scrollBeyondLastLine: false,
      // Enter always starts a new line (Tab takes a suggestion): a learner typing a Dockerfile
      // must not have a word replaced behind their back.
      acceptSuggestionOnEnter: "off",
      // Tab inserts a tab; Ctrl+M (Monaco's own toggle) lets Tab move focus out instead.
      tabFocusMode: false,
      ariaLabel: "File editor",
      readOnly: true,
    });
    editorRef.current = editor;
    if (pending.current) {
      const { path, content } = pending.current;
      pending.current = null;
      const model = m.editor.createModel(content, languageFor(path));
      editor.getModel()?.dispose();
      editor.setModel(model);
      editor.updateOptions({ readOnly: false });
      editor.focus();
    }
    const sub = editor.onDidChangeModelContent(() => {
      setFile((f) => (f && !f.dirty ? { ...f, dirty: true } : f));
    });
    return () => {
      sub.dispose();
      editor.getModel()?.dispose();
      editor.dispose();
      editorRef.current = null;
    };
  }, [monacoState]);

  const listDir = useCallback(
    async (dir?: string) => {
      if (dir) setDirs((d) => ({ ...d, [dir]: d[dir] && Array.isArray(d[dir]) ? d[dir] : "loading" }));
      const res = await api.listFiles(labId, dir);
      if (res.ok) {
        setDirs((d) => ({ ...d, [res.data.path]: res.data.entries }));
        return res.data;
      }
      if (dir) setDirs((d) => ({ ...d, [dir]: { error: res.error.error } }));
      else setNotice({ kind: "error", text: `Could not list your files: ${res.error.error}` });
      return null;
    },
    [labId],
  );

  // The tree's root: the lab's working folder, once the sandbox runs and the tab is shown.
  useEffect(() => {
    if (!active || !sandboxReady || root) return;
    void listDir().then((data) => {
      if (data) {
        setRoot(data.path);
        setExpanded((e) => ({ ...e, [data.path]: true }));
      }
    });
  }, [active, sandboxReady, root, listDir]);

  /** Content opened before Monaco was ready: shown as soon as the editor exists. */
  const pending = useRef<{ path: string; content: string } | null>(null);
  const setEditorContent = useCallback((path: string, content: string) => {
    const m = monacoRef.current;
    const editor = editorRef.current;
    if (!m || !editor) {
      pending.current = { path, content };
      return;
    }
    const old = editor.getModel();
    const model = m.editor.createModel(content, languageFor(path));
    editor.setModel(model);
    old?.dispose();
    editor.updateOptions({ readOnly: false });
  }, []);

  const openFile = useCallback(
    async (path: string, opts: { focus?: boolean } = {}) => {
      const cur = fileRef.current;
      if (cur && cur.dirty && cur.path !== path && !window.confirm(`${cur.path} has unsaved changes. Open ${path} anyway and drop them?`)) return;
      setNotice(null);
      const res = await api.readFile(labId, path);
      if (!res.ok) {
        // A file the lab asks to open may not exist yet: start it empty, created on the first save.
        if (res.status === 404) {
          setFile({ path, mtimeMs: null, dirty: false });
          setEditorContent(path, "");
          setNotice({ kind: "info", text: `${path} does not exist yet: it is created when you save.` });
        } else setNotice({ kind: "error", text: `Could not open ${path}: ${res.error.error}` });
        return;
      }
      setEditorContent(path, res.data.content);
      setFile({ path, mtimeMs: res.data.mtimeMs, dirty: false });
      if (opts.focus) editorRef.current?.focus();
    },
    [labId, setEditorContent],
  );

  // An "open file" action from the lab text, once Monaco is there.
  const handled = useRef<number | null>(null);
  useEffect(() => {
    if (!request || monacoState !== "ready" || !editorRef.current || !sandboxReady) return;
    if (handled.current === request.nonce) return;
    handled.current = request.nonce;
    void openFile(request.path, { focus: true });
  }, [request, monacoState, sandboxReady, openFile]);

  const save = useCallback(
    async (overwrite = false) => {
      const cur = fileRef.current;
      const editor = editorRef.current;
      if (!cur || !editor) return;
      setSaving(true);
      let base = cur.mtimeMs;
      if (overwrite) {
        // The learner chose to replace what is in the sandbox: base the save on its current state.
        const now = await api.readFile(labId, cur.path);
        base = now.ok ? now.data.mtimeMs : null;
      }
      const content = editor.getValue();
      const res = await api.saveFile(labId, cur.path, content, base);
      setSaving(false);
      if (res.ok) {
        setFile({ path: cur.path, mtimeMs: res.data.mtimeMs, dirty: false });
        setNotice({ kind: "info", text: `Saved ${cur.path}` });
        const dir = cur.path.slice(0, cur.path.lastIndexOf("/")) || "/";
        if (dirs[dir]) void listDir(dir);
      } else if (res.status === 409) {
        setNotice({ kind: "changed", text: res.error.error });
      } else {
        setNotice({ kind: "error", text: `Not saved: ${res.error.error}` });
      }
    },
    [labId, dirs, listDir],
  );
  const saveRef = useRef(save);
  saveRef.current = save;

  // Ctrl/Cmd+S saves (registered once per editor).
  useEffect(() => {
    const m = monacoRef.current;
    const editor = editorRef.current;
    if (monacoState !== "ready" || !m || !editor) return;
    const action = editor.addAction({
      id: "berth.save",
      label: "Save to the sandbox",
      keybindings: [m.KeyMod.CtrlCmd | m.KeyCode.KeyS],
      run: () => void saveRef.current(),
    });
    return () => action.dispose();
  }, [monacoState]);

  // Notice changes made in the sandbox (terminal, a build) while the tab shows.
  useEffect(() => {
    if (!active || !file || file.mtimeMs === null) return;
    const dir = file.path.slice(0, file.path.lastIndexOf("/")) || "/";
    const name = file.path.slice(file.path.lastIndexOf("/") + 1);
    const timer = setInterval(async () => {
      const res = await api.listFiles(labId, dir);
      const cur = fileRef.current;
      if (!res.ok || !cur || cur.path !== file.path || cur.mtimeMs === null) return;
      const entry = res.data.entries.find((e) => e.name === name);
      if (!entry) {
        setNotice({ kind: "changed", text: `${cur.path} was deleted in your sandbox. Save to write it again.` });
        return;
      }
      if (entry.mtimeMs === cur.mtimeMs) return;
      if (!cur.dirty) {
        // Nothing typed here that could be lost: follow the sandbox.
        await openFile(cur.path);
        setNotice({ kind: "info", text: `${cur.path} changed in your sandbox: reloaded.` });
      } else {
        setNotice({ kind: "changed", text: `${cur.path} changed in your sandbox since you opened it.` });
      }
    }, POLL_MS);
    return () => clearInterval(timer);
  }, [active, file, labId, openFile]);

  const toggleDir = (dir: string) => {
    const open = !expanded[dir];
    setExpanded((e) => ({ ...e, [dir]: open }));
    if (open) void listDir(dir);
  };

  // A name typed before the first listing has told us the home folder waits for it, rather than
  // being dropped (a learner who opens the tab and types at once would see nothing happen).
  const [pendingNew, setPendingNew] = useState<string | null>(null);
  useEffect(() => {
    if (!pendingNew || !root) return;
    setPendingNew(null);
    void openFile(`${root}/${pendingNew}`, { focus: true });
  }, [pendingNew, root, openFile]);

  const createFile = (e: FormEvent) => {
    e.preventDefault();
    const name = newName.trim();
    if (!name) return;
    setNewName("");
    if (name.startsWith("/")) void openFile(name, { focus: true });
    else if (root) void openFile(`${root}/${name}`, { focus: true });
    else {
      setPendingNew(name);
      setNotice({ kind: "info", text: `${name} opens as soon as your files are listed.` });
    }
  };

  const renderDir = (dir: string, depth: number) => {
    const listing = dirs[dir];
    if (listing === undefined || listing === "loading") return <li className="tree-note muted">Loading…</li>;
    if (!Array.isArray(listing)) return <li className="tree-note form-error">{listing.error}</li>;
    if (listing.length === 0) return <li className="tree-note muted">(empty)</li>;
    return listing.map((e) => {
      const full = `${dir === "/" ? "" : dir}/${e.name}`;
      if (e.type === "dir") {
        return (
          <li key={full}>
            <button type="button" className="tree-row" aria-expanded={!!expanded[full]} style={{ paddingLeft: `${depth * 0.9 + 0.4}rem` }} onClick={() => toggleDir(full)}>
              <span aria-hidden="true">{expanded[full] ? "▾" : "▸"}</span> {e.name}/
            </button>
            {expanded[full] ? <ul aria-label={`Files in ${full}`}>{renderDir(full, depth + 1)}</ul> : null}
          </li>
        );
      }
      return (
        <li key={full}>
          <button
            type="button"
            aria-current={file?.path === full ? "true" : undefined}
            className={`tree-row ${file?.path === full ? "tree-current" : ""}`}
            style={{ paddingLeft: `${depth * 0.9 + 1.3}rem` }}
            data-testid={`file-${full}`}
            onClick={() => void openFile(full, { focus: true })}
          >
            {e.name}
          </button>
        </li>
      );
    });
  };

  const onEditorKeys = (e: KeyboardEvent) => {
    // Escape in the editor area moves focus to the Save button, so the keyboard is never trapped.
    if (e.key === "Escape" && !e.defaultPrevented) document.getElementById("editor-save")?.focus();
  };

  return (
    <section className="editor-pane" aria-label="Editor" data-testid="editor-pane">
      <nav className="editor-tree" aria-label="Files">
        <div className="editor-tree-head">
          <span className="muted">{root ?? "Files"}</span>
          <button type="button" className="btn btn-small btn-quiet" onClick={() => root && void listDir(root)} disabled={!root} aria-label="Refresh the file list">
            ↻
          </button>
        </div>
        {!sandboxReady ? (
          <p className="tree-note muted">Waiting for your sandbox…</p>
        ) : root ? (
          // Plain lists of buttons (Tab and Enter), folders with aria-expanded.
          <ul aria-label={`Files in ${root}`}>
            {renderDir(root, 0)}
          </ul>
        ) : (
          <p className="tree-note muted">Loading…</p>
        )}
        <form className="editor-new" onSubmit={createFile}>
          <label htmlFor="editor-new-name" className="visually-hidden">
            New file name
          </label>
          <input id="editor-new-name" data-testid="editor-new-name" placeholder="new file name" value={newName} onChange={(e) => setNewName(e.target.value)} />
          <button type="submit" className="btn btn-small">
            New
          </button>
        </form>
      </nav>
      <div className="editor-main">
        <div className="editor-bar">
          <span className="editor-path" data-testid="editor-path">
            {file ? file.path : "No file open"}
            {file?.dirty ? <span className="editor-dirty" title="Unsaved changes"> ●</span> : null}
          </span>
          <button id="editor-save" type="button" className="btn btn-small btn-primary" data-testid="editor-save" disabled={!file || saving} onClick={() => void save()} title="Save (Ctrl+S)">
            {saving ? "Saving…" : "Save"}
          </button>
        </div>
        {notice ? (
          <div className={`editor-notice editor-notice-${notice.kind}`} role={notice.kind === "info" ? "status" : "alert"} data-testid="editor-notice" data-kind={notice.kind}>
            <span>{notice.text}</span>
            {notice.kind === "changed" && file ? (
              <span className="editor-notice-actions">
                <button type="button" className="btn btn-small" onClick={() => void openFile(file.path)}>
                  Load the sandbox’s version
                </button>
                <button type="button" className="btn btn-small btn-quiet" onClick={() => void save(true)}>
                  Overwrite with mine
                </button>
              </span>
            ) : null}
          </div>
        ) : null}
        {monacoState === "error" ? (
          <p className="form-error" role="alert">
            Could not load the editor: {monacoError}
          </p>
        ) : monacoState !== "ready" ? (
          <p className="muted editor-loading" role="status">
            <span className="spinner" aria-hidden="true" /> Loading the editor…
          </p>
        ) : null}
        <div className="editor-host" ref={hostRef} data-testid="editor" onKeyDown={onEditorKeys} hidden={monacoState !== "ready"} />
      </div>
    </section>
  );
}
