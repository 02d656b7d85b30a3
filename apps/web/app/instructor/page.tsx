import { CohortList } from "@/components/instructor/CohortList";

export const metadata = { title: "Your cohorts" };

export default function Page() {
  return <CohortList />;
}
