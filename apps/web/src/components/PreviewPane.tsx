"use client";
// The web preview: a port that listens inside the learner's sandbox (their own server, or a
// container's published port), shown in a frame. The orchestrator serves it under
// /preview/<lab>/<port>/ for this learner only, and marks it `Content-Security-Policy: sandbox`, so
// the page runs in an opaque origin and cannot call Berth's API as the learner. The frame's own
// sandbox attribute says the same a second time.
import { useEffect, useId, useState, type FormEvent } from "react";

const PORT_KEY = (labId: string) => `berth.preview.port.${labId}`;

export function previewUrl(labId: string, port: number): string {
  return `/preview/${encodeURIComponent(labId)}/${port}/`;
}

function parsePort(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^\d{1,5}$/.test(trimmed)) return undefined;
  const port = Number(trimmed);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/** A "preview" action from the lab text: show this port (a new nonce shows it again). */
export interface PreviewRequest {
  port: number;
  nonce: number;
}

export function PreviewPane({ labId, request }: { labId: string; request?: PreviewRequest | null }) {
  const [portText, setPortText] = useState("8080");
  const [port, setPort] = useState<number | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  // Bumped by Reload: a new key makes a new frame, which loads the entry URL again.
  const [generation, setGeneration] = useState(0);
  const inputId = useId();
  const errorId = useId();

  useEffect(() => {
    const kept = localStorage.getItem(PORT_KEY(labId));
    if (kept && parsePort(kept)) setPortText(kept);
  }, [labId]);

  useEffect(() => {
    if (!request) return;
    setPortText(String(request.port));
    setError(undefined);
    setPort(request.port);
    setGeneration((g) => g + 1);
  }, [request]);

  const open = (e: FormEvent) => {
    e.preventDefault();
    const p = parsePort(portText);
    if (p === undefined) {
      setError(`“${portText.trim()}” is not a port: give a number from 1 to 65535.`);
      return;
    }
    setError(undefined);
    localStorage.setItem(PORT_KEY(labId), String(p));
    setPort(p);
    setGeneration((g) => g + 1);
  };

  return (
    <section className="preview-pane" aria-label="Web preview">
      <form className="preview-bar" onSubmit={open} noValidate>
        <label htmlFor={inputId}>Port</label>
        <input
          id={inputId}
          className="preview-port"
          data-testid="preview-port"
          inputMode="numeric"
          autoComplete="off"
          value={portText}
          onChange={(e) => setPortText(e.target.value)}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? errorId : undefined}
        />
        <button type="submit" className="btn btn-primary btn-small" data-testid="preview-open">
          {port === undefined ? "Show" : "Reload"}
        </button>
        {port !== undefined ? (
          <a className="btn btn-small" href={previewUrl(labId, port)} target="_blank" rel="noopener noreferrer" data-testid="preview-new-tab">
            Open in a new tab ↗
          </a>
        ) : null}
      </form>
      {error ? (
        <p className="preview-error" id={errorId} role="alert">
          {error}
        </p>
      ) : null}
      {port === undefined ? (
        <div className="preview-empty">
          <p>
            Start a web server in your sandbox, for example <code>busybox httpd -f -p 8080</code> or{" "}
            <code>docker run -d -p 8080:80 nginx</code>, then give its port and press Show.
          </p>
          <p className="muted">Only you can see your preview.</p>
        </div>
      ) : (
        <iframe
          key={generation}
          className="preview-frame"
          data-testid="preview-frame"
          title={`Preview of port ${port} in your sandbox`}
          src={previewUrl(labId, port)}
          sandbox="allow-scripts allow-forms allow-popups"
          referrerPolicy="same-origin"
        />
      )}
    </section>
  );
}
