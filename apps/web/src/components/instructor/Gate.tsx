"use client";
import type { ReactNode } from "react";
import type { StaffGate } from "./useStaff";

/** What a staff page shows until it may show itself. */
export function Gate({ gate, what, children }: { gate: StaffGate; what: string; children: () => ReactNode }) {
  if (gate.kind === "loading") {
    return (
      <main className="staff-page" role="status">
        <span className="spinner" aria-hidden="true" /> Loading…
      </main>
    );
  }
  if (gate.kind === "refused") {
    return (
      <main className="staff-page">
        <h1>Not for your account</h1>
        <p data-testid="staff-refused">
          {what} Your account is a {gate.role}.
        </p>
      </main>
    );
  }
  return <>{children()}</>;
}
