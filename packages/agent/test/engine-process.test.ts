// The agent's supervision of the container engine, with a stand-in "engine": a small node script
// that records its arguments and environment, then either serves until SIGTERM or dies at once.
// (The real engine in a real sandbox: packages/sandbox/test/engine-in-sandbox.test.ts.)
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EngineProcess } from "../src/index.js";

let dir: string;
const lines: string[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "berth-engine-proc-"));
  lines.length = 0;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in engine: logs a line, appends its pid to `starts`, and on SIGTERM writes `stopped`. */
function fakeEngine(behaviour: "serve" | "crash"): string {
  const file = join(dir, "engine.mjs");
  writeFileSync(
    file,
    `import { appendFileSync, writeFileSync } from "node:fs";
     appendFileSync(${JSON.stringify(join(dir, "starts"))}, process.pid + " " + process.argv.slice(2).join(" ") + " shim=" + process.env.BERTH_SHIM + " token=" + (process.env.BERTH_AGENT_TOKEN_FILE ?? "none") + "\\n");
     console.error("fake engine up");
     ${behaviour === "crash" ? "process.exit(3);" : `process.on("SIGTERM", () => { writeFileSync(${JSON.stringify(join(dir, "stopped"))}, "yes"); process.exit(0); }); setInterval(() => {}, 1000);`}`,
  );
  return file;
}

function engine(bundle: string, restartDelayMs = 50): EngineProcess {
  return new EngineProcess({ bundle, shim: "/opt/berth/bin/berth-shim", root: join(dir, "root"), socket: join(dir, "docker.sock"), logFile: join(dir, "log", "engine.log"), log: (l) => lines.push(l), restartDelayMs });
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out; agent log: ${lines.join(" | ")}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const starts = () => (existsSync(join(dir, "starts")) ? readFileSync(join(dir, "starts"), "utf8").trim().split("\n") : []);

describe("EngineProcess", () => {
  it("starts the engine once with its flags and only its own environment, logging to the file", async () => {
    const e = engine(fakeEngine("serve"));
    process.env.BERTH_AGENT_TOKEN_FILE = "/run/berth/token"; // the agent's own: must not leak to the engine
    try {
      e.start();
      e.start(); // a second health answer must not start a second engine
      await until(() => starts().length === 1 && readFileSync(join(dir, "log", "engine.log"), "utf8").includes("fake engine up"));
      expect(starts()[0]).toBe(`${e.pid} --root ${join(dir, "root")} --socket ${join(dir, "docker.sock")} --no-debian shim=/opt/berth/bin/berth-shim token=none`);
      await e.stop();
      expect(readFileSync(join(dir, "stopped"), "utf8")).toBe("yes"); // SIGTERM, so the engine could clean up
      expect(starts()).toHaveLength(1);
    } finally {
      delete process.env.BERTH_AGENT_TOKEN_FILE;
      await e.stop();
    }
  });

  it("restarts an engine that dies, backing off, and stops restarting once stopped", async () => {
    const e = engine(fakeEngine("crash"), 50);
    e.start();
    await until(() => starts().length >= 3);
    await e.stop();
    const n = starts().length;
    await new Promise((r) => setTimeout(r, 600));
    expect(starts()).toHaveLength(n);
    expect(lines.filter((l) => /engine: exited \(code 3\).*restarting in (50|100|200|400) ms/.test(l)).length).toBeGreaterThanOrEqual(2);
    // The delays double: 50, 100, 200 ...
    const delays = lines.map((l) => /restarting in (\d+) ms/.exec(l)?.[1]).filter(Boolean).map(Number);
    expect(delays.slice(0, 3)).toEqual([50, 100, 200].slice(0, Math.min(3, delays.length)));
  });

  it("says so, and starts nothing, when the bundle is missing", async () => {
    const e = engine(join(dir, "nope.mjs"));
    e.start();
    e.start();
    expect(e.pid).toBeUndefined();
    expect(lines.filter((l) => /nope\.mjs is missing; docker will not work/.test(l))).toHaveLength(1);
    await e.stop();
  });
});
