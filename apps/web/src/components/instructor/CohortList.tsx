"use client";
// /instructor: the cohorts this instructor runs (an admin sees all), and a form for a new one.
import type { CohortSummary } from "@berth/protocol";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useEffect, useState } from "react";
import { staffApi } from "./client";
import { Gate } from "./Gate";
import { useStaff } from "./useStaff";
import "./instructor.css";

export function CohortList() {
  const gate = useStaff(["instructor", "admin"]);
  return (
    <Gate gate={gate} what="Only instructors run cohorts; an administrator can make you one.">
      {() => <List />}
    </Gate>
  );
}

function List() {
  const router = useRouter();
  const [cohorts, setCohorts] = useState<CohortSummary[] | null>(null);
  const [name, setName] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    void staffApi.cohorts().then((res) => (res.ok ? setCohorts(res.data.cohorts) : setError(res.error.error)));
  }, []);

  const create = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    const res = await staffApi.createCohort(name);
    setBusy(false);
    if (res.ok) router.push(`/instructor/cohorts/${encodeURIComponent(res.data.cohort.id)}`);
    else setError(res.error.error);
  };

  return (
    <main className="staff-page">
      <h1>Your cohorts</h1>
      <p className="muted">
        A cohort is a class: learners join by an invite link and take the labs you pick; the board shows their work live.{" "}
        <Link href="/instructor/labs">Write a lab</Link>
      </p>
      <form className="staff-inline-form" onSubmit={create}>
        <label className="field">
          <span>New cohort</span>
          <input value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. Monday evening class" maxLength={100} required data-testid="cohort-name" />
        </label>
        <button type="submit" className="btn btn-primary" disabled={busy} data-testid="cohort-create">
          Create
        </button>
      </form>
      {error ? (
        <p className="form-error" role="alert">
          {error}
        </p>
      ) : null}
      {cohorts === null ? null : cohorts.length === 0 ? (
        <p className="muted">No cohorts yet.</p>
      ) : (
        <ul className="staff-list" data-testid="cohort-list">
          {cohorts.map((c) => (
            <li key={c.id}>
              <Link href={`/instructor/cohorts/${encodeURIComponent(c.id)}`} data-testid={`cohort-link-${c.id}`}>
                {c.name}
              </Link>{" "}
              <span className="muted">
                {c.learnerCount} learner{c.learnerCount === 1 ? "" : "s"} · {c.labCount} lab{c.labCount === 1 ? "" : "s"}
              </span>
            </li>
          ))}
        </ul>
      )}
    </main>
  );
}
