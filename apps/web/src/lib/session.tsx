"use client";
// Who is signed in, shared by the header and the pages. Loaded once from GET /api/me; the sign-in,
// sign-up and sign-out flows update it directly so the header changes without a reload.
import type { UserView } from "@berth/protocol";
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { api } from "./api";

/** `undefined` while the first /api/me is in flight, `null` when nobody is signed in. */
type SessionState = {
  user: UserView | null | undefined;
  setUser: (user: UserView | null) => void;
  signOut: () => Promise<void>;
};

const SessionContext = createContext<SessionState | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<UserView | null | undefined>(undefined);

  useEffect(() => {
    let live = true;
    void api.me().then((res) => {
      if (live) setUser(res.ok ? res.data.user : null);
    });
    return () => {
      live = false;
    };
  }, []);

  const signOut = useCallback(async () => {
    await api.signOut();
    setUser(null);
  }, []);

  const value = useMemo(() => ({ user, setUser, signOut }), [user, signOut]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionState {
  const ctx = useContext(SessionContext);
  if (!ctx) throw new Error("useSession() must be used inside <SessionProvider> (app/layout.tsx provides it)");
  return ctx;
}
