"use client";
// One form for signing up and signing in. The server validates (400 {error, field}); the form shows
// that message under the named field, or above the form when no field is named (401, 429).
// `noValidate`: the API is the single source of truth for what is valid, so its messages are the
// ones a learner sees (the input types still give the right keyboards and autofill).
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useState, type FormEvent } from "react";
import { api, safeNext } from "@/lib/api";
import { useFormErrors } from "@/lib/form-errors";
import { useSession } from "@/lib/session";

type Mode = "signup" | "signin";

export function AuthForm({ mode }: { mode: Mode }) {
  const router = useRouter();
  const params = useSearchParams();
  const next = safeNext(params.get("next"));
  const { setUser } = useSession();
  const [busy, setBusy] = useState(false);
  const errors = useFormErrors();
  const { formError, setFormError, fieldErrors, fieldProps, fieldError } = errors;

  async function onSubmit(ev: FormEvent<HTMLFormElement>) {
    ev.preventDefault();
    const data = new FormData(ev.currentTarget);
    const email = String(data.get("email") ?? "");
    const password = String(data.get("password") ?? "");
    const name = String(data.get("name") ?? "").trim();
    setBusy(true);
    errors.clear();
    // A sign-up never signs in, and answers a taken email like a new one (the server must not tell
    // strangers who has an account): so the form signs in right after, with the same password.
    if (mode === "signup") {
      const created = await api.signUp({ email, password, ...(name ? { name } : {}) });
      if (!created.ok) {
        setBusy(false);
        return showError(created.error);
      }
    }
    const res = await api.signIn({ email, password });
    if (!res.ok && mode === "signup" && res.status === 401) {
      setBusy(false);
      return setFormError("This email already has an account with another password. Sign in instead, or use another email.");
    }
    if (res.ok) {
      setUser(res.data.user);
      router.replace(next);
      return; // stay "busy" while navigating away
    }
    setBusy(false);
    showError(res.error);
  }

  const showError = errors.show;


  const other = mode === "signup" ? "/signin" : "/signup";
  const otherHref = next === "/" ? other : `${other}?next=${encodeURIComponent(next)}`;

  return (
    <main className="auth-page">
      <form className="auth-card" data-testid={`${mode}-form`} onSubmit={onSubmit} noValidate aria-busy={busy}>
        <h1>{mode === "signup" ? "Create your account" : "Sign in"}</h1>
        {formError ? (
          <p className="form-error" role="alert" data-testid="form-error">
            {formError}
          </p>
        ) : null}
        {mode === "signup" ? (
          <div className="field">
            <label htmlFor={errors.inputId("name")}>
              Name <span className="optional">(optional)</span>
            </label>
            <input {...fieldProps("name")} type="text" autoComplete="name" maxLength={100} />
            {fieldError("name")}
          </div>
        ) : null}
        <div className="field">
          <label htmlFor={errors.inputId("email")}>Email</label>
          <input {...fieldProps("email")} type="email" autoComplete="email" required autoFocus />
          {fieldError("email")}
        </div>
        <div className="field">
          <label htmlFor={errors.inputId("password")}>Password</label>
          <input
            {...fieldProps("password")}
            type="password"
            autoComplete={mode === "signup" ? "new-password" : "current-password"}
            required
          />
          {mode === "signup" && !fieldErrors.password ? <p className="field-help">At least 8 characters.</p> : null}
          {fieldError("password")}
        </div>
        <button type="submit" className="btn btn-primary btn-wide" disabled={busy}>
          {busy ? "Please wait…" : mode === "signup" ? "Sign up" : "Sign in"}
        </button>
        <p className="auth-switch">
          {mode === "signup" ? "Already have an account? " : "New here? "}
          <Link href={otherHref}>{mode === "signup" ? "Sign in" : "Create an account"}</Link>
        </p>
      </form>
    </main>
  );
}
