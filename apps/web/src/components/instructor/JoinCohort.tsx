"use client";
// /join#<token>: a learner joins a cohort by its invite link. The token stays in the fragment (it
// never reaches a server log or a Referer) and goes to the API in a POST body.
import type { InviteInfo } from "@berth/protocol";
import Link from "next/link";
import { useEffect, useState } from "react";
import { signInUrl } from "@/lib/api";
import { useSession } from "@/lib/session";
import { staffApi } from "./client";
import "./instructor.css";

export function JoinCohort() {
  const { user } = useSession();
  const [token, setToken] = useState<string | null>(null);
  const [info, setInfo] = useState<InviteInfo | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [joined, setJoined] = useState<string | null>(null);

  useEffect(() => {
    const t = window.location.hash.slice(1);
    setToken(t);
    if (!t) return setError("This link has no invite in it: copy the whole link your instructor sent.");
    void staffApi.inviteInfo(t).then((res) => (res.ok ? setInfo(res.data.invite) : setError(res.error.error)));
  }, []);

  const join = async () => {
    if (!token) return;
    const res = await staffApi.join(token);
    if (res.ok) setJoined(res.data.cohortName);
    else setError(res.error.error);
  };

  return (
    <main className="staff-page">
      <h1>Join a class</h1>
      {error ? (
        <p className="form-error" role="alert" data-testid="join-error">
          {error}
        </p>
      ) : joined ? (
        <p data-testid="join-done">
          You are in <strong>{joined}</strong>. Your instructor sees your progress in its labs. <Link href="/">Go to the labs</Link>
        </p>
      ) : info ? (
        <>
          <p>
            <strong data-testid="join-cohort">{info.cohortName}</strong> · {info.seatsLeft} seat{info.seatsLeft === 1 ? "" : "s"} left · link valid until{" "}
            {new Date(info.expiresAt).toLocaleString()}
          </p>
          {info.closed ? (
            <p className="form-error">{info.closed}</p>
          ) : user === undefined ? null : user ? (
            <button type="button" className="btn btn-primary" onClick={join} data-testid="join-button">
              Join as {user.name ?? user.email}
            </button>
          ) : (
            <p>
              <Link className="btn btn-primary" href={signInUrl(`/join#${token}`)}>
                Sign in to join
              </Link>{" "}
              <Link href={`/signup?next=${encodeURIComponent(`/join#${token}`)}`}>or sign up</Link>
            </p>
          )}
        </>
      ) : (
        <p className="muted" role="status">
          Looking up the invite…
        </p>
      )}
    </main>
  );
}
