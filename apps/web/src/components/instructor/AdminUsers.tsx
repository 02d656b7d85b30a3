"use client";
// /admin: accounts, and who teaches. An admin makes an account an instructor or a learner again;
// admins themselves are made from the console (BERTH_ADMIN_EMAIL or the setup link).
import type { AdminUserView } from "@berth/protocol";
import { useCallback, useEffect, useState } from "react";
import { staffApi } from "./client";
import { Gate } from "./Gate";
import { useStaff } from "./useStaff";
import "./instructor.css";

export function AdminUsers() {
  const gate = useStaff(["admin"]);
  return (
    <Gate gate={gate} what="Only administrators manage accounts.">
      {() => <Users />}
    </Gate>
  );
}

function Users() {
  const [q, setQ] = useState("");
  const [users, setUsers] = useState<AdminUserView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(async (query: string) => {
    const res = await staffApi.users(query);
    if (res.ok) {
      setUsers(res.data.users);
      setError(null);
    } else setError(res.error.error);
  }, []);
  useEffect(() => {
    const t = setTimeout(() => void load(q), 200);
    return () => clearTimeout(t);
  }, [q, load]);

  const setRole = async (u: AdminUserView, role: "learner" | "instructor") => {
    const res = await staffApi.setRole(u.id, role);
    if (res.ok) setUsers((list) => list?.map((x) => (x.id === u.id ? res.data.user : x)) ?? null);
    else setError(res.error.error);
  };

  return (
    <main className="staff-page">
      <h1>Accounts</h1>
      <p className="muted">Instructors run cohorts: they see the cohorts they made and the work of the learners in them.</p>
      <label className="field">
        <span>Find by email</span>
        <input type="search" value={q} onChange={(e) => setQ(e.target.value)} data-testid="admin-search" />
      </label>
      {error ? (
        <p className="form-error" role="alert">
          {error}
        </p>
      ) : null}
      {users === null ? (
        <p className="muted" role="status">
          Loading…
        </p>
      ) : (
        <table className="staff-table" data-testid="admin-users">
          <thead>
            <tr>
              <th scope="col">Email</th>
              <th scope="col">Name</th>
              <th scope="col">Role</th>
              <th scope="col">
                <span className="sr-only">Change</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {users.map((u) => (
              <tr key={u.id} data-testid={`admin-user-${u.email}`}>
                <td>{u.email}</td>
                <td>{u.name ?? ""}</td>
                <td data-testid="admin-role">{u.role}</td>
                <td>
                  {u.role === "learner" ? (
                    <button type="button" className="btn btn-small" onClick={() => void setRole(u, "instructor")} data-testid="make-instructor">
                      Make instructor
                    </button>
                  ) : u.role === "instructor" ? (
                    <button type="button" className="btn btn-small btn-quiet" onClick={() => void setRole(u, "learner")} data-testid="make-learner">
                      Make learner
                    </button>
                  ) : (
                    <span className="muted">from the console</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
