import { LabPlayer } from "@/components/LabPlayer";

// Rendered per request (the id is not known at build time); the player itself is a client
// component that loads the lab from /api/labs/:labId.
export default async function Page({ params }: { params: Promise<{ labId: string }> }) {
  const { labId } = await params;
  return <LabPlayer labId={labId} />;
}
