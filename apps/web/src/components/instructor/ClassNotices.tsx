"use client";
// What a learner hears from their class, on every page (app/layout.tsx): the instructor's messages
// (the last week's, from GET /api/me/messages, then live as class:message) until dismissed, and,
// in a lab's player, that an instructor is watching their terminal (class:watching, while a
// mirror is open). Message text is shown as text, never as HTML.
import type { ClassMessageView } from "@berth/protocol";
import { usePathname } from "next/navigation";
import { useEffect, useState } from "react";
import { openLabSocket } from "@/lib/terminal-link";
import { useSession } from "@/lib/session";
import { staffApi } from "./client";
import "./instructor.css";

const DISMISSED_KEY = "berth.dismissedMessages";

function dismissed(): Set<string> {
  try {
    return new Set(JSON.parse(localStorage.getItem(DISMISSED_KEY) ?? "[]") as string[]);
  } catch {
    return new Set();
  }
}

export function ClassNotices() {
  const { user } = useSession();
  const pathname = usePathname() ?? "/";
  const labId = pathname.startsWith("/labs/") ? decodeURIComponent(pathname.split("/")[2] ?? "") : null;
  const [messages, setMessages] = useState<ClassMessageView[]>([]);
  const [watching, setWatching] = useState<Record<string, number>>({});

  useEffect(() => {
    if (!user || user.role !== "learner") return;
    let live = true;
    void staffApi.myMessages().then((res) => {
      if (!live || !res.ok) return;
      const gone = dismissed();
      setMessages(res.data.messages.filter((m) => !gone.has(m.id)));
    });
    return () => {
      live = false;
    };
  }, [user]);

  // Live messages and mirrors: only in a lab (the player's socket, shared; other pages open none).
  useEffect(() => {
    if (!user || !labId) return;
    let gone = false;
    let release = () => {};
    void openLabSocket().then(({ socket, release: r }) => {
      if (gone) return r();
      const onMessage = (m: ClassMessageView) => setMessages((list) => (list.some((x) => x.id === m.id) ? list : [...list, m]));
      const onWatching = (w: { labId: string; term: string; watchers: number }) => {
        if (w.labId === labId) setWatching((s) => ({ ...s, [w.term]: w.watchers }));
      };
      socket.on("class:message", onMessage);
      socket.on("class:watching", onWatching);
      if (!socket.connected && !socket.active) socket.connect();
      release = () => {
        socket.off("class:message", onMessage);
        socket.off("class:watching", onWatching);
        r();
      };
    });
    return () => {
      gone = true;
      release();
      setWatching({});
    };
  }, [user, labId]);

  const dismiss = (id: string) => {
    const gone = dismissed();
    gone.add(id);
    try {
      localStorage.setItem(DISMISSED_KEY, JSON.stringify([...gone].slice(-200)));
    } catch {
      /* private mode: dismissed for this page only */
    }
    setMessages((list) => list.filter((m) => m.id !== id));
  };

  const watchedTerms = Object.entries(watching).filter(([, n]) => n > 0).map(([t]) => t);
  if (messages.length === 0 && watchedTerms.length === 0) return null;
  return (
    <div className="class-notices" aria-live="polite">
      {watchedTerms.length > 0 ? (
        <p className="class-watching" data-testid="class-watching">
          <span className="class-watching-dot" aria-hidden="true" /> Your instructor is watching your terminal{watchedTerms.length > 1 ? "s" : ""} {watchedTerms.join(", ")} (read-only).
        </p>
      ) : null}
      {messages.map((m) => (
        <div key={m.id} className="class-message" role="status" data-testid="class-message">
          <p className="class-message-head">
            {m.direct ? "To you" : `To ${m.cohortName}`} from {m.from} · {new Date(m.at).toLocaleTimeString()}
          </p>
          <p className="class-message-text">{m.text}</p>
          <button type="button" className="btn btn-small btn-quiet" onClick={() => dismiss(m.id)} aria-label="Dismiss the message">
            Dismiss
          </button>
        </div>
      ))}
    </div>
  );
}
