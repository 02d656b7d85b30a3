import { LabLoading } from "@/components/LabPlayer";

// The instructions' place while the page renders: the frame around it (layout.tsx), terminal
// included, is already there.
export default function Loading() {
  return <LabLoading />;
}
