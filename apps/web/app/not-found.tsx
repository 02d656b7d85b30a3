import Link from "next/link";

export default function NotFound() {
  return (
    <main className="player-message">
      <h1>Page not found</h1>
      <p>
        Nothing lives at this address. <Link href="/">Go to the labs</Link>
      </p>
    </main>
  );
}
