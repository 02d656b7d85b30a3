// What the specs that walk a whole lab as a learner share (chapter6.spec.ts, chapter18.spec.ts):
// typing a task and waiting for it to finish, pressing a check and insisting on a pass, moving to
// the next step, and finding a step's demonstration buttons.
import { expect, type Page } from "@playwright/test";
import { typeCommand, waitForText } from "./helpers";

export interface LabWalk {
  /** Types a task's command, then waits until it has finished; throws with the screen if it failed. */
  type(page: Page, command: string, timeout?: number): Promise<string>;
  /** Presses a check's button and throws with the check's own message unless it passes. */
  passCheck(page: Page, id: string): Promise<void>;
  /** Next step: the count and the URL must follow. */
  next(page: Page, stepId: string, index: number): Promise<void>;
  /** A step's Run buttons (demonstrations only: a task's answer is typed). */
  demo(page: Page, stepId: string): ReturnType<Page["getByTestId"]>;
}

/** `url` is read when a step is taken (the Berth starts in beforeAll, after the spec is loaded). */
export function labWalk(url: () => string, lab: string, steps: number): LabWalk {
  let marks = 0;
  return {
    async type(page, command, timeout = 120_000) {
      const n = ++marks;
      // The marker is computed by the shell, so the echoed command line never matches it.
      await typeCommand(page, `${command}; echo "done-$((${n} * 1))-$?"`);
      const screen = await waitForText(page, new RegExp(`^done-${n}-\\d+$`, "m"), timeout);
      const status = new RegExp(`^done-${n}-(\\d+)$`, "m").exec(screen)![1];
      if (status !== "0") throw new Error(`\`${command}\` exited ${status}; the screen ends:\n${screen.trimEnd().split("\n").slice(-25).join("\n")}`);
      return screen;
    },
    async passCheck(page, id) {
      await page.getByTestId(`check-button-${id}`).click();
      const verdict = page.getByTestId(`check-result-${id}`);
      // On failure the verdict's own message (the check script's words) is in the assertion's output.
      await expect(verdict).toHaveAttribute("data-passed", /true|false/, { timeout: 90_000 });
      if ((await verdict.getAttribute("data-passed")) !== "true") throw new Error(`check ${id} failed: ${await verdict.innerText()}`);
    },
    async next(page, stepId, index) {
      await page.getByTestId("step-next").click();
      await expect(page.getByTestId("step-count")).toHaveText(`Step ${index} of ${steps}`);
      await expect(page).toHaveURL(`${url()}/labs/${lab}/${stepId}`);
    },
    demo(page, stepId) {
      return page.getByTestId(`step-${stepId}`).getByTestId("run-button");
    },
  };
}
