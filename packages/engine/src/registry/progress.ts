/**
 * The JSON progress messages dockerd streams for pull and push, in its exact shapes:
 *   {"status":"Downloading","progressDetail":{"current":n,"total":t},"progress":"[==>   ]  1.2MB/3.4MB","id":"<12 hex>"}
 * The CLI draws the bar itself from progressDetail on a terminal; "progress" is the same bar as
 * text for anything else.
 */
export type Say = (message: Record<string, unknown>) => void;

/** Docker's HumanSize: decimal units, 4 significant digits ("32.77kB", "2.215MB"). */
export function humanSize(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${Number(n.toPrecision(4))}${units[i]}`;
}

/** The bar dockerd renders at its default width (200 columns): 50 characters of "=". */
export function progressBar(current: number, total: number): string {
  if (total <= 0) return humanSize(current).padStart(8);
  const filled = Math.min(50, Math.floor(Math.floor((current / total) * 100) / 2));
  const bar = `[${"=".repeat(filled)}>${" ".repeat(Math.max(0, 50 - filled))}] `;
  const numbers = current > total ? "" : `${humanSize(current).padStart(8)}/${humanSize(total)}`;
  return bar + numbers;
}

/** Short ids in progress lines: the first 12 hex digits of a digest. */
export function shortId(digest: string): string {
  return digest.replace(/^sha256:/, "").slice(0, 12);
}

export function status(say: Say, id: string, text: string): void {
  say({ status: text, progressDetail: {}, id });
}

/** A progress reporter that sends at most one message per 100 ms per id (and always the last). */
export function throttled(say: Say, id: string, verb: string, total: number): (current: number) => void {
  let last = 0;
  return (current) => {
    const now = Date.now();
    if (current < total && now - last < 100) return;
    last = now;
    say({ status: verb, progressDetail: { current, total }, progress: progressBar(current, total), id });
  };
}
