// The X-ray tab as a learner uses it: run a container in the terminal, see it in the X-ray with its
// namespaces (new ones against the sandbox's), its memory limit and a live usage figure that moves
// when the container allocates memory, its upper dir's new file, a link to the engine's source and
// to a chapter; and a container started while the tab shows appears without a reload (pushed).
import { expect, test, type Page } from "@playwright/test";
import { useBerth } from "./berth.js";
import { openLabAsNewLearner, typeCommand, waitForText } from "./helpers.js";

const LAB = "namespaces-by-hand";
const berth = useBerth();

const MiB = 1024 * 1024;
/** "12.3 MiB" / "512 KiB" / "1.00 GiB" -> bytes. */
function bytes(text: string): number {
  const m = /([\d.]+)\s*(B|KiB|MiB|GiB)/.exec(text);
  if (!m) return NaN;
  return Number(m[1]) * { B: 1, KiB: 1024, MiB, GiB: 1024 * MiB }[m[2] as "B"];
}
const usage = async (page: Page) => bytes((await page.getByTestId("xray-memory-usage").textContent()) ?? "");

async function inTerminal(page: Page, command: string, done: RegExp): Promise<void> {
  await page.getByTestId("terminal-tab").click();
  await page.getByTestId("terminal").click();
  await typeCommand(page, command);
  await waitForText(page, done, 90_000);
}

test("a learner sees their container in the X-ray, live", async ({ browser }) => {
  const { context, page } = await openLabAsNewLearner(browser, berth.url, LAB, "xray");
  await inTerminal(page, `until docker info >/dev/null 2>&1; do sleep 0.2; done; docker run -d --name hog --memory 64m busybox sleep 600 >/dev/null && echo started-$((40+2))`, /^started-42$/m);

  await page.getByTestId("xray-tab").click();
  const box = page.getByTestId("xray-container");
  await expect(box).toHaveAttribute("data-name", "hog");
  await expect(page.getByTestId("xray-memory-limit")).toHaveText("64.0 MiB");
  // Namespaces: pid is the container's own, user is the sandbox's.
  await expect(page.getByTestId("xray-ns-pid")).toContainText("new");
  await expect(page.getByTestId("xray-ns-user")).toContainText("shared");
  // A step's link shows the engine's own lines, read-only.
  await page.getByTestId("xray-namespaces").getByTestId("xray-source-link").first().click();
  await expect(page.getByTestId("xray-source")).toContainText("packages/engine/src/runtime/shim.c#L");
  await expect(page.getByTestId("xray-source")).toContainText("unshare(flags)");
  await expect(page.getByTestId("xray-namespaces").getByRole("link", { name: /Namespaces by hand: namespaces are files/ })).toHaveAttribute("href", "/labs/namespaces-by-hand/proc-ns");
  await expect.poll(() => usage(page)).toBeGreaterThan(0);
  const before = await usage(page);

  // The container allocates 40 MiB (a file in its /dev/shm, a tmpfs charged to its cgroup) and
  // writes a file to its own layer.
  await inTerminal(page, `docker exec hog sh -c 'dd if=/dev/zero of=/dev/shm/fill bs=1M count=40 2>/dev/null; touch /made-by-test' && echo filled-$((40+2))`, /^filled-42$/m);
  await page.getByTestId("xray-tab").click();
  await expect.poll(() => usage(page), { timeout: 15_000 }).toBeGreaterThan(before + 30 * MiB);
  await expect(page.getByTestId("xray-changes")).toContainText("/made-by-test");

  // A container started while the X-ray shows appears without a reload.
  await inTerminal(page, `(sleep 3; docker run -d --name late busybox sleep 600 >/dev/null) & echo queued-$((40+2))`, /^queued-42$/m);
  await page.getByTestId("xray-tab").click();
  const late = page.getByTestId("xray-select").locator("option", { hasText: "late" });
  await expect(late).toHaveCount(1, { timeout: 20_000 });
  await page.getByTestId("xray-select").selectOption((await late.getAttribute("value"))!);
  await expect(box).toHaveAttribute("data-name", "late");
  // Created first, then running: StartedAt is set once it runs. Seen in the page, at each frame.
  const seenAt = await (
    await page.waitForFunction(
      () => (document.querySelector('[data-testid="xray-container"]')?.getAttribute("data-started-at")?.startsWith("20") ? Date.now() : null),
      null,
      { polling: "raf", timeout: 20_000 },
    )
  ).jsonValue();
  const startedAt = Date.parse((await box.getAttribute("data-started-at"))!);
  // A figure, not a verdict (timings are benchmarks' business): how long after its start it showed.
  console.log(`xray: "late" shown running ${(seenAt ?? Number.NaN) - startedAt} ms after its StartedAt`);
  await context.close();
});
