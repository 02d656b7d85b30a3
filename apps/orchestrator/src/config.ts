// Everything the orchestrator reads from its environment, in one place, with the defaults that make
// `npm start` work on one machine with nothing else installed.
import path from "node:path";
import { fileURLToPath } from "node:url";

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
  databaseUrl: string | undefined;
  /** Sandboxes kept ready so "Start lab" hands one over at once. */
  warmPoolSize: number;
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
}

export function loadConfig(overrides: Partial<OrchestratorConfig> = {}): OrchestratorConfig {
  return {
    port: intFromEnv("PORT", 3000),
    host: process.env.HOST ?? "0.0.0.0",
    instance: process.env.BERTH_INSTANCE ?? "main",
    labsDir: process.env.BERTH_LABS_DIR ?? path.join(REPO_ROOT, "labs"),
    webDir: path.join(REPO_ROOT, "apps/web"),
    serveWeb: process.env.BERTH_SERVE_WEB !== "0",
    databaseUrl: process.env.DATABASE_URL || undefined,
    warmPoolSize: intFromEnv("BERTH_WARM_POOL", 1),
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
    ...overrides,
  };
}
