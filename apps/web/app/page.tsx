import { Catalog } from "@/components/Catalog";

export default function Page() {
  return <Catalog />;
}
