import type { Metadata } from "next";
import { headers } from "next/headers";
import { notFound, redirect } from "next/navigation";
import type { ReactNode } from "react";
import { LabShell } from "@/components/LabShell";
import { signInUrl } from "@/lib/api";
import { labShellOnServer } from "@/lib/server-api";

type Params = Promise<{ labId: string; step?: string[] }>;

// The player's frame for /labs/<lab> and /labs/<lab>/<step>: the workspace with the learner's
// terminal, around the instructions (page.tsx, behind loading.tsx). It waits only for what decides
// the answer's status: a signed-out visitor is sent to sign in, a lab or step that does not exist
// is an HTTP 404 (decided here, before anything streams). Everything else streams after it, so
// the terminal is made and its socket attached while the lab's text and progress are on their way;
// the router prefetches this frame (not the page) for the catalog's cards.
export default async function LabLayout({ children, params }: { children: ReactNode; params: Params }) {
  const { labId, stepId, here } = await route(params);
  const shell = await labShellOnServer(labId, stepId, (await headers()).get("cookie"));
  if (shell.kind === "missing") notFound();
  if (shell.kind === "signin") redirect(signInUrl(here));
  return <LabShell labId={labId}>{children}</LabShell>;
}

export async function generateMetadata({ params }: { params: Params }): Promise<Metadata> {
  const { labId, stepId } = await route(params);
  const shell = await labShellOnServer(labId, stepId, (await headers()).get("cookie"));
  return { title: shell.kind === "ready" ? shell.title : shell.kind === "missing" ? "Lab not found" : "Lab" };
}

async function route(params: Params): Promise<{ labId: string; stepId: string | null; here: string }> {
  const { labId, step } = await params;
  if (step && step.length > 1) notFound();
  const stepId = step?.[0] ?? null;
  return { labId, stepId, here: `/labs/${encodeURIComponent(labId)}${stepId ? `/${encodeURIComponent(stepId)}` : ""}` };
}
