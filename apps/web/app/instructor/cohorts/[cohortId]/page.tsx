import { CohortPage } from "@/components/instructor/CohortPage";

export const metadata = { title: "Cohort" };

export default async function Page({ params }: { params: Promise<{ cohortId: string }> }) {
  const { cohortId } = await params;
  return <CohortPage cohortId={cohortId} />;
}
