// The catalog's share of "Open lab → first prompt": it is where labs are opened from, so it gets the
// player ready before the click, in three steps of rising cost and certainty:
//   1. the catalog is idle (its cards are shown): the player's code, xterm.js included, is
//      fetched, and terminal 1 made off screen for the player to take (terminal-factory.ts); the router prefetches the frames of the labs most likely opened (those in
//      progress, the next one not started; the router itself prefetches the cards in view, the
//      one pointed at first): the lab route's layout, a session lookup and the lab's existence on
//      the server, its loading.tsx stopping the prefetch before the lab's text, progress or
//      sandbox, so a click renders the frame, terminal included, at once. The page's socket
//      connects then too (handshake and session check done long before the click, so the
//      click's sandbox:prepare leaves at once; held for a while, then closed if nothing opened);
//   2. a card is pointed at or focused: the same socket is held again (or connected again);
//   3. the card is pressed or clicked (pointer or keyboard): sandbox:prepare, so the server hands over the
//      learner's sandbox and starts its shell while the browser fetches and renders the player.
// Never before the press is a sandbox claimed: looking at the catalog costs the server a socket and
// a session lookup per prefetched frame only.
// socket.io-client stays out of the catalog's first bundle: terminal-link is imported on demand
// (the player's scripts hold the same module, so the socket made here is the one the player uses).

type Router = { prefetch(href: string): void };

/**
 * Step 1: when the browser has nothing better to do (or 300 ms after the cards show). The router's
 * prefetches bring each lab's frame (Next keeps them for a while: a catalog shown again refreshes
 * them); the imports bring the heaviest of the player's scripts themselves (xterm.js, its WebGL
 * renderer, socket.io-client) once per page, which the bundler keeps in chunks of their own that
 * the player's page then finds in the cache, parsed and registered; and terminal 1 is made, off
 * screen, for the player to take (terminal-factory.ts). The returned cleanup (the catalog leaves)
 * lets that spare terminal go unless the player takes it within a few seconds.
 */
export function warmPlayerCode(router: Router, hrefs: readonly string[]): () => void {
  const run = () => {
    for (const href of hrefs) router.prefetch(href);
    warmLabConnection();
    // (terminal-factory brings xterm.js, its WebGL renderer and terminal-link, socket.io-client with it.)
    void import("./terminal-factory").then((m) => m.warmTerminal(), () => undefined);
  };
  const release = () => void import("./terminal-factory").then((m) => m.releaseSpareTerminal(), () => undefined);
  if (typeof window.requestIdleCallback === "function") {
    const id = window.requestIdleCallback(run, { timeout: 300 });
    return () => {
      window.cancelIdleCallback(id);
      release();
    };
  }
  const timer = setTimeout(run, 200);
  return () => {
    clearTimeout(timer);
    release();
  };
}

/** Step 2: a lab card is pointed at or focused. */
export function warmLabConnection(): void {
  void import("./terminal-link").then((m) => m.warmLabSocket(), () => undefined);
}

/** Step 3: a lab card was pressed or clicked. */
export function openingLab(labId: string): void {
  markLoadedScriptsAsync();
  void import("./terminal-link").then((m) => m.prepareLab(labId), () => undefined);
}

/**
 * The player's scripts are in the page already (step 1's imports and the router's prefetch loaded
 * them through the bundler's chunk loader), but the navigation would add each one again and the
 * browser would run it again: 35-40 ms of the click's path here. React, which adds a route's
 * scripts, skips a script already in the page only if it is a `<script async>` with the same src;
 * the bundler's loader inserts its scripts without that attribute. Marking them async, which
 * changes nothing for a script that is loaded or loading (inserted scripts run asynchronously
 * anyway), lets React find them. Checked by test/e2e/terminals.spec.ts (no script twice).
 */
function markLoadedScriptsAsync(): void {
  for (const script of document.querySelectorAll<HTMLScriptElement>('script[src^="/_next/static/"]:not([async])')) script.async = true;
}
