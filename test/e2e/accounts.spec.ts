// Accounts in real Chromium: the first administrator comes from the one-time link Berth prints on
// its console (never from the first sign-up), the link works once, and the sign-up form signs in
// by itself right after the server's "account ready" (which is the same for a taken email).
import { expect, test } from "@playwright/test";
import { useBerth } from "./berth.js";
import { signUp, uniqueEmail } from "./helpers.js";

  // No BERTH_ADMIN_*: a fresh install with nobody in charge yet.
const berth = useBerth({ BERTH_ADMIN_EMAIL: "", BERTH_ADMIN_PASSWORD: "" });

test("the console's one-time link makes the administrator, once; the first sign-up is a learner", async ({ browser }) => {
  const link = /(http:\/\/\S+\/setup#[A-Za-z0-9_-]+)/.exec(berth.log.join(""))?.[1];
  expect(link, "Berth printed a setup link").toBeTruthy();

  // A stranger who signs up first gets a learner account, nothing more.
  const stranger = await browser.newContext();
  const strangerPage = await stranger.newPage();
  await signUp(strangerPage, berth.url, uniqueEmail("stranger"));
  expect((await (await strangerPage.request.get(`${berth.url}/api/me`)).json()).user.role).toBe("learner");

  // The operator opens the printed link and chooses the administrator's email and password.
  const operator = await browser.newContext();
  const page = await operator.newPage();
  await page.goto(link!);
  const form = page.getByTestId("setup-form");
  await form.getByLabel("Email").fill("owner@example.org");
  await form.getByLabel("Password").fill("the owner's long password");
  await form.locator("button[type=submit]").click();
  await page.waitForURL((url) => url.pathname === "/");
  expect(page.url()).not.toContain("#"); // the token left the address bar
  expect((await (await page.request.get(`${berth.url}/api/me`)).json()).user).toMatchObject({ email: "owner@example.org", role: "admin" });

  // The same link again (the stranger found it in a history): refused, with a message that says why.
  await strangerPage.goto(link!);
  const again = strangerPage.getByTestId("setup-form");
  await again.getByLabel("Email").fill("stranger-admin@example.org");
  await again.getByLabel("Password").fill("a long enough password");
  await again.locator("button[type=submit]").click();
  await expect(strangerPage.getByTestId("form-error")).toContainText("setup link is not valid");
  expect((await (await strangerPage.request.get(`${berth.url}/api/me`)).json()).user.role).toBe("learner");
  await stranger.close();
  await operator.close();
});

test("signing up with a taken email says to sign in instead, after the same answer from the server", async ({ page }) => {
  const email = uniqueEmail("twice");
  await signUp(page, berth.url, email);
  await page.context().clearCookies();
  await page.goto(`${berth.url}/signup`);
  const form = page.getByTestId("signup-form");
  await form.getByLabel("Email").fill(email);
  await form.getByLabel("Password").fill("a different long password");
  await form.locator("button[type=submit]").click();
  await expect(page.getByTestId("form-error")).toContainText("already has an account");
  expect((await page.request.get(`${berth.url}/api/me`)).status()).toBe(401);
});
