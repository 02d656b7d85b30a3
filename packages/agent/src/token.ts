// Where the agent's token comes from. The driver writes it to a file in the socket directory; the
// agent reads it and deletes the file before any learner process exists, so nothing in the sandbox
// can read it later. BERTH_AGENT_TOKEN works too (handy in tests), but the initial environment stays
// readable in /proc/<pid>/environ for root in the sandbox, so the file is the way a driver should use.
import { readFileSync, unlinkSync } from "node:fs";

/** `env` is the process's own environment (main passes process.env): the token is deleted from it. */
export function readAgentToken(env: NodeJS.ProcessEnv): string {
  let token = "";
  const file = env.BERTH_AGENT_TOKEN_FILE;
  if (file) {
    token = readFileSync(file, "utf8").trim();
    unlinkSync(file);
  } else if (env.BERTH_AGENT_TOKEN) {
    token = env.BERTH_AGENT_TOKEN.trim();
  }
  delete env.BERTH_AGENT_TOKEN;
  delete env.BERTH_AGENT_TOKEN_FILE;
  if (!token) throw new Error("agent: no token; set BERTH_AGENT_TOKEN_FILE (preferred) or BERTH_AGENT_TOKEN");
  return token;
}
