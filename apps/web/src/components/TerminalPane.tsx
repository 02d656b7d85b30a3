"use client";
// The right pane of the player: an xterm.js terminal wired to the learner's sandbox, and a status
// line with the sandbox phase. xterm, its addons and socket.io-client are loaded with import() so
// they stay out of the catalog's and the forms' bundles and are never evaluated on the server.
import type { Terminal } from "@xterm/xterm";
import "@xterm/xterm/css/xterm.css";
import Link from "next/link";
import { useEffect, useRef, useState } from "react";
import { signInUrl } from "@/lib/api";
import { TerminalLink, type DisplayPhase, type LinkState } from "@/lib/terminal-link";

/** What the rest of the player may do with the terminal (the Run buttons). */
export interface TerminalHandle {
  /** Types `text` into the shell; false when the terminal is not attached. */
  input(text: string): boolean;
  focus(): void;
}

const TERM_KEY = "main";

/** The start-up phases in order, for the progress shown while the sandbox comes up. */
const START_STEPS: Array<{ phase: DisplayPhase; label: string }> = [
  { phase: "connecting", label: "Connect" },
  { phase: "queued", label: "Queue" },
  { phase: "allocating", label: "Allocate a sandbox" },
  { phase: "booting", label: "Boot" },
  { phase: "ready", label: "Ready" },
];

const THEME = {
  background: "#0f1419",
  foreground: "#d7dde4",
  cursor: "#e6b450",
  cursorAccent: "#0f1419",
  selectionBackground: "#33415588",
  black: "#1c2430",
  red: "#f07178",
  green: "#aad94c",
  yellow: "#e6b450",
  blue: "#59c2ff",
  magenta: "#d2a6ff",
  cyan: "#95e6cb",
  white: "#c7ccd1",
  brightBlack: "#5c6773",
  brightRed: "#ff8f8f",
  brightGreen: "#c2f07a",
  brightYellow: "#ffd173",
  brightBlue: "#73d0ff",
  brightMagenta: "#dfbfff",
  brightCyan: "#b8f5e0",
  brightWhite: "#f3f4f5",
};

let modules: ReturnType<typeof importTerminalModules> | undefined;
function importTerminalModules() {
  return Promise.all([
    import("@xterm/xterm"),
    import("@xterm/addon-fit"),
    import("@xterm/addon-web-links"),
    import("socket.io-client"),
  ]);
}
/**
 * Starts (once) the download of xterm and socket.io. The player calls it while it still fetches the
 * lab, so the terminal's code is not a second round trip after the lab's JSON.
 */
export function loadTerminalModules(): ReturnType<typeof importTerminalModules> {
  modules ??= importTerminalModules().catch((err: unknown) => {
    modules = undefined; // let the next attempt download again
    throw err;
  });
  return modules;
}

export function TerminalPane({
  labId,
  onHandle,
  onAttachedChange,
}: {
  labId: string;
  onHandle: (handle: TerminalHandle | null) => void;
  onAttachedChange: (attached: boolean) => void;
}) {
  const hostRef = useRef<HTMLDivElement>(null);
  const termRef = useRef<Terminal | null>(null);
  const linkRef = useRef<TerminalLink | null>(null);
  const [state, setState] = useState<LinkState>({
    phase: "connecting",
    message: "Loading the terminal…",
    attached: false,
    exit: null,
    error: null,
    signInRequired: false,
  });
  const [screenReader, setScreenReader] = useState(false);
  const screenReaderRef = useRef(screenReader);
  screenReaderRef.current = screenReader;
  // The start-up progress is for the first start only; later reconnects keep the old screen visible.
  const [everAttached, setEverAttached] = useState(false);
  const [renderer, setRenderer] = useState<"webgl" | "dom">("dom");

  // The parent's callbacks may change identity on every render; the effect below must not re-run.
  const callbacks = useRef({ onHandle, onAttachedChange });
  callbacks.current = { onHandle, onAttachedChange };

  useEffect(() => {
    const host = hostRef.current;
    if (!host) return;
    let cancelled = false;
    const cleanups: Array<() => void> = [];

    void (async () => {
      let loaded: Awaited<ReturnType<typeof loadTerminalModules>>;
      try {
        loaded = await loadTerminalModules();
      } catch (err) {
        if (!cancelled) {
          const error = `Could not load the terminal (${err instanceof Error ? err.message : String(err)}).`;
          setState((s) => ({ ...s, phase: "error", message: error, error }));
        }
        return;
      }
      if (cancelled) return;
      const [{ Terminal }, { FitAddon }, { WebLinksAddon }, { io }] = loaded;

      const term = new Terminal({
        theme: THEME,
        fontFamily: 'ui-monospace, "SFMono-Regular", "Cascadia Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace',
        fontSize: 14,
        lineHeight: 1.15,
        cursorBlink: true,
        scrollback: 5000,
        convertEol: false,
        screenReaderMode: screenReaderRef.current,
      });
      const fit = new FitAddon();
      term.loadAddon(fit);
      term.loadAddon(new WebLinksAddon());
      term.open(host);
      termRef.current = term;
      cleanups.push(() => {
        termRef.current = null;
        term.dispose();
      });

      // WebGL is faster but optional: no GPU, a blocklisted driver or a lost context all fall back
      // to xterm's DOM renderer without telling the learner. It loads beside the connection, not
      // before it: creating a GL context can take a few hundred milliseconds without a GPU.
      void import("@xterm/addon-webgl")
        .then(({ WebglAddon }) => {
          if (cancelled) return;
          const webgl = new WebglAddon();
          webgl.onContextLoss(() => {
            webgl.dispose();
            setRenderer("dom");
          });
          term.loadAddon(webgl);
          setRenderer("webgl");
        })
        .catch(() => setRenderer("dom"));
      if (cancelled) return;

      const safeFit = () => {
        try {
          fit.fit();
        } catch {
          // fit() throws if the renderer is not measured yet (element hidden); the next resize retries.
        }
      };
      safeFit();

      // Tests read the buffer through this hook, whichever renderer draws it (docs/web.md).
      const berth = (window.__berth ??= { terminals: {} });
      berth.terminals[TERM_KEY] = term;
      cleanups.push(() => {
        if (berth.terminals[TERM_KEY] === term) delete berth.terminals[TERM_KEY];
      });

      let frame = 0;
      const observer = new ResizeObserver(() => {
        cancelAnimationFrame(frame);
        frame = requestAnimationFrame(safeFit);
      });
      observer.observe(host);
      cleanups.push(() => {
        cancelAnimationFrame(frame);
        observer.disconnect();
      });

      const socket = io({ transports: ["websocket"], autoConnect: false });
      const link = new TerminalLink({
        labId,
        termKey: TERM_KEY,
        terminal: term,
        socket,
        onState: (next) => {
          setState(next);
          if (next.attached) setEverAttached(true);
          callbacks.current.onAttachedChange(next.attached);
        },
      });
      linkRef.current = link;
      cleanups.push(() => {
        linkRef.current = null;
        link.dispose();
        socket.disconnect();
      });

      callbacks.current.onHandle({
        input: (text) => link.input(text),
        focus: () => term.focus(),
      });
      cleanups.push(() => callbacks.current.onHandle(null));

      link.start();
    })();

    return () => {
      cancelled = true;
      for (const fn of cleanups.reverse()) fn();
    };
  }, [labId]);

  // A screen-reader user should not have to turn the mode on in every lab: remember the choice.
  useEffect(() => {
    if (localStorage.getItem("berth.screenReader") === "1") setScreenReader(true);
  }, []);
  useEffect(() => {
    localStorage.setItem("berth.screenReader", screenReader ? "1" : "0");
    // A terminal created later picks the choice up from screenReaderRef.
    if (termRef.current) termRef.current.options.screenReaderMode = screenReader;
  }, [screenReader]);

  const busy = state.phase !== "ready" && state.phase !== "error" && state.phase !== "ended";

  return (
    <section className="terminal-pane" aria-label="Terminal">
      <div className="terminal-host" ref={hostRef} data-testid="terminal" data-renderer={renderer} />
      {state.exit ? (
        <div className="terminal-overlay" role="alert">
          <p>
            Shell exited <span className="muted">(code {state.exit.exitCode})</span>
          </p>
          <button type="button" className="btn btn-primary" data-testid="reattach-button" onClick={() => linkRef.current?.reattach()}>
            Start a new shell
          </button>
        </div>
      ) : state.error ? (
        <div className="terminal-overlay" role="alert">
          <p>{state.error}</p>
          <div className="overlay-buttons">
            <button
              type="button"
              className="btn btn-primary"
              data-testid="reattach-button"
              // Without a link the terminal's code never loaded: only a reload can retry that.
              onClick={() => (linkRef.current ? linkRef.current.reattach() : window.location.reload())}
            >
              Try again
            </button>
            {state.signInRequired ? (
              <Link className="btn" href={signInUrl(`/labs/${encodeURIComponent(labId)}`)}>
                Sign in again
              </Link>
            ) : null}
          </div>
        </div>
      ) : !everAttached && START_STEPS.some((s) => s.phase === state.phase) ? (
        // Honest start-up progress: which phase the server reported, and its own words.
        <div className="terminal-starting" aria-hidden="true">
          <ol>
            {START_STEPS.map((step, i) => {
              const current = START_STEPS.findIndex((s) => s.phase === state.phase);
              return (
                <li key={step.phase} className={i < current ? "done" : i === current ? "current" : ""}>
                  {i < current ? "✓" : i === current ? <span className="spinner spinner-small" /> : "·"} {step.label}
                </li>
              );
            })}
          </ol>
          <p>{state.message}</p>
        </div>
      ) : null}
      <div className="terminal-status">
        <span className="sr-only">Sandbox phase: </span>
        <span className={`phase-badge phase-${state.phase}`} data-testid="sandbox-phase" data-attached={state.attached ? "true" : "false"}>
          {state.phase}
        </span>
        <span className="phase-message" role="status" aria-live="polite">
          {busy ? <span className="spinner spinner-small" aria-hidden="true" /> : null}
          {state.message}
        </span>
        <button
          type="button"
          className="btn btn-quiet btn-small"
          aria-pressed={screenReader}
          data-testid="screen-reader-toggle"
          onClick={() => setScreenReader((v) => !v)}
        >
          Screen reader mode
        </button>
      </div>
    </section>
  );
}
