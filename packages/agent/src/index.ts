// @berth/agent: the process that runs inside each sandbox and serves the agent protocol
// (packages/protocol/src/agent.ts) on a UNIX socket. main.ts is the entry the sandbox runs;
// AgentServer is exported so tests (and anything embedding an agent) can run one in-process.
export { AgentServer, DEFAULT_ENV, type AgentOptions } from "./server.js";
export { readAgentToken } from "./token.js";
export { EngineProcess, type EngineProcessOptions } from "./engine-process.js";
