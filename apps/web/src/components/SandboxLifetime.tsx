"use client";
// The learner's sandbox for this lab, as a line in the player: the time it has left, a warning
// before the reaper ends it (WARN_BEFORE_MS before it expires, or before the idle limit while the
// player has lost its connection: an open, connected player keeps it from idling), why it ended,
// and "Reset my sandbox" (a fresh sandbox; progress is kept; the terminals attach to it by
// themselves, see TerminalPane).
//
// Data: GET /api/labs/:lab/sandbox when mounted, on every (re)connect and every `sandbox:lifetime`
// event of this lab (socket shared with the terminals); between them it counts down on its own,
// corrected by the server's clock (`now` in the answer).
import type { SandboxLifetimeEvent, SandboxLifetimeView } from "@berth/protocol";
import "./sandbox-lifetime.css";
import { useCallback, useEffect, useRef, useState, type ReactNode } from "react";
import { openLabSocket } from "@/lib/terminal-link";

/** How long before an expiry or an idle reap the player warns. */
export const WARN_BEFORE_MS = 5 * 60_000;

/** The sandbox drivers, as a learner reads them. */
const DRIVER_LABELS: Record<string, string> = {
  namespaces: "container on the host kernel",
  uml: "VM (User-mode Linux)",
  qemu: "VM (QEMU)",
};

const REASONS: Record<string, string> = {
  idle: "nobody used it for a while, so it was stopped to make room for others",
  expired: "it reached the longest time a sandbox may run",
  reset: "you reset it",
  lost: "the server lost track of it (a restart or a crash)",
  "setup-failed": "the lab's setup failed in it",
};

/** "2 h 05 min", "4 min 10 s", "40 s". */
export function formatLeft(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h} h ${String(m).padStart(2, "0")} min`;
  if (m >= 10) return `${m} min`;
  if (m > 0) return `${m} min ${String(sec).padStart(2, "0")} s`;
  return `${sec} s`;
}

type Load = { kind: "loading" } | { kind: "error"; message: string } | { kind: "ready"; view: SandboxLifetimeView; offsetMs: number };

async function fetchJson<T>(method: string, path: string): Promise<{ ok: true; data: T } | { ok: false; error: string }> {
  try {
    const res = await fetch(path, {
      method,
      credentials: "same-origin",
      cache: "no-store",
      headers: method === "GET" ? { accept: "application/json" } : { accept: "application/json", "content-type": "application/json" },
      body: method === "GET" ? undefined : "{}",
    });
    const body = (await res.json().catch(() => ({}))) as T & { error?: string };
    if (res.ok) return { ok: true, data: body };
    return { ok: false, error: typeof body.error === "string" ? body.error : `The server answered ${res.status}` };
  } catch {
    return { ok: false, error: "Cannot reach the Berth server. Check your connection and try again." };
  }
}

export function SandboxLifetime({ labId }: { labId: string }) {
  const [load, setLoad] = useState<Load>({ kind: "loading" });
  const [now, setNow] = useState(() => Date.now());
  const [connected, setConnected] = useState(true);
  const [confirming, setConfirming] = useState(false);
  const [resetting, setResetting] = useState(false);
  const [resetError, setResetError] = useState<string | null>(null);
  const confirmRef = useRef<HTMLButtonElement>(null);
  const resetRef = useRef<HTMLButtonElement>(null);
  const seg = encodeURIComponent(labId);

  const refresh = useCallback(async () => {
    const res = await fetchJson<SandboxLifetimeView>("GET", `/api/labs/${seg}/sandbox`);
    if (!res.ok) return setLoad((l) => (l.kind === "ready" ? l : { kind: "error", message: res.error }));
    setLoad({ kind: "ready", view: res.data, offsetMs: Date.parse(res.data.now) - Date.now() });
  }, [seg]);

  useEffect(() => {
    void refresh();
    let release: (() => void) | undefined;
    let cancelled = false;
    const cleanups: Array<() => void> = [];
    void openLabSocket().then(({ socket, release: r }) => {
      if (cancelled) return r();
      release = r;
      const onLifetime = (msg: SandboxLifetimeEvent) => {
        if (msg.labId === labId) void refresh();
      };
      const onConnect = () => {
        setConnected(true);
        void refresh();
      };
      const onDisconnect = () => setConnected(false);
      socket.on("sandbox:lifetime", onLifetime);
      socket.on("connect", onConnect);
      socket.on("disconnect", onDisconnect);
      cleanups.push(() => {
        socket.off("sandbox:lifetime", onLifetime);
        socket.off("connect", onConnect);
        socket.off("disconnect", onDisconnect);
      });
      // The terminals connect the socket; if none does (no terminal on this page), connect here.
      if (!socket.connected && !socket.active) socket.connect();
      setConnected(socket.connected || socket.active);
    });
    // A sandbox started by the terminal's attach shows up here within a minute even without an
    // event (one that started before this page opened its socket).
    const poll = setInterval(() => void refresh(), 60_000);
    const tick = setInterval(() => setNow(Date.now()), 1000);
    return () => {
      cancelled = true;
      clearInterval(poll);
      clearInterval(tick);
      for (const fn of cleanups) fn();
      release?.();
    };
  }, [labId, refresh]);

  useEffect(() => {
    if (confirming) confirmRef.current?.focus();
  }, [confirming]);

  const reset = async () => {
    setResetting(true);
    setResetError(null);
    const res = await fetchJson<{ sandbox: SandboxLifetimeView }>("POST", `/api/labs/${seg}/sandbox/reset`);
    setResetting(false);
    setConfirming(false);
    if (!res.ok) return setResetError(res.error);
    setLoad({ kind: "ready", view: res.data.sandbox, offsetMs: Date.parse(res.data.sandbox.now) - Date.now() });
    resetRef.current?.focus();
  };

  let body: ReactNode = null;
  let tone: "quiet" | "warn" | "ended" = "quiet";
  let timeLeftMs: number | null = null;
  if (load.kind === "loading") {
    body = <span className="muted">Sandbox: …</span>;
  } else if (load.kind === "error") {
    body = <span className="muted">Sandbox: {load.message}</span>;
  } else {
    const v = load.view;
    const serverNow = now + load.offsetMs;
    if (v.state === "none") {
      body = <span>Your sandbox starts when the terminal opens.</span>;
    } else if (v.state === "ended") {
      tone = "ended";
      const why = REASONS[v.endedReason ?? ""] ?? `reason: ${v.endedReason ?? "unknown"}`;
      body = (
        <span data-testid="sandbox-ended" data-reason={v.endedReason ?? ""} role="alert">
          Your sandbox ended: {why}. Start a new shell or reset to get a fresh one; your progress is kept.
        </span>
      );
    } else {
      const expiresIn = Date.parse(v.expiresAt!) - serverNow;
      timeLeftMs = expiresIn;
      // While connected, the open player is a viewer: the sandbox cannot go idle. Disconnected,
      // the idle clock the server last told us about is the one that matters.
      const idleIn = !connected && v.idleReapAt ? Date.parse(v.idleReapAt) - serverNow : Infinity;
      const warning =
        idleIn < WARN_BEFORE_MS && idleIn < expiresIn
          ? `Connection lost: your sandbox stops in ${formatLeft(idleIn)} unless the player reconnects.`
          : expiresIn < WARN_BEFORE_MS
            ? `Your sandbox reaches its time limit in ${formatLeft(expiresIn)}: files in it will be lost (your progress is kept).`
            : null;
      if (warning) tone = "warn";
      body = (
        <>
          <span data-testid="sandbox-time-left" data-expires-at={v.expiresAt ?? ""}>
            Sandbox: {formatLeft(expiresIn)} left
          </span>
          {v.driver ? (
            // Which kind of sandbox this is (BERTH_SANDBOX_DRIVER): a VM's is slower to answer.
            <span className="muted" data-testid="sandbox-driver" data-driver={v.driver} title="What your sandbox is made of">
              {DRIVER_LABELS[v.driver] ?? v.driver}
            </span>
          ) : null}
          {warning ? (
            <span className="sandbox-warning" role="alert" data-testid="sandbox-warning">
              {warning}
            </span>
          ) : null}
        </>
      );
    }
  }

  return (
    <div
      className={`sandbox-lifetime sandbox-lifetime-${tone}`}
      data-testid="sandbox-lifetime"
      data-state={load.kind === "ready" ? load.view.state : load.kind}
      data-sandbox-id={load.kind === "ready" ? (load.view.sandboxId ?? "") : ""}
      data-time-left-ms={timeLeftMs === null ? "" : String(Math.round(timeLeftMs))}
    >
      <div className="sandbox-lifetime-text">{body}</div>
      {confirming ? (
        <div className="sandbox-reset-confirm" role="group" aria-label="Reset my sandbox">
          <span>This ends every shell and starts a fresh sandbox. Your progress is kept.</span>
          <button ref={confirmRef} type="button" className="btn btn-small btn-primary" data-testid="sandbox-reset-confirm" disabled={resetting} onClick={() => void reset()}>
            {resetting ? "Resetting…" : "Reset"}
          </button>
          <button type="button" className="btn btn-small" disabled={resetting} onClick={() => setConfirming(false)}>
            Cancel
          </button>
        </div>
      ) : (
        <button ref={resetRef} type="button" className="btn btn-small btn-quiet" data-testid="sandbox-reset-button" onClick={() => setConfirming(true)}>
          Reset my sandbox
        </button>
      )}
      {resetError ? (
        <span className="sandbox-reset-error" role="alert" data-testid="sandbox-reset-error">
          {resetError}
        </span>
      ) : null}
    </div>
  );
}
