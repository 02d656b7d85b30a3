"use client";
// The lab catalog: one card per lab from GET /api/labs, each a link to its player.
import type { LabSummary } from "@berth/protocol";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useEffect, useState } from "react";
import { api, signInUrl } from "@/lib/api";

type State = { kind: "loading" } | { kind: "error"; message: string } | { kind: "ready"; labs: LabSummary[] };

export function Catalog() {
  const router = useRouter();
  const [state, setState] = useState<State>({ kind: "loading" });

  useEffect(() => {
    let live = true;
    void api.labs().then((res) => {
      if (!live) return;
      if (res.ok) setState({ kind: "ready", labs: res.data.labs });
      else if (res.status === 401) router.replace(signInUrl("/"));
      else setState({ kind: "error", message: res.error.error });
    });
    return () => {
      live = false;
    };
  }, [router]);

  return (
    <main className="catalog">
      <div className="catalog-intro">
        <h1>Labs</h1>
        <p>Each lab gives you your own Linux sandbox and a live terminal. Work through the steps; checks grade your work inside the sandbox.</p>
      </div>
      {state.kind === "loading" ? (
        <p className="muted" role="status">
          <span className="spinner" aria-hidden="true" /> Loading labs…
        </p>
      ) : state.kind === "error" ? (
        <p className="form-error" role="alert">
          Could not load the labs: {state.message}
        </p>
      ) : state.labs.length === 0 ? (
        <p className="muted">No labs are published yet.</p>
      ) : (
        <ul className="lab-grid" aria-label="Labs">
          {state.labs.map((lab) => (
            <li key={lab.id}>
              <Link href={`/labs/${encodeURIComponent(lab.id)}`} className="lab-card" data-testid={`lab-card-${lab.id}`}>
                <span className="lab-card-chapter">{lab.chapter === null ? "Extra" : `Chapter ${lab.chapter}`}</span>
                <h2>{lab.title}</h2>
                <p className="lab-card-summary">{lab.summary}</p>
                <dl className="lab-card-facts">
                  <div>
                    <dt>Duration</dt>
                    <dd>{lab.duration}</dd>
                  </div>
                  <div>
                    <dt>Steps</dt>
                    <dd>{lab.stepCount}</dd>
                  </div>
                  <div>
                    <dt>Points</dt>
                    <dd>{lab.points}</dd>
                  </div>
                </dl>
              </Link>
            </li>
          ))}
        </ul>
      )}
    </main>
  );
}
