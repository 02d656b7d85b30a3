// The player's terminals against a real Berth and real sandboxes: three shells side by side, a
// reload that gives back the screen exactly (after the window changed size, with a long command
// line that wrapped and was edited), leaving the terminal with the keyboard, and the sandbox's
// lifetime line with its reset.
import { expect, test, type Page } from "@playwright/test";
import { useBerth } from "./berth.js";
import { openLabAsNewLearner, signUp, uniqueEmail, waitForPrompt } from "./helpers.js";

const LAB = "namespaces-by-hand";
const berth = useBerth();

interface Screen {
  cols: number;
  rows: number;
  /** Every line of the buffer (scrollback and screen), "~" in front of a line that continues the one above. */
  lines: string[];
  cursor: [number, number];
}

/** What terminal `key` shows, read from xterm's buffer whatever renderer draws it. */
function screen(page: Page, key: string): Promise<Screen | null> {
  return page.evaluate((k) => {
    const term = (window as unknown as { __berth?: { terminals: Record<string, import("@xterm/xterm").Terminal> } }).__berth?.terminals[k];
    if (!term) return null;
    const b = term.buffer.active;
    const lines: string[] = [];
    for (let y = 0; y < b.length; y++) {
      const line = b.getLine(y);
      lines.push(`${line?.isWrapped ? "~" : " "}${line?.translateToString(true) ?? ""}`);
    }
    while (lines.length > 0 && lines[lines.length - 1] === " ") lines.pop();
    return { cols: term.cols, rows: term.rows, lines, cursor: [b.cursorX, b.baseY + b.cursorY] as [number, number] };
  }, key);
}

async function text(page: Page, key: string): Promise<string> {
  return ((await screen(page, key))?.lines ?? []).map((l) => l.slice(1)).join("\n");
}

async function waitFor(page: Page, key: string, pattern: RegExp, timeout = 30_000): Promise<string> {
  let last = "";
  await expect.poll(async () => pattern.test((last = await text(page, key))), { timeout, message: `terminal ${key} never showed ${pattern}` }).toBe(true);
  return last;
}

/** Types into terminal `key` (its tab shown, its textarea focused) and presses Enter. */
async function typeIn(page: Page, key: string, command: string): Promise<void> {
  await page.getByTestId(`term-tab-${key}`).click();
  await page.locator(`[data-testid="terminal-${key}"] textarea`).focus();
  await page.keyboard.type(command);
  await page.keyboard.press("Enter");
}

/** Waits until the terminal's size has held still for a moment (a fit after a resize is one frame away). */
async function settledSize(page: Page, key: string): Promise<void> {
  let last = "";
  let same = 0;
  await expect
    .poll(async () => {
      const s = await screen(page, key);
      const now = s ? `${s.cols}x${s.rows}` : "";
      same = now === last ? same + 1 : 0;
      last = now;
      return same >= 3;
    }, { intervals: [200] })
    .toBe(true);
}

test("three terminals are three shells, each with its own screen, kept across a reload", async ({ browser }) => {
  const { context, page } = await openLabAsNewLearner(browser, berth.url, LAB, "tabs");
  try {
    const pids: Record<string, string> = {};
    for (const key of ["1", "2", "3"]) {
      // A tab's shell starts when the tab is first shown; keys typed before it is attached are
      // not sent (they would reach a terminal the server does not know yet).
      await page.getByTestId(`term-tab-${key}`).click();
      await waitFor(page, key, /[#$] $/);
      await typeIn(page, key, `echo term${key}=$$`);
      const shown = await waitFor(page, key, new RegExp(`^term${key}=(\\d+)$`, "m"));
      pids[key] = new RegExp(`^term${key}=(\\d+)$`, "m").exec(shown)![1]!;
      await expect(page.getByTestId(`term-tab-${key}`)).toHaveAttribute("aria-selected", "true");
    }
    expect(new Set(Object.values(pids)).size).toBe(3);
    // Each screen has its own output only.
    for (const key of ["1", "2", "3"]) {
      const own = await text(page, key);
      for (const other of ["1", "2", "3"].filter((k) => k !== key)) expect(own).not.toContain(`term${other}=`);
    }

    await page.reload();
    await waitFor(page, "1", /^term1=\d+$/m);
    for (const key of ["2", "3"]) {
      await page.getByTestId(`term-tab-${key}`).click();
      // The same shell as before, its screen given back.
      await waitFor(page, key, new RegExp(`^term${key}=${pids[key]}$`, "m"));
      await typeIn(page, key, `echo again${key}=$$`);
      await waitFor(page, key, new RegExp(`^again${key}=${pids[key]}$`, "m"));
      expect(await text(page, key)).not.toContain("term1=");
    }
  } finally {
    await context.close();
  }
});

test("a reload after the window was resized gives back the screen exactly, wrapped command line included", async ({ browser }) => {
  const { context, page } = await openLabAsNewLearner(browser, berth.url, LAB, "reload");
  try {
    await page.setViewportSize({ width: 1400, height: 900 });
    await settledSize(page, "1");
    await typeIn(page, "1", "ls / && echo listed");
    await waitFor(page, "1", /^listed$/m);
    // A command line longer than the terminal is wide, edited where it wrapped (readline moves the
    // cursor up and down across the wrap: moves that only make sense at this width), then run.
    const long = `echo ${Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ")}`;
    await page.keyboard.type(long);
    await page.keyboard.press("Control+A");
    await page.keyboard.press("Control+E");
    await page.keyboard.press("Enter");
    await waitFor(page, "1", /word39\n.*[#$] $/);
    const wide = await screen(page, "1");
    expect(wide!.lines.some((l) => l.startsWith("~"))).toBe(true);

    // Narrower and shorter: xterm reflows the screen; the server's copy must follow.
    await page.setViewportSize({ width: 1000, height: 700 });
    await settledSize(page, "1");
    const before = (await screen(page, "1"))!;
    expect(before.cols).toBeLessThan(wide!.cols);
    // Give the shell's redraw after SIGWINCH time to arrive before the screen is taken.
    await page.waitForTimeout(1000);
    const settled = (await screen(page, "1"))!;

    await page.reload();
    await waitFor(page, "1", /word39/);
    await settledSize(page, "1");
    // The restore is written in one piece; poll only to let xterm finish parsing it.
    await expect.poll(() => screen(page, "1"), { timeout: 10_000 }).toEqual(settled);
    expect(settled.cols).toBe(before.cols);
  } finally {
    await context.close();
  }
});

test("the terminal does not trap the keyboard: a chord leaves it, and Tab can be told to", async ({ browser }) => {
  const { context, page } = await openLabAsNewLearner(browser, berth.url, LAB, "keys");
  try {
    const textarea = page.locator('[data-testid="terminal-1"] textarea');
    await textarea.focus();
    // Announced when the terminal gets focus, and described on the textarea itself.
    await expect(page.getByTestId("terminal-announce")).toContainText("Control plus Shift plus Up arrow");
    const describedBy = await textarea.getAttribute("aria-describedby");
    await expect(page.locator(`[id="${describedBy}"]`)).toContainText("Ctrl+Shift+↑");

    await page.keyboard.press("Control+Shift+ArrowUp");
    await expect(page.getByTestId("term-tab-1")).toBeFocused();
    // From the tab strip, the arrow keys and Enter reach the other terminals.
    await page.keyboard.press("ArrowRight");
    await expect(page.getByTestId("term-tab-2")).toBeFocused();
    await expect(page.getByTestId("term-tab-2")).toHaveAttribute("aria-selected", "true");
    await page.keyboard.press("ArrowLeft");

    // By default Tab belongs to the shell (completion).
    await textarea.focus();
    await page.keyboard.type("echo tab-");
    await page.keyboard.press("Tab");
    await expect(textarea).toBeFocused();
    await page.keyboard.press("Control+C");

    // With "Tab moves focus" on, Tab leaves the terminal and types nothing into it.
    await page.getByTestId("tab-focus-toggle").click();
    await expect(page.getByTestId("tab-focus-toggle")).toHaveAttribute("aria-pressed", "true");
    await textarea.focus();
    await page.keyboard.press("Tab");
    await expect(textarea).not.toBeFocused();
    await textarea.focus();
    await page.keyboard.press("Shift+Tab");
    await expect(textarea).not.toBeFocused();
  } finally {
    await context.close();
  }
});

test("the lifetime line shows the time left, and a reset gives a fresh sandbox with the progress kept", async ({ browser }) => {
  const { context, page } = await openLabAsNewLearner(browser, berth.url, LAB, "reset");
  try {
    const lifetime = page.getByTestId("sandbox-lifetime");
    await expect(lifetime).toHaveAttribute("data-state", "running");
    // A fresh sandbox has its whole lifetime (BERTH_MAX_LIFETIME_MINUTES, 4 h by default) ahead.
    await expect(page.getByTestId("sandbox-time-left")).toHaveText(/Sandbox: [34] h \d\d min left/);
    const firstId = await lifetime.getAttribute("data-sandbox-id");
    expect(firstId).toBeTruthy();

    // Earn points, and leave a mark in this sandbox.
    await typeIn(page, "1", "setsid -f unshare --uts sh -c 'hostname berth-lab && exec sleep infinity'; touch /root/old-sandbox; echo marked");
    await waitFor(page, "1", /^marked$/m);
    const check = await page.request.post(`${berth.url}/api/labs/${LAB}/checks/uts-hostname`, { headers: { origin: berth.url } });
    expect(check.status()).toBe(200);
    const before = (await (await page.request.get(`${berth.url}/api/labs/${LAB}`)).json()) as { progress: { score: number } };
    expect(before.progress.score).toBe(2);

    await page.getByTestId("sandbox-reset-button").click();
    await page.getByTestId("sandbox-reset-confirm").click();
    // A new sandbox: another id, and the terminal attaches to it by itself.
    await expect(lifetime).not.toHaveAttribute("data-sandbox-id", firstId!, { timeout: 60_000 });
    await expect(lifetime).toHaveAttribute("data-state", "running");
    await expect(page.getByTestId("sandbox-phase")).toHaveText("ready", { timeout: 60_000 });
    await typeIn(page, "1", "test -e /root/old-sandbox && echo still-old || echo fresh-sandbox");
    await waitFor(page, "1", /^fresh-sandbox$/m, 60_000);
    await expect(page.getByTestId("sandbox-time-left")).toHaveText(/Sandbox: [34] h \d\d min left/);

    const after = (await (await page.request.get(`${berth.url}/api/labs/${LAB}`)).json()) as { progress: { score: number } };
    expect(after.progress.score).toBe(2);
    const view = (await (await page.request.get(`${berth.url}/api/labs/${LAB}/sandbox`)).json()) as { sandboxId: string; state: string };
    expect(view.state).toBe("running");
    expect(view.sandboxId).toBe(await lifetime.getAttribute("data-sandbox-id"));
  } finally {
    await context.close();
  }
});

/** How often the page's timeline holds `name` (the player's start-up marks, terminal-link.ts). */
const marks = (page: Page, name: string) => page.evaluate((n) => performance.getEntriesByName(n).length, name);

/** From the catalog, as a learner does: the card scrolled to, looked at, clicked. */
async function openFromCatalog(page: Page, labId: string): Promise<void> {
  await page.goto(`${berth.url}/`);
  const card = page.getByTestId(`lab-card-${labId}`);
  await card.scrollIntoViewIfNeeded();
  await page.waitForTimeout(500);
  await card.click();
  await page.waitForURL(`**/labs/${labId}**`);
}

test("a lab opened from the catalog attaches its terminal with the click once the browser knows the terminal's size", async ({ browser }) => {
  // The first lab: the player remembers terminal 1's size for this window.
  const { context, page } = await openLabAsNewLearner(browser, berth.url, "first-containers", "early");
  try {
    await settledSize(page, "1");
    const size = await page.evaluate(() => JSON.parse(localStorage.getItem("berth.terminal1Size") ?? "null") as { cols: number; rows: number } | null);
    const first = await screen(page, "1");
    expect(size).toMatchObject({ cols: first!.cols, rows: first!.rows });

    // The next lab: its attach leaves with the click, and the terminal adopts it (no second attach).
    // Its terminal 1 is the one the catalog made off screen while idle, moved into the player: one
    // terminal in the page, the catalog's hiding place gone.
    await openFromCatalog(page, LAB);
    await waitForPrompt(page);
    expect(await marks(page, "berth:early-attach:1")).toBe(1);
    expect(await marks(page, "berth:spare-terminal")).toBe(1);
    expect(await marks(page, "berth:spare-taken:1")).toBe(1);
    await expect(page.locator(".xterm")).toHaveCount(1);
    await expect(page.getByTestId("terminal-1").locator(".xterm")).toHaveCount(1);
    // What the spare drew while it waited (the prompt's glyphs, terminal-factory.ts) was cleared.
    expect(await text(page, "1")).not.toContain("abcdefghijklmnopqrstuvwxyz");
    // The player's scripts, loaded by the catalog before the click, were not loaded again.
    const scripts = await page.evaluate(() => [...document.querySelectorAll("script[src]")].map((s) => s.getAttribute("src")));
    expect(scripts.filter((src, i) => scripts.indexOf(src) !== i)).toEqual([]);
    await typeIn(page, "1", "echo adopted-$((6*7))");
    await waitFor(page, "1", /^adopted-42$/m);
    const adopted = await screen(page, "1");
    expect([adopted!.cols, adopted!.rows]).toEqual([size!.cols, size!.rows]);
  } finally {
    await context.close();
  }
});

test("an attach sent with the click at a size the terminal does not get is dropped for one at the right size", async ({ browser }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await signUp(page, berth.url, uniqueEmail("misfit"), "/");
    // What a browser would remember for this window, had the pane been wider: a few columns off.
    await page.evaluate(() =>
      localStorage.setItem("berth.terminal1Size", JSON.stringify({ cols: 61, rows: 13, width: window.innerWidth, height: window.innerHeight, dpr: window.devicePixelRatio })),
    );
    await openFromCatalog(page, LAB);
    await waitForPrompt(page);
    expect(await marks(page, "berth:early-attach:1")).toBe(1);
    // The catalog's spare terminal was made at that size too, and resized by the player's fit.
    expect(await marks(page, "berth:spare-taken:1")).toBe(1);
    await settledSize(page, "1");
    const s = await screen(page, "1");
    expect([s!.cols, s!.rows]).not.toEqual([61, 13]);
    // One prompt, drawn for the terminal's own size, and a shell that answers.
    await typeIn(page, "1", "echo cols=$(tput cols)");
    await waitFor(page, "1", new RegExp(`^cols=${s!.cols}$`, "m"));
  } finally {
    await context.close();
  }
});

test("the first lab a browser opens from the catalog takes the catalog's spare terminal too, at the terminal's own size", async ({ browser }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    // No size remembered: no attach with the click, and a spare made at xterm's default size.
    await signUp(page, berth.url, uniqueEmail("first-open"), "/");
    await openFromCatalog(page, LAB);
    await waitForPrompt(page);
    expect(await marks(page, "berth:early-attach:1")).toBe(0);
    expect(await marks(page, "berth:spare-taken:1")).toBe(1);
    await settledSize(page, "1");
    const s = await screen(page, "1");
    await typeIn(page, "1", "echo size=$(tput cols)x$(tput lines)");
    await waitFor(page, "1", new RegExp(`^size=${s!.cols}x${s!.rows}$`, "m"));
  } finally {
    await context.close();
  }
});

test("sandbox endpoints: 401 without a session, 404 for a missing lab, state none before the first start", async ({ request }) => {
  expect((await request.get(`${berth.url}/api/labs/${LAB}/sandbox`)).status()).toBe(401);
  expect((await request.post(`${berth.url}/api/labs/${LAB}/sandbox/reset`)).status()).toBe(401);
});

test.describe("with a signed-in learner", () => {
  test("a lab that does not exist is a 404, and a lab never opened has no sandbox yet", async ({ browser }) => {
    const { context, page } = await openLabAsNewLearner(browser, berth.url, LAB, "api");
    try {
      const missing = await page.request.get(`${berth.url}/api/labs/no-such-lab/sandbox`);
      expect(missing.status()).toBe(404);
      expect(((await missing.json()) as { error: string }).error).toContain("no-such-lab");
      const other = await page.request.get(`${berth.url}/api/labs/cgroups-by-hand/sandbox`);
      expect(other.status()).toBe(200);
      expect(((await other.json()) as { state: string }).state).toBe("none");
      await waitForPrompt(page);
    } finally {
      await context.close();
    }
  });
});
