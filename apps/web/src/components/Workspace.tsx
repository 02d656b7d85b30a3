"use client";
// The player's views and the tabs between them. Wide screens: instructions on the left, and
// Terminal / Editor / Preview / X-ray as tabs on the right. Narrow screens (≤ 900 px): one view at a
// time, Instructions / Terminal / Editor / Preview / X-ray as tabs across the top. The terminal stays mounted
// while another view shows (hidden, not unmounted), so its shell, screen and connection carry on;
// the editor and the preview are only made once first shown.
import { useEffect, useState, type KeyboardEvent, type ReactNode } from "react";

export type View = "instructions" | "terminal" | "editor" | "preview" | "xray";
export type WorkspaceView = Exclude<View, "instructions">;

const LABELS: Record<View, string> = { instructions: "Instructions", terminal: "Terminal", editor: "Editor", preview: "Preview", xray: "X-ray" };

export const tabId = (v: View) => `view-tab-${v}`;
export const panelId = (v: View) => `view-panel-${v}`;

/** True while the viewport is at most 900 px wide (the CSS breakpoint of the player). */
export function useNarrow(): boolean {
  const [narrow, setNarrow] = useState(false);
  useEffect(() => {
    const mq = window.matchMedia("(max-width: 900px)");
    const update = () => setNarrow(mq.matches);
    update();
    mq.addEventListener("change", update);
    return () => mq.removeEventListener("change", update);
  }, []);
  return narrow;
}

export function ViewTabs({ views, selected, onSelect, label }: { views: View[]; selected: View; onSelect: (v: View) => void; label: string }) {
  // Arrow keys, Home and End move between tabs (the WAI-ARIA tabs pattern).
  const onKeyDown = (e: KeyboardEvent) => {
    const i = views.indexOf(selected);
    let next: View | undefined;
    if (e.key === "ArrowRight") next = views[(i + 1) % views.length];
    else if (e.key === "ArrowLeft") next = views[(i + views.length - 1) % views.length];
    else if (e.key === "Home") next = views[0];
    else if (e.key === "End") next = views[views.length - 1];
    if (!next) return;
    e.preventDefault();
    onSelect(next);
    document.getElementById(tabId(next))?.focus();
  };
  return (
    <div className="workspace-tabs" role="tablist" aria-label={label} onKeyDown={onKeyDown}>
      {views.map((v) => (
        <button
          key={v}
          type="button"
          role="tab"
          id={tabId(v)}
          aria-selected={selected === v}
          aria-controls={panelId(v)}
          tabIndex={selected === v ? 0 : -1}
          className="workspace-tab"
          data-testid={`${v}-tab`}
          onClick={() => onSelect(v)}
        >
          {LABELS[v]}
        </button>
      ))}
    </div>
  );
}

/** The Terminal, Editor, Preview and X-ray panels; only `selected` shows. */
export function WorkspacePanels({ selected, terminal, editor, preview, xray }: { selected: WorkspaceView | null; terminal: ReactNode; editor: ReactNode; preview: ReactNode; xray?: ReactNode }) {
  const [made, setMade] = useState<Record<WorkspaceView, boolean>>({ terminal: true, editor: false, preview: false, xray: false });
  useEffect(() => {
    if (selected && !made[selected]) setMade((m) => ({ ...m, [selected]: true }));
  }, [selected, made]);
  const panels: Array<[WorkspaceView, ReactNode]> = [
    ["terminal", terminal],
    ["editor", editor],
    ["preview", preview],
    ...(xray ? [["xray", xray] as [WorkspaceView, ReactNode]] : []),
  ];
  return (
    <>
      {panels.map(([v, node]) => (
        <div key={v} role="tabpanel" id={panelId(v)} aria-labelledby={tabId(v)} className="workspace-panel" hidden={selected !== v}>
          {made[v] || selected === v ? node : null}
        </div>
      ))}
    </>
  );
}
