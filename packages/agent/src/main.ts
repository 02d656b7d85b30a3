// The agent's entry point inside a sandbox (bundled to dist/agent.mjs). tini is PID 1 and reaps
// orphans; this process serves the socket until it is told to stop, and supervises the container
// engine when the sandbox ships one (BERTH_ENGINE_BUNDLE).
import { AgentServer } from "./server.js";
import { EngineProcess } from "./engine-process.js";
import { readAgentToken } from "./token.js";
import { startRegistryForwarder } from "./registry-forwarder.js";

const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

// Node opens its inspector (a debugger that runs any code in this process) on SIGUSR1, and root in
// the sandbox may signal us. A listener of our own turns that off (Node 20 has no
// --disable-sigusr1); NODE_OPTIONS cannot turn it on again, as our environment is runc's config.
process.on("SIGUSR1", () => log("agent: ignored SIGUSR1 (the inspector stays closed)"));

// A sandbox's agent inherits its listening socket (BERTH_AGENT_LISTEN_FD, see the driver);
// BERTH_AGENT_SOCKET is for running it by hand.
const listenFd = process.env.BERTH_AGENT_LISTEN_FD ? Number(process.env.BERTH_AGENT_LISTEN_FD) : undefined;
const socketPath = listenFd === undefined ? process.env.BERTH_AGENT_SOCKET || "/run/berth/agent.sock" : undefined;

// The engine is started once the sandbox has answered its first health check (so it never
// delays create()), or after a few seconds if nobody asks.
const ENGINE_START_FALLBACK_MS = 3000;

try {
  const token = readAgentToken(process.env);
  const bundle = process.env.BERTH_ENGINE_BUNDLE;
  const engine = bundle
    ? new EngineProcess({
        bundle,
        shim: process.env.BERTH_ENGINE_SHIM || "/opt/berth/bin/berth-shim",
        root: process.env.BERTH_ENGINE_ROOT || "/var/lib/berth/engine",
        socket: process.env.BERTH_ENGINE_SOCKET || "/var/run/docker.sock",
        logFile: process.env.BERTH_ENGINE_LOG || "/var/log/berth-engine.log",
        // debian:bookworm, built once on the host and bound read-only (BERTH_ENGINE_SHARED_IMAGES).
        sharedImages: process.env.BERTH_ENGINE_SHARED_IMAGES ? [process.env.BERTH_ENGINE_SHARED_IMAGES] : [],
        // What a learner's container may not bind: Berth's own files and the agent's sockets (the
        // engine adds its state dir itself). The docker socket stays bindable, as with Docker.
        bindDeny: ["/opt/berth", "/run/berth", "/run/berth-gw", ...(process.env.BERTH_ENGINE_SHARED_IMAGES ? [process.env.BERTH_ENGINE_SHARED_IMAGES] : [])],
        // The lab registry, reached through the driver's gateway (set by the driver with BERTH_REGISTRY_SOCKET).
        registryMirror: process.env.BERTH_REGISTRY_MIRROR || undefined,
        log,
      })
    : undefined;
  // Only the first start comes from here: later ones are the supervisor's (with its back-off), so
  // an orchestrator polling health cannot turn a crashing engine into a tight restart loop.
  const firstStart = engine && (() => engine.starts === 0 && engine.start());
  if (listenFd !== undefined && !(Number.isInteger(listenFd) && listenFd > 2)) throw new Error(`agent: BERTH_AGENT_LISTEN_FD=${process.env.BERTH_AGENT_LISTEN_FD} is not a file descriptor above 2`);
  const server = await AgentServer.listen({ socketPath, listenFd, token, log, onHealth: firstStart });
  log(`agent: listening on ${listenFd !== undefined ? `inherited fd ${listenFd}` : socketPath} (pid ${process.pid})`);
  // localhost:5000 in the sandbox = the lab registry, through the driver's gateway socket.
  if (process.env.BERTH_REGISTRY_SOCKET) startRegistryForwarder({ socketPath: process.env.BERTH_REGISTRY_SOCKET, log });
  const fallback = firstStart && setTimeout(firstStart, ENGINE_START_FALLBACK_MS);
  const stop = (sig: string) => {
    log(`agent: ${sig}, stopping`);
    clearTimeout(fallback);
    void (engine?.stop() ?? Promise.resolve())
      .then(() => server.dispose())
      .then(() => process.exit(0));
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  // A learner's broken pty or file must never take the whole agent down.
  process.on("uncaughtException", (err) => log(`agent: uncaught: ${err.stack ?? err.message}`));
} catch (err) {
  log((err as Error).message);
  process.exit(1);
}
