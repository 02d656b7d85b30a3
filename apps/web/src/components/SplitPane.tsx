"use client";
// Two panes side by side with a draggable (and keyboard-movable) divider. The left pane's share is
// remembered in localStorage. Below 900px wide only one pane shows (`narrowShow`), full width.
import { useEffect, useRef, useState, type HTMLAttributes, type KeyboardEvent, type PointerEvent, type ReactNode } from "react";

const STORAGE_KEY = "berth.split";
const MIN = 20;
const MAX = 80;
const clamp = (v: number) => Math.min(MAX, Math.max(MIN, v));

export function SplitPane({
  left,
  right,
  label,
  narrowShow = null,
  leftProps = {},
}: {
  left: ReactNode;
  right: ReactNode;
  label: string;
  /** On a narrow screen, the one pane that shows (the other stays mounted, hidden). */
  narrowShow?: "left" | "right" | null;
  leftProps?: HTMLAttributes<HTMLDivElement> & Record<`aria-${string}`, string>;
}) {
  const rootRef = useRef<HTMLDivElement>(null);
  const [share, setShare] = useState(42);
  const dragging = useRef(false);

  useEffect(() => {
    const saved = Number(localStorage.getItem(STORAGE_KEY));
    if (saved >= MIN && saved <= MAX) setShare(saved);
  }, []);
  useEffect(() => {
    localStorage.setItem(STORAGE_KEY, String(Math.round(share)));
  }, [share]);

  const fromPointer = (ev: PointerEvent) => {
    const box = rootRef.current?.getBoundingClientRect();
    if (box && box.width > 0) setShare(clamp(((ev.clientX - box.left) / box.width) * 100));
  };

  const onKey = (ev: KeyboardEvent) => {
    const step = ev.shiftKey ? 10 : 2;
    if (ev.key === "ArrowLeft") setShare((s) => clamp(s - step));
    else if (ev.key === "ArrowRight") setShare((s) => clamp(s + step));
    else if (ev.key === "Home") setShare(MIN);
    else if (ev.key === "End") setShare(MAX);
    else return;
    ev.preventDefault();
  };

  return (
    <div className="split" ref={rootRef} data-narrow-show={narrowShow ?? undefined} style={{ ["--split-left" as string]: `${share}%` }}>
      <div className="split-left" {...leftProps}>
        {left}
      </div>
      <div
        hidden={narrowShow !== null}
        className="split-divider"
        role="separator"
        tabIndex={0}
        aria-label={label}
        aria-orientation="vertical"
        aria-valuemin={MIN}
        aria-valuemax={MAX}
        aria-valuenow={Math.round(share)}
        onKeyDown={onKey}
        onPointerDown={(ev) => {
          dragging.current = true;
          ev.currentTarget.setPointerCapture(ev.pointerId);
          ev.preventDefault();
        }}
        onPointerMove={(ev) => dragging.current && fromPointer(ev)}
        onPointerUp={(ev) => {
          dragging.current = false;
          ev.currentTarget.releasePointerCapture(ev.pointerId);
        }}
      />
      <div className="split-right">{right}</div>
    </div>
  );
}
