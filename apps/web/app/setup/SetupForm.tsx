"use client";
// The first administrator of an installation, from the one-time link the server printed on its
// console (`/setup#<token>`). The token rides in the fragment, so it never reaches a server log or a
// Referer header; it is read once and wiped from the address bar.
import { useRouter } from "next/navigation";
import { useEffect, useState, type FormEvent } from "react";
import { api } from "@/lib/api";
import { useFormErrors } from "@/lib/form-errors";
import { useSession } from "@/lib/session";


export function SetupForm() {
  const router = useRouter();
  const { setUser } = useSession();
  const [token, setToken] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const errors = useFormErrors();
  const { formError, fieldErrors, fieldProps, fieldError } = errors;

  useEffect(() => {
    const fromHash = window.location.hash.slice(1);
    setToken(fromHash);
    if (fromHash) window.history.replaceState(null, "", window.location.pathname);
  }, []);

  async function onSubmit(ev: FormEvent<HTMLFormElement>) {
    ev.preventDefault();
    if (!token) return;
    const data = new FormData(ev.currentTarget);
    const name = String(data.get("name") ?? "").trim();
    setBusy(true);
    errors.clear();
    const res = await api.setupAdmin({
      token,
      email: String(data.get("email") ?? ""),
      password: String(data.get("password") ?? ""),
      ...(name ? { name } : {}),
    });
    if (res.ok) {
      setUser(res.data.user);
      router.replace("/");
      return;
    }
    setBusy(false);
    errors.show(res.error);
  }


  return (
    <main className="auth-page">
      <form className="auth-card" data-testid="setup-form" onSubmit={onSubmit} noValidate aria-busy={busy}>
        <h1>Create the administrator</h1>
        {token === "" ? (
          <p className="form-error" role="alert" data-testid="form-error">
            This page needs the one-time link Berth prints on its console at start (it ends in
            #&lt;token&gt;). Open that link as printed.
          </p>
        ) : (
          <p className="field-help">This link works once. The account you create here administers this Berth.</p>
        )}
        {formError ? (
          <p className="form-error" role="alert" data-testid="form-error">
            {formError}
          </p>
        ) : null}
        <div className="field">
          <label htmlFor={errors.inputId("name")}>
            Name <span className="optional">(optional)</span>
          </label>
          <input {...fieldProps("name")} type="text" autoComplete="name" maxLength={100} />
          {fieldError("name")}
        </div>
        <div className="field">
          <label htmlFor={errors.inputId("email")}>Email</label>
          <input {...fieldProps("email")} type="email" autoComplete="email" required autoFocus />
          {fieldError("email")}
        </div>
        <div className="field">
          <label htmlFor={errors.inputId("password")}>Password</label>
          <input {...fieldProps("password")} type="password" autoComplete="new-password" required />
          {!fieldErrors.password ? <p className="field-help">At least 8 characters.</p> : null}
          {fieldError("password")}
        </div>
        <button type="submit" className="btn btn-primary btn-wide" disabled={busy || !token}>
          {busy ? "Please wait…" : "Create the administrator"}
        </button>
      </form>
    </main>
  );
}
