"use client";
// The right-hand side of the player: the terminal and the web preview as two tabs. The terminal
// stays mounted while the preview shows (hidden, not unmounted), so its shell, screen and
// connection carry on; the preview frame is only made once the learner asks for it.
import { useId, useState, type KeyboardEvent, type ReactNode } from "react";
import { PreviewPane } from "./PreviewPane";

type Tab = "terminal" | "preview";
const TABS: { id: Tab; label: string }[] = [
  { id: "terminal", label: "Terminal" },
  { id: "preview", label: "Preview" },
];

export function Workspace({ labId, terminal }: { labId: string; terminal: ReactNode }) {
  const [tab, setTab] = useState<Tab>("terminal");
  const [previewOpened, setPreviewOpened] = useState(false);
  const base = useId();
  const select = (next: Tab) => {
    setTab(next);
    if (next === "preview") setPreviewOpened(true);
  };
  // Arrow keys move between tabs (the WAI-ARIA tabs pattern).
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
    e.preventDefault();
    const step = e.key === "ArrowRight" ? 1 : TABS.length - 1;
    const next = TABS[(TABS.findIndex((t) => t.id === tab) + step) % TABS.length]!.id;
    select(next);
    document.getElementById(`${base}-tab-${next}`)?.focus();
  };

  return (
    <div className="workspace">
      <div className="workspace-tabs" role="tablist" aria-label="Workspace" onKeyDown={onKeyDown}>
        {TABS.map((t) => (
          <button
            key={t.id}
            type="button"
            role="tab"
            id={`${base}-tab-${t.id}`}
            aria-selected={tab === t.id}
            aria-controls={`${base}-panel-${t.id}`}
            tabIndex={tab === t.id ? 0 : -1}
            className="workspace-tab"
            data-testid={`${t.id}-tab`}
            onClick={() => select(t.id)}
          >
            {t.label}
          </button>
        ))}
      </div>
      {TABS.map((t) => (
        <div key={t.id} role="tabpanel" id={`${base}-panel-${t.id}`} aria-labelledby={`${base}-tab-${t.id}`} className="workspace-panel" hidden={tab !== t.id}>
          {t.id === "terminal" ? terminal : previewOpened ? <PreviewPane labId={labId} /> : null}
        </div>
      ))}
    </div>
  );
}
