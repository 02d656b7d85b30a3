// "Open lab" → the first prompt byte on the learner's screen, warm pool, in real Chromium against a
// real Berth: a signed-in learner on the catalog clicks the lab's card, and we time, inside the
// page, from the click to the moment terminal 1 first holds any text. Also a direct navigation to
// the lab's URL (a bookmark, a reload), and where the time goes, from the marks the player leaves
// on the page's performance timeline (terminal-link.ts, TerminalPane.tsx).
//
// The learner looks at the catalog for BENCH_READ_MS (1000), the card in view, before the click, as
// a person does; the time is counted from the click. It measures the production build the orchestrator serves
// (`next build` output in apps/web/.next, or BERTH_WEB_DIST_DIR), and refuses to run when that is
// older than the web app's sources (BENCH_STALE_OK=1 runs anyway). BENCH_VERBOSE=1 prints every
// request and mark of every trial.
//
//   tsx test/bench/open-lab.ts [trials=10]
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import type { Browser, Page } from "@playwright/test";
import { ROOT, startBerth, type Berth } from "../e2e/berth.js";
import { launchChromium, learnerContext, percentile, summary } from "./lib.js";

const TRIALS = Number(process.argv[2] ?? 10);
const LAB = process.env.BENCH_LAB ?? "namespaces-by-hand";
const POOL = 2;
/** How long the learner looks at the catalog before the click (BENCH_READ_MS). */
const READ_MS = Number(process.env.BENCH_READ_MS ?? 1000);
/** BENCH_VERBOSE=1: every request and mark of each trial, in ms from the click or navigation. */
const VERBOSE = process.env.BENCH_VERBOSE === "1";
/**
 * A learner who opened a lab before in this browser (the usual case: 24 of 25 chapters), whose
 * browser remembers terminal 1's size for this window (terminal-link.ts rememberTerminalSize), so
 * the click sends the terminal's attach too. BENCH_RETURNING=0: a browser that never opened a lab.
 */
const RETURNING = process.env.BENCH_RETURNING !== "0";
/** What the unmeasured first trial's browser remembered, given to the measured ones when RETURNING. */
let remembered: Record<string, string> = {};

async function poolReady(berth: Berth, want: number): Promise<void> {
  for (let i = 0; i < 480; i++) {
    const h = (await (await fetch(`${berth.url}/healthz`)).json()) as { warmPool: number };
    if (h.warmPool >= want) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error("the warm pool did not refill within 120 s");
}

// Watches, from the moment each document exists, for the first text in terminal 1 while it is on
// the screen, and for the click on a lab card. A string, not a function: tsx would wrap functions in a helper the page lacks.
const WATCH = `
  document.addEventListener("click", (e) => {
    if (e.target instanceof Element && e.target.closest("[data-testid^=lab-card-]")) window.__clickAt = performance.now();
  }, true);
  (function watch() {
    const term = window.__berth && window.__berth.terminals && window.__berth.terminals["1"];
    // On screen: the terminal is in the page and laid out (text in a terminal not yet shown does not count).
    if (term && term.element && term.element.isConnected && term.element.getClientRects().length > 0) {
      const buf = term.buffer.active;
      for (let y = 0; y < buf.length; y++) {
        const line = buf.getLine(y);
        if (line && line.translateToString(true).trim() !== "") { window.__firstByte = performance.now(); return; }
      }
    }
    requestAnimationFrame(watch);
  })();
`;

type Stages = Record<string, number>;

/** The page's own milestones, in ms from `origin` (navigation start or the click). */
async function stages(page: Page, origin: number): Promise<Stages> {
  if (VERBOSE) page.on("console", (m) => console.log(m.text()));
  return page.evaluate(([o, verbose]) => {
    const out: Record<string, number> = {};
    const nav = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming | undefined;
    if (nav && o === 0) {
      out["page response"] = nav.responseEnd;
      out["page interactive"] = nav.domInteractive;
    }
    for (const name of ["berth:early-attach:1", "berth:frame", "berth:terminal-created:1", "berth:opened:1", "berth:renderer:1", "berth:fitted:1", "berth:connected", "berth:attach:1", "berth:first-output:1", "berth:first-parsed:1", "berth:first-drawn:1"]) {
      const e = performance.getEntriesByName(name).find((m) => m.startTime >= o);
      if (e) out[name.replace("berth:", "").replace(/:1$/, "")] = e.startTime - o;
    }
    // The network's share: the page's data (the RSC payload of a client navigation) and the code.
    for (const r of performance.getEntriesByType("resource") as PerformanceResourceTiming[]) {
      if (r.startTime < o) continue;
      const kind = r.name.includes("_rsc=") ? "rsc response" : r.initiatorType === "script" || r.name.endsWith(".js") ? "last script loaded" : null;
      if (kind && (out[kind] === undefined || r.responseEnd - o > out[kind]!)) out[kind] = r.responseEnd - o;
      if (verbose) console.log(`  ${(r.startTime - o).toFixed(0)} → ${(r.responseEnd - o).toFixed(0)} ms ${r.name.replace(location.origin, "")}`);
    }
    out["prompt on screen"] = (window as unknown as { __firstByte: number }).__firstByte - o;
    if (verbose) {
      for (const m of performance.getEntriesByType("mark")) if (m.startTime >= o) console.log(`  ${(m.startTime - o).toFixed(0)} ms ${m.name}`);
    }
    return out;
  }, [origin, VERBOSE] as const);
}

/** A new learner's browser (with what an earlier lab left in its storage, when RETURNING). */
async function browserOf(browser: Browser, berth: Berth) {
  const context = await learnerContext(browser, berth.url);
  await context.addInitScript(WATCH);
  if (RETURNING) await context.addInitScript(`for (const [k, v] of Object.entries(${JSON.stringify(remembered)})) localStorage.setItem(k, v);`);
  return context;
}

/** What the player keeps in the browser's storage (read at the end of a trial). */
async function keep(page: Page): Promise<void> {
  remembered = await page.evaluate(() => Object.fromEntries(Object.keys(localStorage).map((k) => [k, localStorage.getItem(k) ?? ""])));
}

async function fromCatalog(browser: Browser, berth: Berth): Promise<Stages> {
  const context = await browserOf(browser, berth);
  const page = await context.newPage();
  await page.goto(`${berth.url}/`);
  await page.getByTestId(`lab-card-${LAB}`).waitFor();
  // A learner looks at the catalog for a moment before choosing (the page uses that moment to
  // fetch the player's code: lab-warmup.ts), with the card they choose in view: a card further
  // down (chapter 15 is) is scrolled to first, as a person would before clicking it. Then the
  // pointer moves onto the card and clicks.
  await page.getByTestId(`lab-card-${LAB}`).scrollIntoViewIfNeeded();
  await page.waitForTimeout(READ_MS);
  await page.getByTestId(`lab-card-${LAB}`).click();
  await page.waitForFunction(() => (window as unknown as { __firstByte?: number }).__firstByte !== undefined, undefined, { timeout: 90_000, polling: 50 });
  const click = await page.evaluate(() => (window as unknown as { __clickAt: number }).__clickAt);
  const result = await stages(page, click);
  if (VERBOSE) console.log(`  prompt on screen ${result["prompt on screen"]!.toFixed(0)} ms`);
  await keep(page);
  await context.close();
  return result;
}

async function direct(browser: Browser, berth: Berth): Promise<Stages> {
  const context = await browserOf(browser, berth);
  const page = await context.newPage();
  await page.goto(`${berth.url}/labs/${LAB}`);
  await page.waitForFunction(() => (window as unknown as { __firstByte?: number }).__firstByte !== undefined, undefined, { timeout: 90_000, polling: 50 });
  const result = await stages(page, 0);
  await context.close();
  return result;
}

function report(label: string, runs: Stages[]): string {
  const lines = [summary(`${label}: prompt on screen`, runs.map((r) => r["prompt on screen"]!))];
  const names = [...new Set(runs.flatMap((r) => Object.keys(r)))].filter((n) => n !== "prompt on screen");
  for (const name of names) {
    const values = runs.map((r) => r[name]).filter((v): v is number => v !== undefined);
    lines.push(`    ${name.padEnd(22)} p50 ${percentile(values, 50).toFixed(1).padStart(7)} ms  p90 ${percentile(values, 90).toFixed(1).padStart(7)} ms`);
  }
  return lines.join("\n");
}

/**
 * The orchestrator serves the production build (`next build` output, never `next dev`): make sure
 * it exists and is newer than the sources it was built from, or the figures are of other code.
 */
function assertFreshBuild(): void {
  const web = path.join(ROOT, "apps/web");
  const distDir = path.join(web, process.env.BERTH_WEB_DIST_DIR ?? ".next");
  let built: number;
  try {
    built = statSync(path.join(distDir, "BUILD_ID")).mtimeMs;
  } catch {
    throw new Error(`no production build in ${distDir}: run \`cd apps/web && npx next build\` first`);
  }
  const newest = (dir: string): number => {
    let t = 0;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      t = Math.max(t, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs);
    }
    return t;
  };
  const sources = [path.join(web, "app"), path.join(web, "src"), path.join(ROOT, "packages/protocol/src"), path.join(web, "next.config.ts")];
  const changed = Math.max(...sources.map((p) => (statSync(p).isDirectory() ? newest(p) : statSync(p).mtimeMs)));
  if (changed > built && process.env.BENCH_STALE_OK !== "1") throw new Error(`the production build in ${distDir} is older than the web app's sources: run \`cd apps/web && npx next build\` first (BENCH_STALE_OK=1 runs anyway)`);
}

assertFreshBuild();
const browser = await launchChromium();
// Every trial is a new learner: lift the sign-up throttle for this run.
const berth = await startBerth({ BERTH_WARM_POOL: String(POOL), BERTH_SIGNUPS_PER_IP_HOUR: "10000" });
const out: string[] = [];
try {
  for (const [label, trial] of [["Open lab from the catalog → first prompt byte, warm pool", fromCatalog], ["Lab URL → first prompt byte, warm pool", direct]] as const) {
    // One unmeasured run warms the page bundle and the caches of the web server.
    await poolReady(berth, POOL);
    await trial(browser, berth);
    const runs: Stages[] = [];
    for (let i = 0; i < TRIALS; i++) {
      await poolReady(berth, POOL);
      runs.push(await trial(browser, berth));
    }
    out.push(report(`${label}${RETURNING ? ", a browser that opened a lab before" : ", a browser that never opened a lab"}`, runs));
  }
} finally {
  await berth.stop({ destroySandboxes: true });
  await browser.close();
}
console.log("\n" + out.join("\n\n"));
