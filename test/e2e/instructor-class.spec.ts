// An instructor runs a class, in real Chromium against a real Berth with real sandboxes, in three
// browser contexts: the instructor and two learners. The admin (from the console) makes the
// instructor on the accounts page; the instructor makes a cohort with a lab from labs/ and an
// invite link; both learners join by it; the board changes while one learner works (a check
// failing three times puts them first as stuck, a pass clears it); the instructor mirrors that
// learner's terminal (the learner is told), messages the cohort and one learner, reads the
// learner's events and downloads the grade CSV, whose rows are checked.
import { readFileSync } from "node:fs";
import { expect, test, type Browser, type BrowserContext, type Page } from "@playwright/test";
import { ADMIN, startBerth, type Berth } from "./berth";
import { signUp, terminalText, typeCommand, uniqueEmail, waitForPrompt, waitForText } from "./helpers";

const LAB = "first-containers";
let berth: Berth;
const contexts: BrowserContext[] = [];

test.use({ screenshot: "only-on-failure" });

test.beforeAll(async () => {
  // The board rereads itself every 5 s here (30 s by default), so the join shows up quickly.
  berth = await startBerth({ BERTH_WARM_POOL: "0", BERTH_BOARD_REFRESH_SECONDS: "5" });
});

test.afterAll(async () => {
  for (const c of contexts) await c.close();
  await berth?.stop({ destroySandboxes: true });
});

async function newPage(browser: Browser): Promise<Page> {
  const context = await browser.newContext();
  contexts.push(context);
  return context.newPage();
}

async function signIn(page: Page, email: string, password: string, next = "/"): Promise<void> {
  await page.goto(`${berth.url}/signin?next=${encodeURIComponent(next)}`);
  const form = page.getByTestId("signin-form");
  await form.getByLabel("Email").fill(email);
  await form.getByLabel("Password").fill(password);
  await form.locator("button[type=submit]").click();
  await page.waitForURL((url) => url.pathname === next);
}

async function signOut(page: Page): Promise<void> {
  await page.getByTestId("signout-button").click();
  await page.waitForURL((url) => url.pathname === "/signin");
}

const myId = (page: Page) => page.evaluate(async () => ((await (await fetch("/api/me")).json()) as { user: { id: string } }).user.id);

test("an instructor runs a class: cohort, invites, live board, mirror, messages, grades", async ({ browser }) => {
  test.setTimeout(600_000);
  const instructor = await newPage(browser);
  const ada = await newPage(browser);
  const bob = await newPage(browser);

  // The instructor signs up; the admin makes them an instructor on the accounts page.
  const instEmail = uniqueEmail("instructor");
  await signUp(instructor, berth.url, instEmail, "/");
  await expect(instructor.getByTestId("nav-instructor")).toHaveCount(0);
  await instructor.goto(`${berth.url}/instructor`);
  await expect(instructor.getByTestId("staff-refused")).toContainText("learner");
  await signOut(instructor);
  await signIn(instructor, ADMIN.email, ADMIN.password, "/admin");
  await instructor.getByTestId("admin-search").fill(instEmail);
  const row = instructor.getByTestId(`admin-user-${instEmail}`);
  await row.getByTestId("make-instructor").click();
  await expect(row.getByTestId("admin-role")).toHaveText("instructor");
  await signOut(instructor);
  await signIn(instructor, instEmail, "a long enough password", "/instructor");

  // A cohort with a lab of labs/, and an invite link for two.
  await instructor.getByTestId("cohort-name").fill("Tuesday class");
  await instructor.getByTestId("cohort-create").click();
  await expect(instructor.getByTestId("cohort-title")).toHaveText("Tuesday class");
  await instructor.getByTestId(`lab-pick-${LAB}`).check();
  await instructor.getByTestId("labs-save").click();
  await expect(instructor.getByTestId("labs-status")).toHaveText("Saved.");
  await instructor.getByTestId("invite-seats").fill("2");
  await instructor.getByTestId("invite-create").click();
  const invite = await instructor.getByTestId("invite-url").inputValue();
  expect(invite).toMatch(new RegExp(`^${berth.url}/join#[\\w-]{20,}$`));
  await expect(instructor.getByTestId("board")).toBeVisible();

  // Both learners join by the link.
  for (const [page, who] of [[ada, "ada"], [bob, "bob"]] as const) {
    await signUp(page, berth.url, uniqueEmail(who), "/");
    await page.goto(invite);
    await expect(page.getByTestId("join-cohort")).toHaveText("Tuesday class");
    await page.getByTestId("join-button").click();
    await expect(page.getByTestId("join-done")).toContainText("Tuesday class");
  }
  const adaId = await myId(ada);
  const bobId = await myId(bob);
  const adaRow = instructor.getByTestId(`board-row-${adaId}`);
  const adaCell = instructor.getByTestId(`cell-${adaId}-${LAB}-hello-word`);
  await expect(adaRow).toBeVisible({ timeout: 20_000 });
  await expect(instructor.getByTestId(`board-row-${bobId}`)).toBeVisible();
  await expect(adaCell).toHaveAttribute("data-status", "untried");

  // Ada opens the lab: the board shows it open; her check fails three times: she is stuck, first.
  await ada.goto(`${berth.url}/labs/${LAB}`);
  await waitForPrompt(ada);
  await expect(instructor.getByTestId(`mirror-open-${adaId}`)).toBeEnabled({ timeout: 20_000 });
  for (let i = 1; i <= 3; i++) {
    await ada.getByTestId("check-button-hello-word").click();
    await expect(ada.getByTestId("check-result-hello-word")).toHaveAttribute("data-attempt", String(i), { timeout: 60_000 });
    await expect(ada.getByTestId("check-result-hello-word")).toHaveAttribute("data-passed", "false");
    await expect(adaCell).toHaveAttribute("data-attempts", String(i));
  }
  await expect(adaCell).toHaveAttribute("data-status", "failing");
  await expect(adaRow).toHaveAttribute("data-stuck", "yes");
  await expect(adaRow.getByTestId("stuck-reason")).toContainText("failed 3 times in a row");
  await expect(instructor.locator("[data-testid^=board-row-]").first()).toHaveAttribute("data-testid", `board-row-${adaId}`);

  // The instructor mirrors Ada's terminal; Ada is told; what she types shows in the mirror.
  await instructor.getByTestId(`mirror-open-${adaId}`).click();
  await expect(instructor.getByTestId("mirror-panel")).toHaveAttribute("data-phase", "live");
  await expect(ada.getByTestId("class-watching")).toBeVisible();
  const title = await ada.getByTestId("check-hello-word").locator(".check-title").innerText();
  const word = /printed (\S+)$/.exec(title.trim())![1]!;
  await typeCommand(ada, `docker run busybox echo ${word}; echo "mirror-$((6 * 7))"`);
  await waitForText(ada, /^mirror-42$/m, 120_000);
  await expect(instructor.getByTestId("mirror-terminal").locator(".xterm-rows")).toContainText("mirror-42");
  // Read-only: keys pressed in the mirror reach no shell.
  await instructor.getByTestId("mirror-terminal").click();
  await instructor.keyboard.type("echo from-the-instructor\n");

  // Her check passes: the cell turns, she is no longer stuck.
  await ada.getByTestId("check-button-hello-word").click();
  await expect(ada.getByTestId("check-result-hello-word")).toHaveAttribute("data-passed", "true", { timeout: 60_000 });
  await expect(adaCell).toHaveAttribute("data-status", "passed");
  await expect(adaRow).toHaveAttribute("data-stuck", "no");
  await expect(instructor.getByTestId(`score-${adaId}-${LAB}`)).toContainText("1/");
  expect(await terminalText(ada)).not.toContain("from-the-instructor");
  await instructor.getByTestId("mirror-close").click();
  await expect(ada.getByTestId("class-watching")).toHaveCount(0);

  // Messages: to everyone (Bob, on the catalog, finds it there), then to Ada alone, live in her player.
  await instructor.getByTestId("message-text").fill("Ten minutes left");
  await instructor.getByTestId("message-send").click();
  await expect(instructor.getByTestId("message-status")).toHaveText("Sent to 2 learners.");
  await expect(ada.getByTestId("class-message").filter({ hasText: "Ten minutes left" })).toBeVisible();
  await bob.goto(`${berth.url}/`);
  await expect(bob.getByTestId("class-message").filter({ hasText: "Ten minutes left" })).toBeVisible();
  await instructor.getByTestId("message-to").selectOption(adaId);
  await instructor.getByTestId("message-text").fill("<b>Nice</b> work on step 1");
  await instructor.getByTestId("message-send").click();
  const direct = ada.getByTestId("class-message").filter({ hasText: "<b>Nice</b> work on step 1" });
  await expect(direct).toContainText("To you");
  await expect(direct.locator("b")).toHaveCount(0); // shown as text, not HTML
  await bob.reload();
  await expect(bob.getByTestId("class-message")).toHaveCount(1);

  // Ada's events.
  await instructor.getByTestId(`events-open-${adaId}`).click();
  const events = instructor.getByTestId("events-list");
  await expect(events.locator("[data-kind='check.passed']")).toHaveCount(1);
  await expect(events.locator("[data-kind='check.failed']")).toHaveCount(3);
  await expect(events.locator("[data-kind='sandbox.started']")).toHaveCount(1);

  // The grade sheet: a row per learner, columns per lab and check.
  const [download] = await Promise.all([instructor.waitForEvent("download"), instructor.getByTestId("grades-link").click()]);
  expect(download.suggestedFilename()).toBe("Tuesday-class-grades.csv");
  const lines = readFileSync((await download.path())!, "utf8").trim().split("\r\n").map((l) => l.split(","));
  const header = lines[0]!;
  expect(lines).toHaveLength(3);
  const col = (line: string[], name: string) => line[header.indexOf(name)];
  const adaLine = lines.find((l) => l[0]!.startsWith("ada-"))!;
  const bobLine = lines.find((l) => l[0]!.startsWith("bob-"))!;
  expect(col(adaLine, `${LAB}/hello-word: points`)).toBe("1");
  expect(col(adaLine, `${LAB}/hello-word: attempts`)).toBe("4");
  expect(col(adaLine, `${LAB}/hello-word: solution`)).toBe("no");
  expect(col(adaLine, `${LAB}: points`)).toBe("1");
  expect(Number(col(adaLine, `${LAB}: minutes`))).toBeGreaterThanOrEqual(0);
  expect(col(bobLine, `${LAB}: attempts`)).toBe("0");
  expect(col(bobLine, `${LAB}: completed`)).toBe("no");
});
