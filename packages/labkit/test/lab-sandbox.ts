// The sandboxes labkit's tests prove labs in: @berth/sandbox's default driver (namespaces), the one
// `labkit test` and the orchestrator use, prepared once per test process: the system tier keeps
// this module loaded from file to file (the first prepare() on a machine builds the base root
// filesystem; later ones take about a second). As root.
import type { SandboxDriver } from "@berth/sandbox";
import { createSandboxRunner, namespacesDriver, type DisposableRunner } from "../src/runners/index.js";

let prepared: Promise<SandboxDriver> | undefined;

export function labDriver(): Promise<SandboxDriver> {
  prepared ??= (async () => {
    const driver = namespacesDriver();
    await driver.prepare();
    return driver;
  })();
  return prepared;
}

/** A fresh sandbox (its id starts labkit-<name>); the caller disposes it. */
export async function labSandbox(name: string): Promise<DisposableRunner> {
  return createSandboxRunner(await labDriver(), name);
}

/** Runs `fn` in a fresh sandbox and destroys the sandbox after, whatever happens. */
export async function inLabSandbox<T>(name: string, fn: (runner: DisposableRunner) => Promise<T>): Promise<T> {
  const runner = await labSandbox(name);
  try {
    return await fn(runner);
  } finally {
    await runner.dispose();
  }
}
