// Everything the orchestrator reads from its environment, in one place, with the defaults that make
// `npm start` work on one machine with nothing else installed.
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { sandboxOptionsFromEnv, type SandboxEnvOptions } from "@berth/sandbox";
import { locateDatabase, stateDir } from "./db/location.js";

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, "../../..");

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${raw} is not a non-negative number`);
  return n;
}

export interface OrchestratorConfig {
  port: number;
  host: string;
  /**
   * Names this orchestrator's sandboxes (their ids start with it), so that several installations
   * or test runs on one machine never adopt or reap each other's sandboxes.
   */
  instance: string;
  labsDir: string;
  webDir: string;
  /** Serve the Next.js app too (off in API-only tests). */
  serveWeb: boolean;
  /** DATABASE_URL, else the embedded SQLite file in the state directory (BERTH_DATA_DIR or .berth). */
  databaseUrl: string;
  /** Sandboxes kept ready so "Start lab" hands one over at once. */
  warmPoolSize: number;
  /** Which sandbox driver makes learners' sandboxes (BERTH_SANDBOX_DRIVER: namespaces, uml, qemu). */
  sandboxDriver: string;
  /** Where the driver keeps sandboxes and images, the uplinks' subnet, the qemu accelerator and kernel (BERTH_STATE_DIR, BERTH_UPLINK_SUBNET, BERTH_NET_DIR, BERTH_QEMU_*). */
  sandboxOptions: SandboxEnvOptions;
  /** pino's level (LOG_LEVEL, default info). */
  logLevel: string;
  /** The session cookie's Secure flag: BERTH_COOKIE_SECURE=1 always, 0 never, unset by the request (TLS, or not localhost). */
  cookieSecure: boolean | undefined;
  /** How often a watched class board is reread whole (BERTH_BOARD_REFRESH_SECONDS; unset: the board's default, 30 s). */
  boardRefreshMs: number | undefined;
  /** A sandbox with no viewer and no activity for this long is reaped. */
  idleTimeoutMs: number;
  /** No sandbox lives longer than this. */
  maxLifetimeMs: number;
  reapIntervalMs: number;
  sessionTtlMs: number;
  sandboxLimits: { memoryBytes: number; cpus: number; pids: number; diskBytes: number };
  /**
   * The lab registry (Debian's docker-registry) started with the orchestrator and stopped with it:
   * it serves the lab images that setup pushed into `root` (infra/images/build.ts). It listens on
   * 127.0.0.1 only (plain HTTP); `port` 0 picks a free one. Off with BERTH_REGISTRY=0.
   */
  registry: { enabled: boolean; root: string; port: number };
  /**
   * What a client may hold of the HTTP server. Timeouts are about the client *sending*: a request
   * must be fully received within `requestTimeoutMs` (headers within `headersTimeoutMs`); once it
   * is, computing the answer (a check may run for its own timeout) is not cut. 0 turns a cap off.
   */
  http: {
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    keepAliveTimeoutMs: number;
    /** Open TCP connections per client address; more are answered 503 and closed. */
    maxConnectionsPerIp: number;
    /** Live socket.io connections per client address. */
    maxSocketsPerIp: number;
    /**
     * Behind a reverse proxy: take the client's address from the last X-Forwarded-For hop and the
     * host from X-Forwarded-Host (for rate limits and the same-origin check).
     */
    trustProxy: boolean;
  };
  /** Live learner sandboxes: per account, and in all (a queue beyond that). */
  sandboxCaps: { perAccount: number; total: number; queueTimeoutMs: number };
  /** Sign-up and sign-in throttles (docs/architecture.md, "Sessions and accounts"). */
  authLimits: {
    signupsPerIpPerHour: number;
    /** Wrong passwords allowed before back-off starts, per account and per client address. */
    signinFreeFailuresPerAccount: number;
    signinFreeFailuresPerIp: number;
  };
  /** Created or updated as an administrator at every start (unattended installs, tests). */
  admin: { email: string; password: string } | undefined;
  /** How long the one-time setup link printed at start (when no admin exists) stays valid. */
  setupLinkTtlMs: number;
  /**
   * The secret behind learners' lab variables (labs/learner-context.ts): made on first start in the
   * data directory (BERTH_DATA_DIR, default <repo>/.berth), kept across restarts.
   */
  labSecretFile: string;
}

/**
 * Enough sandboxes to fill most of the host's memory at their limit: the rest stays for the
 * orchestrator, the engine's caches and the kernel. At least 1.
 */
export function defaultSandboxTotal(memoryBytes: number, hostMemoryBytes = os.totalmem()): number {
  return Math.max(1, Math.floor((hostMemoryBytes * 0.75) / memoryBytes));
}

function adminFromEnv(): { email: string; password: string } | undefined {
  const email = process.env.BERTH_ADMIN_EMAIL?.trim();
  const password = process.env.BERTH_ADMIN_PASSWORD;
  if (!email && !password) return undefined;
  if (!email || !password) throw new Error("set BERTH_ADMIN_EMAIL and BERTH_ADMIN_PASSWORD together (one of them is empty)");
  return { email, password };
}

export function loadConfig(overrides: Partial<OrchestratorConfig> = {}): OrchestratorConfig {
  return {
    port: intFromEnv("PORT", 3000),
    host: process.env.HOST ?? "0.0.0.0",
    instance: process.env.BERTH_INSTANCE ?? "main",
    labsDir: process.env.BERTH_LABS_DIR ?? path.join(REPO_ROOT, "labs"),
    webDir: path.join(REPO_ROOT, "apps/web"),
    serveWeb: process.env.BERTH_SERVE_WEB !== "0",
    databaseUrl: locateDatabase(process.env.DATABASE_URL || undefined, process.env).url,
    warmPoolSize: intFromEnv("BERTH_WARM_POOL", 1),
    sandboxDriver: process.env.BERTH_SANDBOX_DRIVER?.trim() || "namespaces",
    sandboxOptions: sandboxOptionsFromEnv(process.env),
    logLevel: process.env.LOG_LEVEL || "info",
    cookieSecure: process.env.BERTH_COOKIE_SECURE === "1" ? true : process.env.BERTH_COOKIE_SECURE === "0" ? false : undefined,
    boardRefreshMs: intFromEnv("BERTH_BOARD_REFRESH_SECONDS", 0) * 1000 || undefined,
    idleTimeoutMs: intFromEnv("BERTH_IDLE_MINUTES", 30) * 60_000,
    maxLifetimeMs: intFromEnv("BERTH_MAX_LIFETIME_MINUTES", 240) * 60_000,
    reapIntervalMs: intFromEnv("BERTH_REAP_SECONDS", 60) * 1000,
    sessionTtlMs: intFromEnv("BERTH_SESSION_DAYS", 14) * 24 * 3600_000,
    sandboxLimits: {
      memoryBytes: intFromEnv("BERTH_SANDBOX_MEMORY_MB", 512) * 1024 * 1024,
      cpus: intFromEnv("BERTH_SANDBOX_CPUS", 1),
      pids: intFromEnv("BERTH_SANDBOX_PIDS", 256),
      diskBytes: intFromEnv("BERTH_SANDBOX_DISK_MB", 4096) * 1024 * 1024,
    },
    registry: {
      enabled: process.env.BERTH_REGISTRY !== "0",
      // The same storage the image build step pushes to (infra/images/build.ts registryRoot()).
      root: process.env.BERTH_REGISTRY_ROOT || path.join(process.env.BERTH_STATE_DIR || "/var/lib/berth", "registry"),
      port: intFromEnv("BERTH_REGISTRY_PORT", 0),
    },
    http: {
      headersTimeoutMs: intFromEnv("BERTH_HEADERS_TIMEOUT_SECONDS", 10) * 1000,
      requestTimeoutMs: intFromEnv("BERTH_REQUEST_TIMEOUT_SECONDS", 30) * 1000,
      keepAliveTimeoutMs: intFromEnv("BERTH_KEEPALIVE_SECONDS", 5) * 1000,
      maxConnectionsPerIp: intFromEnv("BERTH_MAX_CONNECTIONS_PER_IP", 64),
      maxSocketsPerIp: intFromEnv("BERTH_MAX_SOCKETS_PER_IP", 32),
      trustProxy: process.env.BERTH_TRUST_PROXY === "1",
    },
    sandboxCaps: {
      perAccount: intFromEnv("BERTH_SANDBOXES_PER_ACCOUNT", 2),
      total: intFromEnv("BERTH_SANDBOXES_TOTAL", 0) || defaultSandboxTotal(intFromEnv("BERTH_SANDBOX_MEMORY_MB", 512) * 1024 * 1024),
      queueTimeoutMs: intFromEnv("BERTH_QUEUE_MINUTES", 10) * 60_000,
    },
    authLimits: {
      signupsPerIpPerHour: intFromEnv("BERTH_SIGNUPS_PER_IP_HOUR", 30),
      signinFreeFailuresPerAccount: intFromEnv("BERTH_SIGNIN_FREE_FAILURES", 5),
      signinFreeFailuresPerIp: intFromEnv("BERTH_SIGNIN_FREE_FAILURES_PER_IP", 20),
    },
    admin: adminFromEnv(),
    setupLinkTtlMs: intFromEnv("BERTH_SETUP_LINK_MINUTES", 60) * 60_000,
    labSecretFile: path.join(stateDir(process.env), "lab-variables.key"),
    ...overrides,
  };
}
