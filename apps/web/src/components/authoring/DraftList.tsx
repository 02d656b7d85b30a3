"use client";
// An instructor's labs authored in the browser: open one, start a new one (from a small lab that
// proves as it is), or import a lab's folder (tar or tar.gz; e.g. an export of a lab of labs/).
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useEffect, useState } from "react";
import { signInUrl } from "@/lib/api";
import { authoring, type DraftSummary } from "./authoring-api";
import "./authoring.css";

export function DraftList() {
  const router = useRouter();
  const [drafts, setDrafts] = useState<DraftSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [id, setId] = useState("");
  const [importId, setImportId] = useState("");
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    void authoring.list().then((res) => {
      if (res.ok) setDrafts(res.data.drafts);
      else if (res.status === 401) router.replace(signInUrl("/instructor/labs"));
      else setError(res.error);
    });
  }, [router]);

  const create = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    const res = await authoring.create(id.trim());
    setBusy(false);
    if (res.ok) router.push(`/instructor/labs/${encodeURIComponent(res.data.draft.labId)}`);
    else setError(res.error);
  };

  const importFile = async (files: FileList | null) => {
    const file = files?.[0];
    if (!file) return;
    setBusy(true);
    const res = await authoring.importArchive(await file.arrayBuffer(), importId.trim() || undefined);
    setBusy(false);
    if (res.ok) router.push(`/instructor/labs/${encodeURIComponent(res.data.draft.labId)}`);
    else setError(res.error);
  };

  return (
    <main className="authoring-list" data-testid="authoring-list">
      <h1>Your labs</h1>
      <p className="muted">
        Labs you write here are kept by Berth (labs in the workshop&apos;s folder stay files; export one and import it to start from it). A lab reaches
        learners once a proof of it passed and you publish it.
      </p>
      {error ? (
        <p className="form-error" role="alert" data-testid="authoring-list-error">
          {error}
        </p>
      ) : null}
      {drafts === null && !error ? <p role="status">Loading…</p> : null}
      {drafts && drafts.length > 0 ? (
        <table className="authoring-table">
          <thead>
            <tr>
              <th>Lab</th>
              <th>State</th>
              <th>Published</th>
              <th>Changed</th>
            </tr>
          </thead>
          <tbody>
            {drafts.map((d) => (
              <tr key={d.labId}>
                <td>
                  <Link href={`/instructor/labs/${encodeURIComponent(d.labId)}`}>{d.title}</Link> <code className="muted">{d.labId}</code>
                </td>
                <td>{d.proved ? "proved" : "draft"}</td>
                <td>{d.versions.length ? `${d.versions.length} version(s), last ${new Date(d.versions[0]!.publishedAt).toLocaleString()}` : "not yet"}</td>
                <td>{new Date(d.updatedAt).toLocaleString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {drafts && drafts.length === 0 ? <p className="muted">No labs yet.</p> : null}
      <form className="authoring-new" onSubmit={create} data-testid="new-lab-form">
        <h2>A new lab</h2>
        <div className="field">
          <label htmlFor="new-lab-id">Id (lowercase letters, digits and dashes; it names the lab&apos;s address)</label>
          <input id="new-lab-id" value={id} onChange={(e) => setId(e.target.value)} pattern="[a-z0-9]+(-[a-z0-9]+)*" required placeholder="my-first-lab" />
        </div>
        <button type="submit" className="btn btn-primary" disabled={busy}>
          Create
        </button>
      </form>
      <section className="authoring-new">
        <h2>Import a lab&apos;s folder</h2>
        <div className="field">
          <label htmlFor="import-id">As id (optional: leave empty to keep the one in lab.md)</label>
          <input id="import-id" value={importId} onChange={(e) => setImportId(e.target.value)} placeholder="my-copy" />
        </div>
        <label className="btn">
          Choose a .tar or .tar.gz…
          <input type="file" accept=".tar,.tgz,.gz,application/x-tar,application/gzip" className="sr-only" data-testid="import-file" onChange={(e) => void importFile(e.target.files)} />
        </label>
      </section>
    </main>
  );
}
