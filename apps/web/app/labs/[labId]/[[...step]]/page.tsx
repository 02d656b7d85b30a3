import type { Metadata } from "next";
import { headers } from "next/headers";
import { notFound, redirect } from "next/navigation";
import { LabPlayer } from "@/components/LabPlayer";
import { signInUrl } from "@/lib/api";
import { loadLabOnServer } from "@/lib/server-api";

type Params = Promise<{ labId: string; step?: string[] }>;

// /labs/<lab> and /labs/<lab>/<step>. Rendered on the server per request: a lab or step that does
// not exist answers 404 (not a 200 page saying so), and the player arrives with the lab in the
// HTML, so the terminal's socket opens as soon as the page hydrates instead of after a second
// round trip for the lab's JSON.
export default async function Page({ params }: { params: Params }) {
  const { labId, step } = await params;
  if (step && step.length > 1) notFound();
  const stepId = step?.[0] ?? null;
  const here = `/labs/${encodeURIComponent(labId)}${stepId ? `/${encodeURIComponent(stepId)}` : ""}`;
  const loaded = await loadLabOnServer(labId, ...(await visitor()));
  if (loaded.kind === "missing") notFound();
  if (loaded.kind === "signin") redirect(signInUrl(here));
  if (loaded.kind === "ready" && stepId !== null && !loaded.lab.steps.some((s) => s.id === stepId)) notFound();
  return <LabPlayer labId={labId} stepId={stepId} initial={loaded.kind === "ready" ? { lab: loaded.lab, progress: loaded.progress } : null} />;
}

export async function generateMetadata({ params }: { params: Params }): Promise<Metadata> {
  const { labId } = await params;
  const loaded = await loadLabOnServer(labId, ...(await visitor()));
  return { title: loaded.kind === "ready" ? loaded.lab.title : loaded.kind === "missing" ? "Lab not found" : "Lab" };
}

/**
 * The visitor's cookie, and whether this request opens the lab: a page load or a navigation does
 * (the server then starts the sandbox's hand-over at once), a router prefetch does not.
 */
async function visitor(): Promise<[cookie: string | null, prepare: boolean]> {
  const h = await headers();
  return [h.get("cookie"), h.get("next-router-prefetch") === null];
}
