"use client";
// The lab catalog: one card per lab from GET /api/labs, each a link to its player, with the
// signed-in learner's state in it (not started, in progress with %, done), its difficulty and tags.
// Filters by tag, difficulty and state; the choice lives in the URL's query (?tag=&difficulty=&state=)
// so a filtered catalog can be linked and survives Back.
import type { LabStatus, LabSummary } from "@berth/protocol";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useEffect, useMemo, useState } from "react";
import { api, signInUrl } from "@/lib/api";
import { openingLab, warmLabConnection, warmPlayerCode } from "@/lib/lab-warmup";

type State = { kind: "loading" } | { kind: "error"; message: string } | { kind: "ready"; labs: LabSummary[] };

const STATUS_LABEL: Record<LabStatus, string> = { "not-started": "Not started", "in-progress": "In progress", done: "Done" };

interface Filters {
  tag: string;
  difficulty: string;
  state: string;
}

export function Catalog() {
  const router = useRouter();
  const [state, setState] = useState<State>({ kind: "loading" });
  const [filters, setFilters] = useState<Filters>({ tag: "", difficulty: "", state: "" });
  useEffect(() => {
    const q = new URLSearchParams(window.location.search);
    setFilters({ tag: q.get("tag") ?? "", difficulty: q.get("difficulty") ?? "", state: q.get("state") ?? "" });
  }, []);
  const setFilter = (key: keyof Filters, value: string) => {
    const next = { ...filters, [key]: value };
    setFilters(next);
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(next)) if (v) q.set(k, v);
    window.history.replaceState(null, "", q.size ? `/?${q}` : "/");
  };

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
        <LabList labs={state.labs} filters={filters} setFilter={setFilter} />
      )}
    </main>
  );
}

function LabList({ labs, filters, setFilter }: { labs: LabSummary[]; filters: Filters; setFilter: (key: keyof Filters, value: string) => void }) {
  const router = useRouter();
  const tags = useMemo(() => [...new Set(labs.flatMap((l) => l.tags))].sort(), [labs]);
  const difficulties = useMemo(() => [...new Set(labs.map((l) => l.difficulty))], [labs]);
  const signedIn = labs.some((l) => l.state !== undefined);
  // Opening a lab is what the catalog is for: get the player ready before the click (lab-warmup.ts).
  // The labs most likely opened next: those in progress, and the first one not started. (The
  // cards in view are prefetched by the router itself, the one pointed at first.)
  const hrefs = useMemo(() => {
    const next = labs.find((l) => l.state?.status === "not-started");
    return labs.filter((l) => l.state?.status === "in-progress" || l === next).map((l) => `/labs/${encodeURIComponent(l.id)}`);
  }, [labs]);
  useEffect(() => (signedIn && hrefs.length > 0 ? warmPlayerCode(router, hrefs) : undefined), [signedIn, hrefs, router]);
  const shown = labs.filter(
    (l) =>
      (!filters.tag || l.tags.includes(filters.tag)) &&
      (!filters.difficulty || l.difficulty === filters.difficulty) &&
      (!filters.state || (l.state?.status ?? "not-started") === filters.state),
  );
  return (
    <>
      <form className="catalog-filters" aria-label="Filter labs" onSubmit={(e) => e.preventDefault()}>
        <label>
          Tag{" "}
          <select data-testid="filter-tag" value={filters.tag} onChange={(e) => setFilter("tag", e.target.value)}>
            <option value="">All</option>
            {tags.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <label>
          Difficulty{" "}
          <select data-testid="filter-difficulty" value={filters.difficulty} onChange={(e) => setFilter("difficulty", e.target.value)}>
            <option value="">All</option>
            {difficulties.map((d) => (
              <option key={d} value={d}>
                {d}
              </option>
            ))}
          </select>
        </label>
        {signedIn ? (
          <label>
            State{" "}
            <select data-testid="filter-state" value={filters.state} onChange={(e) => setFilter("state", e.target.value)}>
              <option value="">All</option>
              {(Object.keys(STATUS_LABEL) as LabStatus[]).map((s) => (
                <option key={s} value={s}>
                  {STATUS_LABEL[s]}
                </option>
              ))}
            </select>
          </label>
        ) : null}
        <span className="muted" role="status">
          {shown.length} of {labs.length} labs
        </span>
      </form>
      {shown.length === 0 ? (
        <p className="muted">No lab matches these filters.</p>
      ) : (
        <ul className="lab-grid" aria-label="Labs">
          {shown.map((lab) => (
            <li key={lab.id}>
              <Link
                href={`/labs/${encodeURIComponent(lab.id)}`}
                className="lab-card"
                data-testid={`lab-card-${lab.id}`}
                // Signed in: the router prefetches the player's frame only (the route's loading.tsx
                // stops it there), a session lookup on the server, never the lab or a sandbox.
                prefetch={signedIn ? null : false}
                onPointerEnter={signedIn ? warmLabConnection : undefined}
                onFocus={signedIn ? warmLabConnection : undefined}
                // The press, not the release: the sandbox's hand-over gains the press's ~100 ms.
                onPointerDown={signedIn ? (e) => e.button === 0 && !e.metaKey && !e.ctrlKey && !e.shiftKey && openingLab(lab.id) : undefined}
                onClick={signedIn ? (e) => !e.defaultPrevented && !e.metaKey && !e.ctrlKey && !e.shiftKey && openingLab(lab.id) : undefined}
              >
                <span className="lab-card-top">
                  <span className="lab-card-chapter">{lab.chapter === null ? "Extra" : `Chapter ${lab.chapter}`}</span>
                  {lab.state ? (
                    <span className={`lab-state lab-state-${lab.state.status}`} data-testid={`lab-state-${lab.id}`} data-status={lab.state.status} data-percent={lab.state.percent}>
                      {lab.state.status === "in-progress" ? `In progress · ${lab.state.percent}%` : STATUS_LABEL[lab.state.status]}
                    </span>
                  ) : null}
                </span>
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
                  <div>
                    <dt>Level</dt>
                    <dd className={`difficulty difficulty-${lab.difficulty}`}>{lab.difficulty}</dd>
                  </div>
                </dl>
                {lab.tags.length > 0 ? (
                  <span className="lab-tags" aria-label="Tags">
                    {lab.tags.map((t) => (
                      <span key={t} className="lab-tag">
                        {t}
                      </span>
                    ))}
                  </span>
                ) : null}
                {lab.state && lab.state.status !== "not-started" ? (
                  <progress className="lab-card-progress" value={lab.state.percent} max={100} aria-label={`${lab.state.percent}% done`} />
                ) : null}
              </Link>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
