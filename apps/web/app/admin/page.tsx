import { AdminUsers } from "@/components/instructor/AdminUsers";

export const metadata = { title: "Accounts" };

export default function Page() {
  return <AdminUsers />;
}
