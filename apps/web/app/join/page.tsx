import { JoinCohort } from "@/components/instructor/JoinCohort";

export const metadata = { title: "Join a class" };

export default function Page() {
  return <JoinCohort />;
}
