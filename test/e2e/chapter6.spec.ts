// Chapter 6 (labs/cmd-and-entrypoint) walked end to end as a learner walks it, in real Chromium
// against a real Berth, a real sandbox and its real docker engine: sign up, open the lab, go step
// by step with the player's Next button, write the Dockerfiles in the editor, type every task in
// the terminal, press each check and see it pass, answer the quizzes (once wrong), and finish: the
// completion view with the score, and the catalog showing the lab done. Run buttons are pressed
// only for the lab's demonstrations, never for a task's answer.
import { expect, test, type Page } from "@playwright/test";
import { useBerth } from "./berth";
import { signUp, uniqueEmail, waitForPrompt, waitForText } from "./helpers";
import { labWalk } from "./lab-walk";

const LAB = "cmd-and-entrypoint";
const STEPS = 7;

// The default labs directory (labs/): the lab as it ships.
const berth = useBerth({ BERTH_WARM_POOL: "0" });
const { type, passCheck, next, demo } = labWalk(() => berth.url, LAB, STEPS);

// One long test: a failure leaves a screenshot of the page where the learner stood.
test.use({ screenshot: "only-on-failure" });

/** Creates a file in the editor tab by typing it, saves it with Ctrl+S, and goes back to the terminal. */
async function writeInEditor(page: Page, relPath: string, text: string): Promise<void> {
  await page.getByTestId("editor-tab").click();
  // Typed at once, as a quick learner would: a name given before the first listing has told the
  // editor the home folder waits for it (it was once dropped without a word).
  await page.getByTestId("editor-new-name").fill(relPath);
  await page.getByTestId("editor-new-name").press("Enter");
  await expect(page.getByTestId("editor-path")).toContainText(`/root/${relPath}`);
  await page.locator(".monaco-editor .view-lines").click();
  await page.keyboard.type(text);
  // Monaco closes brackets and quotes as they are typed: what it holds must still be what was typed.
  await expect
    .poll(() =>
      page.evaluate(() =>
        (window as unknown as { monaco: { editor: { getModels(): { getValue(): string }[] } } }).monaco.editor.getModels().map((m) => m.getValue()),
      ),
    )
    .toContain(text);
  await page.keyboard.press("Control+s");
  await expect(page.getByTestId("editor-notice")).toHaveText(`Saved /root/${relPath}`);
  await page.getByTestId("terminal-tab").click();
}

test("a learner walks CMD and ENTRYPOINT from sign-up to the finished lab", async ({ page }) => {
  test.setTimeout(600_000);
  await signUp(page, berth.url, uniqueEmail("chapter6"), "/");
  await expect(page.getByTestId(`lab-state-${LAB}`)).toHaveAttribute("data-status", "not-started");
  await page.getByTestId(`lab-card-${LAB}`).click();
  await page.waitForURL(`**/labs/${LAB}`);
  await waitForPrompt(page);
  await expect(page.getByTestId("step-count")).toHaveText(`Step 1 of ${STEPS}`);

  await test.step("1 defaults: the demonstrations, the quiz wrong then right", async () => {
    await expect(demo(page, "defaults").first()).toBeEnabled({ timeout: 60_000 });
    await demo(page, "defaults").nth(0).click();
    await waitForText(page, /^Entrypoint=null {2}Cmd=\["sh"\]$/m, 60_000);
    await waitForText(page, /^Entrypoint=null {2}Cmd=\["bash"\]$/m, 60_000);
    await demo(page, "defaults").nth(1).click();
    await waitForText(page, /^not a shell this time$/m, 60_000);

    const quiz = page.getByTestId("quiz-defaults-quiz");
    await quiz.getByRole("radio", { name: "sh ls /etc", exact: true }).check();
    await page.getByTestId("quiz-submit-defaults-quiz").click();
    await expect(page.getByTestId("quiz-result-defaults-quiz")).toHaveAttribute("data-passed", "false");
    await quiz.getByRole("radio", { name: "ls /etc", exact: true }).check();
    await page.getByTestId("quiz-submit-defaults-quiz").click();
    await expect(page.getByTestId("quiz-result-defaults-quiz")).toHaveAttribute("data-passed", "true");
    await expect(page.getByTestId("quiz-result-defaults-quiz")).toHaveAttribute("data-attempt", "2");
  });

  let who = "";
  await test.step("2 cmd: a Dockerfile with CMD in the editor, built in the terminal", async () => {
    await next(page, "cmd", 2);
    // The learner's own word, as the page shows it (it differs per learner).
    const text = await page.getByTestId("step-cmd").innerText();
    who = /hello, ([a-z0-9-]+)/.exec(text)?.[1] ?? "";
    expect(who, "the step shows the greeting with the learner's word").toMatch(/^[a-z0-9-]+$/);
    await writeInEditor(page, "greeter/Dockerfile", `FROM busybox\nCMD ["echo", "hello, ${who}"]\n`);
    await type(page, "cd /root/greeter && docker build -t greeter . && docker run --rm greeter");
    await waitForText(page, new RegExp(`^hello, ${who}$`, "m"));
    await passCheck(page, "greeter-cmd");
  });

  await test.step("3 override: replace CMD at run time", async () => {
    await next(page, "override", 3);
    await demo(page, "override").first().click();
    await waitForText(page, /^something else entirely$/m, 60_000);
    await type(page, "docker run --name when greeter date");
    await type(page, "docker logs when");
    await passCheck(page, "when-override");
  });

  await test.step("4 entrypoint: counter with ENTRYPOINT and CMD", async () => {
    await next(page, "entrypoint", 4);
    await writeInEditor(page, "counter/Dockerfile", `FROM busybox\nENTRYPOINT ["seq"]\nCMD ["3"]\n`);
    await type(page, "docker build -t counter /root/counter && docker run --rm counter && docker run --rm counter 7");
    await waitForText(page, /^7$/m);
    await passCheck(page, "counter-entrypoint");
  });

  await test.step("5 override-entrypoint: peek with --entrypoint", async () => {
    await next(page, "override-entrypoint", 5);
    await demo(page, "override-entrypoint").first().click();
    await waitForText(page, /^counter's seq is not running now$/m, 60_000);
    await type(page, "docker run --name peek --entrypoint ls counter /bin");
    await passCheck(page, "peek-entrypoint");
  });

  await test.step("6 signals: the shell form's slow stop, then a graceful exec form", async () => {
    await next(page, "signals", 6);
    // The demonstration waits out docker stop's ten seconds.
    await demo(page, "signals").first().click();
    await waitForText(page, /^stubborn: Exited \(137\)/m, 180_000);
    await writeInEditor(page, "signals/Dockerfile", `FROM debian:bookworm\nCOPY serve.sh /usr/local/bin/serve\nCMD ["/usr/local/bin/serve"]\n`);
    await type(page, "cd /root/signals && docker build -t graceful . && docker run -d --name graceful graceful && sleep 1 && time docker stop graceful", 180_000);
    await passCheck(page, "graceful-stop");
  });

  await test.step("7 check-yourself: the closing quiz, and the lab is complete", async () => {
    await next(page, "check-yourself", 7);
    const quiz = page.getByTestId("quiz-cmd-entrypoint-quiz");
    await quiz.getByRole("radio", { name: "ping -c 2 example.org", exact: true }).check();
    await quiz.getByRole("checkbox", { name: 'CMD nginx -g "daemon off;"', exact: true }).check();
    await quiz.getByRole("checkbox", { name: "ENTRYPOINT nginx", exact: true }).check();
    await quiz.getByRole("textbox").fill("SIGTERM");
    await quiz.getByRole("radio", { name: "It is dropped: sh starts with no arguments", exact: true }).check();
    await page.getByTestId("quiz-submit-cmd-entrypoint-quiz").click();
    await expect(page.getByTestId("quiz-result-cmd-entrypoint-quiz")).toHaveAttribute("data-passed", "true");

    const done = page.getByTestId("completion");
    await expect(done).toBeVisible();
    const max = await page.getByTestId("score").getAttribute("data-max-score");
    expect(Number(max)).toBeGreaterThan(0);
    // No hint, no solution: every point.
    await expect(page.getByTestId("final-score")).toHaveText(`${max} / ${max}`);
    await expect(done).toContainText("entrypoint + command");
    await expect(page.getByTestId("next-lab")).toHaveAttribute("href", "/labs/copying-files");
  });

  await page.goto(`${berth.url}/`);
  await expect(page.getByTestId(`lab-state-${LAB}`)).toHaveAttribute("data-status", "done");
});
