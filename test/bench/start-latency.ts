// "Start lab" to the first prompt byte in the browser: a new learner opens a lab page and we time,
// inside the page, from navigation start to the moment the terminal first holds any output.
// Cold: no warm pool (a sandbox is created on demand). Warm: the pool hands one over.
//
//   tsx test/bench/start-latency.ts [trials=8]
import type { Browser } from "@playwright/test";
import { startBerth, type Berth } from "../e2e/berth.js";
import { launchChromium, learnerContext, summary } from "./lib.js";

const TRIALS = Number(process.argv[2] ?? 8);
const LAB = process.env.BENCH_LAB ?? "namespaces-by-hand";

async function poolReady(berth: Berth, want: number): Promise<void> {
  for (let i = 0; i < 240; i++) {
    const h = (await (await fetch(`${berth.url}/healthz`)).json()) as { warmPool: number };
    if (h.warmPool >= want) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error("the warm pool did not refill within 60 s");
}

async function trial(browser: Browser, berth: Berth): Promise<number> {
  const context = await learnerContext(browser, berth.url);
  // Watch for the first output from the moment the document exists.
  // A string, not a function: tsx would wrap named functions in a helper the page does not have.
  await context.addInitScript(`
    (function watch() {
      const term = window.__berth && window.__berth.terminals && window.__berth.terminals.main;
      if (term) {
        const buf = term.buffer.active;
        for (let y = 0; y < buf.length; y++) {
          const line = buf.getLine(y);
          if (line && line.translateToString(true).trim() !== "") { window.__firstByte = performance.now(); return; }
        }
      }
      requestAnimationFrame(watch);
    })();
  `);
  const page = await context.newPage();
  await page.goto(`${berth.url}/labs/${LAB}`);
  await page.waitForFunction(() => (window as unknown as { __firstByte?: number }).__firstByte !== undefined, undefined, { timeout: 90_000, polling: 100 });
  const ms = await page.evaluate(() => (window as unknown as { __firstByte: number }).__firstByte);
  await context.close();
  return ms;
}

const browser = await launchChromium();
const results: string[] = [];
try {
  for (const [label, pool] of [["cold (no warm pool)", 0], ["warm pool", 1]] as const) {
    const berth = await startBerth({ BERTH_WARM_POOL: String(pool) });
    try {
      const samples: number[] = [];
      // One unmeasured run warms the page bundle and the caches of the web server.
      if (pool) await poolReady(berth, pool);
      await trial(browser, berth);
      for (let i = 0; i < TRIALS; i++) {
        if (pool) await poolReady(berth, pool);
        samples.push(await trial(browser, berth));
      }
      results.push(summary(`Start lab → first prompt byte, ${label}`, samples));
    } finally {
      await berth.stop({ destroySandboxes: true });
    }
  }
} finally {
  await browser.close();
}
console.log("\n" + results.join("\n"));
