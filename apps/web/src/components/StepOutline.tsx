"use client";
// The lab's outline: every step with its state (done, current, locked), as a list of links (each
// step has its own URL). A locked step is announced as such and cannot be opened.
import type { LabView, ProgressView } from "@berth/protocol";
import type { MouseEvent } from "react";
import { stepComplete, stepLocked, stepUrl } from "@/lib/lab-steps";

export function StepOutline({ lab, progress, current, onSelect }: { lab: LabView; progress: ProgressView; current: number; onSelect: (index: number) => void }) {
  return (
    <nav className="outline" aria-label="Lab outline" data-testid="outline">
      <ol>
        {lab.steps.map((s, i) => {
          const locked = stepLocked(lab, i, progress);
          const done = (s.checks.length > 0 || s.quizzes.length > 0) && stepComplete(s, progress);
          const state = locked ? "locked" : done ? "done" : i === current ? "current" : "todo";
          const click = (e: MouseEvent) => {
            // A plain click stays in the page (the terminal keeps its connection); a modified
            // click (new tab) follows the link.
            if (e.metaKey || e.ctrlKey || e.shiftKey || e.altKey || e.button !== 0) return;
            e.preventDefault();
            if (!locked) onSelect(i);
          };
          return (
            <li key={s.id} className={`outline-step outline-${state} ${i === current ? "outline-current" : ""}`} data-testid={`outline-${s.id}`} data-state={state}>
              <a
                href={stepUrl(lab.id, s.id)}
                aria-current={i === current ? "step" : undefined}
                aria-disabled={locked || undefined}
                onClick={click}
              >
                <span className="outline-mark" aria-hidden="true">
                  {locked ? <LockIcon /> : done ? "✓" : i + 1}
                </span>
                <span className="outline-title">{s.title}</span>
                <span className="visually-hidden">{locked ? " (locked: finish the step before)" : done ? " (done)" : ""}</span>
              </a>
            </li>
          );
        })}
      </ol>
    </nav>
  );
}

/** A small padlock for locked steps. */
export function LockIcon() {
  // Drawn, not an emoji: machines without an emoji font would show an empty box.
  return (
    <svg className="icon-lock" viewBox="0 0 16 16" aria-hidden="true" focusable="false">
      <path fill="currentColor" d="M4 7V5a4 4 0 1 1 8 0v2h1a1 1 0 0 1 1 1v7a1 1 0 0 1-1 1H3a1 1 0 0 1-1-1V8a1 1 0 0 1 1-1h1zm2 0h4V5a2 2 0 1 0-4 0v2z" />
    </svg>
  );
}
