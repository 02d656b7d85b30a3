import type { Metadata } from "next";
import { LabEditor } from "@/components/authoring/LabEditor";

type Params = Promise<{ labId: string }>;

// /instructor/labs/<lab>: the lab editor. The draft is loaded in the browser (the API refuses
// anyone but its author or an administrator, and the page says why).
export async function generateMetadata({ params }: { params: Params }): Promise<Metadata> {
  return { title: `Editing ${(await params).labId}` };
}

export default async function Page({ params }: { params: Params }) {
  const { labId } = await params;
  return <LabEditor labId={labId} />;
}
