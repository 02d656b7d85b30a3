"use client";
// The first administrator of an installation, from the one-time link the server printed on its
// console (`/setup#<token>`). The token rides in the fragment, so it never reaches a server log or a
// Referer header; it is read once and wiped from the address bar.
import { useRouter } from "next/navigation";
import { useEffect, useId, useState, type FormEvent } from "react";
import { api } from "@/lib/api";
import { useSession } from "@/lib/session";

type Field = "email" | "password" | "name";

export function SetupForm() {
  const router = useRouter();
  const { setUser } = useSession();
  const id = useId();
  const [token, setToken] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [formError, setFormError] = useState<string | null>(null);
  const [fieldErrors, setFieldErrors] = useState<Partial<Record<Field, string>>>({});

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
    setFormError(null);
    setFieldErrors({});
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
    const field = res.error.field;
    if (field === "email" || field === "password" || field === "name") setFieldErrors({ [field]: res.error.error });
    else setFormError(res.error.error);
  }

  const fieldProps = (field: Field) => ({
    id: `${id}-${field}`,
    name: field,
    "aria-invalid": fieldErrors[field] ? true : undefined,
    "aria-describedby": fieldErrors[field] ? `${id}-${field}-error` : undefined,
  });
  const fieldError = (field: Field) =>
    fieldErrors[field] ? (
      <p className="field-error" id={`${id}-${field}-error`} data-testid={`field-error-${field}`}>
        {fieldErrors[field]}
      </p>
    ) : null;

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
          <label htmlFor={`${id}-name`}>
            Name <span className="optional">(optional)</span>
          </label>
          <input {...fieldProps("name")} type="text" autoComplete="name" maxLength={100} />
          {fieldError("name")}
        </div>
        <div className="field">
          <label htmlFor={`${id}-email`}>Email</label>
          <input {...fieldProps("email")} type="email" autoComplete="email" required autoFocus />
          {fieldError("email")}
        </div>
        <div className="field">
          <label htmlFor={`${id}-password`}>Password</label>
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
