// An instructor authors a lab in the browser, in real Chromium against a real Berth with real
// sandboxes: the admin makes them an instructor; they start a lab, paste its text into Monaco with
// a mistake in it, see labkit's marker on that line, fix it by typing, watch "Prove it" run step by
// step in a fresh sandbox, publish, and "Try it" in the player; then a learner opens the published
// lab, passes its check in their terminal, and no script from the lab's markdown ran in any page.
import { expect, test, type BrowserContext, type Page } from "@playwright/test";
import { ADMIN, startBerth, type Berth } from "./berth";
import { signUp, typeCommand, uniqueEmail, waitForPrompt, waitForText } from "./helpers";

let berth: Berth;
const contexts: BrowserContext[] = [];

test.use({ screenshot: "only-on-failure" });

test.beforeAll(async () => {
  berth = await startBerth({ BERTH_WARM_POOL: "0" });
});

test.afterAll(async () => {
  for (const c of contexts) await c.close();
  await berth?.stop({ destroySandboxes: true });
});

const LAB_ID = `e2e-greeting-${Date.now().toString(36)}`;

// The check's fence lacks its id: labkit reports it on that line (line 17 of this text).
const BROKEN = `---
id: ${LAB_ID}
title: A greeting in a file
summary: Write a word into a file and have Berth check it.
duration: 5m
difficulty: beginner
---

Nothing runs from here: <script>window.__pwned = "script"</script> <img src="x" onerror="window.__pwned = 'onerror'">

## Leave a greeting {#greet}

Write the word \`ahoy\` into \`/root/greeting\`.

<a href="javascript:window.__pwned='link'">a link</a>

\`\`\`check title="The greeting is there" message="/root/greeting does not say ahoy yet."
grep -qx ahoy /root/greeting
\`\`\`

\`\`\`solution
echo ahoy > /root/greeting
\`\`\`
`;
const CHECK_LINE = BROKEN.split("\n").findIndex((l) => l.startsWith("```check")) + 1;

/** The lab editor's test hook (apps/web/src/components/authoring/LabEditor.tsx). */
interface EditorHook {
  __berthLabEditor: import("monaco-editor").editor.IStandaloneCodeEditor;
}

async function newPage(browser: import("@playwright/test").Browser): Promise<Page> {
  const context = await browser.newContext();
  contexts.push(context);
  return context.newPage();
}

test("an instructor authors, proves and publishes a lab; a learner takes it", async ({ browser, playwright }) => {
  test.setTimeout(420_000);
  const author = await newPage(browser);

  // A new account is a learner: the authoring pages refuse it.
  const email = uniqueEmail("author");
  await signUp(author, berth.url, email, "/");
  await author.goto(`${berth.url}/instructor/labs`);
  await expect(author.getByTestId("authoring-list-error")).toContainText(/only instructors/);

  // The administrator makes the account an instructor.
  const admin = await playwright.request.newContext({ baseURL: berth.url });
  expect((await admin.post("/api/auth/signin", { data: ADMIN })).ok()).toBe(true);
  const { users } = (await (await admin.get(`/api/admin/users?q=${encodeURIComponent(email)}`)).json()) as { users: { id: string }[] };
  expect((await admin.put(`/api/admin/users/${users[0]!.id}/role`, { data: { role: "instructor" } })).ok()).toBe(true);
  await admin.dispose();

  // A new lab from the list page opens in the editor.
  await author.goto(`${berth.url}/instructor/labs`);
  await author.getByTestId("new-lab-form").getByLabel(/^Id/).fill(LAB_ID);
  await author.getByTestId("new-lab-form").locator("button[type=submit]").click();
  await author.waitForURL(`**/instructor/labs/${LAB_ID}`);
  await expect(author.getByTestId("lab-editor").locator(".monaco-editor")).toBeVisible();
  // The starter lab parses: its learner's view is there at once.
  await expect(author.getByTestId("learner-view")).toBeVisible();

  // The text goes in as a paste would (one edit), with its mistake.
  await author.evaluate((text) => {
    const editor = (window as unknown as EditorHook).__berthLabEditor;
    editor.executeEdits("e2e", [{ range: editor.getModel()!.getFullModelRange(), text }]);
  }, BROKEN);
  await expect(author.getByTestId("save-state")).toHaveText("Saved");
  const problems = author.getByTestId("lint-problems");
  await expect(problems).toContainText(`line ${CHECK_LINE}`);
  await expect(problems).toContainText(/error/);
  await expect(author.getByTestId("draft-status")).toContainText(/error/);
  await expect(author.getByTestId("publish")).toBeDisabled();
  // Monaco draws labkit's marker on that line.
  await expect(author.locator(".monaco-editor .squiggly-error").first()).toBeVisible();
  const markerLines = await author.evaluate(() => {
    const w = window as unknown as { monaco: typeof import("monaco-editor") };
    return w.monaco.editor.getModelMarkers({ owner: "labkit" }).map((m) => m.startLineNumber);
  });
  expect(markerLines).toContain(CHECK_LINE);

  // The author fixes it by typing the id after "```check".
  await author.evaluate((line) => {
    const editor = (window as unknown as EditorHook).__berthLabEditor;
    editor.setPosition({ lineNumber: line, column: "```check".length + 1 });
    editor.focus();
  }, CHECK_LINE);
  await author.keyboard.type(" id=greeting");
  await expect(problems).toHaveText("labkit lint: no problems");
  await expect(author.locator(".monaco-editor .squiggly-error")).toHaveCount(0);
  // The learner's view beside it: rendered, and the author's tags shown as text, never run.
  const view = author.getByTestId("learner-view");
  await expect(view.getByRole("heading", { name: "1. Leave a greeting" })).toBeVisible();
  await expect(view).toContainText("The greeting is there");
  await expect(view).toContainText("<script>");
  await expect(view.locator("script, img[onerror], a[href^='javascript:']")).toHaveCount(0);
  await expect(view).not.toContainText("grep -qx");
  expect(await author.evaluate(() => (window as unknown as { __pwned?: string }).__pwned)).toBeUndefined();

  // Prove it: each run appears as it finishes, then the verdict.
  await author.getByTestId("prove-it").click();
  const steps = author.getByTestId("proof-step");
  await expect(steps.first()).toContainText("greeting before its solution", { timeout: 90_000 });
  await expect(author.getByTestId("proof-verdict")).toContainText("Proved", { timeout: 120_000 });
  await expect(steps).toHaveCount(3);
  for (const s of await steps.all()) await expect(s).toHaveClass(/proof-ok/);
  await expect(author.getByTestId("draft-status")).toHaveText("Proved: ready to publish");

  // Publish.
  await author.getByTestId("publish").click();
  await expect(author.getByTestId("authoring-notice")).toContainText("Published");

  // Try it: the draft in the real player, in a new tab of the author's.
  const [tryTab] = await Promise.all([author.waitForEvent("popup"), author.getByTestId("try-it").click()]);
  await tryTab.waitForURL(`**/labs/${LAB_ID}--draft`);
  await expect(tryTab.getByRole("heading", { name: /A greeting in a file \(draft\)/ })).toBeVisible();
  await waitForPrompt(tryTab);
  expect(await tryTab.evaluate(() => (window as unknown as { __pwned?: string }).__pwned)).toBeUndefined();
  await tryTab.close();

  // A learner finds the published lab in the catalog, opens it, works and passes the check.
  const learner = await newPage(browser);
  await signUp(learner, berth.url, uniqueEmail("learner"), "/");
  await expect(learner.getByRole("link", { name: /A greeting in a file/ })).toBeVisible();
  await learner.goto(`${berth.url}/labs/${LAB_ID}`);
  await waitForPrompt(learner);
  await expect(learner.getByText("Write the word")).toBeVisible();
  // The draft preview is the author's alone.
  const theirs = await learner.request.get(`${berth.url}/api/labs/${LAB_ID}--draft`);
  expect(theirs.status()).toBe(404);
  await typeCommand(learner, "echo ahoy > /root/greeting; echo written-$((6*7))");
  await waitForText(learner, /^written-42$/m);
  await learner.getByTestId("check-button-greeting").click();
  await expect(learner.getByTestId("check-result-greeting")).toHaveAttribute("data-passed", "true", { timeout: 60_000 });
  expect(await learner.evaluate(() => (window as unknown as { __pwned?: string }).__pwned)).toBeUndefined();
  await expect(learner.locator("main script, main img[onerror], main a[href^='javascript:']")).toHaveCount(0);
});

// The whole class, with a lab authored in the browser (the cohort side in detail is
// instructor-class.spec.ts): author → prove → publish → invite → board → mirror → CSV, in three
// browser contexts (the instructor and two learners).
test.describe("a class on an authored lab", () => {
  const CLASS_LAB = `e2e-class-${Date.now().toString(36)}`;
  const text = BROKEN.replaceAll(LAB_ID, CLASS_LAB).replace("```check title=", "```check id=greeting title=");

  test("author, prove, publish, invite two learners, watch the board and a mirror, export the grades", async ({ browser, playwright }) => {
    test.setTimeout(480_000);
    const instructor = await newPage(browser);
    const email = uniqueEmail("class-author");
    await signUp(instructor, berth.url, email, "/");
    const admin = await playwright.request.newContext({ baseURL: berth.url });
    await admin.post("/api/auth/signin", { data: ADMIN });
    const { users } = (await (await admin.get(`/api/admin/users?q=${encodeURIComponent(email)}`)).json()) as { users: { id: string }[] };
    await admin.put(`/api/admin/users/${users[0]!.id}/role`, { data: { role: "instructor" } });
    await admin.dispose();

    // Author, prove, publish (the editor's buttons).
    await instructor.goto(`${berth.url}/instructor/labs`);
    await instructor.getByTestId("new-lab-form").getByLabel(/^Id/).fill(CLASS_LAB);
    await instructor.getByTestId("new-lab-form").locator("button[type=submit]").click();
    await instructor.waitForURL(`**/instructor/labs/${CLASS_LAB}`);
    await expect(instructor.getByTestId("lab-editor").locator(".monaco-editor")).toBeVisible();
    await instructor.evaluate((t) => {
      const editor = (window as unknown as EditorHook).__berthLabEditor;
      editor.executeEdits("e2e", [{ range: editor.getModel()!.getFullModelRange(), text: t }]);
    }, text);
    await expect(instructor.getByTestId("lint-problems")).toHaveText("labkit lint: no problems");
    await instructor.getByTestId("prove-it").click();
    await expect(instructor.getByTestId("proof-verdict")).toContainText("Proved", { timeout: 120_000 });
    await instructor.getByTestId("publish").click();
    await expect(instructor.getByTestId("authoring-notice")).toContainText("Published");

    // A cohort with that lab, and an invite for two.
    await instructor.goto(`${berth.url}/instructor`);
    await instructor.getByTestId("cohort-name").fill("Authored class");
    await instructor.getByTestId("cohort-create").click();
    await expect(instructor.getByTestId("cohort-title")).toHaveText("Authored class");
    await instructor.getByTestId(`lab-pick-${CLASS_LAB}`).check();
    await instructor.getByTestId("labs-save").click();
    await expect(instructor.getByTestId("labs-status")).toHaveText("Saved.");
    await instructor.getByTestId("invite-seats").fill("2");
    await instructor.getByTestId("invite-create").click();
    const invite = await instructor.getByTestId("invite-url").inputValue();

    const ada = await newPage(browser);
    const bob = await newPage(browser);
    for (const [page, who] of [[ada, "ada"], [bob, "bob"]] as const) {
      await signUp(page, berth.url, uniqueEmail(who), "/");
      await page.goto(invite);
      await page.getByTestId("join-button").click();
      await expect(page.getByTestId("join-done")).toContainText("Authored class");
    }
    const idOf = (page: Page) => page.evaluate(async () => ((await (await fetch("/api/me")).json()) as { user: { id: string } }).user.id);
    const adaId = await idOf(ada);
    const bobId = await idOf(bob);
    const cell = instructor.getByTestId(`cell-${adaId}-${CLASS_LAB}-greeting`);
    await expect(instructor.getByTestId(`board-row-${adaId}`)).toBeVisible({ timeout: 30_000 });
    await expect(instructor.getByTestId(`board-row-${bobId}`)).toBeVisible();
    await expect(cell).toHaveAttribute("data-status", "untried");

    // Ada works: a failing check shows on the board, then the mirror, then the pass.
    await ada.goto(`${berth.url}/labs/${CLASS_LAB}`);
    await waitForPrompt(ada);
    await ada.getByTestId("check-button-greeting").click();
    await expect(ada.getByTestId("check-result-greeting")).toHaveAttribute("data-passed", "false", { timeout: 60_000 });
    await expect(cell).toHaveAttribute("data-attempts", "1");
    await expect(instructor.getByTestId(`mirror-open-${adaId}`)).toBeEnabled({ timeout: 20_000 });
    await instructor.getByTestId(`mirror-open-${adaId}`).click();
    await expect(instructor.getByTestId("mirror-panel")).toHaveAttribute("data-phase", "live");
    await typeCommand(ada, "echo ahoy > /root/greeting; echo mirrored-$((6*7))");
    await waitForText(ada, /^mirrored-42$/m);
    await expect(instructor.getByTestId("mirror-terminal").locator(".xterm-rows")).toContainText("mirrored-42");
    await ada.getByTestId("check-button-greeting").click();
    await expect(ada.getByTestId("check-result-greeting")).toHaveAttribute("data-passed", "true", { timeout: 60_000 });
    await expect(cell).toHaveAttribute("data-status", "passed");
    await instructor.getByTestId("mirror-close").click();

    // The grade sheet names the authored lab's check.
    const [download] = await Promise.all([instructor.waitForEvent("download"), instructor.getByTestId("grades-link").click()]);
    const { readFileSync } = await import("node:fs");
    const lines = readFileSync((await download.path())!, "utf8").trim().split("\r\n").map((l) => l.split(","));
    const header = lines[0]!;
    const col = (line: string[], name: string) => line[header.indexOf(name)];
    const adaLine = lines.find((l) => l[0]!.startsWith("ada-"))!;
    const bobLine = lines.find((l) => l[0]!.startsWith("bob-"))!;
    expect(col(adaLine, `${CLASS_LAB}/greeting: points`)).toBe("1");
    expect(col(adaLine, `${CLASS_LAB}/greeting: attempts`)).toBe("2");
    expect(col(bobLine, `${CLASS_LAB}/greeting: points`)).toBe("0");
  });
});
