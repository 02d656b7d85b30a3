"use client";
// Lab text as HTML from the API (sanitized server-side by labkit), with a Copy button on every
// code block (`pre.berth-code`) and a Run button on runnable ones (`data-runnable="true"`; it types
// into the terminal named by `data-term`, after a Ctrl-C when `data-interrupt="true"`).
// The buttons are React components rendered through portals into small toolbars that this
// component inserts next to each block after the HTML is in the DOM. Workspace actions in the text
// (`button.berth-action`: open a file in the editor, open the preview on a port) are wired here too.
import { createContext, memo, useContext, useEffect, useRef, useState } from "react";
import { createPortal } from "react-dom";

/** How the lab text reaches the workspace (terminals, editor, preview). Provided by the player. */
export interface RunTarget {
  canRun: boolean;
  /** Types `code` into terminal `term` ("1" is the first); false when it cannot. */
  run(code: string, opts: { term: string; interrupt: boolean }): boolean;
  openFile(path: string): void;
  preview(port: number): void;
}
export const RunContext = createContext<RunTarget>({ canRun: false, run: () => false, openFile: () => {}, preview: () => {} });

interface CodeBlock {
  toolbar: HTMLElement;
  code: string;
  runnable: boolean;
  lang: string;
  term: string;
  interrupt: boolean;
}

export const LabHtml = memo(function LabHtml({ html, className }: { html: string; className?: string }) {
  const rootRef = useRef<HTMLDivElement>(null);
  const [blocks, setBlocks] = useState<CodeBlock[]>([]);
  const target = useContext(RunContext);
  const targetRef = useRef(target);
  targetRef.current = target;

  useEffect(() => {
    const root = rootRef.current;
    if (!root) return;
    const found: CodeBlock[] = [];
    const undo: Array<() => void> = [];
    for (const pre of Array.from(root.querySelectorAll<HTMLPreElement>("pre.berth-code"))) {
      const codeEl = pre.querySelector("code");
      const code = (codeEl ?? pre).textContent ?? "";
      const runnable = pre.dataset.runnable === "true" || codeEl?.dataset.runnable === "true";
      // Wrap the block with a toolbar strip above it: outside the <pre>, so never part of its text,
      // and never covering a long line.
      const wrapper = document.createElement("div");
      wrapper.className = "code-block";
      const toolbar = document.createElement("div");
      toolbar.className = "code-actions";
      pre.replaceWith(wrapper);
      wrapper.append(toolbar, pre);
      undo.push(() => {
        wrapper.replaceWith(pre);
      });
      const term = pre.dataset.term ?? codeEl?.dataset.term ?? "1";
      const interrupt = (pre.dataset.interrupt ?? codeEl?.dataset.interrupt) === "true";
      found.push({ toolbar, code, runnable, lang: pre.dataset.lang ?? "", term, interrupt });
    }
    setBlocks(found);
    // Workspace actions: plain buttons in the sanitized HTML, handled by delegation.
    for (const b of Array.from(root.querySelectorAll<HTMLButtonElement>("button.berth-action"))) b.type = "button";
    const onClick = (ev: MouseEvent) => {
      const button = (ev.target as Element | null)?.closest?.("button.berth-action") as HTMLButtonElement | null;
      if (!button || !root.contains(button)) return;
      ev.preventDefault();
      const { action, path, port } = button.dataset;
      if (action === "open-file" && path) targetRef.current.openFile(path);
      else if (action === "preview" && port && /^\d{1,5}$/.test(port)) targetRef.current.preview(Number(port));
    };
    root.addEventListener("click", onClick);
    return () => {
      root.removeEventListener("click", onClick);
      setBlocks([]);
      for (const fn of undo.reverse()) fn();
    };
  }, [html]);

  return (
    <>
      <div ref={rootRef} className={`lab-html ${className ?? ""}`} dangerouslySetInnerHTML={{ __html: html }} />
      {blocks.map((b, i) => createPortal(<CodeActions code={b.code} runnable={b.runnable} lang={b.lang} term={b.term} interrupt={b.interrupt} />, b.toolbar, `code-${i}`))}
    </>
  );
});

function CodeActions({ code, runnable, lang, term, interrupt }: { code: string; runnable: boolean; lang: string; term: string; interrupt: boolean }) {
  const target = useContext(RunContext);
  const [copied, setCopied] = useState<"idle" | "copied" | "failed">("idle");
  const [ran, setRan] = useState(false);

  useEffect(() => {
    if (copied === "idle") return;
    const t = setTimeout(() => setCopied("idle"), 1500);
    return () => clearTimeout(t);
  }, [copied]);
  useEffect(() => {
    if (!ran) return;
    const t = setTimeout(() => setRan(false), 1200);
    return () => clearTimeout(t);
  }, [ran]);

  return (
    <>
      <span className="code-lang">{lang}</span>
      {runnable ? (
        <button
          type="button"
          className="btn btn-small btn-run"
          data-testid="run-button"
          disabled={!target.canRun}
          data-term={term}
          title={target.canRun ? `Type this into terminal ${term}${interrupt ? " (after Ctrl-C)" : ""} and press Enter` : "Waiting for the terminal"}
          onClick={() => {
            // One trailing newline submits the command; the block's own trailing newlines are dropped.
            if (target.run(code.replace(/\n+$/, "") + "\n", { term, interrupt })) setRan(true);
          }}
        >
          {ran ? "Sent ▸" : term === "1" ? "Run ▸" : `Run in terminal ${term} ▸`}
        </button>
      ) : null}
      <button
        type="button"
        className="btn btn-small btn-quiet"
        data-testid="copy-button"
        onClick={async () => setCopied((await copyText(code)) ? "copied" : "failed")}
      >
        {copied === "copied" ? "Copied" : copied === "failed" ? "Copy failed" : "Copy"}
      </button>
    </>
  );
}

/** The async clipboard needs a secure context (https or localhost); fall back to execCommand. */
async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // permission denied or unfocused document: try the old way below
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}
