// The lab player as a learner meets it, in real Chromium against a real Berth and a real sandbox,
// on a small fixture lab (fixtures/labs/player-basics): steps by keyboard with their own URLs,
// a Dockerfile written in the editor and built in the terminal, hints one by one, a solution and a
// skipped step, a quiz answered wrong then right, an automatic check passing without a click, the
// end of the lab and the catalog that follows it, the narrow layout, and 404 for what is missing.
// The tests share one learner and run in order: each step builds on the one before.
import { expect, test, type BrowserContext, type Page } from "@playwright/test";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { ROOT, startBerth, type Berth } from "./berth";
import { signUp, terminalText, typeCommand, uniqueEmail, waitForPrompt, waitForText } from "./helpers";

const LAB = "player-basics";
const SHOTS = process.env.BERTH_SCREENSHOTS ?? path.join(ROOT, "test-results", "player");

let berth: Berth;
let context: BrowserContext;
let page: Page;
/** Requests the pages made to anywhere but this Berth (there must be none: no CDN). */
const foreign: string[] = [];

test.describe.configure({ mode: "serial" });

test.beforeAll(async ({ browser }) => {
  mkdirSync(SHOTS, { recursive: true });
  berth = await startBerth({ BERTH_LABS_DIR: path.join(ROOT, "test/e2e/fixtures/labs"), BERTH_WARM_POOL: "0" });
  context = await browser.newContext();
  context.on("request", (req) => {
    const url = req.url();
    if (!url.startsWith(berth.url) && !url.startsWith("data:") && !url.startsWith("blob:")) foreign.push(url);
  });
  page = await context.newPage();
  await signUp(page, berth.url, uniqueEmail("player"), "/");
});

test.afterAll(async () => {
  await context?.close();
  await berth?.stop({ destroySandboxes: true });
});

const stepCount = () => page.getByTestId("step-count");

test("the catalog shows the lab as not started, with its difficulty and tags", async () => {
  await page.goto(`${berth.url}/`);
  const card = page.getByTestId(`lab-card-${LAB}`);
  await expect(card).toContainText("beginner");
  await expect(card).toContainText("testing");
  await expect(page.getByTestId(`lab-state-${LAB}`)).toHaveAttribute("data-status", "not-started");
  // Filters: by difficulty, then back to all.
  await page.getByTestId("filter-difficulty").selectOption("intermediate");
  await expect(page.getByTestId(`lab-card-${LAB}`)).toHaveCount(0);
  await expect(page.getByTestId("lab-card-player-next")).toBeVisible();
  await page.getByTestId("filter-difficulty").selectOption("");
  await page.getByTestId("filter-tag").selectOption("player");
  await expect(page.getByTestId("lab-card-player-next")).toHaveCount(0);
  await expect(page.getByTestId(`lab-card-${LAB}`)).toBeVisible();
});

test("a missing lab or step answers 404", async () => {
  const lab = await page.goto(`${berth.url}/labs/no-such-lab`);
  expect(lab?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: /not found/i })).toBeVisible();
  const step = await page.goto(`${berth.url}/labs/${LAB}/no-such-step`);
  expect(step?.status()).toBe(404);
  const ok = await page.goto(`${berth.url}/labs/${LAB}`);
  expect(ok?.status()).toBe(200);
});

test("steps are navigated by keyboard, each with its own URL; deep links work", async () => {
  await page.goto(`${berth.url}/labs/${LAB}`);
  await waitForPrompt(page);
  await expect(stepCount()).toHaveText("Step 1 of 5");
  const outline = page.getByTestId("outline");
  await expect(outline.getByRole("link", { name: /Look around/ })).toHaveAttribute("aria-current", "step");
  // The gated last step is locked until the quiz before it passes.
  await expect(page.getByTestId("outline-auto")).toHaveAttribute("data-state", "locked");

  // Keyboard only: focus the outline's first link, Tab to the second, Enter.
  await outline.getByRole("link").first().focus();
  await page.keyboard.press("Tab");
  await expect(outline.getByRole("link", { name: /Build an image/ })).toBeFocused();
  const focusRing = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
  expect(focusRing).not.toBe("none");
  await page.keyboard.press("Enter");
  await expect(stepCount()).toHaveText("Step 2 of 5");
  await expect(page).toHaveURL(`${berth.url}/labs/${LAB}/build`);
  // Focus moved to the new step's heading, so reading goes on from there.
  await expect(page.locator("#step-title")).toBeFocused();

  await page.getByTestId("step-next").focus();
  await page.keyboard.press("Enter");
  await expect(stepCount()).toHaveText("Step 3 of 5");
  await expect(page).toHaveURL(`${berth.url}/labs/${LAB}/help`);
  await page.getByTestId("step-back").focus();
  await page.keyboard.press("Space");
  await expect(stepCount()).toHaveText("Step 2 of 5");
  // The browser's Back follows the steps too.
  await page.goBack();
  await expect(stepCount()).toHaveText("Step 3 of 5");

  // A deep link opens its step; a locked one says why.
  await page.goto(`${berth.url}/labs/${LAB}/quiz`);
  await expect(stepCount()).toHaveText("Step 4 of 5");
  await page.goto(`${berth.url}/labs/${LAB}/auto`);
  await expect(page.getByTestId("step-locked")).toBeVisible();
  await page.screenshot({ path: path.join(SHOTS, "locked-step.png") });
});

test("Run switches to the terminal; open-file and preview actions open their tabs", async () => {
  await page.goto(`${berth.url}/labs/${LAB}/look`);
  await waitForPrompt(page);
  await page.getByRole("button", { name: "Open the notes" }).click();
  await expect(page.getByTestId("editor-tab")).toHaveAttribute("aria-selected", "true");
  await expect(page.getByTestId("editor-path")).toHaveText("/root/app/notes.txt");
  await expect(page.locator(".monaco-editor .view-lines")).toContainText("made by the setup");

  await page.getByTestId("run-button").first().click();
  await expect(page.getByTestId("terminal-tab")).toHaveAttribute("aria-selected", "true");
  await waitForText(page, /^look-around-ran$/m);

  // A block for terminal 2 goes there; with `interrupt` it stops what runs there first.
  const second = () =>
    page.evaluate(() => {
      const term = (window as unknown as { __berth?: { terminals: Record<string, { buffer: { active: { length: number; getLine(y: number): { translateToString(trim: boolean): string } | undefined } } }> } }).__berth?.terminals["2"];
      const buf = term?.buffer.active;
      const lines: string[] = [];
      for (let y = 0; buf && y < buf.length; y++) lines.push(buf.getLine(y)?.translateToString(true) ?? "");
      return lines.join("\n");
    });
  await page.getByTestId("run-button").nth(1).click();
  await expect.poll(second, { timeout: 60_000 }).toMatch(/sleep 600/);
  await page.getByTestId("run-button").nth(2).click();
  await expect(page.getByTestId("terminal-tab")).toHaveAttribute("aria-selected", "true");
  await expect.poll(second, { timeout: 30_000 }).toMatch(/^in-terminal-2$/m);
  await expect.poll(second).toMatch(/\^C/);

  await page.getByRole("button", { name: "preview port 8080" }).click();
  await expect(page.getByTestId("preview-tab")).toHaveAttribute("aria-selected", "true");
  await expect(page.getByTestId("preview-frame")).toHaveAttribute("src", `/preview/${LAB}/8080/`);
  await page.getByTestId("terminal-tab").click();

  // Reading step done: the catalog now says "in progress".
  await page.goto(`${berth.url}/`);
  await expect(page.getByTestId(`lab-state-${LAB}`)).toHaveAttribute("data-status", "in-progress");
});

test("a Dockerfile written in the editor builds in the terminal", async () => {
  await page.goto(`${berth.url}/labs/${LAB}/build`);
  await waitForPrompt(page);
  await page.getByTestId("editor-tab").click();
  await expect(page.getByTestId("file-/root/app/notes.txt")).toBeHidden(); // app/ is folded
  await page.getByRole("button", { name: /app\// }).click();
  await expect(page.getByTestId("file-/root/app/notes.txt")).toBeVisible();
  await page.getByTestId("editor-new-name").fill("app/Dockerfile");
  await page.getByTestId("editor-new-name").press("Enter");
  await expect(page.getByTestId("editor-path")).toContainText("/root/app/Dockerfile");
  await expect(page.getByTestId("editor-notice")).toContainText("does not exist yet");
  await page.locator(".monaco-editor .view-lines").click();
  await page.keyboard.type("FROM busybox\nCMD echo built by the player\n");
  // Monaco colours it as a Dockerfile, and it came from this server (no CDN).
  const models = await page.evaluate(() =>
    (window as unknown as { monaco: { editor: { getModels(): { getLanguageId(): string; getValue(): string }[] } } }).monaco.editor
      .getModels()
      .map((m) => ({ language: m.getLanguageId(), text: m.getValue() })),
  );
  expect(models).toContainEqual({ language: "dockerfile", text: "FROM busybox\nCMD echo built by the player\n" });
  await expect(page.locator(".monaco-editor .mtk1, .monaco-editor [class*=mtk]").first()).toBeVisible();
  await page.keyboard.press("Control+s");
  await expect(page.getByTestId("editor-notice")).toHaveText("Saved /root/app/Dockerfile");
  // The editor does not trap the keyboard: Escape leaves it for the Save button.
  await page.keyboard.press("Escape");
  await expect(page.getByTestId("editor-save")).toBeFocused();
  await page.screenshot({ path: path.join(SHOTS, "editor.png") });

  await page.getByTestId("terminal-tab").click();
  await typeCommand(page, "cat /root/app/Dockerfile && docker build -q -t player-app /root/app && echo BUILD-$((40+2))");
  await waitForText(page, /^BUILD-42$/m, 120_000);
  await page.getByTestId("check-button-built").click();
  await expect(page.getByTestId("check-result-built")).toHaveAttribute("data-passed", "true", { timeout: 90_000 });

  // Changed underneath: the terminal edits the file while the editor has unsaved typing.
  await page.getByTestId("editor-tab").click();
  await page.locator(".monaco-editor .view-lines").click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type("# from the editor\n");
  await page.getByTestId("terminal-tab").click();
  await typeCommand(page, "echo '# from the terminal' >> /root/app/Dockerfile && echo APPENDED-$((1+1))");
  await waitForText(page, /^APPENDED-2$/m);
  await page.getByTestId("editor-tab").click();
  await page.getByTestId("editor-save").click();
  await expect(page.getByTestId("editor-notice")).toHaveAttribute("data-kind", "changed");
  await expect(page.getByTestId("editor-notice")).toContainText(/changed/);
  expect(foreign).toEqual([]);
});

test("hints are revealed one at a time, with their cost", async () => {
  await page.goto(`${berth.url}/labs/${LAB}/help`);
  await waitForPrompt(page); // hydrated: the page is live, not only its server-rendered HTML
  const button = page.getByTestId("hint-button-marker");
  await expect(button).toHaveText("Show hint 1 of 2 (costs 1 pt)");
  await button.click();
  await expect(page.getByTestId("hint-marker-1")).toContainText("starts with a t");
  await expect(page.getByTestId("hint-marker-2")).toHaveCount(0);
  await expect(button).toHaveText("Show hint 2 of 2 (costs 1 pt)");
  await button.click();
  await expect(page.getByTestId("hint-marker-2")).toContainText("touch /root/marker");
  await expect(button).toHaveCount(0);
  // Kept on the server: a reload shows both.
  await page.reload();
  await expect(page.getByTestId("hint-marker-1")).toBeVisible();
  await expect(page.getByTestId("hint-marker-2")).toBeVisible();
});

test("the solution is shown after a confirmation, and Skip runs it", async () => {
  await waitForPrompt(page);
  await page.getByTestId("solution-button-marker").click();
  await expect(page.getByTestId("solution-marker")).toHaveCount(0);
  await page.getByTestId("solution-confirm-marker").click();
  await expect(page.getByTestId("solution-marker")).toContainText("touch /root/marker");

  await page.getByTestId("skip-button").click();
  await page.getByTestId("skip-confirm").click();
  const verdict = page.getByTestId("check-result-marker");
  await expect(verdict).toHaveAttribute("data-passed", "true", { timeout: 60_000 });
  // A revealed solution earns nothing.
  await expect(verdict).toContainText("0/3 pts");
});

test("a quiz answered wrong, then right", async () => {
  await page.getByTestId("step-next").click();
  await expect(stepCount()).toHaveText("Step 4 of 5");
  const quiz = page.getByTestId("quiz-facts");
  await quiz.getByLabel("mkdir").check();
  await quiz.getByLabel("uts").check();
  await quiz.getByRole("textbox").fill("nope");
  await page.getByTestId("quiz-submit-facts").click();
  await expect(page.getByTestId("quiz-result-facts")).toHaveAttribute("data-passed", "false");
  await expect(page.getByTestId("quiz-question-facts-q1")).toHaveAttribute("data-correct", "false");
  await expect(page.getByTestId("step-next")).toHaveAttribute("aria-disabled", "true");

  await quiz.getByLabel("touch").check();
  await quiz.getByLabel("pid").check();
  await quiz.getByRole("textbox").fill("marker");
  await page.getByTestId("quiz-submit-facts").click();
  await expect(page.getByTestId("quiz-result-facts")).toHaveAttribute("data-passed", "true");
  await expect(page.getByTestId("quiz-result-facts")).toHaveAttribute("data-attempt", "2");
  await expect(page.getByTestId("outline-auto")).not.toHaveAttribute("data-state", "locked");
});

test("an automatic check passes without a click, and the finished lab shows its recap", async () => {
  await page.getByTestId("step-next").click();
  await expect(stepCount()).toHaveText("Step 5 of 5");
  await waitForPrompt(page);
  await expect(page.getByTestId("check-auto-flag")).toBeVisible();
  await expect(page.getByTestId("check-needs-flag")).toContainText("/root/marker exists");
  await typeCommand(page, "touch /root/auto-flag");
  // No click on Check: the server's verdict arrives on the socket.
  await expect(page.getByTestId("check-result-flag")).toHaveAttribute("data-passed", "true", { timeout: 30_000 });

  const done = page.getByTestId("completion");
  await expect(done).toBeVisible();
  await expect(done).toContainText("You built an image");
  await expect(page.getByTestId("next-lab")).toHaveAttribute("href", "/labs/player-next");
  await page.screenshot({ path: path.join(SHOTS, "completion.png"), fullPage: true });

  await page.goto(`${berth.url}/`);
  await expect(page.getByTestId(`lab-state-${LAB}`)).toHaveAttribute("data-status", "done");
  await page.getByTestId("filter-state").selectOption("done");
  await expect(page.getByTestId("lab-card-player-next")).toHaveCount(0);
  await expect(page.getByTestId(`lab-card-${LAB}`)).toBeVisible();
  await page.screenshot({ path: path.join(SHOTS, "catalog.png"), fullPage: true });
});

test("narrow screens: one view at a time, Run shows the terminal, code stays readable", async () => {
  await page.setViewportSize({ width: 800, height: 900 });
  await page.goto(`${berth.url}/labs/${LAB}/look`);
  const tabs = page.getByRole("tablist", { name: "Lab views" });
  await expect(tabs.getByRole("tab")).toHaveText(["Instructions", "Terminal", "Editor", "Preview", "X-ray"]);
  await expect(page.getByTestId("instructions-tab")).toHaveAttribute("aria-selected", "true");
  await expect(page.getByTestId("terminal")).toBeHidden();
  await page.screenshot({ path: path.join(SHOTS, "narrow-instructions.png") });

  // Inline flags never break at their dash; a long code line scrolls inside its block.
  const flag = page.locator(".lab-html code", { hasText: "--memory-swap" });
  expect(await flag.evaluate((el) => getComputedStyle(el).whiteSpace)).toBe("nowrap");
  const pre = page.locator(".lab-html pre").first();
  expect(await pre.evaluate((el) => el.scrollWidth > el.clientWidth && getComputedStyle(el).overflowX === "auto")).toBe(true);

  await expect(page.getByTestId("run-button").first()).toBeEnabled({ timeout: 60_000 });
  const runs = async () => (await terminalText(page)).match(/^look-around-ran$/gm)?.length ?? 0;
  const before = await runs();
  await page.getByTestId("run-button").first().click();
  await expect(page.getByTestId("terminal-tab")).toHaveAttribute("aria-selected", "true");
  await expect(page.getByTestId("terminal")).toBeVisible();
  await expect(page.locator(".lab-text")).toBeHidden();
  await expect.poll(runs, { timeout: 30_000 }).toBe(before + 1);
  await page.screenshot({ path: path.join(SHOTS, "narrow-terminal.png") });

  // Arrow keys move between the tabs.
  await page.getByTestId("terminal-tab").focus();
  await page.keyboard.press("ArrowLeft");
  await expect(page.getByTestId("instructions-tab")).toHaveAttribute("aria-selected", "true");
  await expect(page.locator(".lab-text")).toBeVisible();
  await page.setViewportSize({ width: 1400, height: 900 });
});
