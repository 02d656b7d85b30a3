// Chapter 18 (labs/copy-on-write) walked end to end as a learner walks it, in real Chromium against
// a real Berth, a real sandbox and its real docker engine: sign up, open the lab, build the
// playground with its Run button, then type every task in the terminal (the overlay mount, a
// copy-up, a whiteout, an opaque directory, a container's own upper layer), press each check and
// see it pass, watch the demonstrations, answer the quiz (once wrong), and finish: the completion
// view with the score, and the catalog showing the lab done.
import { expect, test, type Page } from "@playwright/test";
import { useBerth } from "./berth";
import { signUp, uniqueEmail, waitForPrompt, waitForText } from "./helpers";
import { labWalk } from "./lab-walk";

const LAB = "copy-on-write";
const STEPS = 8;

// The default labs directory (labs/): the lab as it ships.
const berth = useBerth({ BERTH_WARM_POOL: "0" });
const { type, passCheck, next, demo } = labWalk(() => berth.url, LAB, STEPS);

// One long test: a failure leaves a screenshot of the page where the learner stood.
test.use({ screenshot: "only-on-failure" });

test("a learner walks copy-on-write from sign-up to the finished lab", async ({ page }) => {
  test.setTimeout(600_000);
  await signUp(page, berth.url, uniqueEmail("chapter18"), "/");
  await expect(page.getByTestId(`lab-state-${LAB}`)).toHaveAttribute("data-status", "not-started");
  await page.getByTestId(`lab-card-${LAB}`).click();
  await page.waitForURL(`**/labs/${LAB}`);
  await waitForPrompt(page);
  await expect(page.getByTestId("step-count")).toHaveText(`Step 1 of ${STEPS}`);

  await test.step("1 playground: its Run button builds lower/ on a tmpfs", async () => {
    await expect(demo(page, "playground").first()).toBeEnabled({ timeout: 60_000 });
    await demo(page, "playground").first().click();
    await waitForText(page, /^\/root\/cow\/work$/m, 60_000);
    await waitForText(page, /^\/root\/cow\/lower\/config\/b\.conf$/m);
  });

  await test.step("2 mount: the overlay typed by hand", async () => {
    await next(page, "mount", 2);
    await type(page, "cd /root/cow && mount -t overlay overlay -o lowerdir=lower,upperdir=upper,workdir=work,userxattr merged && ls merged");
    await waitForText(page, /^config\s+greeting\.txt\s+old-notes\.txt$/m);
    await passCheck(page, "overlay-mounted");
  });

  let word = "";
  await test.step("3 copy-up: a line appended through merged/", async () => {
    await next(page, "copy-up", 3);
    // The learner's own word, as the page shows it (it differs per learner).
    const text = await page.getByTestId("step-copy-up").innerText();
    word = /add a line saying ([a-z0-9-]+) to the end/.exec(text)?.[1] ?? "";
    expect(word, "the step names the learner's word").toMatch(/^[a-z0-9-]+$/);
    await type(page, `echo ${word} >> /root/cow/merged/greeting.txt && wc -l /root/cow/lower/greeting.txt /root/cow/upper/greeting.txt`);
    await waitForText(page, /^\s*1 \/root\/cow\/lower\/greeting\.txt$/m);
    await waitForText(page, /^\s*2 \/root\/cow\/upper\/greeting\.txt$/m);
    await passCheck(page, "copied-up");
  });

  await test.step("4 whiteout: a lower file deleted through merged/", async () => {
    await next(page, "whiteout", 4);
    await type(page, "rm /root/cow/merged/old-notes.txt && stat -c '%F %t:%T' /root/cow/upper/old-notes.txt");
    await waitForText(page, /^character special file 0:0$/m);
    await passCheck(page, "whiteout");
  });

  await test.step("5 opaque: config replaced by a new directory", async () => {
    await next(page, "opaque", 5);
    await type(page, `rm -r /root/cow/merged/config && mkdir /root/cow/merged/config && touch /root/cow/merged/config/${word}.conf && ls /root/cow/merged/config`);
    await type(page, "getfattr -d -m - /root/cow/upper/config");
    await waitForText(page, /^user\.overlay\.opaque="y"$/m);
    await passCheck(page, "opaque");
  });

  await test.step("6 container: the same marks in a container's upper layer", async () => {
    await next(page, "container", 6);
    await type(page, `docker run --name cow-${word} debian:bookworm sh -c 'rm /etc/issue.net; echo changed >> /etc/motd' && docker diff cow-${word}`, 180_000);
    await waitForText(page, /^D \/etc\/issue\.net$/m);
    await passCheck(page, "container-upper");
  });

  await test.step("7 shared: two containers, one lowerdir (demonstration)", async () => {
    await next(page, "shared", 7);
    await demo(page, "shared").first().click();
    await waitForText(page, /^twin-b upper=\//m, 120_000);
  });

  await test.step("8 volumes: the demonstration, the quiz wrong then right, and the lab is complete", async () => {
    await next(page, "volumes", 8);
    await demo(page, "volumes").first().click();
    await waitForText(page, /^A \/root\/file$/m, 120_000);

    const quiz = page.getByTestId("quiz-cow-quiz");
    const submit = page.getByTestId("quiz-submit-cow-quiz");
    const result = page.getByTestId("quiz-result-cow-quiz");
    await quiz.getByRole("radio", { name: "the one new line", exact: true }).check();
    await quiz.getByRole("radio", { name: "a 0/0 character device in the upper layer that hides a lower file of the same name", exact: true }).check();
    await quiz.getByRole("textbox").fill("an extended attribute");
    await quiz.getByRole("checkbox", { name: "writes to a volume do not go through copy-up", exact: true }).check();
    await quiz.getByRole("checkbox", { name: "the data outlives the container", exact: true }).check();
    await submit.click();
    await expect(result).toHaveAttribute("data-passed", "false");
    await expect(page.getByTestId("completion")).toHaveCount(0);

    await quiz.getByRole("radio", { name: "a copy of the whole 200 MB file, with the line added", exact: true }).check();
    await submit.click();
    await expect(result).toHaveAttribute("data-passed", "true");
    await expect(result).toHaveAttribute("data-attempt", "2");

    const done = page.getByTestId("completion");
    await expect(done).toBeVisible();
    const max = await page.getByTestId("score").getAttribute("data-max-score");
    expect(Number(max)).toBeGreaterThan(0);
    // No hint, no solution: every point.
    await expect(page.getByTestId("final-score")).toHaveText(`${max} / ${max}`);
    await expect(done).toContainText("Volumes are mounted over the overlay");
  });

  await page.goto(`${berth.url}/`);
  await expect(page.getByTestId(`lab-state-${LAB}`)).toHaveAttribute("data-status", "done");
});
