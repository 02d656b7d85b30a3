// Assembles the orchestrator: database, lab catalog, sandbox driver and pool, grading, the REST API,
// the socket.io gateway and (optionally) the Next.js web app, all behind one HTTP server.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { pino, type Logger } from "pino";
import type { SandboxDriver } from "@berth/sandbox";
import { createSandboxDriver } from "@berth/sandbox";
import { loadConfig, type OrchestratorConfig } from "./config.js";
import { closeDatabase, openDatabase, type Db } from "./db/index.js";
import { SessionStore } from "./auth/sessions.js";
import { SetupLink, ensureAdmin, hasAdmin } from "./auth/admin.js";
import { LabCatalog } from "./labs/catalog.js";
import { SandboxManager } from "./sandboxes/sandbox-manager.js";
import { CheckRunner } from "./grading/check-runner.js";
import { AutoChecks } from "./grading/auto-checks.js";
import { ProgressBook } from "./grading/progress.js";
import { QuizGrader } from "./grading/quiz-grader.js";
import { Reveals } from "./grading/reveals.js";
import { LearnerContexts, hostSandboxFacts, loadOrCreateSecret } from "./labs/learner-context.js";
import { LearnerLabs } from "./labs/learner-labs.js";
import { LabPresence } from "./labs/presence.js";
import { createApi } from "./http/api.js";
import { AuthoredCatalog } from "./authoring/published.js";
import { Authoring } from "./authoring/drafts.js";
import { normalizeAddress, sendJson } from "./http/router.js";
import { createGateway } from "./gateway.js";
import { WEB_BRIDGE_KEY, createWebBridge } from "./http/web-bridge.js";
import { startCohorts, type CohortSide } from "./cohorts/index.js";
import { PreviewServer } from "./preview/preview.js";
import { REGISTRY_BINARY, startRegistry, type Registry } from "@berth/registry";

export interface Orchestrator {
  http: HttpServer;
  url: string;
  db: Db;
  sandboxes: SandboxManager;
  /** The lab registry (127.0.0.1 only), unless disabled or it could not start. */
  registry: Registry | undefined;
  /**
   * While no administrator exists (and none is configured): the one-time link that creates one
   * (`<url>/setup#<token>`), for main.ts to print.
   */
  setupUrl: string | undefined;
  /** Cohorts, the live board and mirrors (the board bench drives it). */
  classroom: CohortSide;
  /** Automatic checks (their stats: the check-roundtrip bench). */
  autoChecks: AutoChecks;
  close(): Promise<void>;
}

export async function startOrchestrator(
  overrides: Partial<OrchestratorConfig> = {},
  opts: { driver?: SandboxDriver; log?: Logger } = {},
): Promise<Orchestrator> {
  const config = loadConfig(overrides);
  const log = opts.log ?? pino({ level: config.logLevel });
  const registry = await startLabRegistry(config, log);
  // A start that fails half way must not leave the registry process behind.
  try {
    return await assemble(config, log, registry, opts);
  } catch (err) {
    await registry?.stop();
    throw err;
  }
}

async function assemble(config: OrchestratorConfig, log: Logger, registry: Registry | undefined, opts: { driver?: SandboxDriver }): Promise<Orchestrator> {
  // Migrations are applied at start (idempotent, milliseconds when up to date): a fresh data dir just works.
  const db = await openDatabase(config.databaseUrl, { migrate: true });
  // Each sandbox reaches the lab registry through a gateway of the driver's (pulls, and pushes
  // into the learner's own namespace): the driver needs the registry's address on this host.
  const driver =
    opts.driver ??
    createSandboxDriver(
      config.sandboxDriver,
      { ...config.sandboxOptions, ...(registry ? { registryUpstream: registry.url, registryQuota: { storageDir: path.join(registry.root, "data") } } : {}) },
      (line) => log.warn(line),
    );
  await driver.prepare((line) => log.info(line));

  const catalog = new LabCatalog(db, log);
  await catalog.load(config.labsDir);
  // Labs authored in the browser: published versions join the catalog (docs/authoring.md).
  const authored = new AuthoredCatalog(db, path.join(path.dirname(config.labSecretFile), "authored"), log, (id) => catalog.isFileLab(id));
  await authored.load();
  catalog.attach(authored);
  const sessions = new SessionStore(db, config.sessionTtlMs);
  // Administrators come from the console, never from the first sign-up (auth/admin.ts).
  const setupLink = new SetupLink();
  let setupToken: string | undefined;
  if (config.admin) {
    const { id, created, passwordChanged } = await ensureAdmin(db, config.admin);
    if (passwordChanged) await sessions.destroyAllOf(id); // the old password's sessions end with it
    log.info({ email: config.admin.email.trim().toLowerCase(), created }, "administrator from BERTH_ADMIN_EMAIL is ready");
  } else if (!(await hasAdmin(db))) {
    setupToken = setupLink.issue(config.setupLinkTtlMs);
  }
  // A new sandbox is prepared by the learner's lab (assets, setups): `labs` is made below, before
  // any sandbox can be acquired.
  const sandboxes = new SandboxManager(driver, db, config, log, (sb) => labs.prepareSandbox(sb));
  await sandboxes.recover();
  const checks = new CheckRunner(db, sandboxes);
  // Instructors' live boards hear what learners do (cohorts/; made once the gateway exists).
  let classroom: CohortSide | undefined;
  checks.onRecorded = (userId, labId) => classroom?.activity(userId, labId);
  const contexts = new LearnerContexts(loadOrCreateSecret(config.labSecretFile), hostSandboxFacts(driver.name));
  const progress = new ProgressBook(db, catalog);
  const presence = new LabPresence();
  const autoChecks = new AutoChecks({ db, catalog, contexts, sandboxes, checks, progress, presence, log });
  const labs: LearnerLabs = new LearnerLabs({
    db, catalog, contexts, sandboxes, checks, progress, log,
    quizzes: new QuizGrader(db, checks),
    reveals: new Reveals(db),
    onStepEntered: (userId, labId) => {
      autoChecks.poke(userId, labId);
      classroom?.activity(userId, labId);
    },
    onActivity: (userId, labId) => classroom?.activity(userId, labId),
  });
  const api = createApi({
    db, sessions, catalog, sandboxes, checks, labs, sessionTtlMs: config.sessionTtlMs, cookieSecure: config.cookieSecure, log,
    authLimits: config.authLimits, trustProxy: config.http.trustProxy, setupLink,
    authoring: new Authoring({ db, catalog, authored, driver, instance: config.instance, log }),
    onFileSaved: (userId, labId) => autoChecks.fileSaved(userId, labId),
  });
  const preview = new PreviewServer({ db, sessions, sandboxes, endpoint: (id) => driver.connect(id), log });

  let web: ((req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => Promise<void>) | undefined;
  let closeWeb: (() => Promise<void>) | undefined;
  if (config.serveWeb) {
    const { default: next } = await import("next");
    const app = next({ dev: false, dir: config.webDir, quiet: true });
    await app.prepare();
    const handler = app.getRequestHandler();
    web = (req, res) => handler(req, res);
    closeWeb = () => app.close();
  }

  // Slow clients: a request must be fully *received* in time (headers, then the whole body); the
  // timers stop once it has arrived, so a check that runs for its whole timeout is not cut. Node
  // looks for expired requests every `connectionsCheckingInterval` (30 s by default: too coarse).
  const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs } = config.http;
  const http = createServer({
    requestTimeout: requestTimeoutMs,
    headersTimeout: requestTimeoutMs > 0 ? Math.min(headersTimeoutMs, requestTimeoutMs) : headersTimeoutMs,
    keepAliveTimeout: keepAliveTimeoutMs,
    connectionsCheckingInterval: 1000,
  }, (req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    if (path === "/healthz") return sendJson(res, 200, { ok: true, warmPool: sandboxes.pool.readyCount });
    if (path === "/api" || path.startsWith("/api/")) return void api.handle(req, res);
    if (PreviewServer.handles(path)) return void preview.handle(req, res);
    if (web) return void web(req, res).catch((err) => {
      log.error({ err: String(err) }, "web handler failed");
      if (!res.headersSent) sendJson(res, 500, { error: "page failed to render" });
    });
    sendJson(res, 404, { error: "not found" });
  });
  capConnectionsPerAddress(http, config.http.maxConnectionsPerIp, log);
  const io = createGateway(http, { sessions, sandboxes, catalog, presence, log, maxSocketsPerIp: config.http.maxSocketsPerIp, trustProxy: config.http.trustProxy });
  // Cohorts, the admin's role routes, the live board and terminal mirrors (cohorts/index.ts).
  classroom = startCohorts({ db, sessions, catalog, presence, sandboxes, log, router: api, io: io as never, boardRefreshMs: config.boardRefreshMs });
  // WebSockets of a learner's previewed app. Preview upgrades must not reach socket.io's listener:
  // it ends any upgrade not its own that has written nothing after 1 s, and opening a tunnel and
  // hearing the learner's server can take longer on a busy machine. So one dispatcher in front.
  const others = http.listeners("upgrade") as ((...args: unknown[]) => void)[];
  http.removeAllListeners("upgrade");
  http.on("upgrade", (req: import("node:http").IncomingMessage, socket: import("node:stream").Duplex, head: Buffer) => {
    if (PreviewServer.handles((req.url ?? "/").split("?")[0]!)) return void preview.upgrade(req, socket, head);
    for (const l of others) l.call(http, req, socket, head);
  });

  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(config.port, config.host, () => resolve());
  });
  const port = (http.address() as AddressInfo).port;
  const url = `http://localhost:${port}`;
  // The web app's server components ask this process directly (http/web-bridge.ts, read by
  // apps/web/src/lib/server-api.ts).
  if (config.serveWeb) (globalThis as Record<symbol, unknown>)[WEB_BRIDGE_KEY] = createWebBridge({ sessions, catalog, labs, sandboxes });
  sandboxes.start();
  log.info({ url, driver: driver.name, warmPool: config.warmPoolSize, registry: registry?.url }, "Berth is ready");
  const setupUrl = setupToken ? `${url}/setup#${setupToken}` : undefined;

  let closed: Promise<void> | undefined;
  return {
    http,
    url,
    db,
    sandboxes,
    registry,
    setupUrl,
    classroom,
    autoChecks,
    close: () =>
      (closed ??= (async () => {
        setupLink.close();
        autoChecks.dispose();
        classroom?.dispose();
        io.close();
        preview.close();
        await new Promise<void>((r) => http.close(() => r()));
        await sandboxes.dispose();
        // The registry gateways run in this process: stop serving them (the sandboxes keep running,
        // and the next orchestrator's prepare() serves them again). A driver handed in is its owner's.
        if (!opts.driver) await driver.close?.();
        await closeWeb?.();
        await closeDatabase(db);
        await registry?.stop();
      })()),
  };
}

/**
 * At most `max` open TCP connections per client address (0: no cap), except from this machine's
 * own loopback address. One more is answered 503 and closed before anything is parsed, so a client
 * holding many slow connections cannot starve the others. Behind a reverse proxy every connection comes from the proxy: raise or turn off the cap
 * there, and let the proxy cap clients.
 */
function capConnectionsPerAddress(http: HttpServer, max: number, log: Logger): void {
  if (max <= 0) return;
  const open = new Map<string, number>();
  let warned = 0;
  http.on("connection", (socket: import("node:net").Socket) => {
    const address = normalizeAddress(socket.remoteAddress ?? "unknown");
    // The web app's server-side renders call /api over 127.0.0.1 (many at once under load), as
    // does a reverse proxy on this host: the machine itself is not capped.
    if (address === "127.0.0.1" || address === "::1") return;
    const count = open.get(address) ?? 0;
    if (count >= max) {
      if (Date.now() - warned > 60_000) {
        warned = Date.now();
        log.warn({ address, max }, "connection refused: too many open connections from one address (BERTH_MAX_CONNECTIONS_PER_IP)");
      }
      socket.on("error", () => undefined);
      socket.end(`HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 5\r\nConnection: close\r\n\r\ntoo many open connections from your address (at most ${max})\n`);
      socket.destroySoon();
      return;
    }
    open.set(address, count + 1);
    socket.once("close", () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
}

/** Stops the registry a crashed run of this instance left behind (only if the pid is still one). */
function stopOrphanedRegistry(pidFile: string, log: Logger): void {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, "utf8").trim());
  } catch {
    return; // no earlier run, or it stopped cleanly
  }
  try {
    // A recycled pid must not be shot: only a process running the registry binary is ours.
    if (Number.isInteger(pid) && pid > 1 && readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] === REGISTRY_BINARY) {
      process.kill(pid, "SIGTERM");
      log.warn({ pid }, "stopped the lab registry a crashed orchestrator left running");
    }
  } catch {
    /* gone already */
  }
  rmSync(pidFile, { force: true });
}

/**
 * The registry that serves the lab images to sandboxes' `docker pull`. Without it Berth still
 * works (containers from images a sandbox already has, builds FROM them), so a failure to start
 * is logged, not fatal: a machine where setup has not pushed the images, or without Debian's
 * docker-registry, can still teach the chapters that need no pull.
 */
async function startLabRegistry(config: OrchestratorConfig, log: Logger): Promise<Registry | undefined> {
  if (!config.registry.enabled) return undefined;
  try {
    // A crash (kill -9, the OOM killer) skips the exit hook below: the last run's registry may
    // still be serving. Its pid is kept per instance, so a restart under a supervisor stops it.
    const pidFile = path.join(config.registry.root, `registry-${config.instance}.pid`);
    stopOrphanedRegistry(pidFile, log);
    // (startRegistry itself tries again when the free port it picked is taken before the bind)
    const registry = await startRegistry({ root: config.registry.root, host: "127.0.0.1", port: config.registry.port });
    log.info({ url: registry.url, storage: config.registry.root }, "lab registry started");
    writeFileSync(pidFile, `${registry.pid}\n`);
    // A child process outlives its parent unless told: if the orchestrator exits without close()
    // (a failed start, a crash), take the registry down with it.
    const onExit = () => {
      try {
        process.kill(registry.pid, "SIGTERM");
      } catch {
        /* already gone */
      }
    };
    process.once("exit", onExit);
    const stop = registry.stop.bind(registry);
    return { ...registry, stop: () => (process.off("exit", onExit), rmSync(pidFile, { force: true }), stop()) };
  } catch (err) {
    log.warn({ err: String(err) }, "lab registry did not start: `docker pull` in sandboxes will fail (BERTH_REGISTRY=0 silences this)");
    return undefined;
  }
}
