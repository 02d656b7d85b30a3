// Starts a real Berth (orchestrator + web app) as a child process for the browser tests, on a port
// and a database of its own, and stops it. Restarting it keeps the database and the sandboxes.
import { test } from "@playwright/test";
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createNamespacesDriver } from "@berth/sandbox";
import { freshDataDir } from "../../apps/orchestrator/test/fresh-data-dir.js";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The administrator every test Berth is started with (BERTH_ADMIN_EMAIL / BERTH_ADMIN_PASSWORD). */
export const ADMIN = { email: "admin@example.org", password: "e2e administrator password" };

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

export interface Berth {
  url: string;
  /** Prefix of this orchestrator's sandbox ids (BERTH_INSTANCE). */
  instance: string;
  /** The orchestrator's process id (tsx runs it in a child of this one: see orchestratorPid). */
  pid(): number;
  dataDir: string;
  log: string[];
  /** Stops the orchestrator; with destroySandboxes, also this instance's sandboxes (they outlive it otherwise). */
  stop(opts?: { destroySandboxes?: boolean }): Promise<void>;
  restart(): Promise<void>;
}

export async function startBerth(env: Record<string, string> = {}): Promise<Berth> {
  const port = await freePort();
  // A migrated database is copied in (fresh-data-dir.ts): a start skips the Prisma CLI's 2-3 s.
  const dataDir = await freshDataDir("berth-e2e-");
  const url = `http://localhost:${port}`;
  const log: string[] = [];
  let child: ChildProcess | undefined;

  const instance = `e2e${port}`;
  const launch = async () => {
    child = spawn(path.join(ROOT, "node_modules/.bin/tsx"), ["apps/orchestrator/src/main.ts"], {
      cwd: ROOT,
      env: {
        ...process.env, PORT: String(port), HOST: "127.0.0.1", BERTH_DATA_DIR: dataDir, BERTH_INSTANCE: instance, LOG_LEVEL: "warn",
        // Every learner of a run signs up from 127.0.0.1: lift the per-address sign-up throttle
        // (a spec that tests it passes its own), and make the administrator from the console.
        BERTH_SIGNUPS_PER_IP_HOUR: "100000",
        BERTH_ADMIN_EMAIL: ADMIN.email, BERTH_ADMIN_PASSWORD: ADMIN.password,
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const keep = (b: Buffer) => {
      log.push(b.toString("utf8"));
      if (log.length > 500) log.shift();
    };
    child.stdout!.on("data", keep);
    child.stderr!.on("data", keep);
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`Berth exited early (${child.exitCode}):\n${log.join("")}`);
      try {
        const res = await fetch(`${url}/healthz`);
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`Berth did not answer within 120 s:\n${log.join("")}`);
  };

  const stopProcess = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      c.kill("SIGTERM");
      setTimeout(() => c.kill("SIGKILL"), 15_000).unref();
    });
  };
  const stop = async (opts: { destroySandboxes?: boolean } = {}) => {
    await stopProcess();
    if (!opts.destroySandboxes) return;
    const driver = createNamespacesDriver();
    for (const sb of await driver.list()) if (sb.id.startsWith(`${instance}-`)) await driver.destroy(sb.id);
  };

  await launch();
  return { url, instance, dataDir, log, pid: () => child!.pid!, stop, restart: async () => { await stopProcess(); await launch(); } };
}

/**
 * A Berth for the whole spec file: started before its first test, stopped (with its sandboxes)
 * after its last. The object answers as the running Berth does, from inside a test or hook.
 */
export function useBerth(env: Record<string, string> = {}): Berth {
  let running: Berth | undefined;
  test.beforeAll(async () => {
    running = await startBerth(env);
  });
  test.afterAll(async () => {
    await running?.stop({ destroySandboxes: true });
  });
  return new Proxy({} as Berth, {
    get(_target, key) {
      if (!running) throw new Error("Berth is not running yet: use it inside a test or a hook");
      const value = Reflect.get(running, key);
      return typeof value === "function" ? value.bind(running) : value;
    },
  });
}
