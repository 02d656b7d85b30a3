"use client";
import Link from "next/link";
import { usePathname, useRouter } from "next/navigation";
import { signInUrl } from "@/lib/api";
import { useSession } from "@/lib/session";

export function SiteHeader() {
  const { user, signOut } = useSession();
  const router = useRouter();
  const pathname = usePathname();
  const onAuthPage = pathname === "/signin" || pathname === "/signup";

  return (
    <header className="site-header">
      <Link href="/" className="brand">
        <span aria-hidden="true" className="brand-mark">⚓</span> Berth
      </Link>
      <nav aria-label="Account" className="account" data-testid="account">
        {user === undefined ? null : user ? (
          <>
            {user.role !== "learner" ? (
              <>
                <Link className="btn btn-quiet" href="/instructor" data-testid="nav-instructor">
                  Cohorts
                </Link>
                <Link className="btn btn-quiet" href="/instructor/labs" data-testid="nav-authoring">
                  Labs
                </Link>
              </>
            ) : null}
            {user.role === "admin" ? (
              <Link className="btn btn-quiet" href="/admin" data-testid="nav-admin">
                Accounts
              </Link>
            ) : null}
            <span className="who">
              <span data-testid="current-user" title={user.email}>
                {user.name ?? user.email}
              </span>
              <span className={`role role-${user.role}`} data-testid="current-role">
                {user.role}
              </span>
            </span>
            <button
              type="button"
              className="btn btn-quiet"
              data-testid="signout-button"
              onClick={async () => {
                await signOut();
                router.push("/signin");
              }}
            >
              Sign out
            </button>
          </>
        ) : onAuthPage ? null : (
          <>
            <Link className="btn btn-quiet" href={signInUrl(pathname ?? "/")}>
              Sign in
            </Link>
            <Link className="btn" href={`/signup?next=${encodeURIComponent(pathname ?? "/")}`}>
              Sign up
            </Link>
          </>
        )}
      </nav>
    </header>
  );
}
