// Only config.ts reads the environment: the orchestrator's libraries (sessions, cohorts, the
// sandbox driver, the logger) get what it read as options. No root, no database.
import type { IncomingMessage } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { sessionCookie } from "../src/auth/sessions.js";

const NAMES = ["BERTH_COOKIE_SECURE", "BERTH_BOARD_REFRESH_SECONDS", "LOG_LEVEL", "BERTH_STATE_DIR", "BERTH_UPLINK_SUBNET", "BERTH_QEMU_ACCEL"];
const saved = Object.fromEntries(NAMES.map((n) => [n, process.env[n]]));
afterEach(() => {
  for (const n of NAMES) {
    if (saved[n] === undefined) delete process.env[n];
    else process.env[n] = saved[n];
  }
});

function request(host: string, proto?: string): IncomingMessage {
  return { headers: { host, ...(proto ? { "x-forwarded-proto": proto } : {}) }, socket: {} } as unknown as IncomingMessage;
}

describe("config from the environment", () => {
  it("leaves the defaults when nothing is set", () => {
    for (const n of NAMES) delete process.env[n];
    const c = loadConfig();
    expect(c).toMatchObject({ logLevel: "info", cookieSecure: undefined, boardRefreshMs: undefined, sandboxOptions: {} });
  });

  it("reads the cookie flag, the board refresh, the log level and the sandbox driver's options", () => {
    Object.assign(process.env, { BERTH_COOKIE_SECURE: "0", BERTH_BOARD_REFRESH_SECONDS: "5", LOG_LEVEL: "warn", BERTH_STATE_DIR: "/srv/berth", BERTH_UPLINK_SUBNET: "10.77.0.0/16", BERTH_QEMU_ACCEL: "kvm" });
    const c = loadConfig();
    expect(c.cookieSecure).toBe(false);
    expect(c.boardRefreshMs).toBe(5000);
    expect(c.logLevel).toBe("warn");
    expect(c.sandboxOptions).toEqual({ stateDir: "/srv/berth", uplinkNet: { subnet: "10.77.0.0/16", netDir: "/run/berth-net" }, accel: "kvm" });
    process.env.BERTH_COOKIE_SECURE = "1";
    expect(loadConfig().cookieSecure).toBe(true);
  });

  it("refuses a board refresh that is not a number, naming the variable", () => {
    process.env.BERTH_BOARD_REFRESH_SECONDS = "soon";
    expect(() => loadConfig()).toThrow("BERTH_BOARD_REFRESH_SECONDS=soon is not a non-negative number");
  });
});

describe("sessionCookie", () => {
  it("is Secure over TLS and on localhost (browsers accept it there), not over plain HTTP elsewhere, unless told", () => {
    expect(sessionCookie(request("berth.example"), "t", 60_000)).not.toContain("Secure");
    expect(sessionCookie(request("berth.example", "https"), "t", 60_000)).toContain("; Secure");
    expect(sessionCookie(request("localhost:3000"), "t", 60_000)).toContain("; Secure");
    expect(sessionCookie(request("berth.example"), "t", 60_000, true)).toContain("; Secure");
    expect(sessionCookie(request("localhost:3000"), "t", 60_000, false)).not.toContain("Secure");
  });
});
