import { headers } from "next/headers";
import { notFound, redirect } from "next/navigation";
import { LabPlayer } from "@/components/LabPlayer";
import { signInUrl } from "@/lib/api";
import { loadLabOnServer } from "@/lib/server-api";

type Params = Promise<{ labId: string; step?: string[] }>;

// The instructions of /labs/<lab> and /labs/<lab>/<step>, rendered on the server per request with
// the learner's view of the lab and progress (the layout already answered 404 for a lab or step
// that does not exist, and sent signed-out visitors to sign in). Rendering it also starts the
// sandbox's hand-over, unless the request is a router prefetch.
export default async function Page({ params }: { params: Params }) {
  const { labId, step } = await params;
  const stepId = step?.[0] ?? null;
  const here = `/labs/${encodeURIComponent(labId)}${stepId ? `/${encodeURIComponent(stepId)}` : ""}`;
  const h = await headers();
  const loaded = await loadLabOnServer(labId, h.get("cookie"), h.get("next-router-prefetch") === null);
  // (Only if the lab went away, or the session ended, since the layout looked.)
  if (loaded.kind === "missing") notFound();
  if (loaded.kind === "signin") redirect(signInUrl(here));
  if (loaded.kind === "ready" && stepId !== null && !loaded.lab.steps.some((s) => s.id === stepId)) notFound();
  return <LabPlayer labId={labId} stepId={stepId} initial={loaded.kind === "ready" ? { lab: loaded.lab, progress: loaded.progress } : null} />;
}
