// What the browser tests do again and again: sign up through the form, read and type into the
// terminal, wait for text on the screen.
import { expect, type Browser, type BrowserContext, type Page } from "@playwright/test";

let n = 0;
export function uniqueEmail(prefix: string): string {
  return `${prefix}-${Date.now()}-${n++}@example.org`;
}

export async function signUp(page: Page, baseUrl: string, email: string, next = "/"): Promise<void> {
  await page.goto(`${baseUrl}/signup?next=${encodeURIComponent(next)}`);
  const form = page.getByTestId("signup-form");
  await form.getByLabel("Email").fill(email);
  await form.getByLabel("Password").fill("a long enough password");
  await form.locator("button[type=submit]").click();
  await page.waitForURL((url) => url.pathname === next);
}

/** The terminal's whole buffer (scrollback included) as text, whatever renderer draws it. */
export function terminalText(page: Page): Promise<string> {
  return page.evaluate(() => {
    const term = (window as unknown as { __berth?: { terminals?: { main?: { buffer: { active: { length: number; getLine(y: number): { translateToString(trim: boolean): string } | undefined } } } } } }).__berth?.terminals?.main;
    if (!term) return "";
    const buf = term.buffer.active;
    const lines: string[] = [];
    for (let y = 0; y < buf.length; y++) lines.push(buf.getLine(y)?.translateToString(true) ?? "");
    return lines.join("\n");
  });
}

export async function waitForText(page: Page, pattern: RegExp, timeout = 30_000): Promise<string> {
  let last = "";
  await expect
    .poll(async () => {
      last = await terminalText(page);
      return pattern.test(last);
    }, { timeout, message: `terminal never showed ${pattern}` })
    .toBe(true);
  return last;
}

export async function waitForPrompt(page: Page): Promise<void> {
  await waitForText(page, /[#$] $/m, 60_000);
}

/** Types a command into the terminal as a person would, and presses Enter. */
export async function typeCommand(page: Page, command: string): Promise<void> {
  await page.getByTestId("terminal").click();
  await page.keyboard.type(command);
  await page.keyboard.press("Enter");
}

/** A new learner in a browser context of their own, signed up and at the lab's first prompt. */
export async function openLabAsNewLearner(browser: Browser, baseUrl: string, labId: string, who: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signUp(page, baseUrl, uniqueEmail(who), `/labs/${labId}`);
  await waitForPrompt(page);
  return { context, page };
}
