"use client";
// The instructor's and admin's pages are client pages: this says whether the visitor may see one.
// (The server decides for real: every route refuses a learner whatever the page shows.)
import type { Role, UserView } from "@berth/protocol";
import { usePathname, useRouter } from "next/navigation";
import { useEffect } from "react";
import { signInUrl } from "@/lib/api";
import { useSession } from "@/lib/session";

export type StaffGate = { kind: "loading" } | { kind: "refused"; role: Role } | { kind: "ok"; user: UserView };

export function useStaff(roles: readonly Role[]): StaffGate {
  const { user } = useSession();
  const router = useRouter();
  const here = usePathname() ?? "/";
  useEffect(() => {
    if (user === null) router.replace(signInUrl(here));
  }, [user, router, here]);
  if (!user) return { kind: "loading" };
  if (!roles.includes(user.role)) return { kind: "refused", role: user.role };
  return { kind: "ok", user };
}
