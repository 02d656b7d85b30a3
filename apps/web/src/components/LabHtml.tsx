"use client";
// Lab text as HTML from the API (sanitized server-side by labkit), with a Copy button on every
// code block (`pre.berth-code`) and a Run button on runnable ones (`data-runnable="true"`).
// The buttons are React components rendered through portals into small toolbars that this
// component inserts next to each block after the HTML is in the DOM.
import { createContext, memo, useContext, useEffect, useRef, useState } from "react";
import { createPortal } from "react-dom";

/** How a Run button reaches the terminal. Provided by the player. */
export interface RunTarget {
  canRun: boolean;
  run(code: string): boolean;
}
export const RunContext = createContext<RunTarget>({ canRun: false, run: () => false });

interface CodeBlock {
  toolbar: HTMLElement;
  code: string;
  runnable: boolean;
  lang: string;
}

export const LabHtml = memo(function LabHtml({ html, className }: { html: string; className?: string }) {
  const rootRef = useRef<HTMLDivElement>(null);
  const [blocks, setBlocks] = useState<CodeBlock[]>([]);

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
      found.push({ toolbar, code, runnable, lang: pre.dataset.lang ?? "" });
    }
    setBlocks(found);
    return () => {
      setBlocks([]);
      for (const fn of undo.reverse()) fn();
    };
  }, [html]);

  return (
    <>
      <div ref={rootRef} className={`lab-html ${className ?? ""}`} dangerouslySetInnerHTML={{ __html: html }} />
      {blocks.map((b, i) => createPortal(<CodeActions code={b.code} runnable={b.runnable} lang={b.lang} />, b.toolbar, `code-${i}`))}
    </>
  );
});

function CodeActions({ code, runnable, lang }: { code: string; runnable: boolean; lang: string }) {
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
          title={target.canRun ? "Type this into the terminal and press Enter" : "Waiting for the terminal"}
          onClick={() => {
            // One trailing newline submits the command; the block's own trailing newlines are dropped.
            if (target.run(code.replace(/\n+$/, "") + "\n")) setRan(true);
          }}
        >
          {ran ? "Sent ▸" : "Run ▸"}
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
