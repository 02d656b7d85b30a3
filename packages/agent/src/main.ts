// The agent's entry point inside a sandbox (bundled to dist/agent.mjs). tini is PID 1 and reaps
// orphans; this process serves the socket until it is told to stop.
import { AgentServer } from "./server.js";
import { readAgentToken } from "./token.js";

const socketPath = process.env.BERTH_AGENT_SOCKET || "/run/berth/agent.sock";
const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

try {
  const token = readAgentToken();
  const server = await AgentServer.listen({ socketPath, token, log });
  log(`agent: listening on ${socketPath} (pid ${process.pid})`);
  const stop = (sig: string) => {
    log(`agent: ${sig}, stopping`);
    void server.dispose().then(() => process.exit(0));
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  // A learner's broken pty or file must never take the whole agent down.
  process.on("uncaughtException", (err) => log(`agent: uncaught: ${err.stack ?? err.message}`));
} catch (err) {
  log((err as Error).message);
  process.exit(1);
}
