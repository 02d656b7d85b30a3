import type { Metadata } from "next";
import { DraftList } from "@/components/authoring/DraftList";

// /instructor/labs: the labs an instructor authors in the browser. The API decides who may see them
// (instructors and administrators; everyone else is told so).
export const metadata: Metadata = { title: "Your labs" };

export default function Page() {
  return <DraftList />;
}
