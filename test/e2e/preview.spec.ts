// The web preview as a learner uses it: start a web server in the terminal, open the Preview tab,
// see the page in the frame, its stylesheet and script included, while the page itself cannot
// reach Berth's API as the learner; then a container's published port the same way.
import { expect, test } from "@playwright/test";
import { useBerth } from "./berth.js";
import { openLabAsNewLearner, typeCommand, waitForText } from "./helpers.js";

const LAB = "namespaces-by-hand";
const berth = useBerth();

test("a learner previews the web server they started in their sandbox", async ({ browser }) => {
  const { context, page } = await openLabAsNewLearner(browser, berth.url, LAB, "previewer");

  // A page with a stylesheet (a second request, which carries no cookie from the sandboxed frame),
  // a script that runs, and one that tries Berth's API with the learner's session.
  await typeCommand(
    page,
    `mkdir -p ~/site && cd ~/site && echo 'h1 { color: rgb(0, 128, 0) }' > style.css && printf '%s\\n' '<link rel="stylesheet" href="style.css">' '<h1 id="t">Hello from my sandbox</h1>' '<p id="js">no script</p><p id="api">api=pending</p>' '<script>document.getElementById("js").textContent = "script ran"; fetch("/api/me").then(r => document.getElementById("api").textContent = "api=" + r.status, () => document.getElementById("api").textContent = "api=blocked")</script>' > index.html && busybox httpd -f -p 8080 -h ~/site`,
  );

  await page.getByTestId("preview-tab").click();
  await expect(page.getByTestId("preview-port")).toHaveValue("8080");
  await page.getByTestId("preview-open").click();
  const frame = page.frameLocator('[data-testid="preview-frame"]');
  await expect(frame.locator("#t")).toHaveText("Hello from my sandbox");
  await expect(frame.locator("#t")).toHaveCSS("color", "rgb(0, 128, 0)");
  await expect(frame.locator("#js")).toHaveText("script ran");
  // The page runs in an opaque origin: its request to /api/me goes without the session (or is
  // refused outright by CORS), never as the learner.
  await expect(frame.locator("#api")).toHaveText(/^api=(blocked|401)$/);

  // The same preview in a tab of its own.
  await expect(page.getByTestId("preview-new-tab")).toHaveAttribute("href", `/preview/${LAB}/8080/`);
  const [tab] = await Promise.all([context.waitForEvent("page"), page.getByTestId("preview-new-tab").click()]);
  await expect(tab.locator("#t")).toHaveText("Hello from my sandbox");
  await tab.close();

  // The terminal tab still holds the same shell, with the server in the foreground. Stop it, and
  // publish a container's port instead: the same path serves it, since the engine's -p listens
  // in the sandbox's network namespace.
  await page.getByTestId("terminal-tab").click();
  await expect(page.getByTestId("sandbox-phase")).toHaveText(/ready/i);
  await page.getByTestId("terminal").click();
  await page.keyboard.press("Control+C");
  await typeCommand(
    page,
    `until docker info >/dev/null 2>&1; do sleep 0.2; done; docker run -d -p 8081:80 busybox sh -c 'mkdir /www && echo "<h1 id=c>Hello from a container</h1>" > /www/index.html && exec httpd -f -p 80 -h /www' >/dev/null && echo published-$((40+2))`,
  );
  await waitForText(page, /^published-42$/m, 90_000);
  await page.getByTestId("preview-tab").click();
  await page.getByTestId("preview-port").fill("8081");
  await page.getByTestId("preview-open").click();
  await expect(frame.locator("#c")).toHaveText("Hello from a container");
  await context.close();
});
