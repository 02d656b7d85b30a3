// Getting a learner's lab ready before their terminal asks for it (Open lab → first prompt): the
// sandbox's hand-over (from the warm pool), the lab's setup, and terminal 1's shell, started at a
// stand-in size (the attach that follows resizes it and gets the screen at its own size). Two ways
// in: the socket's sandbox:prepare (gateway.ts: the player's scripts, the catalog's click) and the
// lab page's render on the web app's server (http/web-bridge.ts labPage, in this process).
// term:attach shares whatever attempt is in flight (SandboxManager.acquire and terminal do).
import { FIRST_SHELL, type PhaseReporter, type SandboxManager } from "../sandboxes/sandbox-manager.js";

/** Resolves when the sandbox and terminal 1 are ready; rejects as acquire would (the attach reports it). */
export async function prepareLabSandbox(sandboxes: SandboxManager, userId: string, labId: string, report?: PhaseReporter, signal?: AbortSignal): Promise<void> {
  const sb = await sandboxes.acquire(userId, labId, report, signal);
  await sandboxes.terminal(sb, "1", FIRST_SHELL.cols, FIRST_SHELL.rows);
}

/**
 * The same from a plain HTTP request, which has no one to tell about a place in the queue: it goes
 * ahead only when it cannot wait (the learner's sandbox is live, or a warm one is free and nobody
 * queues), and otherwise leaves the start to the terminal's attach, which reports its phases.
 */
export function prepareIfReady(sandboxes: SandboxManager, userId: string, labId: string): void {
  const live = sandboxes.find(userId, labId) !== undefined;
  if (!live && (sandboxes.pool.readyCount === 0 || sandboxes.caps.queueLength > 0)) return;
  // An aborted signal: if the caps say "wait" after all, the attempt ends at once instead of queueing.
  prepareLabSandbox(sandboxes, userId, labId, undefined, AbortSignal.abort()).catch(() => undefined);
}
