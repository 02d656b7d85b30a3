// The walking skeleton, as a learner lives it: sign up, open a lab, a shell in their own sandbox,
// run a code block, fail a check with its message, do the step, pass, reload and find the same
// shell with its screen and the progress kept; then the same after a restart of the orchestrator.
import { expect, test } from "@playwright/test";
import { useBerth } from "./berth.js";
import { openLabAsNewLearner, signUp, terminalText, typeCommand, uniqueEmail, waitForPrompt, waitForText } from "./helpers.js";

const LAB = "namespaces-by-hand";
const berth = useBerth();

test("a learner works through a step, and a reload or a server restart loses nothing", async ({ page }) => {
  await signUp(page, berth.url, uniqueEmail("learner"));

  // The catalog lists the lab; open it.
  await page.getByTestId(`lab-card-${LAB}`).click();
  await page.waitForURL(`**/labs/${LAB}`);
  await waitForPrompt(page);
  await expect(page.getByTestId("sandbox-phase")).toHaveText(/ready/i);

  // The shell is inside a sandbox with a hostname of its own.
  await typeCommand(page, "echo host=$(hostname) shell=$$");
  const first = await waitForText(page, /host=berth-[0-9a-f]{6} shell=\d+/);
  const [, hostname, shellPid] = /host=(berth-[0-9a-f]{6}) shell=(\d+)/.exec(first)!;

  // Check before doing anything: it fails with the script's own message.
  await page.getByTestId("check-button-uts-hostname").click();
  const verdict = page.getByTestId("check-result-uts-hostname");
  await expect(verdict).toHaveAttribute("data-passed", "false");
  await expect(verdict).toContainText("No running process has a UTS namespace of its own");

  // A hint, on request.
  await page.getByTestId("hint-button-uts-hostname").click();
  await expect(page.getByTestId("hint-uts-hostname")).toContainText("unshare --uts");

  // Run the step's code blocks with their Run buttons: an inner shell in a new UTS namespace,
  // renamed. Its output shows in the terminal.
  const run = page.getByTestId("run-button");
  await run.nth(0).click();
  await page.waitForTimeout(500);
  await run.nth(1).click();
  await waitForText(page, /^berth-lab$/m);

  // Now the check passes and the score moves.
  await page.getByTestId("check-button-uts-hostname").click();
  await expect(verdict).toHaveAttribute("data-passed", "true");
  await expect(page.getByTestId("score")).toHaveAttribute("data-score", "2");

  // Reload: the same shell (the inner one, still renamed), its screen restored, progress kept.
  await typeCommand(page, "echo before-reload-$$");
  await waitForText(page, /^before-reload-\d+$/m);
  await page.reload();
  await waitForText(page, /^before-reload-\d+$/m);
  await expect(page.getByTestId("check-result-uts-hostname")).toHaveAttribute("data-passed", "true");
  await typeCommand(page, "echo after-reload host=$(hostname)");
  await waitForText(page, /^after-reload host=berth-lab$/m);

  // Leave the inner shell: back in the sandbox's first shell, the same process as before.
  await typeCommand(page, "exit");
  await typeCommand(page, "echo again host=$(hostname) shell=$$");
  await waitForText(page, new RegExp(`^again host=${hostname} shell=${shellPid}$`, "m"));

  // Restart the orchestrator: the sandbox and its shell survive, and so do the grades.
  await berth.restart();
  await page.reload();
  await waitForText(page, new RegExp(`^again host=${hostname} shell=${shellPid}$`, "m"), 60_000);
  await typeCommand(page, "echo restarted shell=$$");
  await waitForText(page, new RegExp(`^restarted shell=${shellPid}$`, "m"));
  await expect(page.getByTestId("check-result-uts-hostname")).toHaveAttribute("data-passed", "true");
  await expect(page.getByTestId("score")).toHaveAttribute("data-score", "2");
});

test("two learners at once get separate sandboxes", async ({ browser }) => {
  const { context: a, page: pa } = await openLabAsNewLearner(browser, berth.url, LAB, "alice");
  const { context: b, page: pb } = await openLabAsNewLearner(browser, berth.url, LAB, "bob");

  await typeCommand(pa, "echo secret > /root/alice.txt; setsid -f sleep 4242; echo A=$(hostname)");
  await typeCommand(pb, "echo B=$(hostname)");
  const ha = /^A=(\S+)$/m.exec(await waitForText(pa, /^A=\S+$/m))![1];
  const hb = /^B=(\S+)$/m.exec(await waitForText(pb, /^B=\S+$/m))![1];
  expect(ha).not.toBe(hb);

  // Bob sees neither Alice's file nor her process.
  await typeCommand(pb, "test -e /root/alice.txt && echo FILE-VISIBLE || echo FILE-ABSENT; pgrep -f 'sleep 4242' >/dev/null && echo PROC-VISIBLE || echo PROC-ABSENT");
  await waitForText(pb, /^PROC-(ABSENT|VISIBLE)$/m);
  const text = await terminalText(pb);
  expect(text).toMatch(/^FILE-ABSENT$/m);
  expect(text).toMatch(/^PROC-ABSENT$/m);
  // …and Alice still sees both.
  await typeCommand(pa, "cat /root/alice.txt; pgrep -f 'sleep 4242' >/dev/null && echo PROC-HERE");
  await waitForText(pa, /^PROC-HERE$/m);

  await a.close();
  await b.close();
});

test("losing the network for a while brings back the same shell and its screen", async ({ browser }) => {
  const { context, page } = await openLabAsNewLearner(browser, berth.url, LAB, "commuter");
  await typeCommand(page, "echo before-blip shell=$$");
  const before = await waitForText(page, /^before-blip shell=\d+$/m);
  const shellPid = /^before-blip shell=(\d+)$/m.exec(before)![1];

  await context.setOffline(true);
  await expect(page.getByTestId("sandbox-phase")).not.toHaveText(/ready/i, { timeout: 30_000 });
  await page.waitForTimeout(3000);
  await context.setOffline(false);
  await expect(page.getByTestId("sandbox-phase")).toHaveText(/ready/i, { timeout: 30_000 });

  // The screen came back (replayed), and it is the same shell.
  expect(await terminalText(page)).toMatch(/^before-blip shell=\d+$/m);
  await typeCommand(page, "echo after-blip shell=$$");
  await waitForText(page, new RegExp(`^after-blip shell=${shellPid}$`, "m"));
  await context.close();
});

test("the learner's terminal runs real docker commands against the sandbox's own engine", async ({ browser }) => {
  const { context, page } = await openLabAsNewLearner(browser, berth.url, LAB, "docker");
  // The engine starts beside the agent; wait until it answers, then run a container. The typed
  // command shows $((6*7)); only the container's output shows 42.
  await typeCommand(page, "until docker info >/dev/null 2>&1; do sleep 0.2; done; docker run --rm busybox echo hello-from-$((6*7))");
  await waitForText(page, /^hello-from-42$/m, 60_000);
  await typeCommand(page, "docker run -d --name ticktock --label owner=alice busybox sleep 600 >/dev/null; docker ps --filter label=owner=alice --format 'running={{.Names}}'");
  await waitForText(page, /^running=ticktock$/m);
  // An interactive Debian container, offline: the image ships with the sandbox.
  await typeCommand(page, "docker run -it --rm debian:bookworm bash");
  await waitForText(page, /root@[0-9a-f]{12}:\/# $/m, 60_000);
  await typeCommand(page, "echo debian=$(cat /etc/debian_version); exit");
  await waitForText(page, /^debian=12\.\d+\s*$/m);
  await context.close();
});
