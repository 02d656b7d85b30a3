import type { Metadata } from "next";
import { SetupForm } from "./SetupForm";

export const metadata: Metadata = { title: "Set up Berth" };

// The one-time link Berth prints at start while it has no administrator: /setup#<token>.
export default function Page() {
  return <SetupForm />;
}
