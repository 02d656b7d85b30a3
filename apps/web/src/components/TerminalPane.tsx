"use client";
// The player's terminals: up to three shells ("1", "2", "3") in the learner's sandbox, as tabs, each
// an xterm.js terminal with its own screen (kept on the server, restored at this size on reload),
// and a status line with the sandbox phase. xterm, its addons and socket.io-client are imported
// statically: they are in the player page's own scripts (downloaded beside the framework, not a
// second round trip after it), never in the catalog's or the forms' bundles, and nothing of them
// runs on the server (a Terminal is only made in an effect).
//
// What the rest of the player may do (TerminalHandle, handed over through `onHandle`):
//   run(term, text, { interrupt })  types `text` into terminal `term` ("1" when not one of the
//                                   keys), opening and showing its tab; waits for the attach if
//                                   the tab is new; with `interrupt`, Ctrl-C first. The caller
//                                   adds the trailing newline. False only if the pane is gone.
//   select(term)                    shows that terminal's tab (opening its shell the first time).
//   focus(term?)                    shows it and puts the keyboard in it (default: the shown one).
//   input(text)                     = run("1", text), for callers older than the tabs.
// `onAttachedChange(attached)` reports terminal 1 (the one every lab opens with).
//
// Keyboard: the terminal does not trap focus. Ctrl+Shift+ArrowUp (a chord shells and editors leave
// alone) moves focus out to the terminal's tab; it is announced when the terminal gets focus. With
// "Tab moves focus" on, Tab and Shift+Tab leave the terminal instead of completing in the shell.
import type { SandboxLifetimeEvent, TerminalKey } from "@berth/protocol";
import type { Terminal } from "@xterm/xterm";
import "./terminal-pane.css";
import Link from "next/link";
import { useCallback, useEffect, useId, useRef, useState, type KeyboardEvent as ReactKeyboardEvent, type RefObject } from "react";
import { signInUrl } from "@/lib/api";
import { loadWebgl, makeTerminal, takeSpareTerminal } from "@/lib/terminal-factory";
import { labSocket, prepareLab, rememberTerminalSize, TerminalLink, type BerthSocket, type DisplayPhase, type LinkState } from "@/lib/terminal-link";

/** What the rest of the player may do with the terminals (see the top of this file). */
export interface TerminalHandle {
  run(term: string, text: string, opts?: { interrupt?: boolean }): boolean;
  select(term: string): void;
  focus(term?: string): void;
  input(text: string): boolean;
}

export const TERMINAL_TABS: readonly TerminalKey[] = ["1", "2", "3"];
const asKey = (term: string | undefined): TerminalKey => (TERMINAL_TABS.includes(term as TerminalKey) ? (term as TerminalKey) : "1");

/** The chord that leaves the terminal, in words for the hint and for screen readers. */
export const LEAVE_TERMINAL_KEYS = "Ctrl+Shift+↑";
const LEAVE_TERMINAL_SPOKEN = "Control plus Shift plus Up arrow";

/** The start-up phases in order, for the progress shown while the sandbox comes up. */
const START_STEPS: Array<{ phase: DisplayPhase; label: string }> = [
  { phase: "connecting", label: "Connect" },
  { phase: "queued", label: "Queue" },
  { phase: "allocating", label: "Allocate a sandbox" },
  { phase: "booting", label: "Boot" },
  { phase: "ready", label: "Ready" },
];

const INITIAL_STATE: LinkState = {
  phase: "connecting",
  message: "Loading the terminal…",
  attached: false,
  preview: false,
  exit: null,
  error: null,
  signInRequired: false,
};

// Open lab → first prompt is the path that matters most, so the work starts when this module is
// evaluated with the player page's scripts, before React hydrates: the socket connects and the
// server starts handing over the sandbox (the lab's id is in the URL: /labs/<lab>/...; the server
// usually started already, when it rendered the page: app/labs/[labId]/[[...step]]/page.tsx).
if (typeof window !== "undefined") {
  const lab = /^\/labs\/([^/]+)/.exec(window.location.pathname)?.[1];
  if (lab) {
    try {
      prepareLab(decodeURIComponent(lab));
    } catch {
      // a malformed URL: the pane prepares from its props
    }
  }
}

/**
 * Runs `then` once the terminal's cells can be measured: at once when the fonts are loaded (the app
 * uses system fonts, so this is the normal case), else when they are. The fit is not held for a
 * frame of layout: any later change of size (the split's saved position, read after the first
 * render) is an ordinary resize (ResizeObserver → term:resize), which the server's kept screen
 * follows, so it garbles nothing; waiting for a frame cost the first prompt up to a busy frame.
 */
function whenFontsReady(then: () => void): void {
  const fonts = document.fonts;
  if (!fonts || fonts.status === "loaded") then();
  else void fonts.ready.catch(() => undefined).then(then);
}

/** The live parts of one terminal tab, for the handle. */
interface TerminalInstance {
  term: Terminal;
  link: TerminalLink | null;
  /** Commands for this tab that came before its link existed. */
  early: Array<{ text: string; interrupt: boolean }>;
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
  const [opened, setOpened] = useState<TerminalKey[]>(["1"]);
  const [active, setActive] = useState<TerminalKey>("1");
  const activeRef = useRef(active);
  activeRef.current = active;
  const [states, setStates] = useState<Partial<Record<TerminalKey, LinkState>>>({});
  const [conn, setConn] = useState<{ socket: BerthSocket } | null>(null);
  const [renderer, setRenderer] = useState<"webgl" | "dom">("dom");
  const [screenReader, setScreenReader] = useState(false);
  const [tabMovesFocus, setTabMovesFocus] = useState(false);
  const [announce, setAnnounce] = useState("");
  const prefs = useRef({ screenReader, tabMovesFocus });
  prefs.current = { screenReader, tabMovesFocus };
  const instances = useRef(new Map<TerminalKey, TerminalInstance>());
  /** Commands for a tab whose terminal does not exist yet (run() on a tab opened by that call). */
  const pendingEarly = useRef(new Map<TerminalKey, Array<{ text: string; interrupt: boolean }>>());
  /** Tabs that were attached once: their start-up progress is over (reconnects keep the screen). */
  const [everAttached, setEverAttached] = useState<ReadonlySet<TerminalKey>>(new Set());
  const tabRefs = useRef(new Map<TerminalKey, HTMLButtonElement>());
  const base = useId();
  const hintId = `${base}-leave-hint`;

  // The parent's callbacks may change identity on every render; effects below must not re-run.
  const callbacks = useRef({ onHandle, onAttachedChange });
  callbacks.current = { onHandle, onAttachedChange };

  // The page's socket, connecting at once: the handshake overlaps with making the terminal.
  useEffect(() => {
    prepareLab(labId);
    const shared = labSocket();
    if (!shared.socket.connected && !shared.socket.active) shared.socket.connect();
    setConn({ socket: shared.socket });
    return () => {
      shared.release();
      setConn(null);
    };
  }, [labId]);

  const open = useCallback((term: TerminalKey) => {
    setOpened((o) => (o.includes(term) ? o : [...o, term].sort()));
  }, []);
  const select = useCallback((term: TerminalKey) => {
    open(term);
    setActive(term);
  }, [open]);

  const focusTerminal = useCallback((term: TerminalKey) => {
    select(term);
    // After the tab is shown (a hidden terminal cannot take focus).
    requestAnimationFrame(() => instances.current.get(term)?.term.focus());
  }, [select]);

  // The handle: stable for the pane's life, reading the live instances.
  useEffect(() => {
    const handle: TerminalHandle = {
      run: (termName, text, opts = {}) => {
        const term = asKey(termName);
        select(term);
        const inst = instances.current.get(term);
        if (inst?.link) return inst.link.run(text, opts);
        // The tab's terminal is being made: keep the command for it.
        const early = inst?.early ?? pendingEarly.current.get(term) ?? [];
        early.push({ text, interrupt: opts.interrupt === true });
        if (inst) inst.early = early;
        else pendingEarly.current.set(term, early);
        return true;
      },
      select: (termName) => select(asKey(termName)),
      focus: (termName) => focusTerminal(asKey(termName ?? activeRef.current)),
      input: (text) => handle.run("1", text),
    };
    callbacks.current.onHandle(handle);
    return () => callbacks.current.onHandle(null);
  }, [select, focusTerminal]);

  // A reset ends every shell of the old sandbox: attach them all to the fresh one.
  useEffect(() => {
    if (!conn) return;
    const onLifetime = (msg: SandboxLifetimeEvent) => {
      if (msg.labId !== labId || msg.endedReason !== "reset") return;
      for (const inst of instances.current.values()) inst.link?.reattach();
    };
    conn.socket.on("sandbox:lifetime", onLifetime);
    return () => {
      conn.socket.off("sandbox:lifetime", onLifetime);
    };
  }, [conn, labId]);

  // A screen-reader user should not have to turn the mode on in every lab: remember the choices.
  useEffect(() => {
    if (localStorage.getItem("berth.screenReader") === "1") setScreenReader(true);
    if (localStorage.getItem("berth.tabMovesFocus") === "1") setTabMovesFocus(true);
  }, []);
  useEffect(() => {
    localStorage.setItem("berth.screenReader", screenReader ? "1" : "0");
    for (const inst of instances.current.values()) inst.term.options.screenReaderMode = screenReader;
  }, [screenReader]);
  useEffect(() => {
    localStorage.setItem("berth.tabMovesFocus", tabMovesFocus ? "1" : "0");
  }, [tabMovesFocus]);

  const onState = useCallback((term: TerminalKey, next: LinkState) => {
    setStates((s) => ({ ...s, [term]: next }));
    if (next.attached) setEverAttached((set) => (set.has(term) ? set : new Set([...set, term])));
    if (term === "1") callbacks.current.onAttachedChange(next.attached);
  }, []);

  const register = useCallback((term: TerminalKey, inst: TerminalInstance | null) => {
    if (!inst) {
      instances.current.delete(term);
      return;
    }
    const early = pendingEarly.current.get(term);
    pendingEarly.current.delete(term);
    if (early) inst.early.push(...early);
    instances.current.set(term, inst);
  }, []);

  const leave = useCallback((term: TerminalKey) => {
    tabRefs.current.get(term)?.focus();
  }, []);

  const onTabKeyDown = (e: ReactKeyboardEvent) => {
    // Arrow keys move between the terminal tabs (the WAI-ARIA tabs pattern).
    if (e.key !== "ArrowLeft" && e.key !== "ArrowRight" && e.key !== "Home" && e.key !== "End") return;
    e.preventDefault();
    const i = TERMINAL_TABS.indexOf(active);
    const n = TERMINAL_TABS.length;
    const next = TERMINAL_TABS[e.key === "Home" ? 0 : e.key === "End" ? n - 1 : (i + (e.key === "ArrowRight" ? 1 : n - 1)) % n]!;
    select(next);
    tabRefs.current.get(next)?.focus();
  };

  const state = states[active] ?? INITIAL_STATE;
  const busy = state.phase !== "ready" && state.phase !== "error" && state.phase !== "ended";

  return (
    <section className="terminal-pane" aria-label="Terminals">
      <div className="terminal-tabs" role="tablist" aria-label="Terminals" onKeyDown={onTabKeyDown}>
        {TERMINAL_TABS.map((key) => (
          <button
            key={key}
            ref={(el) => {
              if (el) tabRefs.current.set(key, el);
              else tabRefs.current.delete(key);
            }}
            type="button"
            role="tab"
            id={`${base}-tab-${key}`}
            aria-selected={active === key}
            aria-controls={`${base}-panel-${key}`}
            aria-label={`Terminal ${key}`}
            tabIndex={active === key ? 0 : -1}
            className="terminal-tab"
            data-testid={`term-tab-${key}`}
            data-opened={opened.includes(key) ? "true" : "false"}
            onClick={() => select(key)}
          >
            {key}
            {states[key]?.exit ? <span className="terminal-tab-mark" aria-label=" (exited)">×</span> : null}
          </button>
        ))}
        <span className="terminal-tabs-hint" id={hintId} data-testid="terminal-leave-hint">
          {LEAVE_TERMINAL_KEYS} leaves the terminal{tabMovesFocus ? "; Tab moves focus" : ""}
        </span>
      </div>
      <div className="terminal-stack" data-testid="terminal" data-renderer={renderer} data-active-term={active}>
        {opened.map((key) => (
          <TerminalView
            key={`${labId}/${key}`}
            termKey={key}
            labId={labId}
            active={active === key}
            panelId={`${base}-panel-${key}`}
            tabId={`${base}-tab-${key}`}
            hintId={hintId}
            prefs={prefs}
            onState={onState}
            onRenderer={setRenderer}
            register={register}
            onLeave={leave}
            onFocusAnnounce={() => {
              setAnnounce(`Terminal ${key}. Press ${LEAVE_TERMINAL_SPOKEN} to leave the terminal${prefs.current.tabMovesFocus ? ", or Tab" : ""}.`);
              // Cleared afterwards, so the next focus is announced again.
              setTimeout(() => setAnnounce(""), 3000);
            }}
          />
        ))}
        {state.exit ? (
          <div className="terminal-overlay" role="alert">
            <p>
              {state.exit.exitCode === -1 ? "The sandbox of this shell ended" : "Shell exited"}{" "}
              <span className="muted">(code {state.exit.exitCode})</span>
            </p>
            <button type="button" className="btn btn-primary" data-testid="reattach-button" onClick={() => instances.current.get(active)?.link?.reattach()}>
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
                onClick={() => instances.current.get(active)?.link?.reattach()}
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
        ) : !everAttached.has(active) && !state.preview && START_STEPS.some((s) => s.phase === state.phase) ? (
          // Honest start-up progress: which phase the server reported, and its own words (not over
          // a shell already on screen while the lab is set up: the status line says that).
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
      </div>
      <div className="sr-only" aria-live="polite" data-testid="terminal-announce">
        {announce}
      </div>
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
          aria-pressed={tabMovesFocus}
          data-testid="tab-focus-toggle"
          title="When on, Tab and Shift+Tab move focus out of the terminal instead of completing in the shell"
          onClick={() => setTabMovesFocus((v) => !v)}
        >
          Tab moves focus
        </button>
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

/** One terminal tab: its xterm, fitted to the pane, and its link to the shell of the same key. */
function TerminalView({
  termKey,
  labId,
  active,
  panelId,
  tabId,
  hintId,
  prefs,
  onState,
  onRenderer,
  register,
  onLeave,
  onFocusAnnounce,
}: {
  termKey: TerminalKey;
  labId: string;
  active: boolean;
  panelId: string;
  tabId: string;
  hintId: string;
  prefs: RefObject<{ screenReader: boolean; tabMovesFocus: boolean }>;
  onState: (term: TerminalKey, state: LinkState) => void;
  onRenderer: (r: "webgl" | "dom") => void;
  register: (term: TerminalKey, inst: TerminalInstance | null) => void;
  onLeave: (term: TerminalKey) => void;
  onFocusAnnounce: () => void;
}) {
  const hostRef = useRef<HTMLDivElement>(null);
  const live = useRef({ onState, onRenderer, register, onLeave, onFocusAnnounce });
  live.current = { onState, onRenderer, register, onLeave, onFocusAnnounce };
  const fitRef = useRef<(() => void) | null>(null);

  useEffect(() => {
    const host = hostRef.current;
    if (!host) return;
    let cancelled = false;
    // The page's one socket (terminal-link.ts), held while this terminal lives, and connecting at
    // once if it is not yet (it usually is: the catalog's click, or this page's first script).
    const shared = labSocket();
    if (!shared.socket.connected && !shared.socket.active) shared.socket.connect();
    const cleanups: Array<() => void> = [() => shared.release()];
    // Terminal 1 is usually made already, off screen, by the catalog this lab was opened from
    // (terminal-factory.ts): it is moved here. Otherwise it is made now.
    const spare = termKey === "1" ? takeSpareTerminal(host) : null;
    const { term, fit } = spare ?? makeTerminal({ screenReader: prefs.current.screenReader });
    if (spare) {
      term.options.screenReaderMode = prefs.current.screenReader;
      performance.mark(`berth:spare-taken:${termKey}`);
    }
    performance.mark(`berth:terminal-created:${termKey}`);
    // Start-up marks (test/bench/open-lab.ts): the first output parsed into the buffer, and drawn.
    const parsed = term.onWriteParsed(() => {
      if (term.buffer.active.length === 0) return;
      performance.mark(`berth:first-parsed:${termKey}`);
      parsed.dispose();
    });
    const rendered = term.onRender(() => {
      if (!performance.getEntriesByName(`berth:first-parsed:${termKey}`).length) return;
      performance.mark(`berth:first-drawn:${termKey}`);
      rendered.dispose();
    });
    const inst: TerminalInstance = { term, link: null, early: [] };
    live.current.register(termKey, inst);
    cleanups.push(() => {
      live.current.register(termKey, null);
      term.dispose();
    });

    // The terminal must not trap the keyboard (see the top of the file).
    term.attachCustomKeyEventHandler((e) => {
      if (e.ctrlKey && e.shiftKey && !e.altKey && !e.metaKey && e.key === "ArrowUp") {
        if (e.type === "keydown") {
          e.preventDefault();
          live.current.onLeave(termKey);
        }
        return false;
      }
      // Returning false without preventDefault leaves Tab to the browser: focus moves on.
      if (e.key === "Tab" && !e.ctrlKey && !e.altKey && !e.metaKey && prefs.current.tabMovesFocus) return false;
      return true;
    });

    if (!spare) term.open(host);
    performance.mark(`berth:opened:${termKey}`);
    const textarea = term.textarea;
    if (textarea) {
      textarea.setAttribute("aria-describedby", hintId);
      const onFocus = () => live.current.onFocusAnnounce();
      textarea.addEventListener("focus", onFocus);
      cleanups.push(() => textarea.removeEventListener("focus", onFocus));
    }

    // Tests read each buffer through this hook, whichever renderer draws it (docs/web.md);
    // `main` is terminal 1, as before there were tabs.
    const berth = (window.__berth ??= { terminals: {} });
    berth.terminals[termKey] = term;
    if (termKey === "1") berth.terminals.main = term;
    cleanups.push(() => {
      if (berth.terminals[termKey] === term) delete berth.terminals[termKey];
      if (berth.terminals.main === term) delete berth.terminals.main;
    });

    const safeFit = () => {
      // A tab that is not shown keeps its size (it is hidden, not removed), but never fit at zero.
      if (host.clientWidth === 0 || host.clientHeight === 0) return;
      try {
        fit.fit();
        // The next lab opened in a window of this size attaches with its click (terminal-link.ts).
        if (termKey === "1") rememberTerminalSize(term.cols, term.rows);
      } catch {
        // fit() throws if the renderer is not measured yet; the next resize retries.
      }
    };
    fitRef.current = safeFit;

    const link = new TerminalLink({
      labId,
      termKey,
      terminal: term,
      socket: shared.socket,
      onState: (next) => live.current.onState(termKey, next),
    });
    cleanups.push(() => link.dispose());

    // The renderer decides the cell size (WebGL rounds it to device pixels, the DOM renderer does
    // not), so it is chosen before the first fit and never changed but by a lost context.
    const webgl = spare ? spare.webgl : loadWebgl(term);
    if (webgl) {
      const lost = webgl.onContextLoss(() => {
        webgl.dispose();
        live.current.onRenderer("dom");
        safeFit(); // the DOM renderer's cells are not the same size
      });
      cleanups.push(() => lost.dispose());
    }
    live.current.onRenderer(webgl ? "webgl" : "dom");

    performance.mark(`berth:renderer:${termKey}`);
    whenFontsReady(() => {
      if (cancelled) return;
      safeFit();
      performance.mark(`berth:fitted:${termKey}`);
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
      inst.link = link;
      for (const item of inst.early.splice(0)) link.run(item.text, { interrupt: item.interrupt });
      link.start();
    });

    return () => {
      cancelled = true;
      fitRef.current = null;
      for (const fn of cleanups.reverse()) fn();
    };
    // prefs and the ids are read once at creation; the callbacks through `live`.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [labId, termKey]);

  // A tab shown again may have missed a resize of the pane while it was hidden.
  useEffect(() => {
    if (active) fitRef.current?.();
  }, [active]);

  return (
    <div
      ref={hostRef}
      className={`terminal-host ${active ? "" : "terminal-host-hidden"}`}
      role="tabpanel"
      id={panelId}
      aria-labelledby={tabId}
      aria-hidden={!active}
      data-testid={`terminal-${termKey}`}
    />
  );
}
