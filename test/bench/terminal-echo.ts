// Keystroke echo round trip: a key pressed in the browser → socket.io → orchestrator → agent → pty
// → bash echoes it → back the same way → xterm.js has parsed it. Measured inside the page, from the
// keydown event to xterm's onWriteParsed, so the test driver's own latency does not count.
// The reference is wetty (xterm.js + socket.io + node-pty on the host, no sandbox), in the same run.
//
//   tsx test/bench/terminal-echo.ts [keystrokes=200]
import { spawn } from "node:child_process";
import path from "node:path";
import type { Page } from "@playwright/test";
import { startBerth, freePort, ROOT } from "../e2e/berth.js";
import { launchChromium, learnerContext, summary } from "./lib.js";

const N = Number(process.argv[2] ?? 200);
const LAB = process.env.BENCH_LAB ?? "namespaces-by-hand";

/** Installs the keydown → onWriteParsed timer on the page's terminal, found by `termExpr`. */
async function measure(page: Page, termExpr: string): Promise<number[]> {
  await page.evaluate((expr) => {
    const term = (0, eval)(expr);
    const w = window as unknown as { __bench: { t0: number; samples: number[] } };
    w.__bench = { t0: 0, samples: [] };
    document.addEventListener("keydown", (e) => { if (e.key.length === 1 && !e.ctrlKey) w.__bench.t0 = performance.now(); }, true);
    term.onWriteParsed(() => {
      if (w.__bench.t0 === 0) return;
      w.__bench.samples.push(performance.now() - w.__bench.t0);
      w.__bench.t0 = 0;
    });
    term.focus();
  }, termExpr);
  for (let i = 0; i < N; i++) {
    await page.keyboard.press("abcdefghijklmnopqrstuvwxyz"[i % 26]!);
    await page.waitForFunction((n) => (window as unknown as { __bench: { samples: number[] } }).__bench.samples.length >= n, i + 1, { polling: "raf" });
    if (i % 40 === 39) {
      await page.keyboard.press("Control+U"); // clear the line so it never wraps
      await page.waitForTimeout(50);
      await page.evaluate(() => { (window as unknown as { __bench: { t0: number } }).__bench.t0 = 0; });
    }
  }
  return page.evaluate(() => (window as unknown as { __bench: { samples: number[] } }).__bench.samples);
}

async function waitForPrompt(page: Page, termExpr: string): Promise<void> {
  await page.waitForFunction((expr) => {
    try {
      const term = (0, eval)(expr);
      const buf = term.buffer.active;
      for (let y = 0; y < buf.length; y++) if (/[#$] ?$/.test(buf.getLine(y)?.translateToString(true) ?? "")) return true;
    } catch {
      return false;
    }
    return false;
  }, termExpr, { timeout: 60_000 });
  await page.waitForTimeout(500);
}

const browser = await launchChromium();
const berth = await startBerth({ BERTH_WARM_POOL: "1" });
try {
  const context = await learnerContext(browser, berth.url);
  const page = await context.newPage();
  await page.goto(`${berth.url}/labs/${LAB}`);
  await waitForPrompt(page, "window.__berth.terminals.main");
  const ours = await measure(page, "window.__berth.terminals.main");
  await context.close();

  const port = await freePort();
  const wetty = spawn(process.execPath, [path.join(ROOT, "node_modules/wetty/build/main.js"), "-p", String(port), "--host", "127.0.0.1", "-c", "bash --norc"], {
    stdio: "ignore",
    env: { ...process.env, PS1: "$ " },
  });
  try {
    const wpage = await browser.newPage();
    for (let i = 0; i < 40; i++) {
      try {
        await wpage.goto(`http://127.0.0.1:${port}/`);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    await wpage.waitForFunction(() => (window as unknown as { wetty_term?: unknown }).wetty_term !== undefined, undefined, { timeout: 30_000 });
    await waitForPrompt(wpage, "window.wetty_term");
    const theirs = await measure(wpage, "window.wetty_term");

    console.log(`\nKeystroke echo round trip (${N} keys, measured in the page)`);
    console.log(summary("Berth (browser→orchestrator→agent→pty)", ours));
    console.log(summary("wetty 3.2 (browser→server→pty, no sandbox)", theirs));
  } finally {
    wetty.kill();
  }
} finally {
  await berth.stop({ destroySandboxes: true });
  await browser.close();
}
